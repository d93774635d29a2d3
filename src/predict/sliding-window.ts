/**
 * Sliding-window (tiled) inference over the scaled image, for images whose whole-image forward
 * pass does not fit in memory.
 *
 * The scaled image is cut into `tile x tile` windows that overlap by `overlap` (the stride is
 * floor(tile * (1 - overlap)); the last window of a row or column is moved back to end at the
 * border, as MONAI's sliding_window_inference does). Each window goes through the UNet (`-b`
 * windows per forward pass) and its logits are added into an accumulator with a per-pixel weight:
 * a Gaussian importance map with sigma = tile/8 (nnU-Net and MONAI's default: the centre of a
 * window, which saw the most context, counts most) or a constant (plain averaging). The blended
 * logits are the weighted sum divided by the summed weights.
 *
 * Both weight maps are separable (w(y, x) = g(y) g(x)) and the windows form a grid, so the summed
 * weights are a product of two 1-D sums: no [H, W] weight image is kept. Windows are processed row
 * by row, and the accumulator holds one window row ([K, tile, w]): rows above the next window row
 * are final and handed to the caller as a band, so memory does not grow with the image height.
 */
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import { type ForwardModel, type Predictor, forwardTensor } from './predictor.js';

export type BlendMode = 'gaussian' | 'constant';
export const BLEND_MODES: readonly BlendMode[] = ['gaussian', 'constant'];

/** Window starts along an axis: every `stride` pixels, the last one ending at the border. */
export function tileStarts(length: number, tile: number, overlap: number): number[] {
  const t = Math.min(tile, length);
  const stride = Math.max(1, Math.floor(t * (1 - overlap)));
  const starts: number[] = [];
  for (let s = 0; s + t < length; s += stride) starts.push(s);
  starts.push(length - t);
  return starts;
}

/** 1-D window weights: exp(-(i - c)^2 / (2 sigma^2)), c the centre, sigma = size/8; or all ones. */
export function windowWeights(size: number, blend: BlendMode): Float32Array {
  const g = new Float32Array(size);
  if (blend === 'constant') return g.fill(1);
  const c = (size - 1) / 2;
  const sigma = size / 8;
  for (let i = 0; i < size; i++) g[i] = Math.exp(-((i - c) ** 2) / (2 * sigma * sigma));
  return g;
}

/** Summed weights of all windows at each position of an axis. */
function coverage(length: number, starts: readonly number[], g: Float32Array): Float64Array {
  const sum = new Float64Array(length);
  for (const s of starts) for (let i = 0; i < g.length; i++) sum[s + i] += g[i];
  return sum;
}

const reciprocal = (xs: Float64Array): Float32Array => Float32Array.from(xs, (x) => 1 / x);

/** Scaled image rows on demand: read(y0, y1) gives [C, y1 - y0, width] float32 in 0..1. */
export interface RowSource {
  width: number;
  height: number;
  channels: number;
  read(y0: number, y1: number): Promise<Float32Array>;
}

/** An in-memory [C, H, W] image as a RowSource. */
export function memoryRows(data: Float32Array, channels: number, width: number, height: number): RowSource {
  const plane = width * height;
  return {
    width,
    height,
    channels,
    read: async (y0, y1) => {
      if (channels === 1) return data.subarray(y0 * width, y1 * width);
      const rows = (y1 - y0) * width;
      const out = new Float32Array(channels * rows);
      for (let c = 0; c < channels; c++) out.set(data.subarray(c * plane + y0 * width, c * plane + y1 * width), c * rows);
      return out;
    },
  };
}

export interface TileOptions {
  tile: number;
  /** Window height when it differs from `tile` (the width); training validates with its --patch-size. */
  tileHeight?: number;
  overlap: number;
  blend: BlendMode;
  /** Windows per forward pass. */
  batchSize: number;
  /** Called after each window row with the rows finished so far (for progress). */
  onRows?: (rowsDone: number, height: number) => void;
}

/** Final blended logits for scaled rows [y0, y0 + rows): a [K, rows, width] tensor on the model's device (caller disposes). */
export interface LogitBand {
  y0: number;
  rows: number;
  logits: Tensor;
}

/** The window grid of a `width x height` scaled image. */
export function tileGrid(width: number, height: number, o: Pick<TileOptions, 'tile' | 'tileHeight' | 'overlap'>): { tw: number; th: number; xs: number[]; ys: number[] } {
  const tw = Math.min(o.tile, width);
  const th = Math.min(o.tileHeight ?? o.tile, height);
  return { tw, th, xs: tileStarts(width, tw, o.overlap), ys: tileStarts(height, th, o.overlap) };
}

/** What the windows go through: a loaded predictor, or a model in training (its validation). */
export type WindowModel = ForwardModel & Pick<Predictor, 'args'>;

/**
 * Blended logits of the whole scaled image, top to bottom, one band per window row. An image
 * that fits in one window is one plain forward pass (no weights), so it equals the whole-image result.
 */
export async function* logitBands(p: WindowModel, src: RowSource, o: TileOptions): AsyncGenerator<LogitBand> {
  const { width: w, height: h, channels: C } = src;
  const K = p.args.nClasses;
  const { tw, th, xs, ys } = tileGrid(w, h, o);
  const blend: BlendMode = xs.length === 1 && ys.length === 1 ? 'constant' : o.blend;
  const gy = windowWeights(th, blend);
  const gx = windowWeights(tw, blend);
  const invY = reciprocal(coverage(h, ys, gy));
  const dev = { device: p.device };
  const onDevice = (data: Float32Array, shape: number[]) => E.tidy(() => E.tensor(data, shape).to(dev));
  const weight =
    blend === 'constant'
      ? null
      : onDevice(
          Float32Array.from({ length: th * tw }, (_, i) => gy[Math.floor(i / tw)] * gx[i % tw]),
          [1, th, tw],
        );
  const invX = onDevice(reciprocal(coverage(w, xs, gx)), [1, 1, w]);
  // acc rows [0, th) are scaled rows [ys[i], ys[i] + th) while window row i is processed.
  const acc = E.zeros([K, th, w], dev).keep();
  try {
    for (let i = 0; i < ys.length; i++) {
      const y0 = ys[i];
      const rows = await src.read(y0, y0 + th);
      E.inferenceMode(() =>
        E.tidy(() => {
          const x = E.tensor(rows, [C, th, w]);
          for (let j = 0; j < xs.length; j += o.batchSize) {
            const group = xs.slice(j, j + o.batchSize);
            E.tidy(() => {
              const batch = E.stack(group.map((x0) => x.narrow(2, x0, tw)));
              const logits = forwardTensor(p, batch); // [B, K, th, tw]
              group.forEach((x0, b) => {
                const l = logits.select(0, b);
                acc.narrow(2, x0, tw).add_(weight ? l.mul(weight) : l);
              });
            });
          }
        }),
      );
      const next = i + 1 < ys.length ? ys[i + 1] : h;
      const done = next - y0;
      const band = E.inferenceMode(() =>
        E.tidy(() => {
          const wy = E.tensor(invY.subarray(y0, next), [1, done, 1]).to(dev);
          const out = acc.narrow(1, 0, done).mul(wy).mul(invX);
          // Move the unfinished rows up; the freed rows start from zero.
          if (done < th) acc.narrow(1, 0, th - done).copy_(acc.narrow(1, done, th - done).clone());
          acc.narrow(1, th - done, done).zero_();
          return out;
        }),
      ).keep();
      o.onRows?.(next, h);
      yield { y0, rows: done, logits: band };
    }
  } finally {
    E.dispose([acc, invX, weight]);
  }
}

/** All blended logits of an image as one [1, K, h, w] tensor on the model's device (caller disposes). */
export async function tiledLogits(p: WindowModel, src: RowSource, o: TileOptions): Promise<Tensor> {
  const bands: Tensor[] = [];
  try {
    for await (const b of logitBands(p, src, o)) bands.push(b.logits);
    return E.tidy(() => E.cat(bands, 1).unsqueeze(0));
  } finally {
    E.dispose(bands);
  }
}
