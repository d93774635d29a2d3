/** Evaluation metrics: the reference's validation Dice, and per-class Dice/IoU from a confusion matrix. */
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import { diceScores } from './dice.js';
import { IGNORE_INDEX, validPixels } from './ignore.js';

/** Hard predictions [N,H,W] int64 from logits [N,C,H,W]: argmax, or sigmoid > threshold for one class. */
export function predictClasses(logits: Tensor, nClasses: number, threshold = 0.5): Tensor {
  return E.tidy(() => (nClasses === 1 ? logits.squeeze(1).float().sigmoid().gt(threshold).long() : logits.argmax(1)));
}

/**
 * Per-image Dice [N] as the reference's evaluate.py: binary -> Dice of the thresholded mask
 * (the reference crashes here on a shape bug; we squeeze the channel); multi-class -> Dice of the
 * one-hot argmax per foreground class (background excluded), averaged over classes. Pixels whose
 * target is IGNORE_INDEX (--ignore-index) count in neither prediction nor truth.
 */
export function validationDice(logits: Tensor, masks: Tensor, nClasses: number, threshold = 0.5): Tensor {
  return E.tidy(() => {
    const pred = predictClasses(logits, nClasses, threshold);
    // Ignored pixels (IGNORE_INDEX) are left out on both sides: zero in prediction and truth.
    const valid = validPixels(masks);
    const truth = masks.clamp(0);
    if (nClasses === 1) return diceScores(pred.float().mul(valid), truth.float().mul(valid));
    const n = masks.size(0);
    const v = valid.unsqueeze(1);
    const p = E.oneHot(pred, nClasses).permute([0, 3, 1, 2]).slice(1, 1, null).float().mul(v); // [N,C-1,H,W]
    const t = E.oneHot(truth, nClasses).permute([0, 3, 1, 2]).slice(1, 1, null).float().mul(v);
    return diceScores(p.flatten(0, 1), t.flatten(0, 1))
      .reshape([n, nClasses - 1])
      .mean(1);
  });
}

/** Confusion counts [K,K] int64 (rows: truth, cols: prediction); K = max(nClasses, 2). Ignored pixels are not counted. */
export function confusionMatrix(pred: Tensor, masks: Tensor, nClasses: number): Tensor {
  const k = Math.max(nClasses, 2);
  return E.tidy(() => {
    const cell = E.where(masks.ne(IGNORE_INDEX), masks.mul(k).add(pred), k * k); // ignored -> one extra bin, dropped
    return E.bincount(cell.flatten(), null, k * k + 1)
      .slice(0, 0, k * k)
      .reshape([k, k]);
  });
}

export interface SegmentationMetrics {
  perClassDice: number[];
  perClassIoU: number[];
  meanDice: number; // foreground classes (class 1 for binary), as the reference's Dice
  meanIoU: number;
  pixelAccuracy: number;
  confusion: number[][];
}

/** Global per-class Dice and IoU from accumulated confusion counts. */
export function metricsFromConfusion(cm: number[][]): SegmentationMetrics {
  const k = cm.length;
  const dice: number[] = [];
  const iou: number[] = [];
  let correct = 0;
  let total = 0;
  for (let c = 0; c < k; c++) {
    const tp = cm[c][c];
    let fp = 0;
    let fn = 0;
    for (let o = 0; o < k; o++) {
      if (o !== c) {
        fp += cm[o][c];
        fn += cm[c][o];
      }
      total += cm[c][o];
    }
    correct += tp;
    const denom = 2 * tp + fp + fn;
    dice.push(denom === 0 ? 1 : (2 * tp) / denom);
    iou.push(tp + fp + fn === 0 ? 1 : tp / (tp + fp + fn));
  }
  const fg = (xs: number[]) => xs.slice(1).reduce((a, b) => a + b, 0) / Math.max(1, k - 1);
  return { perClassDice: dice, perClassIoU: iou, meanDice: fg(dice), meanIoU: fg(iou), pixelAccuracy: total ? correct / total : 0, confusion: cm };
}
