/**
 * The criteria of `--loss` besides the reference's ce+dice, as segmentation_models_pytorch (smp)
 * defines them: focal+dice, tversky and lovasz, each in a multiclass form (softmax over C >= 2
 * classes) and a binary form (-c 1: one sigmoid map). Targets are int64 class indices in which
 * -100 marks a pixel that counts nowhere (--ignore-index). test/reference/losses.py is the golden.
 */
import type { LossName } from '../config/options.js';
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import { diceLoss } from '../metrics/dice.js';

/** PyTorch's ignore_index default: the target value of ignored pixels. */
export const IGNORED = -100;
const FOCAL_GAMMA = 2;
// smp TverskyLoss defaults: alpha weighs false positives, beta false negatives; alpha = beta = 0.5 is Dice.
const TVERSKY = { alpha: 0.5, beta: 0.5, gamma: 1, eps: 1e-7 };

/** The pixels that count ([N,H,W] float 0/1) and the targets with ignored pixels set to class 0. */
function validTargets(masks: Tensor): { valid: Tensor; target: Tensor } {
  return { valid: masks.ne(IGNORED).float(), target: masks.clamp(0) };
}

/** Mean of a per-pixel map over the valid pixels (0 when none is valid). */
function validMean(perPixel: Tensor, valid: Tensor): Tensor {
  return perPixel.mul(valid).sum().div(valid.sum().clamp(1));
}

/**
 * logits [N,C,H,W], masks [N,H,W] int64. weight: optional per-class weights [C] (multiclass only):
 * focal weighs each pixel by its class's weight (as cross_entropy's weight does), tversky and
 * lovasz take the weighted mean of their per-class terms (smp's class_weights).
 */
export function namedLoss(name: Exclude<LossName, 'ce+dice'>, logits: Tensor, masks: Tensor, nClasses: number, weight: Tensor | null = null): Tensor {
  return E.tidy(() => {
    const binary = nClasses === 1;
    const x = logits.float();
    if (name === 'focal+dice') return binary ? binaryFocalDice(x.squeeze(1), masks) : focalDice(x, masks, nClasses, weight);
    if (name === 'tversky') return tversky(x, masks, nClasses, weight);
    if (name === 'lovasz') return binary ? lovaszHinge(x, masks) : lovaszSoftmax(x, masks, nClasses, weight);
    throw new Error(`unknown loss '${name as string}'`);
  });
}

/** smp softmax_focal_loss_with_logits (gamma 2, mean over pixels) + the reference's Dice term. */
function focalDice(x: Tensor, masks: Tensor, nClasses: number, weight: Tensor | null): Tensor {
  const { valid, target } = validTargets(masks);
  const logpt = E.logSoftmax(x, 1).gather(1, target.unsqueeze(1)).squeeze(1); // [N,H,W]
  const focal = logpt.exp().neg().add(1).pow(FOCAL_GAMMA).mul(logpt.neg());
  const w = weight ? weight.to({ device: x.device, dtype: 'float32' }).indexSelect(0, target.flatten()).reshape(target.shape).mul(valid) : valid;
  const focalMean = focal.mul(w).sum().div(w.sum().clamp(1e-12));
  const probs = E.softmax(x, 1).mul(valid.unsqueeze(1));
  const oneHot = E.oneHot(target, nClasses).permute([0, 3, 1, 2]).float().mul(valid.unsqueeze(1));
  return focalMean.add(diceLoss(probs, oneHot, true));
}

/** smp focal_loss_with_logits (sigmoid, gamma 2, no alpha, mean over pixels) + the binary Dice term. */
function binaryFocalDice(pred: Tensor, masks: Tensor): Tensor {
  const { valid, target } = validTargets(masks);
  const t = target.float();
  const logpt = E.binaryCrossEntropyWithLogits(pred, t, { reduction: 'none' });
  const focal = logpt.neg().exp().neg().add(1).pow(FOCAL_GAMMA).mul(logpt);
  return validMean(focal, valid).add(diceLoss(pred.sigmoid().mul(valid), t.mul(valid), false));
}

/**
 * smp TverskyLoss: per class (background included; -c 1: the foreground map) over the whole batch,
 * 1 - TP / (TP + alpha FP + beta FN); a class absent from the targets adds 0 but still counts in the mean.
 */
function tversky(x: Tensor, masks: Tensor, nClasses: number, weight: Tensor | null): Tensor {
  const { valid, target } = validTargets(masks);
  const v = valid.unsqueeze(1);
  const binary = nClasses === 1;
  const probs = (binary ? x.sigmoid() : E.softmax(x, 1)).mul(v); // [N,C,H,W]
  const truth = (binary ? target.unsqueeze(1).float() : E.oneHot(target, nClasses).permute([0, 3, 1, 2]).float()).mul(v);
  const dims = [0, 2, 3];
  const tp = probs.mul(truth).sum(dims);
  const fp = probs.sum(dims).sub(tp);
  const fn = truth.sum(dims).sub(tp);
  const denom = tp.add(fp.mul(TVERSKY.alpha)).add(fn.mul(TVERSKY.beta)).clamp(TVERSKY.eps);
  const perClass = tp.div(denom).neg().add(1).mul(truth.sum(dims).gt(0).float()); // [C]
  return weightedMean(perClass, weight && !binary ? weight.to({ device: x.device, dtype: 'float32' }) : null).pow(TVERSKY.gamma);
}

function weightedMean(values: Tensor, weight: Tensor | null): Tensor {
  return weight ? values.mul(weight).sum().div(weight.sum()) : values.mean();
}

/** Gradient of the Lovasz extension of the Jaccard loss w.r.t. errors sorted in decreasing order (Berman et al., Alg. 1). */
function lovaszGrad(gtSorted: Tensor): Tensor {
  const gts = gtSorted.sum();
  const intersection = gts.sub(E.cumsum(gtSorted, 0));
  const union = gts.add(E.cumsum(gtSorted.neg().add(1), 0));
  const jaccard = intersection.div(union).neg().add(1);
  if (jaccard.shape[0] < 2) return jaccard;
  return E.cat([jaccard.slice(0, 0, 1), jaccard.slice(0, 1, null).sub(jaccard.slice(0, 0, -1))]);
}

/** Errors sorted in decreasing order (hinge: their positive part) dotted with the Lovasz gradient of their labels (no gradient through the labels). */
function lovaszFlat(errors: Tensor, labels: Tensor, hinge: boolean): Tensor {
  const [sorted, perm] = E.sort(errors, 0, true);
  return (hinge ? sorted.relu() : sorted).mul(lovaszGrad(labels.gather(0, perm))).sum();
}

/** smp LovaszLoss binary (per_image False): the Lovasz hinge on the logits over all valid pixels of the batch. */
function lovaszHinge(x: Tensor, masks: Tensor): Tensor {
  const valid = masks.flatten().ne(IGNORED);
  const logits = x.flatten().maskedSelect(valid);
  const labels = masks.flatten().maskedSelect(valid).float();
  if (labels.shape[0] === 0) return x.sum().mul(0);
  return lovaszFlat(logits.mul(labels.mul(2).sub(1)).neg().add(1), labels, true);
}

/** smp LovaszLoss multiclass (per_image False): Lovasz-softmax averaged over the classes present in the valid pixels. */
function lovaszSoftmax(x: Tensor, masks: Tensor, nClasses: number, weight: Tensor | null): Tensor {
  const valid = masks.flatten().ne(IGNORED);
  const probs = E.softmax(x, 1).permute([0, 2, 3, 1]).reshape([-1, nClasses]);
  const labels = masks.flatten().maskedSelect(valid);
  const present = E.bincount(labels, null, nClasses).toArray() as number[];
  const classes = present.flatMap((count, c) => (count > 0 ? [c] : []));
  if (classes.length === 0) return x.sum().mul(0);
  const terms = classes.map((c) => {
    const fg = labels.eq(c).float();
    return lovaszFlat(fg.sub(probs.select(1, c).maskedSelect(valid)).abs(), fg, false);
  });
  const w = weight ? weight.to({ device: x.device, dtype: 'float32' }).indexSelect(0, E.tensor(new BigInt64Array(classes.map(BigInt)), [classes.length]).to({ device: x.device })) : null;
  return weightedMean(E.stack(terms), w);
}
