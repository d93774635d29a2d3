/**
 * Resizing with Pytorch-UNet's rules: `newW = floor(scale * w)`, bicubic for images, nearest for
 * masks (PIL BICUBIC / NEAREST), both ports of Pillow 9.4's arithmetic so that the results are
 * byte-equal to PIL's (tested against it). sharp decodes; resizing happens here.
 */

import { resample8 } from '../../engine/index.js';
import { MIN_SIDE } from '../../model/limits.js';
import { type Taps, coefficients, fixedPoint } from './pillow-taps.js';
import { DataError } from '../errors.js';

/** Pixel arrays as decoded: 8-bit, 16-bit or float samples. */
export type PixelData = Uint8Array | Uint16Array | Float32Array;

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

export { MIN_SIDE }; // the UNet's limit, defined beside the model

/**
 * The smallest `-s` (rounded up to two decimals) that keeps `side` pixels at least `min` after
 * `floor(s * side)`, or null when even `-s 1` does not.
 */
export function minScale(side: number, min = MIN_SIDE): number | null {
  if (side < min) return null;
  let s = Math.ceil((min / side) * 100) / 100;
  while (Math.floor(s * side) < min) s = (Math.round(s * 100) + 1) / 100; // float rounding at the boundary
  return Math.min(s, 1);
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
export function resizeNearest<T extends Uint8Array | Uint16Array | Float32Array>(src: T, width: number, height: number, channels: number, newWidth: number, newHeight: number): T {
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
 * Bicubic resize of interleaved [H, W, C] data, equal to Pillow's `Image.resize(size, BICUBIC)`
 * (Pillow 9.4, `libImaging/Resample.c`):
 * - 8-bit data as PIL's "L"/"RGB" modes: fixed-point coefficients, clipped to 0..255 after each pass;
 * - 16-bit data as PIL's "I" mode (how PIL opens a 16-bit greyscale PNG): double coefficients,
 *   rounded half away from zero after each pass, **not clipped**, so the result is a Float32Array
 *   of integers that may leave 0..65535 near sharp edges, as PIL's int32 result does;
 * - float data as PIL's "F" mode.
 */
export async function resizeBicubic(src: PixelData, width: number, height: number, channels: number, newWidth: number, newHeight: number): Promise<PixelData> {
  if (newWidth === width && newHeight === height) return src;
  return bicubicBands(width, height, channels, newWidth, newHeight).resize(src, 0, 0, newHeight);
}

/**
 * `resizeBicubic` by bands of output rows, for images read in pieces: output rows [y0, y1) need
 * only input rows `inputRows(y0, y1)`, and `resize(band, bandY0, y0, y1)` computes them from those
 * rows alone (full width), byte-equal to the same rows of the whole-image result. Pillow itself
 * resamples horizontally only the rows its vertical pass reads, so nothing differs.
 */
export interface BicubicBands {
  inputRows(y0: number, y1: number): [number, number];
  resize(band: PixelData, bandY0: number, y0: number, y1: number): Promise<PixelData>;
}

export function bicubicBands(width: number, height: number, channels: number, newWidth: number, newHeight: number): BicubicBands {
  const h = newWidth === width ? null : coefficients(width, newWidth);
  const hFixed = h && fixedPoint(h.weights);
  const v = newHeight === height ? null : coefficients(height, newHeight);
  const inputRows = (y0: number, y1: number): [number, number] => {
    if (!v) return [y0, y1];
    let lo = height,
      hi = 0;
    for (let y = y0; y < y1; y++) {
      lo = Math.min(lo, v.start[y]);
      hi = Math.max(hi, v.start[y] + v.count[y]);
    }
    return [lo, hi];
  };
  return {
    inputRows,
    resize: async (band, bandY0, y0, y1) => {
      const [lo, hi] = inputRows(y0, y1);
      const rowLen = width * channels;
      if (lo < bandY0 || hi > bandY0 + band.length / rowLen) throw new Error(`bicubicBands: rows ${y0}..${y1} need input rows ${lo}..${hi}`);
      if (!v) band = band.subarray((y0 - bandY0) * rowLen, (y1 - bandY0) * rowLen); // the rows themselves
      if (!h && !v) return band;
      const rows = band.length / rowLen;
      const vs = v && shiftTaps(v, y0, y1, bandY0);
      if (band instanceof Uint8Array) {
        const out = new Uint8Array(newWidth * (y1 - y0) * channels);
        const vFixed = vs && fixedPoint(vs.weights);
        await resample8(band, width, rows, channels, out, newWidth, y1 - y0, h?.start ?? null, h?.count ?? null, hFixed, vs?.start ?? null, vs?.count ?? null, vFixed);
        return out;
      }
      // 16-bit data as PIL's "I" mode (ROUND_UP, no clipping), float data as its "F" mode.
      return Float32Array.from(resampleDouble(band, width, rows, channels, newWidth, h, vs, band instanceof Uint16Array ? roundUp : Math.fround));
    },
  };
}

/** The taps of output indices [o0, o1), their input indices counted from `first`. */
function shiftTaps(t: Taps, o0: number, o1: number, first: number): Taps {
  return {
    start: t.start.slice(o0, o1).map((s) => s - first),
    count: t.count.subarray(o0, o1),
    weights: t.weights.subarray(o0 * t.ksize, o1 * t.ksize),
    ksize: t.ksize,
  };
}

/** A Uint16Array over a Buffer (copied if the Buffer is not 2-byte aligned). */
export function u16View(buf: Uint8Array): Uint16Array {
  if (buf.byteOffset % 2 === 0) return new Uint16Array(buf.buffer, buf.byteOffset, buf.byteLength >> 1);
  return new Uint16Array(new Uint8Array(buf).buffer); // copy (Buffer#slice would not copy)
}

// Pillow's 8-bit resampler runs in the addon (native/resample.cpp) on the libuv pool: horizontal
// pass, then vertical, each rounding and clipping to 0..255; a pass is skipped (null taps) when
// that side keeps its size, as in Pillow.

/** Pillow's `ROUND_UP`: half away from zero, then C's (int) cast (`| 0` also turns -0 into 0). */
const roundUp = (f: number) => (f >= 0 ? f + 0.5 : f - 0.5) | 0;

/** Pillow's "F"-mode BICUBIC: horizontal pass, then vertical, float32 between passes. */
export function resampleBicubicFloat(src: Float32Array, width: number, height: number, channels: number, newWidth: number, newHeight: number): Float32Array {
  const h = newWidth === width ? null : coefficients(width, newWidth);
  const v = newHeight === height ? null : coefficients(height, newHeight);
  return Float32Array.from(resampleDouble(src, width, height, channels, newWidth, h, v, Math.fround));
}

/**
 * The 32-bit passes ("I" and "F" modes): sums in double, each pass's result stored through
 * `store` (ROUND_UP to int32, or rounding to float32).
 */
function resampleDouble(src: Uint16Array | Float32Array, width: number, height: number, channels: number, newWidth: number, h: Taps | null, v: Taps | null, store: (v: number) => number): Float64Array {
  let tmp: ArrayLike<number> = src; // [H, newW, C] after the horizontal pass (skipped, as in Pillow, when widths match)
  if (h) {
    const out = new Float64Array(newWidth * height * channels);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < newWidth; x++) {
        const s = h.start[x],
          n = h.count[x],
          k0 = x * h.ksize;
        for (let c = 0; c < channels; c++) {
          let acc = 0;
          for (let k = 0; k < n; k++) acc += src[(y * width + s + k) * channels + c] * h.weights[k0 + k];
          out[(y * newWidth + x) * channels + c] = store(acc);
        }
      }
    }
    tmp = out;
  }
  if (!v) return tmp instanceof Float64Array ? tmp : Float64Array.from(tmp);
  const newHeight = v.start.length;
  const out = new Float64Array(newWidth * newHeight * channels); // [newH, newW, C]
  const rowLen = newWidth * channels;
  for (let y = 0; y < newHeight; y++) {
    const s = v.start[y],
      n = v.count[y],
      k0 = y * v.ksize;
    for (let i = 0; i < rowLen; i++) {
      let acc = 0;
      for (let k = 0; k < n; k++) acc += tmp[(s + k) * rowLen + i] * v.weights[k0 + k];
      out[y * rowLen + i] = store(acc);
    }
  }
  return out;
}
