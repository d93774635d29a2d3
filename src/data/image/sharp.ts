/** sharp (libvips) as the data layer uses it: import it from here so the settings below hold. */

import sharp, { type SharpOptions } from 'sharp';

/**
 * `failOn: 'error'`: refuse truncated/corrupt data like PIL, but accept files that only raise
 * libjpeg warnings (e.g. extraneous bytes), which PIL also accepts. Pixel limits are ours.
 */
export const SHARP_INPUT: SharpOptions = { failOn: 'error', limitInputPixels: false, ignoreIcc: true };

// libvips' operation cache never hits for one-off decodes of distinct files, yet costs ~6% CPU
// per decode and up to 50 MB. (Process-wide; harmless for the encoders elsewhere.)
sharp.cache(false);

export { sharp };
