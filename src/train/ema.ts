/**
 * --ema: an exponential moving average of the weights (Ultralytics' ModelEMA), updated after every
 * optimizer step with the decay warmed up as d = decay * (1 - exp(-updates / tau)), tau 2000, so
 * the average follows the raw weights closely at first. Every floating-point tensor of the state
 * dict is averaged, BatchNorm's running mean and variance included (as Ultralytics and timm);
 * num_batches_tracked is copied (timm's ModelEmaV3).
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

/** The averaged copy of `source` in `model`: a fresh module of the same layout, which it moves to `place` and fills. */
export class ModelEma<M extends Module = SegmentationModel> {
  /** Optimizer steps averaged so far (Ultralytics' `updates`). */
  updates = 0;
  private readonly floats: [Tensor[], Tensor[]] = [[], []];
  private readonly others: [Tensor[], Tensor[]] = [[], []];

  constructor(
    readonly source: M,
    readonly model: M,
    readonly decay: number,
    place: { device: Device; memoryFormat?: 'channels_last' },
    readonly tau: number = EMA_TAU,
  ) {
    model.to(place).eval();
    model.loadStateDict(source.stateDict());
    const own = this.model.stateDict();
    for (const [k, t] of source.stateDict()) {
      const pair = t.dtype === 'float32' || t.dtype === 'float64' || t.dtype === 'float16' || t.dtype === 'bfloat16' ? this.floats : this.others;
      pair[0].push(own.get(k) as Tensor);
      pair[1].push(t);
    }
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
