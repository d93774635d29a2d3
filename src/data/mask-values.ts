/**
 * Mask values and the class -> value mapping, with no Node imports: the browser predictor
 * (src/predictor-page/) bundles this file too.
 */

export type RGB = [number, number, number];
export type MaskValue = number | RGB;
/** Sorted distinct mask values: numbers for greyscale/palette masks, [r, g, b] for colour masks. */
export type MaskValues = number[] | RGB[];

/**
 * The class maps' (Uint8Array) marker for pixels holding the --ignore-index value: above every
 * class (at most 255 classes with --ignore-index); training and evaluation turn it into the
 * targets' -100 (PyTorch's ignore_index).
 */
export const IGNORE_CLASS = 255;

/**
 * The inverse for predictions: class i -> maskValues[i] (Pytorch-UNet's `mask_to_image`).
 * Greyscale values give [H, W] (Uint16Array if a value exceeds 255); colours give [H, W, 3].
 */
export function classIndexToMaskValues(classes: Uint8Array, maskValues: MaskValues): { data: Uint8Array | Uint16Array; channels: 1 | 3 } {
  if (maskValues.length > 0 && Array.isArray(maskValues[0])) {
    const vals = maskValues as RGB[];
    const out = new Uint8Array(classes.length * 3);
    for (let i = 0; i < classes.length; i++) {
      const v = vals[classes[i]];
      if (v) {
        out[3 * i] = v[0];
        out[3 * i + 1] = v[1];
        out[3 * i + 2] = v[2];
      }
    }
    return { data: out, channels: 3 };
  }
  const vals = maskValues as number[];
  const out = vals.some((v) => v > 255) ? new Uint16Array(classes.length) : new Uint8Array(classes.length);
  const lut = new Uint16Array(256);
  vals.forEach((v, i) => {
    if (i < 256) lut[i] = v;
  });
  for (let i = 0; i < classes.length; i++) out[i] = lut[classes[i]];
  return { data: out, channels: 1 };
}
