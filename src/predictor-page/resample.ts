/**
 * Pillow's 8-bit BICUBIC resize (`Image.resize(size, Image.BICUBIC)`, ImagingResample with
 * 22-bit fixed-point coefficients, horizontal pass then vertical, each rounded to 8 bits), on one
 * channel plane. The page resizes images with it the way the reference's `preprocess` does.
 */

import { coefficients, fixedPoint } from '../data/image/pillow-taps.js';

const PRECISION_BITS = 22; // Pillow's 8-bit fixed point: 32 - 8 - 2 fraction bits

/** The taps of one axis, weights in Pillow's fixed point. */
function taps(inSize: number, outSize: number) {
  const t = coefficients(inSize, outSize);
  return { ...t, weights: fixedPoint(t.weights) };
}

const clip8 = (v: number): number => {
  const x = v >> PRECISION_BITS;
  return Math.min(Math.max(x, 0), 255);
};

/** Resizes one [height, width] uint8 plane to [newHeight, newWidth] exactly as Pillow does. */
export function resizeBicubicU8(src: Uint8Array, width: number, height: number, newWidth: number, newHeight: number): Uint8Array {
  let tmp = src;
  if (newWidth !== width) {
    const h = taps(width, newWidth);
    tmp = new Uint8Array(newWidth * height);
    for (let y = 0; y < height; y++) {
      const row = y * width;
      for (let x = 0; x < newWidth; x++) {
        const s = row + h.start[x],
          n = h.count[x],
          k0 = x * h.ksize;
        let acc = 1 << (PRECISION_BITS - 1);
        for (let k = 0; k < n; k++) acc = (acc + src[s + k] * h.weights[k0 + k]) | 0;
        tmp[y * newWidth + x] = clip8(acc);
      }
    }
  }
  if (newHeight === height) return tmp;
  const v = taps(height, newHeight);
  const out = new Uint8Array(newWidth * newHeight);
  for (let y = 0; y < newHeight; y++) {
    const s = v.start[y],
      n = v.count[y],
      k0 = y * v.ksize;
    for (let x = 0; x < newWidth; x++) {
      let acc = 1 << (PRECISION_BITS - 1);
      for (let k = 0; k < n; k++) acc = (acc + tmp[(s + k) * newWidth + x] * v.weights[k0 + k]) | 0;
      out[y * newWidth + x] = clip8(acc);
    }
  }
  return out;
}
