/** The reference trainer's criterion: CE + Dice (BCE-with-logits + Dice for one class). */
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import type { LossName } from '../config/options.js';
import { diceLoss } from '../metrics/dice.js';
import { namedLoss } from './losses.js';

/**
 * logits [N,C,H,W] (any float dtype, e.g. under autocast), masks [N,H,W] int64 class indices.
 * Returns a scalar float32 loss. The Dice term includes the background class, as the reference.
 */
export function segmentationLoss(logits: Tensor, masks: Tensor, nClasses: number, loss: LossName = 'ce+dice'): Tensor {
  if (loss !== 'ce+dice') return namedLoss(loss, logits, masks, nClasses); // --loss (src/train/losses.ts)
  return E.tidy(() => {
    if (nClasses === 1) {
      const pred = logits.squeeze(1).float(); // [N,H,W]
      const target = masks.float();
      return E.binaryCrossEntropyWithLogits(pred, target).add(diceLoss(pred.sigmoid(), target, false));
    }
    const ce = E.crossEntropy(logits.float(), masks);
    const probs = E.softmax(logits, 1).float();
    const oneHot = E.oneHot(masks, nClasses).permute([0, 3, 1, 2]).float();
    return ce.add(diceLoss(probs, oneHot, true));
  });
}
