// Small image helpers for logging: PNG encoding of HWC uint8 buffers, and
// conversions the training loop needs to turn tensors' data into such buffers.
import { encode } from 'fast-png';
import { classColour } from './palette.js';

/** HWC uint8 image, as the tracker takes it. */
export interface ImageData8 {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 1 | 3 | 4;
}

export function checkImage(img: ImageData8): void {
  const { width, height, channels, data } = img;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new Error(`image: bad size ${width}x${height}`);
  }
  if (channels !== 1 && channels !== 3 && channels !== 4) throw new Error(`image: channels must be 1, 3 or 4, got ${channels}`);
  if (data.length !== width * height * channels) {
    throw new Error(`image: data has ${data.length} bytes, expected ${width}x${height}x${channels} = ${width * height * channels}`);
  }
}

/** Encodes to PNG (synchronous, pure JS; images are only logged at validation). */
export function encodePng(img: ImageData8): Uint8Array {
  checkImage(img);
  return encode({ width: img.width, height: img.height, data: img.data, channels: img.channels, depth: 8 });
}

/**
 * Class-index mask (H*W, values 0..nClasses-1) → image. Binary masks become
 * black/white grayscale; more classes get the overlays' palette (src/data/palette.ts)
 * on black, so a class has the same colour in every run and in `unet predict -v`.
 */
export function maskToImage(mask: ArrayLike<number>, width: number, height: number, nClasses = 2): ImageData8 {
  const n = width * height;
  if (mask.length !== n) throw new Error(`maskToImage: mask has ${mask.length} values, expected ${n}`);
  if (nClasses <= 2) {
    const data = new Uint8Array(n);
    for (let i = 0; i < n; i++) data[i] = (mask[i] as number) > 0 ? 255 : 0;
    return { data, width, height, channels: 1 };
  }
  const data = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) data.set(classColour(Math.max(0, Math.trunc(mask[i] as number))) ?? [0, 0, 0], i * 3);
  return { data, width, height, channels: 3 };
}

/**
 * CHW float image (as a network input, C = 1 or 3) → HWC uint8. Values are
 * min-max scaled per image so that normalised inputs stay visible; pass
 * `range: [0, 1]` to clamp a known range instead.
 */
export function floatImageToImage(chw: ArrayLike<number>, channels: 1 | 3, height: number, width: number, opts: { range?: [number, number] } = {}): ImageData8 {
  const plane = width * height;
  if (chw.length !== plane * channels) throw new Error(`floatImageToImage: expected ${channels}x${height}x${width} values, got ${chw.length}`);
  let lo: number;
  let hi: number;
  if (opts.range) {
    [lo, hi] = opts.range;
  } else {
    lo = Infinity;
    hi = -Infinity;
    for (let i = 0; i < chw.length; i++) {
      const v = chw[i] as number;
      if (Number.isFinite(v)) {
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    }
    if (!(hi > lo)) {
      lo = 0;
      hi = Math.max(1, hi);
    }
  }
  const scale = 255 / (hi - lo);
  const data = new Uint8Array(plane * channels);
  for (let c = 0; c < channels; c++) {
    for (let p = 0; p < plane; p++) {
      const v = ((chw[c * plane + p] as number) - lo) * scale;
      data[p * channels + c] = Number.isFinite(v) ? Math.min(255, Math.max(0, Math.round(v))) : 0;
    }
  }
  return { data, width, height, channels };
}

/** Per-pixel probabilities (H*W in [0,1]) → grayscale image, e.g. a sigmoid output. */
export function probabilityToImage(prob: ArrayLike<number>, width: number, height: number): ImageData8 {
  return floatImageToImage(prob, 1, height, width, { range: [0, 1] });
}
