/**
 * Tiled prediction of one image (`unet predict --tile`), in memory or region by region.
 *
 * How --scale and tiling combine: the image is resized by --scale first (as without tiling), the
 * windows are cut from the *scaled* image (--tile is in scaled pixels), their logits are blended
 * (sliding-window.ts), and the blended logits are resized back to the input's full size (bilinear,
 * align_corners=False, as predict.py) before the argmax / threshold. The resize-back is done band
 * by band: output row Y reads scaled rows floor(y) and floor(y) + 1, y = (Y + 0.5) h/H - 0.5, so
 * each band needs only the last scaled row of the band before it, and the result is the same as
 * resizing the whole logit image.
 *
 * Memory: when tiling is asked for (`--tile SIZE`, or `--tile auto` and the whole-image forward
 * pass would not fit the budget), an image whose decoded pixels and outputs also exceed the budget
 * is streamed: read region by region (data/image/regions.ts) and its mask and probability PNGs written
 * row by row. What stays in memory is one window row of logits ([K, tile, w] floats, plus the same
 * at full width for the resize-back) and `-b` windows' activations: it grows with the width, not
 * with the height.
 */
import { rmSync } from 'node:fs';
import { freemem } from 'node:os';
import { basename, dirname, join } from 'node:path';
import type { TileSetting } from '../config/options.js';
import * as E from '../engine/index.js';
import { trackTemp } from '../io/temp-files.js';
import type { Tensor } from '../engine/index.js';
import { DEFAULT_MAX_PIXELS, DataError, type MaskValues, classIndexToMaskValues } from '../data/index.js';
import { type ImageHeader, PngRowWriter, type PngRowFormat, isTiffName, openScaledRegions, pngToTiff } from '../data/image/regions.js';
import { isBinary01 } from './overlay.js';
import { minSideOf } from '../model/limits.js';
import { type Prediction, type Predictor, type Preprocessed, checkChannels, classesAndProbs, greyToRgb } from './predictor.js';
import { type RowSource, type TileOptions, logitBands, memoryRows } from './sliding-window.js';

export interface TilingConfig {
  tile: TileSetting;
  overlap: number;
  blend: TileOptions['blend'];
  /** MiB; 0 = half of the memory available when the command starts. */
  maxMemory: number;
  batchSize: number;
}

/** The memory budget in bytes: --max-memory, else half of the available memory (MemAvailable). */
export const memoryBudget = (maxMemoryMiB: number): number => (maxMemoryMiB > 0 ? maxMemoryMiB * 2 ** 20 : freemem() / 2);

/**
 * Bytes of a CPU forward pass per scaled pixel: 90 per channel of the first layer, i.e. 5.8 KB for
 * the full-width UNet (64 channels; measured 5.6 KB at 512x512, fp32, oneDNN, 1 input channel).
 */
export function forwardBytesPerPixel(p: Pick<Predictor, 'model' | 'models'>): number {
  // An ensemble runs its models one after another: the widest one counts.
  const widths = (p.models ?? [p.model]).map((m) => m.namedParameters().find(([k]) => k === 'outc.conv.weight')?.[1]?.shape[1] ?? 64);
  return 90 * Math.max(...widths);
}

/** Window sizes --tile auto chooses from, largest first. */
const AUTO_TILES = [1024, 512, 256, 128, 64];

export interface TilePlan {
  /** Window size, or null: predict the whole image at once. */
  tile: number | null;
  /** Read and write region by region (the decoded image and outputs would not fit the budget). */
  regions: boolean;
}

/**
 * Decides how one image is predicted, from its header: whole, tiled in memory, or tiled region
 * by region. `outputs` = full-size maps kept per pixel (the class map + probability maps).
 */
export function planTiles(p: Predictor, cfg: TilingConfig, head: ImageHeader, scaled: { width: number; height: number }, outputs: number): TilePlan {
  if (cfg.tile === 'off') return { tile: null, regions: false };
  const budget = memoryBudget(cfg.maxMemory);
  const bpp = forwardBytesPerPixel(p);
  const fullPx = head.width * head.height;
  const scaledPx = scaled.width * scaled.height;
  const K = Math.max(2, p.args.nClasses);
  // Whole image: activations + logits resized to full size (and a softmax/argmax of them).
  const whole = scaledPx * bpp + fullPx * K * 4 * 2;
  let tile: number;
  if (cfg.tile === 'auto') {
    if (whole <= budget) return { tile: null, regions: false };
    tile = AUTO_TILES.find((t) => cfg.batchSize * t * t * bpp <= budget / 2) ?? AUTO_TILES[AUTO_TILES.length - 1];
  } else tile = cfg.tile;
  // Tiled in memory: the decoded file, the scaled float image and the full-size output maps.
  const inMemory = fullPx * head.channels * 2 + scaledPx * head.channels * 4 + fullPx * (1 + 2 * outputs);
  const regions = head.streamable && (inMemory > budget / 2 || fullPx > DEFAULT_MAX_PIXELS);
  return { tile, regions };
}

// ------------------------------------------------------------------------------------------------
// Blended logits -> full-size classes, band by band

/** PyTorch's bilinear source rows for each output row (align_corners=False): i0, i1 and the weight of i1. */
export function sourceRows(inSize: number, outSize: number): { i0: Int32Array; i1: Int32Array; l1: Float32Array } {
  const i0 = new Int32Array(outSize);
  const i1 = new Int32Array(outSize);
  const l1 = new Float32Array(outSize);
  const scale = Math.fround(inSize / outSize);
  for (let y = 0; y < outSize; y++) {
    const src = Math.max(0, Math.fround(Math.fround(scale * (y + 0.5)) - 0.5));
    const a = Math.floor(src);
    i0[y] = a;
    i1[y] = a < inSize - 1 ? a + 1 : a;
    l1[y] = Math.fround(src - a);
  }
  return { i0, i1, l1 };
}

/** Output rows computed per step (bounds the [K, rows, W] float temporaries). */
const CHUNK_PIXELS = 1 << 22;

export type RowSink = (classes: Uint8Array, probs: Uint16Array[] | null, rows: number) => Promise<void>;

export interface RowOptions extends TileOptions {
  threshold: number;
  probs: boolean;
  /** Output pixels (times classes) computed per step; default 4 Mi. */
  chunkPixels?: number;
}

/**
 * Tiled prediction at full size `W x H`: blended logits of `src` (the scaled image), resized back
 * and turned into classes (and probabilities 0..65535) that go to `sink` top to bottom.
 */
export async function predictTiledRows(p: Predictor, src: RowSource, full: { width: number; height: number }, o: RowOptions, sink: RowSink): Promise<void> {
  const { width: W, height: H } = full;
  const { width: w, height: h } = src;
  const K = p.args.nClasses;
  const { i0, i1, l1 } = sourceRows(h, H);
  const chunkRows = Math.max(1, Math.floor((o.chunkPixels ?? CHUNK_PIXELS) / (W * Math.max(K, 2))));
  const dev = { device: p.device };
  let pending: Tensor | null = null; // scaled rows [pStart, pStart + rows) at full width: [K, rows, W]
  let pStart = 0;
  let nextY = 0;
  try {
    for await (const band of logitBands(p, src, o)) {
      const merged: Tensor = E.inferenceMode(() =>
        E.tidy(() => {
          const wide = W === w ? band.logits : E.interpolate(band.logits.unsqueeze(0), [band.rows, W], 'bilinear', false).squeeze(0);
          return pending ? E.cat([pending, wide], 1) : wide.clone();
        }),
      );
      E.dispose([band.logits, pending]);
      pending = merged;
      const pEnd = pStart + merged.size(1);
      while (nextY < H && i1[nextY] < pEnd) {
        let end = nextY;
        while (end < H && end - nextY < chunkRows && i1[end] < pEnd) end++;
        const R = end - nextY;
        const y = nextY;
        const out = E.inferenceMode(() =>
          E.tidy(() => {
            let rows: Tensor;
            if (H === h) rows = merged.narrow(1, y - pStart, R);
            else {
              const at = (idx: Int32Array) => E.tensor(Int32Array.from(idx.subarray(y, end), (v) => v - pStart)).to({ ...dev, dtype: 'int64' });
              const b = E.tensor(l1.subarray(y, end), [1, R, 1]).to(dev);
              const a = E.scalar(1).to(dev).sub(b);
              rows = merged
                .indexSelect(1, at(i0))
                .mul(a)
                .add(merged.indexSelect(1, at(i1)).mul(b));
            }
            return classesAndProbs(rows.unsqueeze(0), K, o.threshold, o.probs);
          }),
        );
        const classes = out.classes.disposeAfter((t) => t.data() as Uint8Array);
        const probs = out.probs ? out.probs.disposeAfter((t) => t.data() as Int32Array) : null;
        const plane = R * W;
        await sink(classes, probs ? Array.from({ length: probs.length / plane }, (_, k) => Uint16Array.from(probs.subarray(k * plane, (k + 1) * plane))) : null, R);
        nextY = end;
      }
      const drop = (nextY < H ? i0[nextY] : pEnd) - pStart;
      if (drop > 0) {
        const rest = merged.size(1) - drop;
        pending = E.tidy(() => merged.narrow(1, drop, rest).clone());
        merged.dispose();
        pStart += drop;
      }
    }
  } finally {
    E.dispose(pending);
  }
  if (nextY !== H) throw new Error(`predictTiledRows: ${nextY} of ${H} rows produced`);
}

/** Tiled prediction of a decoded image, kept in memory: the same result object as predictBatch. */
export async function predictTiledInMemory(p: Predictor, pre: Preprocessed, o: RowOptions): Promise<Prediction> {
  const { fullWidth: W, fullHeight: H } = pre;
  const classes = new Uint8Array(W * H);
  let probs: Uint16Array[] | undefined;
  let y = 0;
  await predictTiledRows(p, memoryRows(pre.data, pre.channels, pre.width, pre.height), { width: W, height: H }, o, async (c, pr, rows) => {
    classes.set(c, y * W);
    if (pr) {
      probs ??= pr.map(() => new Uint16Array(W * H));
      pr.forEach((m, k) => (probs as Uint16Array[])[k].set(m, y * W));
    }
    y += rows;
  });
  return { classes, width: W, height: H, probs };
}

// ------------------------------------------------------------------------------------------------
// Region by region: file in, PNG files out

/** How a mask with these values is written as PNG (as encodeMaskPng: 1-bit for [0, 1], 16-bit above 255, RGB for colours). */
export function maskPngFormat(width: number, height: number, maskValues: MaskValues): PngRowFormat {
  if (isBinary01(maskValues)) return { width, height, depth: 1, channels: 1 };
  if (Array.isArray(maskValues[0])) return { width, height, depth: 8, channels: 3 };
  return { width, height, depth: (maskValues as number[]).some((v) => v > 255) ? 16 : 8, channels: 1 };
}

export interface RegionOutputs {
  mask?: string;
  /** One file per probability map. */
  probs?: string[];
}

/**
 * Predicts a file region by region: the scaled image is staged and read in row bands, masks and
 * probability maps are written row by row. Returns the full size and the staged source's read stats.
 */
export async function predictTiledFile(
  p: Predictor,
  path: string,
  scale: number,
  outputs: RegionOutputs,
  o: RowOptions,
  warn: (l: string) => void,
): Promise<{ width: number; height: number; reads: number; maxRows: number; maxInputRows: number }> {
  const src = await openScaledRegions(path, scale);
  const writers: PngRowWriter[] = [];
  let maskPngPath: string | null = null;
  let untrack = () => {};
  try {
    const min = minSideOf(p.args);
    if (src.width < min || src.height < min) {
      throw new DataError(`image is ${src.fullWidth}x${src.fullHeight}; at scale ${scale} that is ${src.width}x${src.height}, but the UNet needs at least ${min}x${min} pixels`, {
        file: path,
        hint: 'Use a larger -s/--scale.',
      });
    }
    for (const w of src.warnings) warn(`warning: ${w}`);
    const note = checkChannels(path, src.channels, p.args.nChannels);
    if (note) warn(`warning: ${note}`);
    const rows: RowSource = note ? { ...src, channels: 3, read: async (y0, y1) => greyToRgb(await src.read(y0, y1)) } : src;
    const W = src.fullWidth;
    const H = src.fullHeight;
    // A TIFF mask is written as an 8/16-bit PNG first (no 1-bit packing), then converted by streaming.
    const tiff = outputs.mask && isTiffName(outputs.mask) ? outputs.mask : null;
    if (tiff) {
      maskPngPath = join(dirname(tiff), `.${basename(tiff)}.${process.pid}.png`);
      untrack = trackTemp(maskPngPath);
    }
    const format = maskPngFormat(W, H, p.maskValues);
    const mask = outputs.mask ? new PngRowWriter(maskPngPath ?? outputs.mask, tiff ? { ...format, depth: format.depth === 1 ? 8 : format.depth } : format) : null;
    if (mask) writers.push(mask);
    const probWriters = (outputs.probs ?? []).map((f) => new PngRowWriter(f, { width: W, height: H, depth: 16, channels: 1 }));
    writers.push(...probWriters);
    await predictTiledRows(p, rows, { width: W, height: H }, { ...o, probs: probWriters.length > 0 }, async (classes, probs, n) => {
      if (mask) await mask.write(classIndexToMaskValues(classes, p.maskValues).data, n);
      if (probs) for (let k = 0; k < probWriters.length; k++) await probWriters[k].write(probs[k], n);
    });
    for (const w of writers) await w.close();
    if (tiff && maskPngPath) await pngToTiff(maskPngPath, tiff);
    return { width: W, height: H, ...src.stats };
  } catch (e) {
    for (const w of writers) w.abort();
    throw e;
  } finally {
    src.close();
    if (maskPngPath) rmSync(maskPngPath, { force: true });
    untrack();
  }
}

/** A megapixel progress callback for one large image (rows of the scaled image done -> MP of the input). */
export function megapixelProgress(name: string, fullWidth: number, fullHeight: number, write: (line: string, final: boolean) => void): (rowsDone: number, height: number) => void {
  const t0 = performance.now();
  const total = (fullWidth * fullHeight) / 1e6;
  let lastShown = -1;
  return (rowsDone, height) => {
    const frac = rowsDone / height;
    const tenth = Math.floor(frac * 10);
    const tty = process.stderr.isTTY === true;
    if (!tty && tenth === lastShown && frac < 1) return;
    lastShown = tenth;
    const mp = frac * total;
    const secs = (performance.now() - t0) / 1000;
    const rate = secs > 0 ? mp / secs : 0;
    write(`[${mp.toFixed(1)}/${total.toFixed(1)} MP] ${(100 * frac).toFixed(0).padStart(3)}%  ${rate.toFixed(2)} MP/s  ${name}`, frac >= 1);
  };
}
