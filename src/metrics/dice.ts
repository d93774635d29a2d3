/** Dice coefficient and loss, exactly as milesial/Pytorch-UNet utils/dice_score.py (epsilon 1e-6). */
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';

/**
 * Average Dice over the batch. input/target: [N,H,W] (or [H,W]).
 * reduceBatchFirst=false: one Dice per image, then the mean (evaluation);
 * true: one Dice over the whole batch (the loss).
 */
export function diceCoeff(input: Tensor, target: Tensor, reduceBatchFirst = false, epsilon = 1e-6): Tensor {
  return E.tidy(() => diceScores(input, target, reduceBatchFirst, epsilon).mean());
}

/** diceCoeff before the final mean: [N] per image (or a scalar with reduceBatchFirst). */
export function diceScores(input: Tensor, target: Tensor, reduceBatchFirst = false, epsilon = 1e-6): Tensor {
  const a = input.shape;
  const b = target.shape;
  if (a.length !== b.length || a.some((v, i) => v !== b[i])) throw new Error(`diceCoeff: input [${a}] and target [${b}] differ in shape`);
  if (!(a.length === 3 || !reduceBatchFirst)) throw new Error('diceCoeff: reduceBatchFirst needs a 3-d input');
  return E.tidy(() => {
    const sumDim = a.length === 2 || !reduceBatchFirst ? [-1, -2] : [-1, -2, -3];
    const inter = input.mul(target).sum(sumDim).mul(2);
    let setsSum = input.sum(sumDim).add(target.sum(sumDim));
    setsSum = E.where(setsSum.eq(0), inter, setsSum);
    return inter.add(epsilon).div(setsSum.add(epsilon));
  });
}

/** Average Dice over all classes: input/target [N,C,H,W] flattened to [N*C,H,W]. */
export function multiclassDiceCoeff(input: Tensor, target: Tensor, reduceBatchFirst = false, epsilon = 1e-6): Tensor {
  return E.tidy(() => diceCoeff(input.flatten(0, 1), target.flatten(0, 1), reduceBatchFirst, epsilon));
}

/** Dice loss (objective to minimize) between 0 and 1. */
export function diceLoss(input: Tensor, target: Tensor, multiclass = false): Tensor {
  return E.tidy(() => {
    const fn = multiclass ? multiclassDiceCoeff : diceCoeff;
    return fn(input, target, true).neg().add(1);
  });
}
