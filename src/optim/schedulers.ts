/**
 * Learning-rate schedulers over an optimizer's parameter groups (each group's lr scheduled from its
 * own base lr, as PyTorch does), with PyTorch-layout state dicts.
 *
 * - ReduceLROnPlateau: torch.optim.lr_scheduler.ReduceLROnPlateau, exact semantics (1.13).
 *   Stepped with a metric (the reference trainer: val Dice, mode 'max', patience 5, at every
 *   validation round).
 * - CosineWarmupLR: linear warmup then cosine annealing (formula below). The unit of `step()` is
 *   whatever the caller steps it on: call it once per epoch with totals in epochs (per-epoch mode),
 *   or once per optimizer step with totals in steps (per-step mode); `createScheduler` does either.
 * - PolyLR: nnU-Net's poly decay, lr = initial * (1 - t / total)^0.9, with PyTorch PolynomialLR's
 *   state layout (which computes the same closed form).
 * - NoneScheduler ('none'): leaves the lr alone.
 *
 * Every scheduler says when the trainer should step it (`interval`): 'metric' (ReduceLROnPlateau,
 * after each validation, with the score), 'epoch' or 'step' (the cosine/poly schedules, per the
 * unit their lengths are in), or 'never'.
 *
 * The epoch-indexed ones follow PyTorch's _LRScheduler protocol: the constructor sets
 * `optimizer.initialLr` (param group 'initial_lr') when it is unset, performs the initial step
 * (last_epoch 0, `_step_count` 1) and writes lr(0); each `step()` then increments `last_epoch`
 * and writes lr(last_epoch). Call `step()` after the optimizer steps of that epoch (or step).
 */
import type { Optimizer } from './optimizer.js';
import type { Stateful } from '../io/stateful.js';

/** One group's lr as schedulers see it: a mutable lr, and initial_lr for the state dict. */
export type LrGroup = Pick<Optimizer, 'lr' | 'initialLr'>;
/** The optimizer surface schedulers need: its groups, or a lone { lr, initialLr } (one group). */
export type LrTarget = LrGroup & { readonly paramGroups?: readonly LrGroup[] };
const groupsOf = (t: LrTarget): readonly LrGroup[] => t.paramGroups ?? [t];
const lrsOf = (t: LrTarget): number[] => groupsOf(t).map((g) => g.lr);

export type StepInterval = 'metric' | 'epoch' | 'step' | 'never';

export interface LRScheduler extends Stateful<Record<string, unknown>> {
  /** When the trainer should call step(): see the module comment. */
  readonly interval: StepInterval;
  /** Advances the schedule; `metric` is required by ReduceLROnPlateau and ignored by the others. */
  step(metric?: number): void;
  /** The lr after the last step (`get_last_lr()`, one entry per param group). */
  getLastLr(): number[];
}

function need<T>(sd: Record<string, unknown>, key: string, type: 'number' | 'string' | 'boolean', where: string): T {
  const v = sd[key];
  if (typeof v !== type) throw new Error(`${where}.loadStateDict: '${key}' must be a ${type}, got ${String(v)}`);
  return v as T;
}
/** A list of one number per parameter group. */
function numList(sd: Record<string, unknown>, key: string, where: string, n: number): number[] {
  const v = sd[key];
  if (!Array.isArray(v) || v.length !== n || !v.every((x) => typeof x === 'number')) throw new Error(`${where}.loadStateDict: '${key}' must be a list of ${n} number${n === 1 ? '' : 's'} (one per parameter group)`);
  return [...v] as number[];
}

// -------------------------------------------------------------------------------------------------
// ReduceLROnPlateau

export interface ReduceLROnPlateauOptions {
  mode?: 'min' | 'max'; // 'min'
  factor?: number; // 0.1
  patience?: number; // 10 (PyTorch's default; the reference trainer passes 5)
  threshold?: number; // 1e-4
  thresholdMode?: 'rel' | 'abs'; // 'rel'
  cooldown?: number; // 0
  minLr?: number; // 0
  eps?: number; // 1e-8
}

export class ReduceLROnPlateau implements LRScheduler {
  readonly interval = 'metric' as const;
  private readonly optimizer: LrTarget;
  factor: number;
  minLr: number;
  patience: number;
  cooldown: number;
  cooldownCounter = 0;
  mode: 'min' | 'max';
  threshold: number;
  thresholdMode: 'rel' | 'abs';
  best: number;
  numBadEpochs = 0;
  modeWorse: number;
  eps: number;
  lastEpoch = 0;
  /** undefined until the first step (PyTorch's object has no _last_lr before that). */
  private lastLr: number[] | undefined;

  constructor(optimizer: LrTarget, o: ReduceLROnPlateauOptions = {}) {
    this.optimizer = optimizer;
    this.factor = o.factor ?? 0.1;
    if (!(this.factor < 1.0)) throw new RangeError('Factor should be < 1.0.');
    this.minLr = o.minLr ?? 0;
    this.patience = o.patience ?? 10;
    this.cooldown = o.cooldown ?? 0;
    this.mode = o.mode ?? 'min';
    this.threshold = o.threshold ?? 1e-4;
    this.thresholdMode = o.thresholdMode ?? 'rel';
    this.eps = o.eps ?? 1e-8;
    this.modeWorse = this.initIsBetter();
    this.best = this.modeWorse;
  }

  private initIsBetter(): number {
    if (this.mode !== 'min' && this.mode !== 'max') throw new Error(`mode ${String(this.mode)} is unknown!`);
    if (this.thresholdMode !== 'rel' && this.thresholdMode !== 'abs') throw new Error(`threshold mode ${String(this.thresholdMode)} is unknown!`);
    return this.mode === 'min' ? Number.POSITIVE_INFINITY : Number.NEGATIVE_INFINITY;
  }

  isBetter(a: number, best: number): boolean {
    if (this.mode === 'min' && this.thresholdMode === 'rel') return a < best * (1 - this.threshold);
    if (this.mode === 'min') return a < best - this.threshold;
    if (this.thresholdMode === 'rel') return a > best * (this.threshold + 1);
    return a > best + this.threshold;
  }

  get inCooldown(): boolean {
    return this.cooldownCounter > 0;
  }

  step(metric?: number): void {
    if (typeof metric !== 'number') throw new TypeError('ReduceLROnPlateau.step(metric) needs the metric value');
    const current = metric;
    this.lastEpoch += 1;
    if (this.isBetter(current, this.best)) {
      this.best = current;
      this.numBadEpochs = 0;
    } else {
      this.numBadEpochs += 1;
    }
    if (this.inCooldown) {
      this.cooldownCounter -= 1;
      this.numBadEpochs = 0; // ignore any bad epochs in cooldown
    }
    if (this.numBadEpochs > this.patience) {
      this.reduceLr();
      this.cooldownCounter = this.cooldown;
      this.numBadEpochs = 0;
    }
    this.lastLr = lrsOf(this.optimizer);
  }

  private reduceLr(): void {
    for (const g of groupsOf(this.optimizer)) {
      const newLr = Math.max(g.lr * this.factor, this.minLr);
      if (g.lr - newLr > this.eps) g.lr = newLr;
    }
  }

  getLastLr(): number[] {
    return this.lastLr ? [...this.lastLr] : lrsOf(this.optimizer);
  }

  /** PyTorch's `__dict__` minus the optimizer, in its key order. */
  stateDict(): Record<string, unknown> {
    const sd: Record<string, unknown> = {
      factor: this.factor,
      min_lrs: groupsOf(this.optimizer).map(() => this.minLr),
      patience: this.patience,
      verbose: false,
      cooldown: this.cooldown,
      cooldown_counter: this.cooldownCounter,
      mode: this.mode,
      threshold: this.threshold,
      threshold_mode: this.thresholdMode,
      best: this.best,
      num_bad_epochs: this.numBadEpochs,
      mode_worse: this.modeWorse,
      eps: this.eps,
      last_epoch: this.lastEpoch,
    };
    if (this.lastLr) sd._last_lr = [...this.lastLr];
    return sd;
  }

  loadStateDict(sd: Record<string, unknown>): void {
    const w = 'ReduceLROnPlateau';
    const n = groupsOf(this.optimizer).length;
    const mode = need<string>(sd, 'mode', 'string', w);
    const thresholdMode = need<string>(sd, 'threshold_mode', 'string', w);
    if (mode !== 'min' && mode !== 'max') throw new Error(`${w}.loadStateDict: mode ${mode} is unknown!`);
    if (thresholdMode !== 'rel' && thresholdMode !== 'abs') throw new Error(`${w}.loadStateDict: threshold mode ${thresholdMode} is unknown!`);
    const next = {
      factor: need<number>(sd, 'factor', 'number', w),
      minLr: numList(sd, 'min_lrs', w, n)[0], // one min_lr for every group (as we write them)
      patience: need<number>(sd, 'patience', 'number', w),
      cooldown: need<number>(sd, 'cooldown', 'number', w),
      cooldownCounter: need<number>(sd, 'cooldown_counter', 'number', w),
      threshold: need<number>(sd, 'threshold', 'number', w),
      best: need<number>(sd, 'best', 'number', w),
      numBadEpochs: need<number>(sd, 'num_bad_epochs', 'number', w),
      eps: need<number>(sd, 'eps', 'number', w),
      lastEpoch: need<number>(sd, 'last_epoch', 'number', w),
    };
    Object.assign(this, next);
    this.mode = mode;
    this.thresholdMode = thresholdMode;
    this.modeWorse = this.initIsBetter(); // PyTorch re-derives it (_init_is_better)
    this.lastLr = sd._last_lr === undefined ? undefined : numList(sd, '_last_lr', w, n);
  }
}

// -------------------------------------------------------------------------------------------------
// Epoch-indexed schedulers (PyTorch _LRScheduler protocol)

export abstract class EpochScheduler implements LRScheduler {
  readonly interval: 'epoch' | 'step';
  protected readonly optimizer: LrTarget;
  /** Each group's initial_lr, which its lr is scheduled from. */
  baseLrs: number[];
  lastEpoch = 0;
  protected stepCount = 0;
  protected lastLr: number[];

  constructor(optimizer: LrTarget, interval: 'epoch' | 'step' = 'epoch') {
    if (interval !== 'epoch' && interval !== 'step') throw new Error(`scheduler interval must be 'epoch' or 'step', got ${String(interval)}`);
    this.interval = interval;
    this.optimizer = optimizer;
    for (const g of groupsOf(optimizer)) if (g.initialLr === undefined) g.initialLr = g.lr;
    this.baseLrs = groupsOf(optimizer).map((g) => g.initialLr as number);
    this.lastLr = lrsOf(optimizer);
  }

  /** The initial step of PyTorch's constructor: subclasses call it once their fields are set. */
  protected initialStep(): void {
    this.lastEpoch = -1;
    this.stepCount = 0;
    this.step();
  }

  /** Schedule length (epochs or steps, as `interval`). */
  abstract total: number;

  /** lr at schedule position t (t = last_epoch), for a group whose base lr is `base` (default: the first group's). */
  abstract lrAt(t: number, base?: number): number;

  /** Sets every group's lr for position t. */
  private setLrs(t: number): void {
    groupsOf(this.optimizer).forEach((g, i) => (g.lr = this.lrAt(t, this.baseLrs[i])));
    this.lastLr = lrsOf(this.optimizer);
  }

  /**
   * Moves the schedule to `position` with `total` as its length, and the lr with it: --time-budget
   * plans the length from measured step times and re-plans it as the run goes.
   */
  replan(position: number, total: number): void {
    if (!Number.isInteger(total) || total <= 0 || !Number.isInteger(position) || position < 0) throw new RangeError(`replan: position ${position} and total ${total} must be integers, total > 0`);
    this.total = total;
    this.lastEpoch = position;
    this.setLrs(position);
  }

  step(_metric?: number): void {
    this.stepCount += 1;
    this.lastEpoch += 1;
    this.setLrs(this.lastEpoch);
  }

  getLastLr(): number[] {
    return [...this.lastLr];
  }

  /** Scheduler-specific keys (first in the dict, as PyTorch's __init__ sets them first). */
  protected abstract ownState(): Record<string, unknown>;
  protected abstract loadOwnState(sd: Record<string, unknown>): void;

  stateDict(): Record<string, unknown> {
    return {
      ...this.ownState(),
      base_lrs: [...this.baseLrs],
      last_epoch: this.lastEpoch,
      verbose: false,
      _step_count: this.stepCount,
      _get_lr_called_within_step: false,
      _last_lr: [...this.lastLr],
    };
  }

  /** Restores the schedule position; like PyTorch it does not touch the optimizer's lr (load the optimizer's state too). */
  loadStateDict(sd: Record<string, unknown>): void {
    const w = this.constructor.name;
    const n = groupsOf(this.optimizer).length;
    const baseLrs = numList(sd, 'base_lrs', w, n);
    const lastEpoch = need<number>(sd, 'last_epoch', 'number', w);
    const stepCount = need<number>(sd, '_step_count', 'number', w);
    const lastLr = numList(sd, '_last_lr', w, n);
    this.loadOwnState(sd);
    this.baseLrs = baseLrs;
    this.lastEpoch = lastEpoch;
    this.stepCount = stepCount;
    this.lastLr = lastLr;
  }
}

export interface CosineWarmupOptions {
  /** Schedule length T (epochs or steps). */
  total: number;
  /** Linear warmup length W (same unit), 0 for plain cosine annealing. */
  warmup?: number;
  /** Final lr (eta_min), default 0. */
  minLr?: number;
  /** The unit of total/warmup, i.e. when the trainer steps it: 'epoch' (default) or 'step'. */
  interval?: 'epoch' | 'step';
}

/**
 * Linear warmup then cosine annealing, at position t = last_epoch (0 after construction):
 *   t <  W:  lr = base * (t + 1) / W                                  (base/W ... base)
 *   t >= W:  lr = minLr + (base - minLr) * (1 + cos(pi * min(t - W, T - W) / (T - W))) / 2
 * so the lr reaches `base` at the last warmup position, starts the cosine there, and reaches
 * `minLr` at t = T (held after). With W = 0 it is PyTorch's CosineAnnealingLR (closed form,
 * T_max = T) for t <= T.
 */
export class CosineWarmupLR extends EpochScheduler {
  total: number;
  warmup: number;
  minLr: number;

  constructor(optimizer: LrTarget, o: CosineWarmupOptions) {
    super(optimizer, o.interval);
    this.total = o.total;
    this.warmup = o.warmup ?? 0;
    this.minLr = o.minLr ?? 0;
    this.validate();
    this.initialStep();
  }

  private validate(): void {
    if (!Number.isInteger(this.total) || this.total <= 0) throw new RangeError(`CosineWarmupLR: total must be a positive integer, got ${this.total}`);
    if (!Number.isInteger(this.warmup) || this.warmup < 0 || this.warmup >= this.total) {
      throw new RangeError(`CosineWarmupLR: warmup must be an integer in [0, total), got ${this.warmup} (total ${this.total})`);
    }
  }

  lrAt(t: number, base = this.baseLrs[0]): number {
    const { total: T, warmup: W, minLr } = this;
    if (t < W) return base * ((t + 1) / W); // (t+1)/W first: exactly base at t = W-1
    const progress = Math.min(t - W, T - W) / (T - W);
    return minLr + ((base - minLr) * (1 + Math.cos(Math.PI * progress))) / 2;
  }

  protected ownState(): Record<string, unknown> {
    return { T_max: this.total, eta_min: this.minLr, warmup_steps: this.warmup };
  }
  protected loadOwnState(sd: Record<string, unknown>): void {
    const w = 'CosineWarmupLR';
    const total = need<number>(sd, 'T_max', 'number', w);
    const minLr = need<number>(sd, 'eta_min', 'number', w);
    const warmup = sd.warmup_steps === undefined ? 0 : need<number>(sd, 'warmup_steps', 'number', w);
    const prev = { total: this.total, warmup: this.warmup, minLr: this.minLr };
    Object.assign(this, { total, warmup, minLr });
    try {
      this.validate();
    } catch (e) {
      Object.assign(this, prev);
      throw e;
    }
  }
}

export interface PolyOptions {
  /** Schedule length (epochs or steps). */
  total: number;
  /** Exponent, 0.9 as nnU-Net. */
  power?: number;
  /** The unit of total, i.e. when the trainer steps it: 'epoch' (default) or 'step'. */
  interval?: 'epoch' | 'step';
}

/** nnU-Net's PolyLR: lr = base * (1 - min(t, T) / T)^power, t = last_epoch. */
export class PolyLR extends EpochScheduler {
  total: number;
  power: number;

  constructor(optimizer: LrTarget, o: PolyOptions) {
    super(optimizer, o.interval);
    this.total = o.total;
    this.power = o.power ?? 0.9;
    if (!Number.isInteger(this.total) || this.total <= 0) throw new RangeError(`PolyLR: total must be a positive integer, got ${this.total}`);
    this.initialStep();
  }

  lrAt(t: number, base = this.baseLrs[0]): number {
    return base * (1 - Math.min(t, this.total) / this.total) ** this.power;
  }

  protected ownState(): Record<string, unknown> {
    return { total_iters: this.total, power: this.power };
  }
  protected loadOwnState(sd: Record<string, unknown>): void {
    const total = need<number>(sd, 'total_iters', 'number', 'PolyLR');
    const power = need<number>(sd, 'power', 'number', 'PolyLR');
    if (!Number.isInteger(total) || total <= 0) throw new Error(`PolyLR.loadStateDict: total_iters must be a positive integer, got ${total}`);
    this.total = total;
    this.power = power;
  }
}

/** The 'none' scheduler: a constant lr. State dict {} (nothing to restore). */
export class NoneScheduler implements LRScheduler {
  readonly interval = 'never' as const;
  constructor(private readonly optimizer: LrTarget) {}
  step(_metric?: number): void {}
  getLastLr(): number[] {
    return lrsOf(this.optimizer);
  }
  stateDict(): Record<string, unknown> {
    return {};
  }
  loadStateDict(_sd: Record<string, unknown>): void {}
}
