/** Pillow's 8-bit resampling passes (native/resample.cpp, no torch), run on the libuv pool. */
import { N } from './native.js';

/** Fixed-point taps of one pass (Pillow's `precompute_coeffs`), or null to skip that pass. */
export type TapArg = Int32Array | null;

/**
 * Resamples `src` [height, width, channels] 8-bit into `dst` [newHeight, newWidth, channels]:
 * horizontal pass, then vertical, each rounding and clipping to 0..255, as Pillow does.
 */
export function resample8(
  src: Uint8Array,
  width: number,
  height: number,
  channels: number,
  dst: Uint8Array,
  newWidth: number,
  newHeight: number,
  hStart: TapArg,
  hCount: TapArg,
  hWeights: TapArg,
  vStart: TapArg,
  vCount: TapArg,
  vWeights: TapArg,
): Promise<void> {
  return N.resample8(src, width, height, channels, dst, newWidth, newHeight, hStart, hCount, hWeights, vStart, vCount, vWeights);
}
