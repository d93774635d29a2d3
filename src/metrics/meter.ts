/**
 * SegmentationMeter: the one scoring loop of training validation and `unet evaluate`. Add logits
 * and targets batch by batch, then read the reference's validation Dice (mean per-image Dice, as
 * evaluate.py), per-class Dice/IoU, pixel accuracy and the confusion matrix.
 */
import * as E from '../engine/index.js';
import type { Device, Tensor } from '../engine/index.js';
import { type SegmentationMetrics, confusionMatrix, metricsFromConfusion, predictClasses, validationDice } from './confusion.js';

/** Sums across data-parallel ranks (src/distributed's DistContext fits; metrics does not import it). */
export interface MeterReducer {
  reduce(values: number[]): Promise<number[]>;
  reduceTensor(t: Tensor): Promise<void>;
}

export interface MeterReading extends SegmentationMetrics {
  /** The reference's validation Dice: mean over images of the per-image Dice (NaN with no image). */
  dice: number;
  images: number;
}

export class SegmentationMeter {
  private readonly k: number;
  /** [K,K] int64 on the device (rows: truth, columns: prediction); read once at the end. */
  private readonly counts: Tensor;
  private readonly threshold: number;
  private diceSum = 0;
  private images = 0;

  constructor(
    readonly nClasses: number,
    opts: { device?: Device; threshold?: number } = {},
  ) {
    this.threshold = opts.threshold ?? 0.5;
    this.k = Math.max(nClasses, 2);
    this.counts = E.zeros([this.k, this.k], { dtype: 'int64', device: opts.device ?? 'cpu' }).keep();
  }

  /**
   * logits [N,C,H,W], targets [N,H,W] int64 (same device). Returns the predicted classes [N,H,W],
   * owned by the caller's tidy scope (training keeps one for the TensorBoard images).
   */
  add(logits: Tensor, targets: Tensor): Tensor {
    const pred = predictClasses(logits, this.nClasses, this.threshold);
    E.tidy(() => {
      this.counts.add_(confusionMatrix(pred, targets, this.nClasses));
      // A float32 sum per batch (one read per batch); exact per image with -b 1.
      this.diceSum += validationDice(logits, targets, this.nClasses, this.threshold).sum().item();
      this.images += targets.size(0);
    });
    return pred;
  }

  /** Data parallel: every rank's counts summed, so each rank reads the single-process result. */
  async reduce(dist: MeterReducer): Promise<void> {
    [this.diceSum, this.images] = await dist.reduce([this.diceSum, this.images]);
    await dist.reduceTensor(this.counts);
  }

  read(): MeterReading {
    const flat = this.counts.toArray();
    const confusion = Array.from({ length: this.k }, (_, r) => flat.slice(r * this.k, (r + 1) * this.k));
    return { ...metricsFromConfusion(confusion), dice: this.images ? this.diceSum / this.images : Number.NaN, images: this.images };
  }

  dispose(): void {
    this.counts.dispose();
  }
}
