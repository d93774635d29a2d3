/**
 * A narrow UNet for long-running tests: the real UNet with every width divided by `div` (16 by
 * default: 4-8-16-32-64 instead of 64-128-256-512-1024), same parts, names and state_dict keys.
 * A training step at 32x32 then takes milliseconds instead of half a second on two cores.
 */
import { UNet, type UNetArgs } from '../../src/model/index.js';

export class TinyUNet extends UNet {
  constructor(args: UNetArgs, div = 16) {
    super(args, div);
  }
}

/** `createModel` hook for train(). */
export const tinyUNet = (args: UNetArgs, div = 16): UNet => new TinyUNet(args, div);
