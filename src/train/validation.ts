/**
 * Validation (the reference's evaluate(): mean per-image Dice, binary shape bug fixed) and its
 * logging: scalars, weight and gradient histograms, one sample's image and masks. With
 * --patch-size, images too large to predict whole go through predict's sliding window (window = the patch).
 */
import { predictOptions } from '../config/options.js';
import type { Batch } from '../data/index.js';
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import type { SegmentationMetrics } from '../metrics/confusion.js';
import { SegmentationMeter } from '../metrics/meter.js';
import { memoryRows, tileGrid, tiledLogits } from '../predict/sliding-window.js';
import { forwardBytesPerPixel, memoryBudget } from '../predict/tiled-image.js';
import { floatImageToImage, maskToImage } from '../tracking/index.js';
import type { TrainRun } from './context.js';
import { forward, toDevice } from './device.js';
import { recomputeBatchNorm } from './precise-bn.js';

/** The first validation image, its mask and prediction, on the CPU ([C,H,W] float, [H,W], [H,W]). */
export interface ValidationSample {
  x: Tensor;
  y: Tensor;
  pred: Tensor;
}

export interface Validation {
  dice: number;
  metrics: SegmentationMetrics | null;
  sample: ValidationSample | null;
}

/**
 * Precise BN: BatchNorm statistics recomputed over the first --precise-bn training batches in split
 * order, unshuffled and unaugmented (with --patch-size: the same seeded random patches each time);
 * the training RNG and data order are untouched, so resuming stays exact.
 */
export async function preciseBn(run: TrainRun): Promise<void> {
  const loader = run.loaders.preciseBn;
  if (!loader || run.bnFresh) return;
  await recomputeBatchNorm(run.model, loader(), run.cfg.preciseBn, (b) => forward(run, toDevice(run, b).x));
  run.bnFresh = true;
}

/** Scores the validation set (every rank its shard, summed: the single-process score). */
export async function validate(run: TrainRun, epoch: number, withImages: boolean): Promise<Validation> {
  const { cfg } = run;
  const model = scored(run);
  await run.dist?.syncBuffers(model); // every shard scored with rank 0's statistics
  model.eval();
  const meter = new SegmentationMeter(cfg.classes, { device: run.device });
  let sample: ValidationSample | null = null;
  try {
    const whole = wholePixels(run);
    for await (const b of run.loaders.val) {
      const tiled = cfg.patchSize && b.w * b.h > whole ? await slidingWindow(run, b, cfg.patchSize) : null;
      E.tidy(() =>
        E.inferenceMode(() => {
          const { x, y } = toDevice(run, b);
          const pred = meter.add(tiled ?? forward(run, x, model), y);
          if (withImages && !sample) sample = E.tidy(() => ({ x: x.select(0, 0).to({ device: 'cpu' }), y: y.select(0, 0).to({ device: 'cpu' }), pred: pred.select(0, 0).to({ device: 'cpu' }) }));
          const kept: ValidationSample | null = sample;
          return kept ? [kept.x, kept.y, kept.pred] : [];
        }),
      );
      tiled?.dispose();
    }
    run.model.train();
    if (run.dist) await meter.reduce(run.dist);
    const { dice, ...metrics } = meter.read();
    const score = run.hooks.validationScore ? run.hooks.validationScore(dice, { epoch, step: run.globalStep }) : dice;
    return { dice: score, metrics, sample };
  } finally {
    meter.dispose();
  }
}

/** The weights validation scores: --ema's average, else the training weights. */
const scored = (run: TrainRun) => run.ema?.model ?? run.model;

/**
 * Windows per forward pass in validation: without gradients a window costs little memory, and on a
 * CPU a pass of 8 small windows costs half as much per pixel as one of 2 (96x144, width 16).
 */
const windowBatch = (run: TrainRun) => Math.max(run.cfg.batchSize, 8);

/** Validation's windows: the patch, with predict's default overlap and blend. */
const windowsOf = ([ph, pw]: readonly [number, number]) => ({ tile: pw, tileHeight: ph, overlap: predictOptions.overlap.default, blend: predictOptions.blend.default });

/**
 * With --patch-size, the most (scaled) pixels a validation image may have to be predicted whole
 * rather than by the patch's sliding window, as predict's --tile auto decides: whole where its
 * forward pass fits --max-memory (half the free RAM), which is how predict and evaluate score it,
 * and 2.5x cheaper on a CPU than windows overlapping as predict's do (360x480, 96x144 windows: 3.0
 * against 3.7 us/px, twice the pixels). On CUDA, whose free memory the engine cannot query, none:
 * always by windows, the plan fitted the patch. Read once per round (it walks the parameters).
 */
function wholePixels(run: TrainRun): number {
  if (run.device !== 'cpu') return 0;
  return memoryBudget(run.cfg.maxMemory) / forwardBytesPerPixel({ model: scored(run) });
}

/**
 * One rank's validation round in training samples' worth of compute, for --time-budget's guess
 * before one is seen: each whole image (without --patch-size), each sliding window, or each patch's
 * area of a whole image costs about half a training sample's forward and backward pass (measured:
 * 0.3-0.6 for windows; whole images cost less per pixel, so the guess errs long).
 */
export function validationSamples(run: TrainRun): number {
  const { cfg, data, worldSize } = run;
  const { val } = data.split;
  const shard = (n: number) => Math.ceil(n / worldSize);
  const patch = cfg.patchSize;
  if (!patch) return shard(val.length) / 2;
  const o = windowsOf(patch);
  const whole = wholePixels(run);
  const samples = val.map((i) => {
    const { width, height } = data.dataset.scaledSizes[i];
    if (width * height <= whole) return (width * height) / (patch[0] * patch[1]);
    const { xs, ys } = tileGrid(width, height, o);
    return xs.length * ys.length;
  });
  return shard(samples.reduce((a, b) => a + b, 0)) / 2;
}

/**
 * Logits [1, K, H, W] of a one-image batch by sliding windows of the patch size (predict's default
 * overlap and gaussian blend), windowBatch() windows per forward pass: what the model trained on, at any image size.
 */
function slidingWindow(run: TrainRun, b: Batch, patch: readonly [number, number]): Promise<Tensor> {
  const model = { model: scored(run), device: run.device, ampDtype: run.ampDtype, args: run.modelArgs };
  return tiledLogits(model, memoryRows(b.images, b.c, b.w, b.h), { ...windowsOf(patch), batchSize: windowBatch(run) });
}

/** A validation round inside an epoch (--val-every): the plateau scheduler steps on its score. */
export async function validationRound(run: TrainRun, epoch: number, batch: number): Promise<void> {
  const { optimizer, scheduler, tracker } = run;
  await preciseBn(run);
  const v = await validate(run, epoch, false);
  if (scheduler.interval === 'metric') scheduler.step(v.dice);
  tracker.scalar('validation Dice', v.dice, run.globalStep);
  tracker.scalar('learning rate', optimizer.lr, run.globalStep);
  tracker.record({ type: 'validation', epoch, step: run.globalStep, batch, valDice: v.dice, lr: optimizer.lr });
}

/** A validated epoch's logging: its score; histograms and images only here, as they copy every weight to the host. */
export async function logValidation(run: TrainRun, score: number, sample: ValidationSample | null): Promise<void> {
  const { tracker, globalStep: step } = run;
  tracker.scalar('validation Dice', score, step);
  for (const [name, p] of run.model.namedParameters()) {
    const tag = name.replaceAll('/', '.');
    E.tidy(() => {
      tracker.histogram(`Weights/${tag}`, p.float().to({ device: 'cpu' }).data() as Float32Array, step);
      const g = p.grad;
      if (g) tracker.histogram(`Gradients/${tag}`, g.float().to({ device: 'cpu' }).data() as Float32Array, step);
    });
  }
  if (sample) {
    const [c, h, w] = sample.x.shape;
    const pixels = E.tidy(() => sample.x.float().contiguous()).disposeAfter((t) => t.data() as Float32Array);
    tracker.image('images', floatImageToImage(pixels, c === 3 ? 3 : 1, h, w, { range: [0, 1] }), step);
    tracker.image('masks/true', classImage(sample.y, run.cfg.classes), step);
    tracker.image('masks/pred', classImage(sample.pred, run.cfg.classes), step);
    E.dispose(sample);
  }
}

/** Class map [H,W] -> the palette image the report and overlays share. */
function classImage(m: Tensor, nClasses: number) {
  const [h, w] = m.shape;
  return maskToImage(m.toArray(), w, h, Math.max(nClasses, 2));
}
