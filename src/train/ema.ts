/**
 * --ema: an exponential moving average of the weights (Ultralytics' ModelEMA), updated after every
 * optimizer step with the decay warmed up as d = decay * (1 - exp(-updates / tau)), tau 2000, so
 * the average follows the raw weights closely at first. Ultralytics' tau suits runs of many thousand
 * steps; a run of a few hundred would end with d ~ 0.1, an average of its last step or two, so
 * `--ema-warmup auto` fits tau to the run's planned steps instead (autoTau).
 *
 * Every floating-point tensor of the state dict is averaged, BatchNorm's running mean and variance
 * included (as Ultralytics and timm); num_batches_tracked is copied (timm's ModelEmaV3).
 *
 * The average is what validation scores and what checkpoints offer as the model: their
 * model_state_dict holds the EMA weights (so best_model.pth, predict, evaluate and export use them
 * unchanged), and raw_model_state_dict + ema_updates hold the training weights and the update count,
 * which --resume continues from. --precise-bn still recomputes the training weights' statistics;
 * the average then follows them like any other buffer.
 */
import * as E from '../engine/index.js';
import type { Device, Tensor } from '../engine/index.js';
import type { SegmentationModel } from '../model/index.js';
import type { Module } from '../nn/index.js';

/** Ultralytics' warm-up constant: the decay reaches 63% of its value after tau updates. */
export const EMA_TAU = 2000;

/** The decay of update number `updates` (from 1). */
export const emaDecay = (decay: number, updates: number, tau: number = EMA_TAU): number => decay * (1 - Math.exp(-updates / tau));

/**
 * --ema-warmup auto: the tau with which the average of a run of `steps` optimizer steps spans about
 * its last tenth at its end (1 - d = exp(-steps / tau) = 10 / steps); tau = steps for runs of 27
 * steps or fewer, where that tenth is under 3 steps.
 */
export const autoTau = (steps: number): number => Math.max(1, steps) / Math.max(1, Math.log(steps / 10));

/** The averaged copy of `source` in `model`: a fresh module of the same layout, which it moves to `place` and fills. */
export class ModelEma<M extends Module = SegmentationModel> {
  /** Optimizer steps averaged so far (Ultralytics' `updates`). */
  updates = 0;
  private readonly floats: [Tensor[], Tensor[]] = [[], []];
  private readonly others: [Tensor[], Tensor[]] = [[], []];
  /** The warm-up's tau in steps (Ultralytics' 2000 unless --ema-warmup says otherwise). */
  tau: number;

  constructor(
    readonly source: M,
    readonly model: M,
    readonly decay: number,
    place: { device: Device; memoryFormat?: 'channels_last' },
    /** The warm-up's tau: a number of steps, or 'auto' (autoTau of the steps planned, set by planFor). */
    readonly warmup: number | 'auto' = EMA_TAU,
  ) {
    this.tau = warmup === 'auto' ? EMA_TAU : warmup; // auto: Ultralytics' until planFor (under a budget, after its first steps)
    model.to(place).eval();
    model.loadStateDict(source.stateDict());
    const own = this.model.stateDict();
    for (const [k, t] of source.stateDict()) {
      const pair = t.dtype === 'float32' || t.dtype === 'float64' || t.dtype === 'float16' || t.dtype === 'bfloat16' ? this.floats : this.others;
      pair[0].push(own.get(k) as Tensor);
      pair[1].push(t);
    }
  }

  /** The run's optimizer steps as planned (by -e, or again by --time-budget): sets tau under --ema-warmup auto. */
  planFor(steps: number): void {
    if (this.warmup === 'auto') this.tau = autoTau(steps);
  }

  /** After an optimizer step: ema = d * ema + (1 - d) * raw (one foreach kernel each), other buffers copied. */
  update(): void {
    this.updates++;
    const d = emaDecay(this.decay, this.updates, this.tau);
    E.noGrad(() => {
      E.foreach.mul_(this.floats[0], d);
      E.foreach.add_(this.floats[0], this.floats[1], 1 - d);
      if (this.others[0].length) E.foreach.copy_(this.others[0], this.others[1]);
    });
  }

  dispose(): void {
    this.model.dispose();
  }
}
