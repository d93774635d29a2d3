/**
 * Resizing with Pytorch-UNet's rules: `newW = floor(scale * w)`, bicubic for images, nearest for
 * masks (PIL BICUBIC / NEAREST). Decoded files are resized inside sharp's decode pipeline
 * (see image.ts); the helpers here cover data that is already in memory.
 */

import sharp, { type ResizeOptions } from 'sharp';
import { DataError } from './errors.js';

/** Pixel arrays as decoded: 8-bit, 16-bit or float samples. */
export type PixelData = Uint8Array | Uint16Array | Float32Array;

/**
 * sharp options matching PIL's `Image.BICUBIC` (mean |Δ| ≈ 0.1/255 when downscaling).
 * `fastShrinkOnLoad: false`: JPEG shrink-on-load is a box filter, which PIL does not do.
 */
export const CUBIC: ResizeOptions = { kernel: 'cubic', fit: 'fill', fastShrinkOnLoad: false };

/** `floor(scale * w) × floor(scale * h)` as in Pytorch-UNet's `preprocess`; throws if either is 0. */
export function scaledSize(width: number, height: number, scale: number, file?: string): { width: number; height: number } {
  if (!(scale > 0) || !Number.isFinite(scale)) {
    throw new DataError(`invalid scale ${scale}`, { file, hint: 'Use a scale in (0, 1], e.g. --scale 0.5.' });
  }
  const w = Math.floor(scale * width);
  const h = Math.floor(scale * height);
  if (w <= 0 || h <= 0) {
    throw new DataError(`scale ${scale} makes this ${width}×${height} image ${w}×${h} pixels`, {
      file,
      hint: `Use a larger --scale (at least ${Math.max(1 / width, 1 / height).toPrecision(3)}).`,
    });
  }
  return { width: w, height: h };
}

/**
 * Source index for each output index, exactly as Pillow's NEAREST (`ImagingScaleAffine`):
 * `x_in = floor((x + 0.5) * in/out)`, accumulated in double like the C code so the rounding at
 * exact boundaries matches too.
 */
export function nearestIndexTable(inSize: number, outSize: number): Int32Array {
  const table = new Int32Array(outSize);
  const step = inSize / outSize;
  let pos = step * 0.5;
  for (let i = 0; i < outSize; i++) {
    table[i] = Math.min(inSize - 1, Math.floor(pos));
    pos += step;
  }
  return table;
}

/** Nearest-neighbour resize of interleaved [H, W, C] data (C = 1 for label maps). PIL-exact. */
export function resizeNearest<T extends Uint8Array | Uint16Array | Float32Array>(
  src: T, width: number, height: number, channels: number, newWidth: number, newHeight: number,
): T {
  if (newWidth === width && newHeight === height) return src;
  const Ctor = src.constructor as new (n: number) => T;
  const out = new Ctor(newWidth * newHeight * channels);
  const xs = nearestIndexTable(width, newWidth);
  const ys = nearestIndexTable(height, newHeight);
  let o = 0;
  if (channels === 1 && src instanceof Uint8Array) {
    nearest8(src, out as Uint8Array, width, xs, ys);
  } else if (channels === 1) {
    for (let y = 0; y < newHeight; y++) {
      const row = ys[y] * width;
      for (let x = 0; x < newWidth; x++) out[o++] = src[row + xs[x]];
    }
  } else {
    for (let y = 0; y < newHeight; y++) {
      const row = ys[y] * width;
      for (let x = 0; x < newWidth; x++) {
        const s = (row + xs[x]) * channels;
        for (let c = 0; c < channels; c++) out[o++] = src[s + c];
      }
    }
  }
  return out;
}

/** The common mask case, kept monomorphic (Uint8Array only) so V8 compiles a tight loop. */
function nearest8(src: Uint8Array, out: Uint8Array, width: number, xs: Int32Array, ys: Int32Array): void {
  const newWidth = xs.length;
  let o = 0;
  for (let y = 0; y < ys.length; y++) {
    const row = ys[y] * width;
    for (let x = 0; x < newWidth; x++) out[o++] = src[row + xs[x]];
  }
}

/**
 * Bicubic resize of interleaved [H, W, C] data in memory (used for `.npy` and GIF inputs).
 * 8/16-bit data goes through sharp (raw input; the typed-array class sets the depth); float data
 * uses a JS port of Pillow's resampler, because sharp clips raw float input.
 */
export async function resizeBicubic(
  src: PixelData, width: number, height: number, channels: number, newWidth: number, newHeight: number,
): Promise<PixelData> {
  if (newWidth === width && newHeight === height) return src;
  if (src instanceof Float32Array) return resampleBicubicFloat(src, width, height, channels, newWidth, newHeight);
  const is16 = src instanceof Uint16Array;
  const space = channels === 1 ? (is16 ? 'grey16' : 'b-w') : is16 ? 'rgb16' : 'srgb';
  const { data } = await sharp(src, { raw: { width, height, channels: channels as 1 | 3 } })
    .toColourspace(space)
    .resize(newWidth, newHeight, CUBIC)
    .raw({ depth: is16 ? 'ushort' : 'uchar' })
    .toBuffer({ resolveWithObject: true });
  return is16 ? u16View(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** A Uint16Array over a Buffer (copied if the Buffer is not 2-byte aligned). */
export function u16View(buf: Uint8Array): Uint16Array {
  if (buf.byteOffset % 2 === 0) return new Uint16Array(buf.buffer, buf.byteOffset, buf.byteLength >> 1);
  return new Uint16Array(new Uint8Array(buf).buffer); // copy (Buffer#slice would not copy)
}

/** Pillow's bicubic kernel (a = -0.5, support 2). */
function bicubic(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/** Pillow's `precompute_coeffs`: per output index, the first input index and normalised weights. */
function coefficients(inSize: number, outSize: number): { start: Int32Array; count: Int32Array; weights: Float64Array; ksize: number } {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 2 * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float64Array(outSize * ksize);
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let sum = 0;
    for (let k = 0; k < xmax; k++) {
      const w = bicubic((k + xmin - center + 0.5) / filterScale);
      weights[o * ksize + k] = w;
      sum += w;
    }
    if (sum !== 0) for (let k = 0; k < xmax; k++) weights[o * ksize + k] /= sum;
    start[o] = xmin;
    count[o] = xmax;
  }
  return { start, count, weights, ksize };
}

/** Pillow's "F"-mode BICUBIC: horizontal pass, then vertical, float32 between passes. */
export function resampleBicubicFloat(src: Float32Array, width: number, height: number, channels: number, newWidth: number, newHeight: number): Float32Array {
  let tmp = src; // [H, newW, C] after the horizontal pass (skipped, as in Pillow, when widths match)
  if (newWidth !== width) {
    const h = coefficients(width, newWidth);
    tmp = new Float32Array(newWidth * height * channels);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < newWidth; x++) {
        const s = h.start[x], n = h.count[x], k0 = x * h.ksize;
        for (let c = 0; c < channels; c++) {
          let acc = 0;
          for (let k = 0; k < n; k++) acc += src[(y * width + s + k) * channels + c] * h.weights[k0 + k];
          tmp[(y * newWidth + x) * channels + c] = acc;
        }
      }
    }
  }
  if (newHeight === height) return tmp;
  const v = coefficients(height, newHeight);
  const out = new Float32Array(newWidth * newHeight * channels); // [newH, newW, C]
  const rowLen = newWidth * channels;
  for (let y = 0; y < newHeight; y++) {
    const s = v.start[y], n = v.count[y], k0 = y * v.ksize;
    for (let i = 0; i < rowLen; i++) {
      let acc = 0;
      for (let k = 0; k < n; k++) acc += tmp[(s + k) * rowLen + i] * v.weights[k0 + k];
      out[y * rowLen + i] = acc;
    }
  }
  return out;
}
