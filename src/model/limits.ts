/** Input limits of the UNet, with no engine import (the browser predictor uses them too). */

/** The smallest side the UNet accepts: four 2x2 poolings must leave at least one pixel. */
export const MIN_SIDE = 16;
