/**
 * Sample conversions between the layouts and depths the readers produce: [H, W, C] interleaved
 * (sharp's) to [C, H, W] planar float32 in 0..1, and PIL's channel conversions.
 */

import type { PixelData } from './resize.js';

/**
 * [H, W, C] samples -> [C, H, W] float32 in 0..1, written at `out[offset…]` (e.g. into a batch).
 * 8-bit data goes through a table, which gives exactly float32(v / 255) as the reference.
 */
export function toChwFloat32(hwc: PixelData, channels: number, divisor: number, out?: Float32Array, offset = 0): Float32Array {
  const n = hwc.length;
  const dst = out ?? new Float32Array(n);
  const plane = n / channels;
  const lut = hwc instanceof Uint8Array && divisor === 255 ? LUT_255 : null;
  if (channels === 1) {
    if (lut) for (let i = 0; i < n; i++) dst[offset + i] = lut[hwc[i]];
    else if (divisor === 1) dst.set(hwc, offset);
    else for (let i = 0; i < n; i++) dst[offset + i] = hwc[i] / divisor;
    return dst;
  }
  if (channels === 3 && lut) {
    // The common case: one sequential pass over the source, three output streams (2x faster
    // than three strided passes).
    const src = hwc as Uint8Array;
    const o0 = offset,
      o1 = offset + plane,
      o2 = offset + 2 * plane;
    for (let i = 0, j = 0; i < plane; i++, j += 3) {
      dst[o0 + i] = lut[src[j]];
      dst[o1 + i] = lut[src[j + 1]];
      dst[o2 + i] = lut[src[j + 2]];
    }
    return dst;
  }
  for (let c = 0; c < channels; c++) {
    const o = offset + c * plane;
    if (lut) for (let i = 0, j = c; i < plane; i++, j += channels) dst[o + i] = lut[hwc[j]];
    else for (let i = 0, j = c; i < plane; i++, j += channels) dst[o + i] = hwc[j] / divisor;
  }
  return dst;
}

/** Element-wise samples / divisor as float32 (any layout; 8-bit via the exact table). */
export function toFloat32(data: PixelData, divisor: number, out?: Float32Array, offset = 0): Float32Array {
  return toChwFloat32(data, 1, divisor, out, offset);
}

const LUT_255 = Float32Array.from({ length: 256 }, (_, v) => v / 255);

/**
 * PIL's convert('L'): L = (19595 R + 38470 G + 7471 B + 2^15) >> 16 (ITU-R 601-2 luma in 16-bit
 * fixed point) for integer samples; the same weights without rounding for float samples.
 */
export function rgbToLuma<T extends PixelData>(hwc: T): T {
  const n = hwc.length / 3;
  const out = new (hwc.constructor as new (n: number) => T)(n);
  if (hwc instanceof Float32Array) {
    for (let i = 0, j = 0; i < n; i++, j += 3) out[i] = (hwc[j] * 19595 + hwc[j + 1] * 38470 + hwc[j + 2] * 7471) / 65536;
  } else {
    for (let i = 0, j = 0; i < n; i++, j += 3) out[i] = Math.floor((hwc[j] * 19595 + hwc[j + 1] * 38470 + hwc[j + 2] * 7471 + 0x8000) / 65536);
  }
  return out;
}

/** PIL's convert('RGB') of a greyscale image: the value copied to R, G and B. */
export function greyToRgb<T extends PixelData>(hwc: T): T {
  const out = new (hwc.constructor as new (n: number) => T)(hwc.length * 3);
  for (let i = 0, j = 0; i < hwc.length; i++, j += 3) {
    out[j] = hwc[i];
    out[j + 1] = hwc[i];
    out[j + 2] = hwc[i];
  }
  return out;
}

/** [H, W, C] interleaved -> [C, H, W] planar (no copy for one channel). */
export function hwcToChw<T extends PixelData>(src: T, height: number, width: number, channels: number): T {
  if (channels === 1) return src;
  const plane = height * width;
  const out = new (src.constructor as new (n: number) => T)(plane * channels);
  for (let c = 0; c < channels; c++) for (let i = 0, j = c; i < plane; i++, j += channels) out[c * plane + i] = src[j];
  return out;
}

/** Drops the last channel of [H, W, C] samples (alpha). */
export function dropLastChannel<T extends PixelData>(src: T, channels: number): T {
  const n = src.length / channels;
  const out = new (src.constructor as new (n: number) => T)(n * (channels - 1));
  for (let i = 0, o = 0; i < n; i++) for (let c = 0; c < channels - 1; c++) out[o++] = src[i * channels + c];
  return out;
}
