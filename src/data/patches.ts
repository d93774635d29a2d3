/**
 * Patch sampling (`unet train --patch-size`), as nnU-Net trains: one random patch per training
 * image per epoch, cut after the usual scale/resize and augmentation. With probability
 * `oversampleFg` the patch is centred on a random pixel of a class drawn at random among the
 * non-background classes present in the image (foreground oversampling: small and rare classes
 * are seen in most batches), otherwise it is placed uniformly. A patch lies inside the image; along
 * a side where the image is smaller than the patch it holds the whole image and the rest is padding.
 *
 * The random numbers are drawn first (`drawPatch`, a fixed 5 per patch, from the run's data
 * generator in batch order) and resolved against the mask later (`placePatch`), so a seed gives the
 * same patches whatever order the decodes finish in, and a resumed run continues the same draws.
 */

import { type AugmentParams, type AugmentSource, augmentInto } from './augment.js';
import { IGNORE_CLASS } from './mask-values.js';
import type { Rng } from './split.js';

/** [height, width] in scaled pixels. */
export type PatchSize = readonly [number, number];

export interface PatchOptions {
  size: PatchSize;
  /** Share of patches centred on a foreground class, 0..1. */
  oversampleFg: number;
}

/**
 * Class index of padding pixels in a patch's uint8 mask: the one --ignore-index's void pixels use,
 * so toDevice turns both into IGNORE_INDEX (-100) and padding counts in no loss term.
 */
export const PAD_CLASS = IGNORE_CLASS;

/** The random numbers of one patch, each uniform in [0, 1). */
export interface PatchDraw {
  /** Centred on a foreground class (probability oversampleFg). */
  fg: boolean;
  cls: number;
  pixel: number;
  y: number;
  x: number;
}

/** Draws one patch's numbers: always 5 draws, whatever the image turns out to hold. */
export function drawPatch(rng: Rng, oversampleFg: number): PatchDraw {
  const [f, cls, pixel, y, x] = Array.from({ length: 5 }, () => rng.next());
  return { fg: f < oversampleFg, cls, pixel, y, x };
}

/** Top-left corner of a patch in image pixels; negative (or past the end) where it pads. */
export interface PatchPlace {
  y0: number;
  x0: number;
  /** The class it was centred on; null when placed uniformly. */
  centredOn: number | null;
}

/** The corner range of one axis: inside the image when the patch fits, else covering the whole image. */
const range = (n: number, p: number): [number, number] => [Math.min(0, n - p), Math.max(0, n - p)];
const clamp = (v: number, [lo, hi]: [number, number]) => Math.min(hi, Math.max(lo, v));

/**
 * Resolves a draw against the [H, W] class map: centred on the `pixel`-th pixel of a present
 * foreground class (not 0, not PAD_CLASS), or uniform (also when the image has no foreground).
 */
export function placePatch(d: PatchDraw, mask: Uint8Array, height: number, width: number, size: PatchSize): PatchPlace {
  const [ph, pw] = size;
  const ry = range(height, ph);
  const rx = range(width, pw);
  if (d.fg) {
    const counts = new Uint32Array(256);
    for (let i = 0; i < mask.length; i++) counts[mask[i]]++;
    const present: number[] = [];
    for (let k = 1; k < 256; k++) if (counts[k] > 0 && k !== PAD_CLASS) present.push(k);
    if (present.length > 0) {
      const cls = present[Math.floor(d.cls * present.length)];
      let k = Math.floor(d.pixel * counts[cls]);
      let i = 0;
      for (; i < mask.length; i++) if (mask[i] === cls && k-- === 0) break;
      const cy = Math.floor(i / width);
      const cx = i % width;
      return { y0: clamp(cy - Math.floor(ph / 2), ry), x0: clamp(cx - Math.floor(pw / 2), rx), centredOn: cls };
    }
  }
  const uniform = (u: number, [lo, hi]: [number, number]) => lo + Math.floor(u * (hi - lo + 1));
  return { y0: uniform(d.y, ry), x0: uniform(d.x, rx), centredOn: null };
}

/**
 * Copies the patch at (y0, x0) of `src` into a batch: [C, ph, pw] float32 0..1 at
 * `images[imageOffset…]` and [ph, pw] at `masks[maskOffset…]`. Pixels outside the image are
 * padding: 0 in the image and PAD_CLASS in the mask. Returns whether there was any.
 */
export function cropInto(src: AugmentSource, at: Pick<PatchPlace, 'y0' | 'x0'>, size: PatchSize, images: Float32Array, imageOffset: number, masks: Uint8Array, maskOffset: number): boolean {
  const { channels: C, height: H, width: W } = src;
  const [ph, pw] = size;
  const hwc = src.layout === 'hwc';
  const chanStride = hwc ? 1 : H * W;
  const pixStride = hwc ? C : 1;
  const divisor = src.divisor ?? 1;
  // The patch columns [xa, xb) and rows [ya, yb) that fall inside the image.
  const xa = Math.max(0, -at.x0),
    xb = Math.min(pw, W - at.x0);
  const ya = Math.max(0, -at.y0),
    yb = Math.min(ph, H - at.y0);
  const padded = xa > 0 || xb < pw || ya > 0 || yb < ph;
  if (padded) {
    images.fill(0, imageOffset, imageOffset + C * ph * pw);
    masks.fill(PAD_CLASS, maskOffset, maskOffset + ph * pw);
  }
  for (let c = 0; c < C; c++) {
    for (let y = ya; y < yb; y++) {
      let s = c * chanStride + ((at.y0 + y) * W + at.x0 + xa) * pixStride;
      let o = imageOffset + (c * ph + y) * pw + xa;
      for (let x = xa; x < xb; x++, s += pixStride) images[o++] = src.image[s] / divisor;
    }
  }
  for (let y = ya; y < yb; y++) {
    const s = (at.y0 + y) * W + at.x0;
    masks.set(src.mask.subarray(s + xa, s + xb), maskOffset + y * pw + xa);
  }
  return padded;
}

/**
 * One sample's patch into a batch: augmented first (the whole image, as without patches), then
 * placed by its draw and cut. Returns whether the patch holds padding.
 */
export function patchInto(s: AugmentSource, aug: AugmentParams | null, draw: PatchDraw, size: PatchSize, images: Float32Array, imageOffset: number, masks: Uint8Array, maskOffset: number): boolean {
  let src = s;
  if (aug) {
    const image = new Float32Array(s.channels * s.height * s.width);
    const mask = new Uint8Array(s.height * s.width);
    augmentInto(s, aug, image, 0, mask, 0);
    src = { image, mask, layout: 'chw', divisor: 1, channels: s.channels, height: s.height, width: s.width };
  }
  const at = placePatch(draw, src.mask, src.height, src.width, size);
  return cropInto(src, at, size, images, imageOffset, masks, maskOffset);
}
