/**
 * Data augmentation on typed arrays (Pytorch-UNet has none). The same geometric transform is
 * applied to the image and the mask, so labels stay on their pixels:
 *
 *   scale jitter: resize by s in [0.9, 1.1] about a random point, crop/pad back to H×W
 *                 (bilinear for the image, nearest for the mask, mirrored borders for both)
 *   flips:        horizontal / vertical, each with p = 0.5
 *   rotation:     k × 90°, only for square images (non-square images get k ∈ {0, 2})
 *   brightness:   image × b, b in [1 - β, 1 + β], clamped to 0..1 (image only)
 *
 * Parameters are drawn first (`sampleAugment`, a fixed number of draws per call) and applied
 * later (`applyAugment`), so a loader can draw them in batch order while decodes finish in any
 * order and runs stay reproducible.
 */

import type { PixelData } from './image/resize.js';
import type { Rng } from './split.js';

export interface AugmentOptions {
  /** Random horizontal flip (p = 0.5). Default true. */
  hflip?: boolean;
  /** Random vertical flip (p = 0.5). Default true. */
  vflip?: boolean;
  /** Random 90° rotations (square images only). Default true. */
  rotate90?: boolean;
  /** Scale range, or false. Default [0.9, 1.1]. */
  scale?: readonly [number, number] | false;
  /** Brightness amplitude β (factor in [1-β, 1+β]), or false. Default 0.1. */
  brightness?: number | false;
}

export interface AugmentParams {
  hflip: boolean;
  vflip: boolean;
  /** Counter-clockwise quarter turns (as np.rot90). */
  rot: 0 | 1 | 2 | 3;
  scale: number;
  /** Where the crop/pad window sits, 0..1 of the free room, per axis. */
  shiftY: number;
  shiftX: number;
  brightness: number;
}

/** Sample input for augmentation: an image (any depth) and its class map ([H, W]). */
export interface AugmentSource {
  /** [C, H, W] (as `SegmentationDataset.get`) or [H, W, C] (`layout: 'hwc'`, as the cache); / `divisor` (default 1) for 0..1 */
  image: PixelData;
  layout?: 'chw' | 'hwc';
  divisor?: number;
  /** [H, W] class indices */
  mask: Uint8Array;
  channels: number;
  height: number;
  width: number;
}

/** Draws one set of parameters (always 7 draws, whatever the options). */
export function sampleAugment(rng: Rng, opts: AugmentOptions = {}): AugmentParams {
  const u = Array.from({ length: 7 }, () => rng.next());
  const [lo, hi] = opts.scale === false ? [1, 1] : (opts.scale ?? [0.9, 1.1]);
  const beta = opts.brightness === false ? 0 : (opts.brightness ?? 0.1);
  return {
    hflip: opts.hflip !== false && u[0] < 0.5,
    vflip: opts.vflip !== false && u[1] < 0.5,
    rot: opts.rotate90 === false ? 0 : (Math.floor(u[2] * 4) as 0 | 1 | 2 | 3),
    scale: lo + (hi - lo) * u[3],
    shiftY: u[4],
    shiftX: u[5],
    brightness: 1 + beta * (2 * u[6] - 1),
  };
}

/** Draws parameters and applies them: a new [C, H, W] float32 image (0..1) and [H, W] mask. */
export function augment(sample: AugmentSource, rng: Rng, opts: AugmentOptions = {}): { image: Float32Array; mask: Uint8Array } {
  const params = sampleAugment(rng, opts);
  const image = new Float32Array(sample.channels * sample.height * sample.width);
  const mask = new Uint8Array(sample.height * sample.width);
  augmentInto(sample, params, image, 0, mask, 0);
  return { image, mask };
}

/**
 * Applies `p` to `src`, writing the [C, H, W] float image at `images[imageOffset…]` and the
 * [H, W] mask at `masks[maskOffset…]` (e.g. straight into a batch).
 */
export function augmentInto(src: AugmentSource, p: AugmentParams, images: Float32Array, imageOffset: number, masks: Uint8Array, maskOffset: number): void {
  const { channels: C, height: H, width: W } = src;
  const plane = H * W;
  const divisor = src.divisor ?? 1;
  // 1. Scale jitter into temporary [C, H, W] planes (skipped when s == 1).
  let img: PixelData = src.image;
  let lab: Uint8Array = src.mask;
  let gain = p.brightness / divisor;
  // Sample (c, flat pixel i) sits at img[c * chanStride + i * pixStride].
  const hwc = src.layout === 'hwc';
  let chanStride = hwc ? 1 : plane;
  let pixStride = hwc ? C : 1;
  if (p.scale !== 1) {
    img = new Float32Array(C * plane);
    lab = new Uint8Array(plane);
    scaleCrop(src, p, img as Float32Array, lab);
    gain = p.brightness;
    chanStride = plane;
    pixStride = 1;
  }
  // 2. Flips/rotation as an affine map of flat indices: src = base + y * rowStep + x * colStep.
  // Non-square images: quarter turns are dropped (1 -> 0, 3 -> 2). A half turn equals both
  // flips (and commutes with them), so only one quarter turn is left to handle.
  let rot = H === W ? p.rot : p.rot & 2;
  let { hflip, vflip } = p;
  if (rot >= 2) {
    hflip = !hflip;
    vflip = !vflip;
    rot -= 2;
  }
  const inv = (y: number, x: number): number => {
    if (vflip) y = H - 1 - y;
    if (hflip) x = W - 1 - x;
    if (rot === 1) [y, x] = [x, W - 1 - y]; // undo np.rot90 (square only)
    return y * W + x;
  };
  const base = inv(0, 0);
  const rowStep = inv(1, 0) - base;
  const colStep = inv(0, 1) - base;
  const clamp = p.brightness !== 1;
  const colStepS = colStep * pixStride;
  for (let c = 0; c < C; c++) {
    const s0 = c * chanStride;
    let o = imageOffset + c * plane;
    for (let y = 0; y < H; y++) {
      let s = s0 + (base + y * rowStep) * pixStride;
      for (let x = 0; x < W; x++, s += colStepS) {
        let v = img[s] * gain;
        if (clamp) v = Math.min(Math.max(v, 0), 1);
        images[o++] = v;
      }
    }
  }
  let o = maskOffset;
  for (let y = 0; y < H; y++) {
    let s = base + y * rowStep;
    for (let x = 0; x < W; x++, s += colStep) masks[o++] = lab[s];
  }
}

/** Mirror an index into 0..n-1 (…2 1 0 | 0 1 2 … n-1 | n-1 n-2…). */
function reflect(i: number, n: number): number {
  if (n === 1) return 0;
  const period = 2 * n;
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - 1 - i;
}

/** Per output index along one axis: bilinear taps (i0, i1, weight of i1) and the nearest index. */
function axisTable(n: number, scale: number, shift: number) {
  // The scaled image is n*scale long; the window of length n starts at `start` in it.
  const start = shift * (n * scale - n);
  const i0 = new Int32Array(n),
    i1 = new Int32Array(n),
    near = new Int32Array(n);
  const w = new Float32Array(n);
  for (let o = 0; o < n; o++) {
    const u = (o + start + 0.5) / scale - 0.5; // source coordinate (pixel centres at integers)
    const f = Math.floor(u);
    i0[o] = reflect(f, n);
    i1[o] = reflect(f + 1, n);
    w[o] = u - f;
    near[o] = reflect(Math.floor(u + 0.5), n);
  }
  return { i0, i1, w, near };
}

function scaleCrop(src: AugmentSource, p: AugmentParams, img: Float32Array, lab: Uint8Array): void {
  const { channels: C, height: H, width: W } = src;
  const plane = H * W;
  const inv = 1 / (src.divisor ?? 1);
  const ty = axisTable(H, p.scale, p.shiftY);
  const tx = axisTable(W, p.scale, p.shiftX);
  const s = src.image;
  // Strides of the source layout; column taps pre-multiplied by the pixel stride.
  const hwc = src.layout === 'hwc';
  const pix = hwc ? C : 1;
  const chan = hwc ? 1 : plane;
  const xi0 = tx.i0.map((v) => v * pix),
    xi1 = tx.i1.map((v) => v * pix);
  for (let c = 0; c < C; c++) {
    const base = c * plane;
    for (let y = 0; y < H; y++) {
      const r0 = ty.i0[y] * W * pix + c * chan,
        r1 = ty.i1[y] * W * pix + c * chan,
        wy = ty.w[y];
      const o = base + y * W;
      for (let x = 0; x < W; x++) {
        const x0 = xi0[x],
          x1 = xi1[x],
          wx = tx.w[x];
        const top = s[r0 + x0] + (s[r0 + x1] - s[r0 + x0]) * wx;
        const bottom = s[r1 + x0] + (s[r1 + x1] - s[r1 + x0]) * wx;
        img[o + x] = (top + (bottom - top) * wy) * inv;
      }
    }
  }
  for (let y = 0; y < H; y++) {
    const r = ty.near[y] * W;
    const o = y * W;
    for (let x = 0; x < W; x++) lab[o + x] = src.mask[r + tx.near[x]];
  }
}
