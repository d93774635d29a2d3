/**
 * `unet evaluate`: per-class Dice and IoU, their means, the reference's validation Dice, pixel
 * accuracy and the confusion matrix of a checkpoint on a labelled folder pair.
 *
 * Evaluation runs at the given scale exactly like training validation: images are resized with
 * bicubic to `floor(scale*w) x floor(scale*h)`, masks with nearest-neighbour to the same size,
 * and the prediction is compared at that size (no resizing of logits back to full size, unlike
 * `unet predict`). Use `-s 1` to score at full resolution.
 *
 * - Per-class Dice/IoU and pixel accuracy are global: computed from confusion counts summed over
 *   all images (an empty class that is never predicted scores 1).
 * - "Mean Dice" / "mean IoU" follow the reference's Dice convention: the background (class 0) is
 *   excluded for multi-class models; for a 1-output binary model it is the foreground class.
 * - "Reference Dice" is the reference's evaluate.py number: one Dice per image (per foreground
 *   class, averaged), then the mean over images (the reference averages per batch; per image is
 *   the same with batch size 1 and does not depend on -b beyond float32 rounding). The scores come
 *   from SegmentationMeter (src/metrics/meter.ts), as training validation's do.
 * - HD95 and the normalised surface Dice at --surface-tol (src/metrics/surface.ts, MONAI's
 *   definitions and our empty-mask conventions) are per image at the same scaled size, with the
 *   pixel spacing full size / scaled size so that distances are in pixels of the original image,
 *   then averaged over the images where they are defined.
 * Masks are mapped to classes with the checkpoint's mask values; a mask holding any other value is
 * an error that lists the values. Pixels holding the checkpoint's --ignore-index value count in no metric.
 */
import { dirname } from 'node:path';
import { EXIT } from '../config/errors.js';
import type { EvaluateConfig, TtaMode } from '../config/options.js';
import * as E from '../engine/index.js';
import { IGNORE_CLASS, type MaskValues, type RGB, isIgnoreValue, listPairs, maskToClassIndex, readMaskRaw, resizeNearest, uniqueMaskValues } from '../data/index.js';
import { makeDirs } from '../io/dirs.js';
import { writeFailure, writeFileAtomic } from '../io/files.js';
import { removeTempsOnSignals } from '../io/temp-files.js';
import { chooseScale } from '../model/scale.js';
import { classTargets } from '../metrics/ignore.js';
import { type MeterReading, SegmentationMeter } from '../metrics/meter.js';
import { type ClassSurface, SurfaceMeter, surfaceScores } from '../metrics/surface.js';
import { decodeWindows, sameSizeBatches } from './batches.js';
import { loadEnsemble, modelPaths } from './ensemble.js';
import { type Predictor, type Preprocessed, PredictError, type Scaled, batchKey, forwardLogits, preprocess } from './predictor.js';
import { postprocessClasses, postprocessLogits } from './postprocess.js';
import { reasonFor } from './progress.js';
import { planTiles } from './tiled-image.js';
import { memoryRows, tiledLogits } from './sliding-window.js';

export interface ClassMetrics {
  class: number;
  /** From the checkpoint's --class-names; absent without names. */
  name?: string;
  value: number | RGB;
  dice: number;
  iou: number;
  /** Ground-truth pixels of this class. */
  support: number;
  /** Predicted pixels of this class. */
  predicted: number;
  /** Mean HD95 in original-image pixels over images where truth and prediction both hold the class; null: no such image. */
  hd95: number | null;
  /** Mean normalised surface Dice over images where truth or prediction holds the class; null: no such image. */
  nsd: number | null;
  /** Images where only one of truth and prediction holds the class (no HD95 there; NSD 0). */
  hd95Undefined: number;
}

export interface EvaluateResult {
  model: string;
  imgs: string;
  masks: string;
  scale: number;
  /** Where the scale came from: -s, the checkpoint's training scale, or the reference's default. */
  scaleSource: string;
  /** --tta: the views averaged per image. */
  tta: TtaMode;
  /** --postprocess: the classes whose largest component alone was kept (empty: none). */
  postprocess: number[];
  threshold: number;
  images: number;
  nClasses: number;
  maskValues: MaskValues;
  /** The checkpoint's --ignore-index: ground-truth pixels with this value were left out; null: none. */
  ignoreValue: number | null;
  perClass: ClassMetrics[];
  /** Mean over foreground classes (the reference's Dice convention). */
  meanDice: number;
  meanIoU: number;
  /** Mean over all classes including the background. */
  meanDiceAll: number;
  meanIoUAll: number;
  /** The reference evaluate.py's Dice: mean over images of the per-image Dice. */
  referenceDice: number;
  /** --surface-tol: the NSD tolerance in original-image pixels. */
  surfaceTol: number;
  /** Means of the foreground classes' HD95 / NSD that are not null (null if none is). */
  meanHD95: number | null;
  meanNSD: number | null;
  pixelAccuracy: number;
  /** Rows: truth, columns: prediction. */
  confusion: number[][];
  failed: { image: string; mask: string; reason: string }[];
  seconds: number;
}

const sameValue = (a: number | RGB, b: number | RGB): boolean => {
  const ga = Array.isArray(a) ? a : [a, a, a];
  const gb = Array.isArray(b) ? b : [b, b, b];
  return ga[0] === gb[0] && ga[1] === gb[1] && ga[2] === gb[2];
};

/** Values of a mask that are not among the model's mask values (grey v matches colour [v, v, v]). */
export function unknownMaskValues(found: readonly (number | RGB)[], maskValues: readonly (number | RGB)[]): (number | RGB)[] {
  return found.filter((v) => !maskValues.some((m) => sameValue(v, m)));
}

const fmtValue = (v: number | RGB) => (Array.isArray(v) ? `[${v.join(', ')}]` : String(v));

type Pair = { image: string; mask: string };

/** An image scaled as in training and its mask as class indices at that size. */
interface Item {
  pre: Preprocessed;
  classes: Uint8Array;
}

export interface EvaluateRunOptions {
  /** Unused for now (the table is printed by evaluateCommand); kept for symmetry with predict. */
  log?: (line: string) => void;
  warn?: (line: string) => void;
  /** These pairs instead of the --imgs/--masks listing (a cross-validation's held-out fold). */
  pairs?: Pair[];
  /** These classes post-processed instead of --postprocess's. */
  postprocessClasses?: number[];
}

export async function runEvaluate(given: EvaluateConfig, opts: EvaluateRunOptions = {}): Promise<EvaluateResult> {
  const warn = opts.warn ?? ((l: string) => console.error(l));
  const t0 = performance.now();
  const p = await loadEnsemble(modelPaths(given.model), { device: given.device, amp: given.amp, tta: given.tta });
  const meter = new SegmentationMeter(p.args.nClasses, { device: p.device, threshold: given.maskThreshold });
  const surface = new SurfaceMeter(Math.max(p.args.nClasses, 2));
  try {
    for (const n of p.notes) warn(`note: ${n}`);
    const sc = chooseScale(p.trainingScale, given.scale);
    if (sc.warning) warn(`warning: ${sc.warning}`);
    const cfg: Scaled<EvaluateConfig> = { ...given, scale: sc.scale };
    const { pairs, warnings } = opts.pairs ? { pairs: opts.pairs, warnings: [] } : await listPairs({ imgsDir: cfg.imgs, masksDir: cfg.masks, maskSuffix: cfg.maskSuffix });
    for (const w of warnings) warn(`warning: ${w}`);
    const pp = opts.postprocessClasses ?? postprocessClasses(cfg.postprocess ?? 'none', p.postprocess, p.args.nClasses);
    const failed: EvaluateResult['failed'] = [];
    const skip = (image: string, mask: string, e: unknown) => {
      const reason = e instanceof Error ? e.message : String(e);
      failed.push({ image, mask, reason });
      warn(`error: ${image}: ${reason} (skipped)`);
    };
    // --tile: logits [1, K, h, w] blended from windows (given), else one forward pass for the batch.
    const score = (batch: Item[], given?: E.Tensor) =>
      E.inferenceMode(() =>
        E.tidy(() => {
          const logits = postprocessLogits(
            given ??
              forwardLogits(
                p,
                batch.map((b) => b.pre),
              ),
            p.args.nClasses,
            cfg.maskThreshold,
            pp,
          );
          addSurfaces(surface, meter.add(logits, classTensor(p, batch)), batch, cfg.surfaceTol);
        }),
      );
    let done = 0;
    for await (const loaded of decodeWindows(pairs, cfg, (pair) => loadPair(p, cfg, pair, warn))) {
      const items: Item[] = [];
      for (const r of loaded) {
        if ('error' in r) skip(r.pair.image, r.pair.mask, r.error);
        else items.push(r);
      }
      const tile = (it: Item) => planTiles(p, cfg, { format: '', width: it.pre.fullWidth, height: it.pre.fullHeight, channels: it.pre.channels, streamable: false }, it.pre, 0).tile;
      const tiles = items.map(tile);
      for (const [i, it] of items.entries()) {
        if (tiles[i] === null) continue;
        try {
          const src = memoryRows(it.pre.data, it.pre.channels, it.pre.width, it.pre.height);
          const logits = await tiledLogits(p, src, { tile: tiles[i] as number, overlap: cfg.overlap, blend: cfg.blend, batchSize: cfg.batchSize });
          logits.disposeAfter((l) => score([it], l));
        } catch (e) {
          skip(it.pre.path, '', e);
        }
        done++;
      }
      for (const batch of sameSizeBatches(
        items.filter((_, i) => tiles[i] === null),
        (it) => batchKey(it.pre),
        cfg.batchSize,
      )) {
        try {
          score(batch);
        } catch (e) {
          for (const b of batch) skip(b.pre.path, '', e);
        }
        done += batch.length;
      }
      if (process.stderr.isTTY) process.stderr.write(`\r\x1b[2K[${done + failed.length}/${pairs.length}] evaluating`);
    }
    if (process.stderr.isTTY) process.stderr.write('\r\x1b[2K');
    const m = meter.read();
    if (m.images === 0) throw new PredictError(`no image could be evaluated (${failed.length} failed):\n${failed.map((f) => `  ${f.image}: ${f.reason}`).join('\n')}`);
    return { ...summarize(cfg, p, m, surface.read()), scaleSource: sc.source, tta: cfg.tta, postprocess: pp, failed, seconds: (performance.now() - t0) / 1000 };
  } finally {
    meter.dispose();
    p.dispose();
  }
}

/** Reads an image as in training and its mask at the same size; a mask value the model does not know stops the run. */
async function loadPair(p: Predictor, cfg: Scaled<EvaluateConfig>, pair: Pair, warn: (l: string) => void): Promise<Item | { pair: Pair; error: string }> {
  try {
    const pre = await preprocess(pair.image, cfg.scale, p.args.nChannels, undefined, p.args);
    for (const w of pre.warnings) warn(`warning: ${w}`);
    const full = await readMaskRaw(pair.mask);
    if (full.width !== pre.fullWidth || full.height !== pre.fullHeight) {
      return { pair, error: `mask ${pair.mask} is ${full.width}x${full.height} but the image is ${pre.fullWidth}x${pre.fullHeight}` };
    }
    const ignore = p.ignoreValue ?? null;
    const bad = unknownMaskValues(
      (uniqueMaskValues(full) as (number | RGB)[]).filter((v) => ignore === null || !isIgnoreValue(v, ignore)),
      p.maskValues,
    );
    if (bad.length > 0) {
      throw new PredictError(
        `mask ${pair.mask} holds value(s) ${bad.slice(0, 10).map(fmtValue).join(', ')}${bad.length > 10 ? ` … (${bad.length})` : ''} that are not among the checkpoint's mask values ` +
          `${JSON.stringify(p.maskValues)} (class i = the i-th value). Are these the masks the model was trained on? ` +
          'Masks must hold exactly the label values (PNG, not JPEG; resized with nearest-neighbour).',
      );
    }
    const data = resizeNearest(full.data, full.width, full.height, full.channels, pre.width, pre.height);
    return { pre, classes: maskToClassIndex({ data, channels: full.channels }, p.maskValues, undefined, ignore) };
  } catch (e) {
    if (e instanceof PredictError) throw e;
    return { pair, error: reasonFor(pair.image, e) };
  }
}

/** Each image's HD95 / NSD at the scaled size; the spacing makes distances original-image pixels. */
function addSurfaces(surface: SurfaceMeter, pred: E.Tensor, batch: Item[], tol: number): void {
  const all = pred.to({ device: 'cpu', dtype: 'int32' }).data() as Int32Array;
  const { width: w, height: h } = batch[0].pre;
  batch.forEach((it, i) => {
    const spacing = [it.pre.fullHeight / h, it.pre.fullWidth / w] as const;
    surface.add(surfaceScores(all.subarray(i * w * h, (i + 1) * w * h), it.classes, w, h, surface.nClasses, tol, spacing));
  });
}

/** The batch's masks as classes [N,h,w] int64 on the model's device (-100 on the checkpoint's --ignore-index pixels). */
function classTensor(p: Predictor, batch: Item[]): E.Tensor {
  const { width: w, height: h } = batch[0].pre;
  const masks = new Uint8Array(batch.length * w * h);
  batch.forEach((it, i) => masks.set(it.classes, i * w * h));
  return E.tidy(() => classTargets(E.tensor(masks, [batch.length, h, w]).to({ device: p.device }), p.ignoreValue == null ? null : IGNORE_CLASS));
}

function summarize(cfg: Scaled<EvaluateConfig>, p: Predictor, m: MeterReading, s: ClassSurface[]): Omit<EvaluateResult, 'failed' | 'seconds' | 'scaleSource' | 'tta' | 'postprocess'> {
  const cm = m.confusion;
  const values = p.maskValues as (number | RGB)[];
  const perClass: ClassMetrics[] = m.perClassDice.map((dice, k) => ({
    class: k,
    ...(p.classNames?.[k] !== undefined ? { name: p.classNames[k] } : {}),
    value: values[k],
    dice,
    iou: m.perClassIoU[k],
    support: cm[k].reduce((a, b) => a + b, 0),
    predicted: cm.reduce((a, row) => a + row[k], 0),
    hd95: s[k].hd95,
    nsd: s[k].nsd,
    hd95Undefined: s[k].oneEmpty,
  }));
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  const fgMean = (xs: (number | null)[]) => {
    const v = xs.slice(1).filter((x) => x !== null);
    return v.length ? mean(v) : null;
  };
  return {
    model: p.path,
    imgs: cfg.imgs,
    masks: cfg.masks,
    scale: cfg.scale,
    threshold: cfg.maskThreshold,
    images: m.images,
    nClasses: p.args.nClasses,
    maskValues: p.maskValues,
    ignoreValue: p.ignoreValue ?? null,
    perClass,
    meanDice: m.meanDice,
    meanIoU: m.meanIoU,
    meanDiceAll: mean(m.perClassDice),
    meanIoUAll: mean(m.perClassIoU),
    referenceDice: m.dice,
    surfaceTol: cfg.surfaceTol,
    meanHD95: fgMean(s.map((c) => c.hd95)),
    meanNSD: fgMean(s.map((c) => c.nsd)),
    pixelAccuracy: m.pixelAccuracy,
    confusion: cm,
  };
}

/** The metrics as a terminal table. */
export function formatEvaluation(r: EvaluateResult): string {
  const f = (x: number) => x.toFixed(4);
  const orNA = (x: number | null, digits: number) => (x === null ? 'n/a' : x.toFixed(digits));
  const row = (label: string, value: string) => `${`${label}:`.padEnd(58)}${value}`;
  const valueW = Math.max(5, ...r.perClass.map((c) => fmtValue(c.value).length));
  const named = r.perClass.some((c) => c.name !== undefined);
  const nameW = named ? Math.max(4, ...r.perClass.map((c) => (c.name ?? '').length)) + 2 : 0;
  const name = (c: ClassMetrics | null) => (named ? (c ? (c.name ?? '') : 'name').padEnd(nameW) : '');
  const lines = [
    `Evaluated ${r.images} image(s) of ${r.imgs} against ${r.masks} with ${r.model}${r.tta !== 'none' ? ` (--tta ${r.tta})` : ''}${r.postprocess.length ? ` (largest component of class ${r.postprocess.join(', ')})` : ''}`,
    `  at scale ${r.scale} (${r.scaleSource}; images bicubic, masks nearest to floor(scale*size), as training validation)${r.nClasses === 1 ? `, threshold ${r.threshold}` : ''}`,
    ...(r.ignoreValue !== null ? [`  pixels of mask value ${r.ignoreValue} left out (the checkpoint's --ignore-index)`] : []),
    '',
    `${'class'.padEnd(6)}${name(null)}${'value'.padEnd(valueW + 2)}${'Dice'.padStart(8)}${'IoU'.padStart(9)}${'HD95'.padStart(9)}${'NSD'.padStart(9)}${'true px'.padStart(12)}${'pred px'.padStart(12)}`,
    ...r.perClass.map(
      (c) =>
        `${String(c.class).padEnd(6)}${name(c)}${fmtValue(c.value).padEnd(valueW + 2)}${f(c.dice).padStart(8)}${f(c.iou).padStart(9)}${orNA(c.hd95, 2).padStart(9)}${orNA(c.nsd, 4).padStart(9)}${String(c.support).padStart(12)}${String(c.predicted).padStart(12)}`,
    ),
    '',
    row(`Mean Dice (${r.nClasses <= 2 ? 'foreground class' : 'foreground classes'}, reference convention)`, f(r.meanDice)),
    row(`Mean IoU (${r.nClasses <= 2 ? 'foreground class' : 'foreground classes'})`, f(r.meanIoU)),
    row('Mean Dice / IoU over all classes incl. background', `${f(r.meanDiceAll)} / ${f(r.meanIoUAll)}`),
    row('Reference validation Dice (mean per-image Dice)', f(r.referenceDice)),
    row(`Mean HD95 (px of the original image) / NSD at ${r.surfaceTol} px`, `${orNA(r.meanHD95, 2)} / ${orNA(r.meanNSD, 4)}`),
    row('Pixel accuracy', f(r.pixelAccuracy)),
    '',
    'Confusion matrix (rows: true class, columns: predicted class):',
  ];
  const w = Math.max(8, ...r.confusion.flat().map((v) => String(v).length + 2));
  lines.push(`${''.padEnd(8)}${r.confusion.map((_, j) => `pred ${j}`.padStart(w)).join('')}`);
  r.confusion.forEach((row, i) => lines.push(`${`true ${i}`.padEnd(8)}${row.map((v) => String(v).padStart(w)).join('')}`));
  const oneEmpty = r.perClass.filter((c) => c.hd95Undefined > 0).map((c) => `class ${c.class}: ${c.hd95Undefined}`);
  if (oneEmpty.length > 0) lines.push('', `HD95 leaves out the images where only one of truth and prediction holds the class (NSD 0 there): ${oneEmpty.join(', ')}.`);
  if (r.failed.length > 0) lines.push('', `${r.failed.length} pair(s) failed and were skipped.`);
  return lines.join('\n');
}

export async function writeEvaluationJson(path: string, r: EvaluateResult): Promise<void> {
  try {
    await makeDirs(dirname(path));
    await writeFileAtomic(path, [Buffer.from(`${JSON.stringify(r, null, 2)}\n`)]);
  } catch (e) {
    throw new PredictError(`${writeFailure(e, path) ?? `cannot write ${path}: ${(e as Error).message}`}; choose another --json FILE (a file written before is kept as it was)`);
  }
}

export async function evaluateCommand(cfg: EvaluateConfig): Promise<number> {
  removeTempsOnSignals();
  const r = await runEvaluate(cfg);
  if (cfg.json === true) {
    // --json without a file: stdout carries only the JSON, the table goes to stderr.
    console.error(formatEvaluation(r));
    console.log(JSON.stringify(r));
    return r.failed.length > 0 ? EXIT.partial : EXIT.ok;
  }
  console.log(formatEvaluation(r));
  if (cfg.json) {
    await writeEvaluationJson(cfg.json, r);
    console.log(`Metrics written to ${cfg.json}`);
  }
  return r.failed.length > 0 ? EXIT.partial : EXIT.ok;
}
