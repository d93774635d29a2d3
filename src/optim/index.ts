/**
 * Optimizers, gradient clipping, GradScaler and LR schedulers (PyTorch semantics and state-dict
 * layouts), plus the factories the trainer uses.
 *
 * Checkpoint note: state dicts hold plain JS numbers. Keys in `PY_FLOAT_KEYS` are Python floats in a
 * PyTorch checkpoint (e.g. lr = 1 must be written as 1.0); everything else numeric is an int
 * (step counts, patience, growth_interval, `params` ids...). `betas` is a tuple in PyTorch's
 * checkpoint; a list loads just as well. `null` in optimizer state is Python's None.
 */
import type { Tensor } from '../engine/index.js';
import { Adam, AdamW } from './adam.js';
import type { Optimizer, ParamGroupInit } from './optimizer.js';
import { RMSprop } from './rmsprop.js';
import { CosineWarmupLR, type LRScheduler, NoneScheduler, PolyLR, ReduceLROnPlateau } from './schedulers.js';
import { SGD } from './sgd.js';

export * from './optimizer.js';
export * from './rmsprop.js';
export * from './adam.js';
export * from './sgd.js';
export * from './clip.js';
export * from './grad-scaler.js';
export * from './schedulers.js';

/** State-dict keys whose numbers are Python floats (optimizer groups, schedulers, GradScaler). */
export const PY_FLOAT_KEYS: ReadonlySet<string> = new Set([
  // optimizer param groups
  'lr',
  'initial_lr',
  'momentum',
  'alpha',
  'eps',
  'weight_decay',
  'dampening',
  'betas',
  // schedulers
  'factor',
  'min_lrs',
  'threshold',
  'best',
  'mode_worse',
  'base_lrs',
  '_last_lr',
  'eta_min',
  'power',
  // GradScaler
  'scale',
  'growth_factor',
  'backoff_factor',
]);

export type OptimizerName = 'rmsprop' | 'adam' | 'adamw' | 'sgd';

export interface CreateOptimizerOptions {
  lr: number;
  /** Default 1e-8 for every optimizer (the reference trainer's weight_decay). */
  weightDecay?: number;
  /** RMSprop: default 0.999 (reference); SGD: default 0.9. Ignored by Adam/AdamW. */
  momentum?: number;
  /** RMSprop */
  alpha?: number;
  centered?: boolean;
  /** Adam/AdamW */
  betas?: [number, number];
  amsgrad?: boolean;
  /** All but SGD (default 1e-8). */
  eps?: number;
  /** SGD */
  nesterov?: boolean;
  dampening?: number;
  maximize?: boolean;
}

/**
 * Builds an optimizer with the reference trainer's defaults:
 * rmsprop = RMSprop(lr, weight_decay=1e-8, momentum=0.999) (alpha 0.99, eps 1e-8);
 * adam / adamw = Adam(W)(lr, weight_decay=1e-8) (betas 0.9/0.999, eps 1e-8, amsgrad off unless set);
 * sgd = SGD(lr, momentum=0.9, weight_decay=1e-8).
 */
export function createOptimizer(name: OptimizerName, params: Tensor[] | ParamGroupInit[], o: CreateOptimizerOptions): Optimizer {
  const weightDecay = o.weightDecay ?? 1e-8;
  switch (name) {
    case 'rmsprop':
      return new RMSprop(params, {
        lr: o.lr,
        weightDecay,
        momentum: o.momentum ?? 0.999,
        alpha: o.alpha,
        eps: o.eps,
        centered: o.centered,
        maximize: o.maximize,
      });
    case 'adam':
      return new Adam(params, { lr: o.lr, weightDecay, betas: o.betas, eps: o.eps, amsgrad: o.amsgrad, maximize: o.maximize });
    case 'adamw':
      return new AdamW(params, { lr: o.lr, weightDecay, betas: o.betas, eps: o.eps, amsgrad: o.amsgrad, maximize: o.maximize });
    case 'sgd':
      return new SGD(params, {
        lr: o.lr,
        weightDecay,
        momentum: o.momentum ?? 0.9,
        dampening: o.dampening,
        nesterov: o.nesterov,
        maximize: o.maximize,
      });
    default:
      throw new Error(`unknown optimizer '${String(name)}': use rmsprop, adam, adamw or sgd`);
  }
}

export type SchedulerName = 'plateau' | 'cosine' | 'poly' | 'none';

export interface CreateSchedulerOptions {
  /** Training length in epochs (cosine, poly). */
  epochs?: number;
  /** Linear warmup epochs before the cosine (default 0). */
  warmupEpochs?: number;
  /**
   * Optimizer steps per epoch: when given, cosine/poly run per step (lengths epochs*stepsPerEpoch,
   * warmup warmupEpochs*stepsPerEpoch; interval 'step'); otherwise per epoch (interval 'epoch').
   */
  stepsPerEpoch?: number;
  /** cosine: final lr (default 0). plateau: lower bound (default 0). */
  minLr?: number;
  /** plateau (reference: mode 'max' on val Dice, patience 5, factor 0.1). */
  mode?: 'min' | 'max';
  patience?: number;
  factor?: number;
  threshold?: number;
  thresholdMode?: 'rel' | 'abs';
  cooldown?: number;
  /** poly exponent (default 0.9). */
  power?: number;
}

/** Builds a scheduler; 'plateau' defaults to the reference's ReduceLROnPlateau(mode='max', patience=5). */
export function createScheduler(name: SchedulerName, optimizer: Optimizer, o: CreateSchedulerOptions = {}): LRScheduler {
  const lengths = (): { total: number; warmup: number; interval: 'epoch' | 'step' } => {
    if (o.epochs === undefined || !Number.isInteger(o.epochs) || o.epochs <= 0) {
      throw new Error(`the '${name}' scheduler needs epochs (a positive integer), got ${String(o.epochs)}`);
    }
    const per = o.stepsPerEpoch;
    if (per !== undefined && (!Number.isInteger(per) || per <= 0)) throw new Error(`stepsPerEpoch must be a positive integer, got ${per}`);
    const k = per ?? 1;
    return { total: o.epochs * k, warmup: (o.warmupEpochs ?? 0) * k, interval: per === undefined ? 'epoch' : 'step' };
  };
  switch (name) {
    case 'plateau':
      return new ReduceLROnPlateau(optimizer, {
        mode: o.mode ?? 'max',
        patience: o.patience ?? 5,
        factor: o.factor,
        threshold: o.threshold,
        thresholdMode: o.thresholdMode,
        cooldown: o.cooldown,
        minLr: o.minLr,
      });
    case 'cosine': {
      const { total, warmup, interval } = lengths();
      return new CosineWarmupLR(optimizer, { total, warmup: Math.round(warmup), minLr: o.minLr, interval });
    }
    case 'poly': {
      const { total, interval } = lengths();
      return new PolyLR(optimizer, { total, power: o.power, interval });
    }
    case 'none':
      return new NoneScheduler(optimizer);
    default:
      throw new Error(`unknown scheduler '${String(name)}': use plateau, cosine, poly or none`);
  }
}
