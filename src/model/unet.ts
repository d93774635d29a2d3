/** Full assembly of the U-Net (milesial/Pytorch-UNet unet_model.py), with its depth and width as parameters. */
import type { Tensor } from '../engine/index.js';
import { Module } from '../nn/index.js';
import { DoubleConv, Down, OutConv, Up } from './parts.js';

export interface UNetArgs {
  nChannels: number; // 1 grayscale, 3 RGB
  nClasses: number; // 1 = binary (sigmoid), >= 2 softmax over classes incl. background
  bilinear: boolean; // bilinear upsampling instead of transposed convolutions
  /** Down-sampling stages (train --depth); absent: the reference's 4. */
  depth?: number;
  /** Channels of the first stage, doubled per stage (train --base-channels); absent: the reference's 64. */
  baseChannels?: number;
  /** The encoder under an smp-style UNet (train --encoder, model/encoder-unet.ts); absent or 'plain': this reference UNet. */
  encoder?: string;
  /** Encoder stages, 3..5 (train --encoder-depth); absent: 5. */
  encoderDepth?: number;
  /** Decoder widths, one per encoder stage (train --decoder-channels); absent: 256,128,64,32,16. */
  decoderChannels?: number[];
  /** The segmentation head's kernel: 1 for ours, an imported smp model's 3. */
  headKernel?: number;
  /** Per input channel, applied first in the encoder UNet's forward (its weights' normalisation). */
  normalize?: { mean: number[]; std: number[] };
}

/** Whether the args describe an encoder UNet (model/encoder-unet.ts) rather than the reference's. */
export const hasEncoder = (a: UNetArgs): boolean => a.encoder !== undefined && a.encoder !== 'plain';

export type FullUNetArgs = UNetArgs & { depth: number; baseChannels: number };

export const REFERENCE_DEPTH = 4;
export const REFERENCE_BASE_CHANNELS = 64;

/** args with depth and base channels filled in (the reference's where absent). */
export const fullArgs = (a: UNetArgs): FullUNetArgs => ({ ...a, depth: a.depth ?? REFERENCE_DEPTH, baseChannels: a.baseChannels ?? REFERENCE_BASE_CHANNELS });

/**
 * The widest layer the options allow (train --depth / --base-channels): base x 2^depth at most
 * twice the reference's 1024. Widths double per stage without a cap (the reference's Up assumes
 * the skip has half the channels of the map below), so each stage past it would quadruple the
 * deepest convolutions' parameters (the reference has 31M, a 2048-wide bottleneck ~124M).
 */
export const MAX_WIDTH = 2048;

/** Channels at each level: base, 2 base, ..., base x 2^depth (the bottleneck). */
export const stageWidths = (depth: number, base: number): number[] => Array.from({ length: depth + 1 }, (_, i) => base * 2 ** i);

/**
 * Channels of the decoder's output at each level (0 = full resolution, depth - 1 = the lowest):
 * what up_{depth - level} returns, halved under --bilinear except at full resolution.
 */
export function decoderWidths(a: UNetArgs): number[] {
  const { depth, baseChannels, bilinear } = fullArgs(a);
  const w = stageWidths(depth, baseChannels);
  return Array.from({ length: depth }, (_, level) => (level === 0 ? w[0] : w[level] / (bilinear ? 2 : 1)));
}

export { minSideFor } from './limits.js';

export class UNet extends Module {
  readonly args: FullUNetArgs;
  readonly inc: DoubleConv;
  /** down1..down{depth} */
  readonly downs: Down[] = [];
  /** up1 (lowest resolution)..up{depth} (full resolution) */
  readonly ups: Up[] = [];
  readonly outc: OutConv;

  /**
   * widthDivisor narrows every layer (the base channels divided by it); 1 is the reference
   * architecture. Only long-running tests use another value, so it is not part of UNetArgs:
   * `args` records the narrowed base, so a UNet rebuilt from them needs no divisor.
   */
  constructor(args: UNetArgs, widthDivisor = 1) {
    super();
    const full = fullArgs(args);
    this.args = { ...full, baseChannels: full.baseChannels / widthDivisor };
    const { nChannels, nClasses, bilinear, depth, baseChannels } = this.args;
    if (!Number.isInteger(depth) || depth < 1 || !Number.isInteger(baseChannels) || baseChannels < 1) {
      throw new RangeError(`UNet depth ${depth} and base channels ${baseChannels} must be positive integers`);
    }
    const factor = bilinear ? 2 : 1;
    const w = stageWidths(depth, baseChannels);
    // Registered in the reference's order (inc, down1.., up1.., outc): the same state_dict order and initialisation.
    this.inc = this.child('inc', new DoubleConv(nChannels, w[0]));
    for (let i = 1; i <= depth; i++) this.downs.push(this.child(`down${i}`, new Down(w[i - 1], i === depth ? w[i] / factor : w[i])));
    for (let j = 1; j <= depth; j++) {
      const level = depth - j; // the resolution this stage returns to (0 = full)
      this.ups.push(this.child(`up${j}`, new Up(w[level + 1], level === 0 ? w[0] : w[level] / factor, bilinear)));
    }
    this.outc = this.child('outc', new OutConv(w[0], nClasses));
  }

  /**
   * The decoder's outputs, full resolution first: [up{depth}, ..., up1], each half the size of the
   * one before. Deep supervision (train/deep-supervision.ts) puts its heads on the lower ones.
   */
  decode(x: Tensor): Tensor[] {
    const skips = [this.inc.forward(x)];
    for (const d of this.downs) skips.push(d.forward(skips[skips.length - 1]));
    let y = skips.pop() as Tensor;
    const outs: Tensor[] = [];
    for (const u of this.ups) {
      y = u.forward(y, skips.pop() as Tensor);
      outs.unshift(y);
    }
    return outs;
  }

  /** x: [N, nChannels, H, W] float -> logits [N, nClasses, H, W] (no activation). */
  forward(x: Tensor): Tensor {
    return this.outc.forward(this.decode(x)[0]);
  }
}
