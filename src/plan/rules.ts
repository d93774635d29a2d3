/**
 * The rules from a fingerprint to training options: nnU-Net's 2D rules for patch, batch and depth
 * (nnunet2d.ts) and its recipe (SGD Nesterov 0.99, lr 1e-2, poly, CE + Dice, deep supervision,
 * augmentation), then fitted to the time budget from a measured step time: nnU-Net trains 250,000
 * steps on a GPU; a short budget on a CPU gets a smaller batch, width, patch or scale instead of a
 * schedule cut short. Every value comes with its reason.
 */
import { type MaskValue, isIgnoreValue } from '../data/index.js';
import type { Fingerprint } from './fingerprint.js';
import { type Plan2d, plan2d, poolProps } from './nnunet2d.js';

/** Steps below which SGD at lr 1e-2 with poly decay rarely converges; the budget rules aim above it. */
export const MIN_STEPS = 1000;
/** Our UNet doubles the width per stage without nnU-Net's 512 cap: depth stops at 1024 channels (the reference's bottleneck). */
export const MAX_WIDTH = 1024;
/** Rare class: below this share of the pixels it gets a larger loss weight (--class-weights auto). */
export const RARE_CLASS = 0.01;
/** A typical object of the smallest class stays at least this many pixels across when the plan downscales. */
export const MIN_OBJECT_PX = 8;
/**
 * ... and the thinnest class stays at least this thick (ClassStats.thickness: a strip's width): a
 * thinner line is lost to the resampling. ISBI's membranes are 5.5 px thick, one object 240 px
 * across: the object rule allowed a quarter of the resolution, which cost Dice.
 */
export const MIN_THICKNESS_PX = 3;

export interface Device {
  kind: 'cpu' | 'cuda';
  /** Memory the plan may fill, GiB. */
  memoryGB: number;
  memorySource: string;
}

/** Seconds per optimizer step for a model and batch, measured (or estimated when the device is not here). */
export type StepTimer = (s: { batch: number; patch: [number, number]; baseChannels: number; depth: number }) => Promise<{ seconds: number; note: string }>;

export interface PlanInput {
  fp: Fingerprint;
  device: Device;
  budgetSeconds: number;
  validation: number; // percent held out, as train's -v
  /** train --folds K (0: one run): K runs share the budget, each validating 1/K of the images. */
  folds?: number;
  timer: StepTimer;
  /** --ignore-index: a void mask value, left out of the classes. */
  ignoreIndex?: number | null;
  /** --encoder (not 'plain'): its UNet is what the timer times; its depth is fixed and its width not planned. */
  encoder?: { name: string; depth: number };
}

export interface PlanResult {
  train: Record<string, unknown>;
  reasons: Record<string, string>;
  timing: Record<string, unknown>;
  nnunet: Plan2d;
}

const maxDepthFor = (base: number) => Math.floor(Math.log2(MAX_WIDTH / base));

interface Shape {
  scale: number;
  batch: number;
  patch: [number, number];
  base: number;
}

/** Shrinks along the axis largest relative to the median shape, by one pooling multiple (nnU-Net's direction). */
function shrinkPatch(patch: [number, number], median: readonly number[], depth: number, minSide: number): [number, number] | null {
  const axis = patch[1] / median[1] >= patch[0] / median[0] ? 1 : 0;
  const step = 2 ** depth;
  const next: [number, number] = [...patch];
  next[axis] -= step;
  if (next[axis] < minSide) {
    const other = 1 - axis;
    if (patch[other] - step < minSide) return null;
    next[axis] = patch[axis];
    next[other] -= step;
  }
  return next;
}

interface FitContext {
  kind: Device['kind'];
  median: readonly number[];
  /** The smallest foreground class's typical object size, px (Infinity without foreground). */
  smallest: number;
  /** The thinnest class's thickness, px (Infinity when none has a boundary). */
  thinnest: number;
  depthOf: (patch: readonly number[], base: number) => number;
  /** nnU-Net's patch at scale 1. */
  nnPatch: readonly number[];
  /** An encoder's width is its own: no width step. */
  fixedWidth: boolean;
  /** Patch sides are multiples of this (an encoder: 2^its depth; the plain UNet: 1, poolProps's patches fit its depth). */
  multiple: number;
}

/**
 * Batch to 2, width to 16 (CPU), then the patch down to half nnU-Net's (at the current scale) on
 * each side, then the scale (while objects stay MIN_OBJECT_PX across and MIN_THICKNESS_PX thick), then the patch further,
 * until `fits`. Context before resolution: on CamVid's road scenes at 15 minutes, 96x144 patches of
 * the full 360x480 images mixed up sky and buildings that whole half-size images tell apart.
 */
function shrinkToFit(x: Shape, fits: (x: Shape) => boolean, c: FitContext, why: string[]): Shape {
  if (!fits(x) && x.batch > 2) {
    x.batch = 2;
    why.push("batch 2 (nnU-Net's minimum)");
  }
  if (!fits(x) && c.kind === 'cpu' && x.base > 16 && !c.fixedWidth) {
    x.base = 16;
    why.push('base width 16 (CPU)');
  }
  const minSide = (sc: number) => Math.min(64, ...c.median.map((m) => Math.floor(m * sc)));
  while (!fits(x)) {
    const next = shrinkPatch(
      x.patch,
      c.median.map((m) => m * x.scale),
      c.depthOf(x.patch, x.base),
      minSide(x.scale),
    );
    if (next?.every((v, i) => 2 * v >= c.nnPatch[i] * x.scale)) {
      x.patch = next;
      continue;
    }
    const sc = x.scale / 2;
    if (sc >= 0.25 && c.smallest * sc >= MIN_OBJECT_PX && c.thinnest * sc >= MIN_THICKNESS_PX) {
      x.scale = sc;
      x.patch = poolProps(c.median.map((m) => Math.floor(m * sc))).patch.map((v, i) => roundDown(Math.min(v, x.patch[i]), c.multiple)) as [number, number];
      why.push(`scale ${sc}`);
      continue;
    }
    if (!next) break;
    x.patch = next;
  }
  return x;
}

/** The smallest foreground class's typical object size, px (Infinity without foreground). */
const smallestObject = (fp: Fingerprint): number =>
  Math.min(
    ...fp.classes
      .slice(1)
      .map((c) => c.typicalObjectSize)
      .filter((v) => v > 0),
    Infinity,
  );

/** The thinnest class (index and thickness, px; Infinity when no class has a boundary). */
function thinnestClass(fp: Fingerprint): { k: number; px: number } {
  return fp.classes.reduce((a, c, k) => ((c.thickness ?? Infinity) < a.px ? { k, px: c.thickness as number } : a), { k: -1, px: Infinity });
}

function scaleReason(scale: number, smallest: number, thinnest: { k: number; px: number }): string {
  if (scale !== 1) return `downscaled to fit the budget; the smallest class's typical object stays ${(smallest * scale).toFixed(0)} px across, the thinnest ${(thinnest.px * scale).toFixed(1)} px thick`;
  const thin = thinnest.px * 0.5 < MIN_THICKNESS_PX ? `; class ${thinnest.k} is ${thinnest.px.toFixed(1)} px thick, under ${MIN_THICKNESS_PX} px at half the resolution` : '';
  return `native resolution (nnU-Net trains at the median spacing)${thin}`;
}

/** The rows an encoder decides, not the plan (train drops the plan's depth, width and deep supervision with --encoder). */
const encoderReasons = (e: NonNullable<PlanInput['encoder']>): Record<string, string> => ({
  depth: `--encoder ${e.name}: its ${e.depth} stages (not planned; patch sides multiples of ${2 ** e.depth})`,
  baseChannels: `--encoder ${e.name}: its own widths (not planned); the timings are of its UNet`,
  deepSupervision: `not with --encoder (its heads sit on the plain UNet's decoder)`,
});

/** `v` down to a multiple of `m` (at least `m`). */
const roundDown = (v: number, m: number): number => Math.max(m, v - (v % m));

/**
 * How the patch may shrink: the plain UNet's depth follows the patch (nnU-Net's patches fit it; the
 * CPU's timing probe is cut to multiples of 16); an encoder's depth is fixed, so every patch is a
 * multiple of 2^depth, and so is its width.
 */
function shapeRules(encoder: PlanInput['encoder']): Pick<FitContext, 'depthOf' | 'fixedWidth' | 'multiple'> & { probeMultiple: number } {
  if (encoder) return { depthOf: () => encoder.depth, fixedWidth: true, multiple: 2 ** encoder.depth, probeMultiple: 2 ** encoder.depth };
  return { depthOf: (patch, base) => Math.min(...poolProps(patch).numPool, maxDepthFor(base)), fixedWidth: false, multiple: 1, probeMultiple: 16 };
}

/**
 * Masks whose top and bottom halves hold classes this different (total variation), and at least
 * twice as different as left and right, come from images with an up: CamVid's road scenes 0.83
 * (left/right 0.07), ISBI's micrographs 0.005 (0.03). Rotating or flipping those upside down would spend
 * the budget on views that never come at inference.
 */
export const UPRIGHT_SHIFT = 0.2;
export const isUpright = (h: Fingerprint['halves']): boolean => h.topBottom >= UPRIGHT_SHIFT && h.topBottom >= 2 * h.leftRight;

/** Batches this small get --precise-bn over PRECISE_BN_BATCHES batches (an epoch's end costs a few steps more). */
const SMALL_BATCH = 4;
const PRECISE_BN_BATCHES = 16;
/** Validation at the first epoch and this many last ones (--val-last): the poly schedule and the EMA make the last epoch the best. */
const VAL_LAST = 1;

/** nnU-Net's training recipe (SGD with Nesterov momentum, poly schedule, its clipping and augmentation), without early stopping. */
const NNUNET_RECIPE = { optimizer: 'sgd', nesterov: true, momentum: 0.99, learningRate: 1e-2, weightDecay: 3e-5, scheduler: 'poly', gradClip: 12, augment: true, patience: 0, valEvery: 0 };

export async function makePlan(p: PlanInput): Promise<PlanResult> {
  const { device } = p;
  const fp = withoutVoid(p.fp, p.ignoreIndex ?? null);
  const reasons: Record<string, string> = {};
  const classes = Math.max(2, fp.maskValues.length);
  const folds = p.folds ?? 0;
  const nVal = folds > 0 ? Math.ceil(fp.count / folds) : Math.floor((fp.count * p.validation) / 100);
  const nTrain = fp.count - nVal;
  const runSeconds = p.budgetSeconds / Math.max(1, folds);
  // nnU-Net counts every case (it validates by cross-validation), so the 5% cap uses them all.
  const nn = plan2d(fp.medianShape, fp.count, { baseFeatures: 32, maxFeatures: 512, inChannels: fp.channels, classes }, { targetGB: device.memoryGB });
  const rules = shapeRules(p.encoder);
  const { depthOf, multiple, probeMultiple } = rules;
  let s: Shape = { scale: 1, batch: Math.min(nn.batch, nTrain), patch: nn.patch.map((v) => roundDown(v, multiple)) as [number, number], base: 32 };
  const smallest = smallestObject(fp);
  const thinnest = thinnestClass(fp);
  const timings: { shape: Shape; seconds: number; note: string }[] = [];
  const time = async (x: Shape) => {
    const t = await p.timer({ batch: x.batch, patch: x.patch, baseChannels: x.base, depth: depthOf(x.patch, x.base) });
    timings.push({ shape: { ...x }, ...t });
    return t.seconds;
  };
  const usable = runSeconds * 0.9;
  const medianArea = fp.medianShape[0] * fp.medianShape[1];
  // Per epoch one patch per training image; whole-image validation passes (~1/3 of a training step
  // per pixel) only at the first and the last epoch (VAL_LAST).
  const validation = (x: Shape, t: number) => (nVal * medianArea * x.scale ** 2 * t) / (3 * x.batch * x.patch[0] * x.patch[1]);
  const stepsIn = (x: Shape, t: number) => Math.max(0, usable - (1 + VAL_LAST) * validation(x, t)) / t;
  const why: string[] = [];
  // On a CPU nnU-Net's GPU-sized batch would take minutes to time: a small probe anchors the cost model.
  let anchor: Shape = device.kind === 'cpu' ? { ...s, batch: Math.min(2, s.batch), patch: s.patch.map((v) => roundDown(Math.min(v, 128), probeMultiple)) as [number, number] } : s;
  let t = await time(anchor);
  // Up to 3 rounds: shrink by a cost model anchored at the latest timing, then time the result.
  for (let round = 0; round < 3; round++) {
    const [a, ta] = [anchor, t];
    const predict = (x: Shape) => (ta * x.batch * x.patch[0] * x.patch[1] * (x.base / a.base) ** 2) / (a.batch * a.patch[0] * a.patch[1]);
    s = shrinkToFit({ ...s, patch: [...s.patch] }, (y) => stepsIn(y, predict(y)) >= MIN_STEPS, { kind: device.kind, median: fp.medianShape, smallest, thinnest: thinnest.px, nnPatch: nn.patch, ...rules }, why);
    if (JSON.stringify(s) === JSON.stringify(anchor)) break;
    anchor = s;
    t = await time(s);
  }
  const depth = depthOf(s.patch, s.base);
  const stepsPerEpoch = Math.ceil(nTrain / s.batch);
  const epochs = Math.max(1, Math.floor(stepsIn(s, t) / stepsPerEpoch));
  if (s.patch.join() !== nn.patch.join()) why.push(`patch ${s.patch.join('x')}`);
  const budgetNote = why.length ? `; to fit ${MIN_STEPS}+ steps in the budget: ${why.join(', ')}` : '';
  reasons.scale = scaleReason(s.scale, smallest, thinnest);
  reasons.patchSize = `nnU-Net 2D: median shape ${fp.medianShape.join('x')} clipped, memory-fitted -> ${nn.patch.join('x')}${budgetNote}`;
  reasons.batchSize = `nnU-Net: ${nn.batch} from ${device.memoryGB.toFixed(1)} GiB (${device.memorySource}), at most 5% of the dataset's pixels per batch${s.batch !== nn.batch ? `; ${s.batch} for the budget` : ''}`;
  reasons.depth = `poolings while the feature map stays >= 4 px (nnU-Net: ${Math.max(...nn.numPool)}), both axes together, capped so the bottleneck has <= ${MAX_WIDTH} channels`;
  reasons.baseChannels = s.base === 32 ? "nnU-Net's 32 (the reference: 64)" : `${s.base}: a narrower net gives more steps in the budget on this CPU`;
  if (p.encoder) Object.assign(reasons, encoderReasons(p.encoder));
  // No `epochs` in the plan: train --time-budget plans them from its own timing (a plan's or a flag's -e would cap them).
  reasons.timeBudget = `the run's schedule is planned for it and it ends by it; about ${stepsPerEpoch} steps/epoch x ${epochs} epochs = ${stepsPerEpoch * epochs} steps at ${t.toFixed(3)} s/step (${timings.at(-1)?.note}) plus validation fit in 90% of ${folds > 0 ? `${Math.round(runSeconds)} s, a fold's 1/${folds} of ${p.budgetSeconds} s` : `${p.budgetSeconds} s`}`;
  const recipe = recipeFor(fp, p, depth, s.batch, reasons);
  const train = {
    classes,
    scale: s.scale,
    patchSize: s.patch,
    oversampleFg: 0.33,
    batchSize: s.batch,
    depth,
    baseChannels: s.base,
    loss: 'ce+dice',
    ...recipe,
    amp: device.kind === 'cuda',
    timeBudget: p.budgetSeconds,
    validation: p.validation,
    ...(folds > 0 ? { folds } : {}),
  };
  const timing = {
    stepsPerEpoch,
    epochs,
    steps: stepsPerEpoch * epochs,
    secondsPerStep: t,
    measured: timings.map((m) => ({ ...m.shape, depth: depthOf(m.shape.patch, m.shape.base), seconds: m.seconds, note: m.note })),
  };
  return { train, reasons, timing, nnunet: nn };
}

/** The training recipe around the shape (classes, losses, optimizer, augmentation), with its reasons. */
function recipeFor(fp: Fingerprint, p: PlanInput, depth: number, batch: number, reasons: Record<string, string>): Record<string, unknown> {
  const rare = fp.classes.filter((c) => c.frequency < RARE_CLASS).length;
  reasons.classWeights = rare ? `${rare} class(es) below ${RARE_CLASS * 100}% of the pixels` : `every class has >= ${RARE_CLASS * 100}% of the pixels`;
  Object.assign(reasons, RECIPE_REASONS);
  const voidValue = p.ignoreIndex ?? null;
  if (voidValue !== null) reasons.ignoreIndex = `--ignore-index: mask value ${voidValue} is void, in neither the loss nor the scores`;
  reasons.classes = `${fp.maskValues.length} mask values${voidValue !== null ? ` besides the void ${voidValue}` : ''}${fp.maskValues.length < 2 ? ' (softmax needs 2)' : ''}`;
  reasons.amp = p.device.kind === 'cuda' ? 'fp16 on CUDA (nnU-Net trains in mixed precision)' : 'fp32 on CPU';
  // Beyond nnU-Net: images with an up, and the BatchNorm statistics of small batches
  const upright = isUpright(fp.halves);
  const h = `the masks' halves differ top/bottom by ${fp.halves.topBottom.toFixed(2)}, left/right by ${fp.halves.leftRight.toFixed(2)}`;
  reasons.upright = upright ? `${h}: the images have an up, so no vertical flips or 90-degree rotations` : `${h}: no up, every flip and rotation is a view that can come`;
  if (upright) reasons.augment = 'horizontal flips, scale and brightness (nnU-Net: rich spatial + intensity augmentation, less what --upright rules out)';
  const preciseBn = batch <= SMALL_BATCH ? PRECISE_BN_BATCHES : 0;
  reasons.preciseBn = preciseBn
    ? `BatchNorm statistics recomputed over ${preciseBn} batches before each validation: running averages over batches of ${batch} jump from epoch to epoch`
    : `off: batches of ${batch} give steady running averages`;
  return { classWeights: rare ? 'auto' : 'none', ignoreIndex: voidValue, deepSupervision: depth >= 3, ...NNUNET_RECIPE, upright, preciseBn, keepLast: 3, ema: 0.9999, emaWarmup: 'auto', valLast: VAL_LAST };
}

/** The fingerprint without --ignore-index's void value: not a class, so neither counted nor weighted. */
function withoutVoid(fp: Fingerprint, voidValue: number | null): Fingerprint {
  const at = voidValue === null ? -1 : (fp.maskValues as MaskValue[]).findIndex((v) => isIgnoreValue(v, voidValue));
  if (at < 0) return fp;
  const keep = <T>(xs: readonly T[]) => xs.filter((_, i) => i !== at);
  return { ...fp, maskValues: keep(fp.maskValues as unknown[]) as Fingerprint['maskValues'], classes: keep(fp.classes) };
}

const RECIPE_REASONS: Record<string, string> = {
  oversampleFg: 'nnU-Net: a third of the patches centred on a foreground class',
  loss: 'nnU-Net: cross-entropy + soft Dice',
  ignoreIndex: 'none known from the masks (pass --ignore-index for a void value)',
  deepSupervision: 'nnU-Net: auxiliary outputs weighted 1/2^i',
  optimizer: 'nnU-Net: SGD with Nesterov momentum',
  nesterov: 'nnU-Net',
  momentum: 'nnU-Net: 0.99',
  learningRate: 'nnU-Net: 1e-2',
  weightDecay: 'nnU-Net: 3e-5',
  scheduler: 'nnU-Net: poly decay (exponent 0.9) to the planned end',
  gradClip: 'nnU-Net clips the gradient norm at 12',
  augment: 'flips, 90-degree rotations, scale and brightness (nnU-Net: rich spatial + intensity augmentation)',
  patience: 'off: the poly schedule is planned to its end',
  keepLast: 'the last 3 epoch checkpoints (and best_model.pth): a budget on a small dataset runs hundreds of epochs of seconds, each checkpoint the size of the model and its optimizer state',
  valEvery: "no validation rounds inside epochs (the whole images at epochs' ends)",
  valLast:
    "validation and best_model.pth only at the first epoch (a first score, and what a validation costs) and the last: the poly schedule ends at lr 0 and the EMA averages its last tenth, so the last epoch scores best (nnU-Net predicts with its final checkpoint); the other epochs' validation time trains",
  ema: "beyond nnU-Net: validation, best_model.pth and the exports use an average of the weights (Ultralytics' ModelEMA); measured on CamVid at 15 minutes: +0.019 mean IoU, on ISBI at 5 minutes: no change",
  emaWarmup: "the average's warm-up fitted to the run's planned steps T (tau T/ln(T/10)): at the end it spans about the last tenth of the run",
  validation: 'percent held out, as -v',
};
