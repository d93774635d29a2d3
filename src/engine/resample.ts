/** Pillow's 8-bit resampling passes (native/resample.cpp, no torch), run on the libuv pool. */
import { N, type NativeModule } from './native.js';

/**
 * Resamples `src` [height, width, channels] 8-bit into `dst` [newHeight, newWidth, channels]:
 * horizontal pass, then vertical, each rounding and clipping to 0..255, as Pillow does.
 */
export const resample8 = (...args: Parameters<NativeModule['resample8']>): Promise<void> => N.resample8(...args);
