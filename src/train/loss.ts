/** The reference trainer's criterion: CE + Dice (BCE-with-logits + Dice for one class). */
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import type { LossName } from '../config/options.js';
import { diceLoss } from '../metrics/dice.js';
import { namedLoss } from './losses.js';
import { IGNORE_INDEX, validPixels } from '../metrics/ignore.js';

export interface LossOptions {
  /**
   * --class-weights: [C] float32 on the logits' device, the CE term's per-class weights (PyTorch's
   * `weight`: a weighted mean); for -c 1, [2] (background, foreground) as per-pixel BCE weights.
   */
  weight?: Tensor;
}

/**
 * logits [N,C,H,W] (any float dtype, e.g. under autocast), masks [N,H,W] int64 class indices, with
 * IGNORE_INDEX (-100) on pixels that count in no term (--ignore-index). Returns a scalar float32
 * loss. The Dice term includes the background class, as the reference, over the counted pixels.
 */
export function segmentationLoss(logits: Tensor, masks: Tensor, nClasses: number, loss: LossName = 'ce+dice', opts: LossOptions = {}): Tensor {
  // --loss (src/train/losses.ts); their binary forms take no class weights.
  if (loss !== 'ce+dice') return namedLoss(loss, logits, masks, nClasses, nClasses === 1 ? null : (opts.weight ?? null));
  return E.tidy(() => {
    const valid = validPixels(masks); // [N,H,W] 1/0; all 1 without --ignore-index
    const target = masks.clamp(0); // ignored pixels as class 0, masked out below
    const perPixel = opts.weight ? opts.weight.indexSelect(0, target.flatten()).reshape(target.shape).mul(valid) : valid;
    // A batch of ignored pixels only is 0 / 0: the clamped denominators make its loss 0 (PyTorch: NaN).
    if (nClasses === 1) {
      const pred = logits.squeeze(1).float(); // [N,H,W]
      const t = target.float();
      // PyTorch's BCE on the counted pixels only: the mean of weight * loss over them, as the mean
      // over all pixels times numel / counted (exactly 1 with none ignored: the reference's numbers, bit for bit).
      const share = E.full([], masks.numel, { device: masks.device as E.Device }).div(masks.ne(IGNORE_INDEX).sum().clamp(1));
      const bce = E.binaryCrossEntropyWithLogits(pred, t, { weight: perPixel }).mul(share);
      return bce.add(diceLoss(pred.sigmoid().mul(valid), t.mul(valid), false));
    }
    const ce = E.crossEntropy(logits.float(), masks, { weight: opts.weight ?? null, ignoreIndex: IGNORE_INDEX, reduction: 'sum' }).div(perPixel.sum().clamp(1e-12));
    const v = valid.unsqueeze(1);
    const probs = E.softmax(logits, 1).float().mul(v);
    const oneHot = E.oneHot(target, nClasses).permute([0, 3, 1, 2]).float().mul(v);
    return ce.add(diceLoss(probs, oneHot, true));
  });
}
