/**
 * Pillow 9.4's BICUBIC coefficients (`precompute_coeffs`, `normalize_coeffs_8bpc` in
 * `libImaging/Resample.c`), with no imports: the trainer's resize (resize.ts) and the browser
 * predictor (src/predictor-page) share them.
 */

/** Pillow's bicubic kernel (a = -0.5, support 2). */
function bicubic(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/** Per output index: the first input index, the number of taps, and `ksize` weights (row-major). */
export interface Taps {
  start: Int32Array;
  count: Int32Array;
  weights: Float64Array;
  ksize: number;
}

/** Pillow's `precompute_coeffs` for the bicubic filter, in the same double arithmetic. */
export function coefficients(inSize: number, outSize: number): Taps {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 2 * filterScale;
  const invScale = 1 / filterScale; // Pillow multiplies by the reciprocal; dividing can differ in the last bit
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
      const w = bicubic((k + xmin - center + 0.5) * invScale);
      weights[o * ksize + k] = w;
      sum += w;
    }
    if (sum !== 0) for (let k = 0; k < xmax; k++) weights[o * ksize + k] /= sum;
    start[o] = xmin;
    count[o] = xmax;
  }
  return { start, count, weights, ksize };
}

/** Pillow's `normalize_coeffs_8bpc`: 22 fraction bits, rounded half away from zero. */
export function fixedPoint(weights: Float64Array): Int32Array {
  const out = new Int32Array(weights.length);
  const one = 1 << 22;
  for (let i = 0; i < weights.length; i++) out[i] = Math.trunc(weights[i] < 0 ? -0.5 + weights[i] * one : 0.5 + weights[i] * one);
  return out;
}
