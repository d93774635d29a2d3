/** The U-Net models and their parts: the reference UNet, and the UNet over an encoder (train --encoder). */
import { EncoderUNet } from './encoder-unet.js';
import { UNet, type UNetArgs, hasEncoder } from './unet.js';

export * from './parts.js';
export * from './unet.js';
export { DEFAULT_DECODER_CHANNELS, EncoderUNet, encoderArgsProblem, fullEncoderArgs } from './encoder-unet.js';

/** Either model: what training, prediction, export and the bench hold. */
export type SegmentationModel = UNet | EncoderUNet;

/** The model the args describe: the reference UNet (narrowed by `widthDivisor`, tests and bench only), or the UNet over args.encoder. */
export function createModel(args: UNetArgs, widthDivisor = 1): SegmentationModel {
  if (!hasEncoder(args)) return new UNet(args, widthDivisor);
  if (widthDivisor !== 1) throw new RangeError('a width divisor narrows the plain UNet only, not an encoder UNet');
  return new EncoderUNet(args);
}
