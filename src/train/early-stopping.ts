/**
 * Early stopping on validation Dice (higher is better). Fixes the guide fork's bugs: a "best" is
 * strictly better than every earlier score, and the best weights are a deep copy (the fork's
 * shallow dict copy restored the current weights).
 */
import type { Stateful } from '../io/stateful.js';

export interface EarlyStoppingState {
  best_score: number | null; // best validation Dice so far
  best_epoch: number;
  patience_best: number | null; // the score the patience counter compares against
  counter: number; // validations without an improvement of at least minDelta
  patience: number;
  min_delta: number;
}

export class EarlyStopping implements Stateful<EarlyStoppingState, Partial<EarlyStoppingState> | null> {
  state: EarlyStoppingState;
  constructor(patience: number, minDelta: number) {
    this.state = { best_score: null, best_epoch: 0, patience_best: null, counter: 0, patience, min_delta: minDelta };
  }

  /** Records an epoch's score; says whether it is a new best and whether to stop now. */
  update(score: number, epoch: number): { isBest: boolean; stop: boolean } {
    const s = this.state;
    const isBest = Number.isFinite(score) && (s.best_score === null || score > s.best_score);
    if (isBest) {
      s.best_score = score;
      s.best_epoch = epoch;
    }
    if (s.patience_best === null || score >= s.patience_best + s.min_delta) {
      s.patience_best = score;
      s.counter = 0;
    } else {
      s.counter += 1;
    }
    return { isBest, stop: s.patience > 0 && s.counter >= s.patience };
  }

  stateDict(): EarlyStoppingState {
    return { ...this.state };
  }
  loadStateDict(sd: Partial<EarlyStoppingState> | null): void {
    if (sd) this.state = { ...this.state, ...sd, patience: this.state.patience, min_delta: this.state.min_delta };
  }
}
