/**
 * What the page does around the ONNX forward pass, as `unet predict` does it: the image scaled
 * by the training scale (`floor(s*w) x floor(s*h)`, Pillow's bicubic, 0..1), and the logits
 * resized back to the image's size (bilinear, align_corners=False, as F.interpolate) before the
 * argmax, or for a 1-output model sigmoid > threshold. No DOM here: Node tests run it too.
 */
import type { MaskValues } from '../data/mask-values.js';
import { MIN_SIDE } from '../model/limits.js';
import { type TtaMode, type View, ttaViews } from '../predict/views.js';
import { resizeBicubicU8 } from './resample.js';

export { type TtaMode, ttaViews };

/** model.json beside model.onnx in an exported web folder. */
export interface WebModelInfo {
  model: string;
  n_channels: number;
  n_classes: number;
  bilinear: boolean;
  mask_values: MaskValues;
  scale: number;
  min_size: number;
  /** Where the weights came from (checkpoint path, epoch, validation score): shown on the page. */
  source: string;
  /** Names of the classes (train --class-names), one per mask value; absent: none. */
  class_names?: string[];
  /** What model.onnx returns: logits (one model; absent in older folders) or an ensemble's mean probabilities. */
  output?: 'logits' | 'probabilities';
}

export class InputError extends Error {}

/** `floor(scale*w) x floor(scale*h)`, refused below the network's minimum with the fix in the message. */
export function scaledSize(width: number, height: number, scale: number, min = MIN_SIDE): { width: number; height: number } {
  const w = Math.floor(scale * width);
  const h = Math.floor(scale * height);
  if (w < min || h < min) {
    throw new InputError(`the image is ${width}x${height}; at the model's scale ${scale} that is ${w}x${h}, but the UNet needs at least ${min}x${min} pixels (it halves the size ${Math.log2(min)} times). Use a larger image.`);
  }
  return { width: w, height: h };
}

/**
 * RGBA pixels (as a canvas gives them) -> [C, h, w] float32 in 0..1 at the scaled size.
 * A 1-channel model takes grey images only (R = G = B), as `unet predict` refuses colour images there.
 */
export function preprocessRgba(rgba: Uint8Array | Uint8ClampedArray, width: number, height: number, channels: number, scale: number, minSide = MIN_SIDE): { data: Float32Array; width: number; height: number } {
  const size = scaledSize(width, height, scale, minSide);
  const plane = width * height;
  const planes: Uint8Array[] = [];
  for (let c = 0; c < channels; c++) planes.push(new Uint8Array(plane));
  let colour = false;
  for (let i = 0; i < plane; i++) {
    const r = rgba[4 * i],
      g = rgba[4 * i + 1],
      b = rgba[4 * i + 2];
    if (r !== g || g !== b) colour = true;
    planes[0][i] = r;
    if (channels === 3) {
      planes[1][i] = g;
      planes[2][i] = b;
    }
  }
  if (channels === 1 && colour) throw new InputError('the image is in colour (RGB) but the model expects greyscale images: convert it to greyscale.');
  if (channels !== 1 && channels !== 3) throw new InputError(`the model expects ${channels}-channel input, which a browser image cannot give`);
  const n = size.width * size.height;
  const data = new Float32Array(channels * n);
  planes.forEach((p, c) => {
    const r = resizeBicubicU8(p, width, height, size.width, size.height);
    for (let i = 0; i < n; i++) data[c * n + i] = r[i] / 255;
  });
  return { data, ...size };
}

/**
 * Logits [K, h, w] resized to [K, H, W] like F.interpolate(mode='bilinear', align_corners=False)
 * (coordinates in float32 as PyTorch computes them). With K = 1 the result is the logit map.
 */
export function resizeLogits(logits: Float32Array, k: number, h: number, w: number, H: number, W: number): Float32Array {
  if (h === H && w === W) return logits;
  const f = Math.fround;
  const axis = (inSize: number, outSize: number) => {
    const scale = f(inSize / outSize);
    const i0 = new Int32Array(outSize),
      i1 = new Int32Array(outSize),
      l1 = new Float32Array(outSize);
    for (let o = 0; o < outSize; o++) {
      const src = Math.max(f(f(scale * f(o + 0.5)) - 0.5), 0);
      const a = Math.floor(src);
      i0[o] = a;
      i1[o] = a < inSize - 1 ? a + 1 : a;
      l1[o] = f(src - a);
    }
    return { i0, i1, l1 };
  };
  const ys = axis(h, H),
    xs = axis(w, W);
  const out = new Float32Array(k * H * W);
  for (let c = 0; c < k; c++) {
    const base = c * h * w;
    for (let y = 0; y < H; y++) {
      const r0 = base + ys.i0[y] * w,
        r1 = base + ys.i1[y] * w,
        ly1 = ys.l1[y],
        ly0 = 1 - ly1;
      const o = (c * H + y) * W;
      for (let x = 0; x < W; x++) {
        const a = xs.i0[x],
          b = xs.i1[x],
          lx1 = xs.l1[x],
          lx0 = 1 - lx1;
        out[o + x] = ly0 * (lx0 * logits[r0 + a] + lx1 * logits[r0 + b]) + ly1 * (lx0 * logits[r1 + a] + lx1 * logits[r1 + b]);
      }
    }
  }
  return out;
}

/** Class map [H, W] from full-size logits [K, H, W]: argmax (first maximum), or sigmoid > threshold for K = 1. */
export function classify(logits: Float32Array, k: number, plane: number, threshold = 0.5): Uint8Array {
  const out = new Uint8Array(plane);
  if (k === 1) {
    for (let i = 0; i < plane; i++) out[i] = 1 / (1 + Math.exp(-logits[i])) > threshold ? 1 : 0;
    return out;
  }
  for (let i = 0; i < plane; i++) {
    let best = 0;
    let bv = logits[i];
    for (let c = 1; c < k; c++) {
      const v = logits[c * plane + i];
      if (v > bv) {
        bv = v;
        best = c;
      }
    }
    out[i] = best;
  }
  return out;
}

// ------------------------------------------------------------------------------------------------
// Test-time augmentation, as `unet predict --tta` (src/predict/tta.ts): the same views in the
// same order, the mean of the probabilities, returned as log-probabilities (1 output: the logit
// of the mean) that go through resizeLogits and classify like logits.

/** For each pixel y*w+x of an h x w plane, its index in the view's plane (w x h when transposed). */
function viewIndex(h: number, w: number, v: View): Int32Array {
  const idx = new Int32Array(h * w);
  for (let y = 0; y < h; y++) {
    const fy = v.flipV ? h - 1 - y : y;
    for (let x = 0; x < w; x++) {
      const fx = v.flipH ? w - 1 - x : x;
      idx[y * w + x] = v.transpose ? fx * h + fy : fy * w + fx;
    }
  }
  return idx;
}

/** [C, h, w] as the view sees it; its height and width (swapped when transposed). */
export function viewInput(x: Float32Array, c: number, h: number, w: number, v: View): { data: Float32Array; height: number; width: number } {
  const idx = viewIndex(h, w, v);
  const plane = h * w;
  const data = new Float32Array(x.length);
  for (let k = 0; k < c; k++) for (let i = 0; i < plane; i++) data[k * plane + idx[i]] = x[k * plane + i];
  return { data, height: v.transpose ? w : h, width: v.transpose ? h : w };
}

/**
 * Mean probabilities over the views of `mode` of `run` (the ONNX model: [C, h', w'] -> [K, h', w']
 * logits, or probabilities when `output` says so), as log-probabilities [K, h, w].
 * With one view of a logits model the logits come back as they are.
 */
export async function ttaLogits(
  run: (x: Float32Array, height: number, width: number) => Promise<Float32Array>,
  x: Float32Array,
  c: number,
  h: number,
  w: number,
  k: number,
  mode: TtaMode,
  output: 'logits' | 'probabilities' = 'logits',
): Promise<Float32Array> {
  const views = ttaViews(mode);
  if (views.length === 1 && output === 'logits') return run(x, h, w);
  const plane = h * w;
  const p = new Float32Array(k * plane);
  const q = k === 1 ? new Float32Array(plane) : null; // 1 - p, summed apart for precision near 1
  for (const v of views) {
    const view = viewInput(x, c, h, w, v);
    const y = await run(view.data, view.height, view.width);
    const idx = viewIndex(h, w, v);
    for (let i = 0; i < plane; i++) {
      const j = idx[i];
      if (k === 1) {
        const pv = output === 'logits' ? 1 / (1 + Math.exp(-y[j])) : y[j];
        p[i] += pv;
        (q as Float32Array)[i] += output === 'logits' ? 1 / (1 + Math.exp(y[j])) : 1 - y[j];
        continue;
      }
      let max = -Infinity;
      if (output === 'logits') for (let c2 = 0; c2 < k; c2++) max = Math.max(max, y[c2 * plane + j]);
      let sum = 0;
      for (let c2 = 0; c2 < k; c2++) sum += output === 'logits' ? Math.exp(y[c2 * plane + j] - max) : y[c2 * plane + j];
      for (let c2 = 0; c2 < k; c2++) p[c2 * plane + i] += (output === 'logits' ? Math.exp(y[c2 * plane + j] - max) : y[c2 * plane + j]) / sum;
    }
  }
  const tiny = 1e-30 * views.length;
  const out = new Float32Array(k * plane);
  for (let i = 0; i < out.length; i++) out[i] = Math.log(Math.max(p[i], tiny)) - (q ? Math.log(Math.max(q[i], tiny)) : Math.log(views.length));
  return out;
}
