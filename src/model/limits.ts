/** Input limits of the UNet, with no engine import (the browser predictor uses them too). */

/** The smallest side a UNet of `depth` stages accepts: its 2x2 poolings must leave at least one pixel. */
export const minSideFor = (depth = 4): number => 2 ** depth;

/** The smallest side the reference's UNet (4 stages) accepts. */
export const MIN_SIDE = minSideFor(4);

/**
 * The smallest side the model of these args accepts: 2^depth for the reference UNet, 2^encoder
 * depth (32 at 5) for an encoder UNet, whose deepest feature is then one pixel.
 */
export const minSideOf = (a: { depth?: number; encoder?: string; encoderDepth?: number }): number => (a.encoder !== undefined && a.encoder !== 'plain' ? 2 ** (a.encoderDepth ?? 5) : minSideFor(a.depth));
