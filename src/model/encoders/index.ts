/** The encoders `train --encoder NAME` can put under the UNet ('plain' is the reference UNet, model/unet.ts). */
import type { EncoderSpec } from './encoder.js';
import { EFFICIENTNETS } from './efficientnet.js';
import { MOBILENETS } from './mobilenet.js';
import { CONVNEXTS } from './convnext.js';
import { RESNETS } from './resnet.js';

export * from './encoder.js';

export const ENCODERS: Record<string, EncoderSpec> = {
  ...RESNETS,
  ...EFFICIENTNETS,
  ...MOBILENETS,
  ...CONVNEXTS,
};
