/**
 * Mask PNGs with the original mask values (class i -> maskValues[i]), as `unet predict` writes
 * them: [0, 1] as a 1-bit PNG (the reference writes a bool image, which viewers show
 * black/white), other grey values as 8-bit or, above 255, 16-bit PNG; colour values as RGB PNG.
 * Pure TypeScript (fast-png), so the browser page writes the same files.
 */
import { encode } from 'fast-png';
import { type MaskValues, classIndexToMaskValues } from '../data/mask-values.js';

/** True when the mask values are exactly [0, 1]: written as a 1-bit PNG like the reference's bool mask. */
export const isBinary01 = (v: MaskValues): boolean => v.length === 2 && v[0] === 0 && v[1] === 1;

/** Encodes a class map [H, W] as a PNG holding the mask values; `oneBit: false` keeps [0, 1] as 8-bit samples. */
export function maskPng(classes: Uint8Array, width: number, height: number, maskValues: MaskValues, oneBit = true): Uint8Array {
  if (oneBit && isBinary01(maskValues)) {
    // 1-bit greyscale, rows packed MSB first: PIL reads mode "1" (False/True).
    const stride = Math.ceil(width / 8);
    const packed = new Uint8Array(stride * height);
    for (let y = 0; y < height; y++) {
      const row = y * width;
      for (let x = 0; x < width; x++) if (classes[row + x]) packed[y * stride + (x >> 3)] |= 0x80 >> (x & 7);
    }
    return encode({ width, height, data: packed, depth: 1, channels: 1 });
  }
  const { data, channels } = classIndexToMaskValues(classes, maskValues);
  return encode({ width, height, data, depth: data instanceof Uint16Array ? 16 : 8, channels });
}
