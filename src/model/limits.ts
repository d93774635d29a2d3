/** Input limits of the UNet, with no engine import (the browser predictor uses them too). */

/** The smallest side a UNet of `depth` stages accepts: its 2x2 poolings must leave at least one pixel. */
export const minSideFor = (depth = 4): number => 2 ** depth;

/** The smallest side the reference's UNet (4 stages) accepts. */
export const MIN_SIDE = minSideFor(4);
