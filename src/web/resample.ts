/**
 * Pillow's 8-bit BICUBIC resize (`Image.resize(size, Image.BICUBIC)`, ImagingResample with
 * 22-bit fixed-point coefficients, horizontal pass then vertical, each rounded to 8 bits), on one
 * channel plane. The page resizes images with it the way the reference's `preprocess` does.
 */

const PRECISION_BITS = 32 - 8 - 2;

/** Pillow's bicubic kernel (a = -0.5, support 2). */
function bicubic(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc: first input index, count and int weights per output index. */
function coefficients(inSize: number, outSize: number): { start: Int32Array; count: Int32Array; weights: Int32Array; ksize: number } {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = 2 * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const ss = 1 / filterScale;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * ksize);
  const pre = new Float64Array(ksize);
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const n = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let sum = 0;
    for (let k = 0; k < n; k++) {
      pre[k] = bicubic((k + xmin - center + 0.5) * ss);
      sum += pre[k];
    }
    for (let k = 0; k < n; k++) {
      const w = (sum !== 0 ? pre[k] / sum : pre[k]) * (1 << PRECISION_BITS);
      weights[o * ksize + k] = Math.trunc(w < 0 ? w - 0.5 : w + 0.5);
    }
    start[o] = xmin;
    count[o] = n;
  }
  return { start, count, weights, ksize };
}

const clip8 = (v: number): number => {
  const x = v >> PRECISION_BITS;
  return x < 0 ? 0 : x > 255 ? 255 : x;
};

/** Resizes one [height, width] uint8 plane to [newHeight, newWidth] exactly as Pillow does. */
export function resizeBicubicU8(src: Uint8Array, width: number, height: number, newWidth: number, newHeight: number): Uint8Array {
  let tmp = src;
  if (newWidth !== width) {
    const h = coefficients(width, newWidth);
    tmp = new Uint8Array(newWidth * height);
    for (let y = 0; y < height; y++) {
      const row = y * width;
      for (let x = 0; x < newWidth; x++) {
        const s = row + h.start[x], n = h.count[x], k0 = x * h.ksize;
        let acc = 1 << (PRECISION_BITS - 1);
        for (let k = 0; k < n; k++) acc = (acc + src[s + k] * h.weights[k0 + k]) | 0;
        tmp[y * newWidth + x] = clip8(acc);
      }
    }
  }
  if (newHeight === height) return tmp;
  const v = coefficients(height, newHeight);
  const out = new Uint8Array(newWidth * newHeight);
  for (let y = 0; y < newHeight; y++) {
    const s = v.start[y], n = v.count[y], k0 = y * v.ksize;
    for (let x = 0; x < newWidth; x++) {
      let acc = 1 << (PRECISION_BITS - 1);
      for (let k = 0; k < n; k++) acc = (acc + tmp[(s + k) * newWidth + x] * v.weights[k0 + k]) | 0;
      out[y * newWidth + x] = clip8(acc);
    }
  }
  return out;
}
