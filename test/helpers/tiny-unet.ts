/**
 * A narrow UNet for long-running tests: the real UNet with every width divided by `div` (16 by
 * default: 4-8-16-32-64 instead of 64-128-256-512-1024), same parts, names and state_dict keys.
 * A training step at 32x32 then takes milliseconds instead of half a second on two cores.
 */
import * as E from '../../src/engine/index.js';
import { UNet, type UNetArgs } from '../../src/model/index.js';

export class TinyUNet extends UNet {
  constructor(args: UNetArgs, div = 16) {
    super(args, div);
  }
}

/** An encoder UNet small enough for weight exchanges through JSON: 1 channel in, 2 classes, encoder depth 3, decoder 16-8-8. */
export const tinyEncoderArgs = (encoder: string): UNetArgs => ({ nChannels: 1, nClasses: 2, bilinear: false, encoder, encoderDepth: 3, decoderChannels: [16, 8, 8] });

/** `createModel` hook for train(). */
export const tinyUNet = (args: UNetArgs, div = 16): UNet => new TinyUNet(args, div);

/**
 * A narrow UNet in eval mode whose BatchNorm layers have non-trivial running statistics and
 * affine parameters, so eval-mode outputs depend on every buffer (export and parity tests).
 */
export function evalUNet(args: UNetArgs, seed: number, div = 8): UNet {
  E.manualSeed(seed);
  const m = new UNet(args, div);
  E.noGrad(() => {
    for (const [k, t] of m.stateDict()) {
      if (k.endsWith('running_mean')) t.normal_(0, 0.1);
      else if (k.endsWith('running_var')) t.uniform_(0.5, 1.5);
      else if (/\.[14]\.weight$/.test(k)) t.uniform_(0.5, 1.5);
      else if (/\.[14]\.bias$/.test(k)) t.normal_(0, 0.1);
    }
  });
  m.eval();
  return m;
}
