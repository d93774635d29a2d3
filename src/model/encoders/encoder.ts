/**
 * What every encoder under the UNet (train --encoder) provides. The encoder's own state-dict keys
 * are those of the torchvision classification model it comes from (its head and unused stages
 * left out), so a torchvision file loads into it by key, and an smp Unet's `encoder.*` keys too.
 */
import type { Tensor } from '../../engine/index.js';
import type { Module, OnnxSink } from '../../nn/index.js';

/** The strides of the features an encoder of depth 5 returns: 2, 4, 8, 16, 32. */
export const MAX_ENCODER_DEPTH = 5;

export interface Encoder extends Module {
  /**
   * Channels of the features at strides 2, 4, ..., 2^depth (length = depth); 0 where the family has
   * no feature at that stride (ConvNeXt starts at /4), and the decoder then has no skip there: it
   * upsamples to floor(H/2^(i+1)) x floor(W/2^(i+1)), the size of smp's 0-channel dummy feature.
   */
  readonly outChannels: number[];
  /** x [N,C,H,W] -> [features at /2, /4, ...]: [N, outChannels[i], ceil(H/2^(i+1)), ceil(W/2^(i+1))], null where outChannels[i] is 0. */
  features(x: Tensor): (Tensor | null)[];
  /** The same as ONNX nodes: the names of the feature values ('' where null). `prefix`: the encoder's state-dict prefix. */
  onnxFeatures(g: OnnxSink, x: string, prefix: string): string[];
}

/** ImageNet's normalisation, which every torchvision encoder's weights expect (RGB, on [0, 1] input). */
export const IMAGENET_MEAN = [0.485, 0.456, 0.406];
export const IMAGENET_STD = [0.229, 0.224, 0.225];

export type EncoderFamily = 'resnet' | 'efficientnet' | 'convnext' | 'mobilenet';

export interface EncoderSpec {
  family: EncoderFamily;
  /** An encoder for `inChannels` input channels returning `depth` features (1..MAX_ENCODER_DEPTH). */
  build(inChannels: number, depth: number): Encoder;
  /** The encoder key of the first convolution's weight: adapted by smp's rule for input channels other than 3. */
  firstConv: string;
  /**
   * Keys of the torchvision classification model that an encoder of this depth does not hold
   * (classifier, stages past `depth`): dropped when loading weights, every other difference is an error.
   */
  unused(key: string, depth: number): boolean;
  /** The file name torchvision's hub gives the ImageNet weights (looked up in the torch hub cache, never downloaded). */
  torchvisionFile: string;
}
