/**
 * --time-budget: the run is planned for a wall-clock budget counted from the command's start (a
 * resumed run: from the resumed command's). After the first optimizer steps the costs are measured
 * (a step; a validation round and an epoch's end, guessed from the step until first seen), the
 * steps that fit are estimated, and the poly/cosine schedule (stepped per optimizer step under a
 * budget) and the epoch count are set from that; it is planned again at every epoch's end and
 * validation round. The run stops at the step boundary after which one more step and the final
 * validation and checkpoint would overrun; train.ts then ends the epoch there as at its end.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TrainConfig } from '../config/options.js';
import { COMMAND_START_ENV } from '../distributed/index.js';
import type { LoadedCheckpoint } from '../model/checkpoint.js';
import { EpochScheduler } from '../optim/index.js';
import { CONFIG_FILE } from '../tracking/index.js';
import { validatedEnds } from './cadence.js';
import { type BudgetSummary, type RunBudget, type TrainRun, isMain } from './context.js';
import { validationSamples } from './validation.js';

/** Optimizer steps timed before the first estimate (the first one also warms up the allocator and kernels). */
const FIRST_STEPS = 3;
/**
 * Kept free after the final checkpoint for the report, the summary and the process's exit, and for
 * the noise of the final epoch end's estimate (at 4%, 15-minute CamVid runs used 93-94% of their
 * budget once --val-last left the first validation, with its image decoding, the only one measured).
 */
const margin = (seconds: number) => Math.max(1.5, 0.025 * seconds);

const mean = (xs: number[]): number | null => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);

/** Costs in seconds and the run's shape, for the estimate. */
export interface Pace {
  step: number;
  /** A validation round inside an epoch, and how many fall on one optimizer step. */
  round: number;
  roundsPerStep: number;
  /** An epoch's end: validation, checkpoint and best model, logging; `plainEnd` one that --val-last leaves unscored. */
  epochEnd: number;
  plainEnd: number;
  stepsPerEpoch: number;
  /** Epochs complete, and --val-last (0: every epoch's end validates). */
  done: number;
  valLast: number;
}

/** Seconds that `n` more steps take, from `into` steps into an epoch, with the epoch ends they pass and the final one. */
export function costOf(n: number, p: Pace, into: number): number {
  const ends = (n > 0 ? Math.floor((into + n - 1) / p.stepsPerEpoch) : 0) + 1;
  const scored = validatedEnds(p.done, p.done + ends, p.valLast);
  return n * (p.step + p.roundsPerStep * p.round) + scored * p.epochEnd + (ends - scored) * p.plainEnd;
}

/** The most steps whose cost (costOf) fits in `seconds`. */
export function stepsThatFit(seconds: number, p: Pace, into: number): number {
  let lo = 0;
  let hi = Math.max(0, Math.ceil(seconds / p.step));
  if (costOf(0, p, into) > seconds) return 0;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (costOf(mid, p, into) <= seconds) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Optimizer steps per epoch of one rank: its shard of the training images in batches, accumulated. */
const stepsOf = (cfg: TrainConfig, trainImages: number, worldSize: number): number => Math.ceil(Math.ceil(Math.ceil(trainImages / worldSize) / cfg.batchSize) / cfg.accumulateGradBatches);

export const stepsPerEpoch = (run: TrainRun): number => stepsOf(run.cfg, run.data.split.train.length, run.worldSize);

/** Scheduler options under a budget: poly and cosine step per optimizer step (their length is replanned). */
export function budgetSchedule(cfg: TrainConfig, trainImages: number, worldSize: number): { stepsPerEpoch?: number } {
  if (!(cfg.timeBudget > 0) || (cfg.scheduler !== 'poly' && cfg.scheduler !== 'cosine')) return {};
  return { stepsPerEpoch: stepsOf(cfg, trainImages, worldSize) };
}

/**
 * Resuming a --time-budget run without a budget: its per-step schedule, planned to end with that
 * run, would hold the lr at 0; -e's per-epoch schedule takes over at the epochs done.
 */
export function leaveBudget(run: TrainRun, ckpt: LoadedCheckpoint | null): void {
  const was = Number((ckpt?.config as { timeBudget?: unknown } | undefined)?.timeBudget);
  if (!(was > 0) || ckpt?.kind !== 'unet-ts' || !(run.scheduler instanceof EpochScheduler)) return;
  run.scheduler.replan(ckpt.epoch, run.cfg.epochs);
  run.log(`The checkpoint's ${run.cfg.scheduler} schedule was planned for its --time-budget; without one it continues over -e ${run.cfg.epochs} epochs from epoch ${ckpt.epoch}`);
}

/** `90`, `15m`, `1h30m`: how --time-budget is written back. */
export function formatDuration(seconds: number): string {
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.round((seconds % 60) * 10) / 10;
  return `${h ? `${h}h` : ''}${m ? `${m}m` : ''}${s || (!h && !m) ? `${s}s` : ''}`;
}

export class TimeBudget implements RunBudget {
  private readonly startMs: number;
  private readonly ceiling: number;
  private readonly firstStep: number;
  /** Epochs complete (an epoch stopped by the budget counts once its end has run). */
  private completed: number;
  private lastAt: number | null = null;
  private stepSum = 0;
  private stepCount = 0;
  /** Seconds of the validation rounds and epoch ends seen (means smooth the noise of a shared machine). */
  private readonly rounds: number[] = [];
  private readonly epochEnds: number[] = [];
  private readonly plainEnds: number[] = [];
  private horizon: number | null = null;
  private stopped = false;

  constructor(
    readonly seconds: number,
    run: TrainRun,
    startEpoch: number,
  ) {
    this.completed = startEpoch - 1;
    const env = Number(process.env[COMMAND_START_ENV]);
    // performance.now() is 0 at the process's start; a launched worker's command started earlier.
    this.startMs = Number.isFinite(env) && env > 0 ? env - performance.timeOrigin : 0;
    this.ceiling = run.cfg.epochs;
    this.firstStep = run.globalStep;
    // Until planned, the schedule stays at its start: its position is the run's step count.
    if (run.scheduler instanceof EpochScheduler && run.scheduler.interval === 'step') run.scheduler.replan(run.globalStep, run.globalStep + 1_000_000_000);
    run.log(`Time budget ${formatDuration(seconds)} (${this.elapsed().toFixed(1)} s used by the start-up): planning after ${FIRST_STEPS} optimizer steps`);
  }

  /** Whether the budget has ended the run (the epoch in progress is its last). */
  get ended(): boolean {
    return this.stopped;
  }

  private elapsed(): number {
    return (performance.now() - this.startMs) / 1000;
  }

  /** The costs measured so far, with guesses from the step time where nothing was seen yet. */
  pace(run: TrainRun): Pace {
    const steps = stepsPerEpoch(run);
    const step = Math.max(1e-6, this.stepSum / Math.max(1, this.stepCount));
    const { cadence, cfg } = run;
    const hasVal = run.data.split.val.length > 0;
    // A training sample's share of a step; precise BN's forward pass of a batch about a third of a step.
    const sample = step / cfg.accumulateGradBatches / cfg.batchSize;
    const round = mean(this.rounds) ?? validationSamples(run) * sample + (cfg.preciseBn * step) / cfg.accumulateGradBatches / 3;
    const bytes = run.model.numParameters() * 4 * 3; // weights and up to two optimizer moments
    const save = 2 * (0.2 + bytes / 100e6); // an epoch checkpoint, and the best model
    const epochEnd = mean(this.epochEnds) ?? (hasVal ? round : 0) + save;
    const plainEnd = mean(this.plainEnds) ?? save / 2;
    const roundsPerStep = !hasVal || cadence.unit === 'epoch' ? 0 : cadence.unit === 'steps' ? 1 / cadence.every : cfg.accumulateGradBatches / cadence.every;
    return { step, round, roundsPerStep, epochEnd, plainEnd, stepsPerEpoch: steps, done: this.completed, valLast: cfg.valLast };
  }

  /** Steps into the epoch in progress (all of them after its last step, before its end has run). */
  private into(run: TrainRun): number {
    return run.mark ? Math.ceil(run.mark.batch / run.cfg.accumulateGradBatches) : 0;
  }

  /**
   * Sets the schedule's length and the epoch count from the steps that fit (rank 0's estimate on
   * every rank: their learning rates must agree); returns the steps left.
   */
  private async plan(run: TrainRun, say: boolean): Promise<number> {
    const p = this.pace(run);
    const into = this.into(run);
    const done = this.completed;
    let left = Math.max(0, Math.min(stepsThatFit(this.seconds - margin(this.seconds) - this.elapsed(), p, into), (this.ceiling - done) * p.stepsPerEpoch - into));
    if (run.dist) [left] = await run.dist.reduce([isMain(run) ? left : 0], 'sum', 'agreeing on the time budget');
    this.horizon = run.globalStep + Math.max(0, left);
    const lastEpoch = done + Math.max(1, Math.ceil((into + left) / p.stepsPerEpoch));
    run.cfg.epochs = Math.min(this.ceiling, lastEpoch);
    if (run.scheduler instanceof EpochScheduler && run.scheduler.interval === 'step') run.scheduler.replan(run.globalStep, Math.max(this.horizon, run.globalStep + 1));
    run.ema?.planFor(this.horizon);
    run.tracker.scalar('time budget/planned steps', this.horizon, run.globalStep);
    if (say) {
      const epochs = (this.horizon - this.firstStep) / p.stepsPerEpoch;
      const ema = run.ema?.warmup === 'auto' ? `; EMA warm-up tau ${Math.round(run.ema.tau)} steps` : '';
      run.log(`time budget ${formatDuration(this.seconds)}: ~${this.horizon - this.firstStep} steps (~${epochs.toFixed(1)} epochs) at ${p.step.toFixed(3)} s/step${ema}`);
    }
    return left;
  }

  /** After an optimizer step: times it, plans after the first ones; true when the run must stop here (all ranks agree). */
  async afterStep(run: TrainRun): Promise<boolean> {
    const now = performance.now();
    if (this.lastAt !== null) {
      this.stepSum += (now - this.lastAt) / 1000;
      this.stepCount++;
    }
    this.lastAt = now;
    const n = run.globalStep - this.firstStep;
    // Before the estimate only a start-up that took the whole budget stops the run (after one step).
    if (this.horizon === null && n < FIRST_STEPS) return this.agree(run, this.elapsed() > this.seconds - margin(this.seconds));
    if (this.horizon === null) await this.plan(run, isMain(run));
    else if (run.globalStep >= this.horizon) await this.plan(run, false); // faster than planned: more steps may fit
    return this.agree(run, run.globalStep >= (this.horizon ?? 0) || this.overruns(run));
  }

  /** After a validation round inside an epoch, begun at `from` (performance.now()). */
  async roundDone(run: TrainRun, from: number): Promise<void> {
    this.lastAt = performance.now(); // the next interval is a step's
    this.rounds.push((this.lastAt - from) / 1000);
    if (this.horizon !== null) await this.plan(run, false);
  }

  /** After an epoch's end begun at `from` (`scored`: it validated): plans again; true when no further step fits (all ranks agree). */
  async afterEpoch(run: TrainRun, epoch: number, from: number, scored = true): Promise<boolean> {
    (scored ? this.epochEnds : this.plainEnds).push((performance.now() - from) / 1000);
    this.completed = epoch;
    if (this.stopped) return true;
    this.lastAt = performance.now();
    if (this.horizon === null) return false;
    const left = await this.plan(run, false);
    const stop = await this.agree(run, left === 0);
    this.lastAt = performance.now(); // the next epoch's first interval: its loader's start and a step
    return stop;
  }

  /** Whether one more step and the final epoch end would pass the budget. */
  private overruns(run: TrainRun): boolean {
    const p = this.pace(run);
    return this.elapsed() + costOf(1, p, this.into(run)) > this.seconds - margin(this.seconds);
  }

  /** Rank 0's decision on every rank. */
  private async agree(run: TrainRun, stop: boolean): Promise<boolean> {
    const decided = run.dist ? (await run.dist.reduce([isMain(run) && stop ? 1 : 0], 'max', 'agreeing on the time budget'))[0] > 0 : stop;
    if (decided) this.stopped = true;
    return decided;
  }

  /** The run's account, also written into config.json (the report and the dashboard show it). */
  async finish(run: TrainRun): Promise<BudgetSummary> {
    const s: BudgetSummary = { seconds: this.seconds, used: Math.round(this.elapsed() * 10) / 10, plannedSteps: this.horizon, steps: run.globalStep, endedByBudget: this.stopped };
    run.log(`Time budget ${formatDuration(this.seconds)}: ${s.used} s used (${Math.round((100 * s.used) / this.seconds)}%), ${s.steps - this.firstStep} steps${s.endedByBudget ? ', ended by the budget' : ''}`);
    if (isMain(run) && run.tracker.enabled) {
      const path = join(run.tracker.runDir, CONFIG_FILE);
      try {
        const config = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
        await writeFile(`${path}.tmp`, `${JSON.stringify({ ...config, epochs: run.cfg.epochs, budget: s }, null, 2)}\n`);
        await rename(`${path}.tmp`, path);
      } catch (e) {
        run.warn(`could not add the time budget's account to ${path}: ${(e as Error).message}`);
      }
    }
    return s;
  }
}
