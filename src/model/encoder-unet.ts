/**
 * The UNet over a pretrained-style encoder (train --encoder), as segmentation_models_pytorch builds
 * its `Unet`: the encoder's features at /2../2^depth, a decoder block per stage (nearest upsampling
 * to the skip's size, concatenation with it, two 3x3 conv-BN-ReLU), and a convolution to the class
 * logits. State-dict keys are smp's (encoder.*, decoder.blocks.{i}.conv{1,2}.{0,1}.*,
 * segmentation_head.0.*), so an smp Unet's weights load by key.
 */
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import { BatchNorm2d, Conv2d, Module, type OnnxSink, ReLU, Sequential } from '../nn/index.js';
import { ENCODERS, type Encoder, MAX_ENCODER_DEPTH } from './encoders/index.js';
import type { UNetArgs } from './unet.js';

/** smp's decoder widths; an encoder of depth d uses the first d. */
export const DEFAULT_DECODER_CHANNELS = [256, 128, 64, 32, 16];

export interface EncoderUNetArgs extends UNetArgs {
  encoder: string;
}

/** The args of an encoder UNet with every default filled in (depth 5, smp's widths, a 1x1 head). */
export function fullEncoderArgs(a: UNetArgs): Required<Pick<UNetArgs, 'encoderDepth' | 'decoderChannels' | 'headKernel'>> & EncoderUNetArgs {
  const encoderDepth = a.encoderDepth ?? MAX_ENCODER_DEPTH;
  return { ...a, encoder: a.encoder ?? 'plain', encoderDepth, decoderChannels: a.decoderChannels ?? DEFAULT_DECODER_CHANNELS.slice(0, encoderDepth), headKernel: a.headKernel ?? 1 };
}

/** smp's Conv2dReLU: Sequential(conv 3x3 without bias, BN, ReLU). */
const convBnRelu = (i: number, o: number) => new Sequential(new Conv2d(i, o, 3, { padding: 1, bias: false }), new BatchNorm2d(o), new ReLU());

/** smp's UnetDecoderBlock: upsample, [concat the skip], conv1, conv2. */
export class DecoderBlock extends Module {
  readonly conv1: Sequential;
  readonly conv2: Sequential;
  constructor(
    inChannels: number,
    readonly skipChannels: number,
    outChannels: number,
  ) {
    super();
    this.conv1 = this.child('conv1', convBnRelu(inChannels + skipChannels, outChannels));
    this.conv2 = this.child('conv2', convBnRelu(outChannels, outChannels));
  }
  /** `size`: the [H, W] to upsample to (the skip's where there is one). */
  forward(x: Tensor, size: [number, number], skip: Tensor | null): Tensor {
    let y = E.interpolate(x, size, 'nearest');
    if (skip) y = E.cat([y, skip], 1);
    return this.conv2.forward(this.conv1.forward(y));
  }
  /** Upsamples to `sizeOf`'s height and width floor-divided by `stride` (a missing skip: the size of smp's 0-channel dummy). */
  onnx(g: OnnxSink, x: string, sizeOf: string, stride: number, skip: string, p: string): string {
    const nc = g.node('Shape', `${p}up.nc`, [x], { start: 0, end: 2 });
    let hw = g.node('Shape', `${p}up.hw`, [sizeOf], { start: 2 });
    if (stride !== 1) hw = g.node('Div', `${p}up.hw_div`, [hw, g.int64(`${p}up.stride`, [stride])]);
    const sizes = g.node('Concat', `${p}up.sizes`, [nc, hw], { axis: 0 });
    let y = g.node('Resize', `${p}up`, [x, '', '', sizes], { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' });
    if (skip) y = g.node('Concat', `${p}cat`, [y, skip], { axis: 1 });
    return this.conv2.onnx(g, this.conv1.onnx(g, y, `${p}conv1.`), `${p}conv2.`);
  }
}

/** smp's UnetDecoder (its `center` is an identity, so it holds only `blocks`). */
export class UnetDecoder extends Module {
  readonly blocks: DecoderBlock[] = [];
  /** encoderChannels: the encoder's outChannels (/2 first); the deepest is the head, the others skips from deep to shallow, the last block has none. */
  constructor(encoderChannels: number[], decoderChannels: number[]) {
    super();
    const rev = [...encoderChannels].reverse();
    const skips = [...rev.slice(1), 0];
    // Children named 'blocks.0', ... give smp's ModuleList keys.
    decoderChannels.forEach((out, i) => {
      this.blocks.push(this.child(`blocks.${i}`, new DecoderBlock(i === 0 ? rev[0] : decoderChannels[i - 1], skips[i], out)));
    });
    initDecoder(this);
  }
}

/** smp's initialize_decoder: kaiming_uniform_(fan_in, relu) for convolutions, bias 0; BN 1 and 0 (their default). */
function initDecoder(m: Module): void {
  E.noGrad(() => {
    for (const c of m.modules()) {
      if (!(c instanceof Conv2d)) continue;
      const bound = Math.sqrt(6 / ((c.inChannels / (c.opts.groups ?? 1)) * c.kernelSize ** 2));
      c.weight.uniform_(-bound, bound);
      c.bias?.zero_();
    }
  });
}

/** smp's initialize_head: xavier_uniform_, bias 0. */
function initHead(c: Conv2d): void {
  const k2 = c.kernelSize ** 2;
  const bound = Math.sqrt(6 / (c.inChannels * k2 + c.outChannels * k2));
  E.noGrad(() => {
    c.weight.uniform_(-bound, bound);
    c.bias?.zero_();
  });
}

export class EncoderUNet extends Module {
  readonly args: ReturnType<typeof fullEncoderArgs>;
  readonly encoder: Encoder;
  readonly decoder: UnetDecoder;
  readonly segmentation_head: Sequential;

  constructor(args: UNetArgs) {
    super();
    this.args = fullEncoderArgs(args);
    const { encoder, encoderDepth, decoderChannels, headKernel, nChannels, nClasses, normalize } = this.args;
    const spec = ENCODERS[encoder];
    if (!spec) throw new RangeError(`unknown encoder ${encoder} (known: ${Object.keys(ENCODERS).join(', ')})`);
    const problem = encoderArgsProblem(this.args);
    if (problem) throw new RangeError(problem);
    if (normalize && (normalize.mean.length !== nChannels || normalize.std.length !== nChannels)) throw new RangeError(`normalize needs ${nChannels} means and stds`);
    this.encoder = this.child('encoder', spec.build(nChannels, encoderDepth));
    this.decoder = this.child('decoder', new UnetDecoder(this.encoder.outChannels, decoderChannels));
    const head = new Conv2d(decoderChannels[decoderChannels.length - 1], nClasses, headKernel, { padding: headKernel >> 1 });
    initHead(head);
    this.segmentation_head = this.child('segmentation_head', new Sequential(head));
  }

  /** x: [N, nChannels, H, W] float (0..1) -> logits [N, nClasses, H, W]. */
  forward(x: Tensor): Tensor {
    const input = this.normalizeInput(x);
    const feats = this.encoder.features(input);
    let y = feats[feats.length - 1] as Tensor;
    const blocks = this.decoder.blocks;
    blocks.forEach((b, i) => {
      const f = feats.length - 2 - i; // the skip's index: its stride is 2^(f+1); -1 for the last block
      const skip = f >= 0 ? feats[f] : null;
      const size: [number, number] = skip ? [skip.size(2), skip.size(3)] : [input.size(2) >> (f + 1), input.size(3) >> (f + 1)];
      y = b.forward(y, size, skip);
    });
    return this.segmentation_head.forward(y);
  }

  /** (x - mean) / std per channel, the weights' normalisation (none: x as it is). */
  private normalizeInput(x: Tensor): Tensor {
    const n = this.args.normalize;
    if (!n) return x;
    const shape = [1, n.mean.length, 1, 1];
    return E.tidy(() => x.sub(E.tensor(n.mean, shape).to({ device: x.device, dtype: x.dtype })).div(E.tensor(n.std, shape).to({ device: x.device, dtype: x.dtype })));
  }

  /** The whole forward as ONNX nodes on input `x`; returns the logits' value name. */
  onnx(g: OnnxSink, x: string): string {
    const n = this.args.normalize;
    let input = x;
    if (n) {
      const shape = g.int64('normalize.shape', [1, n.mean.length, 1, 1]);
      const mean = g.node('Reshape', 'normalize.mean', [g.float('normalize.mean_values', n.mean), shape]);
      const std = g.node('Reshape', 'normalize.std', [g.float('normalize.std_values', n.std), shape]);
      input = g.node('Div', 'normalize', [g.node('Sub', 'normalize.sub', [x, mean]), std]);
    }
    const feats = this.encoder.onnxFeatures(g, input, 'encoder.');
    let y = feats[feats.length - 1];
    const blocks = this.decoder.blocks;
    blocks.forEach((b, i) => {
      const f = feats.length - 2 - i;
      const skip = f >= 0 ? feats[f] : '';
      y = b.onnx(g, y, skip || input, skip ? 1 : 2 ** (f + 1), skip, `decoder.blocks.${i}.`);
    });
    return this.segmentation_head.onnx(g, y, 'segmentation_head.');
  }
}

/** Why the encoder args cannot build a model (null: they can): the options' and the checkpoint reader's rule. */
export function encoderArgsProblem(a: UNetArgs): string | null {
  const f = fullEncoderArgs(a);
  if (!ENCODERS[f.encoder]) return `encoder ${f.encoder} is not one of ${Object.keys(ENCODERS).join(', ')}`;
  if (!Number.isInteger(f.encoderDepth) || f.encoderDepth < 3 || f.encoderDepth > MAX_ENCODER_DEPTH) return `encoder depth ${f.encoderDepth} is not a whole number from 3 to ${MAX_ENCODER_DEPTH}`;
  if (f.decoderChannels.length !== f.encoderDepth) return `${f.decoderChannels.length} decoder channels for encoder depth ${f.encoderDepth} (one per stage)`;
  if (!f.decoderChannels.every((c) => Number.isInteger(c) && c >= 1 && c <= 4096)) return `decoder channels ${f.decoderChannels.join(',')} must be whole numbers from 1 to 4096`;
  if (![1, 3, 5, 7].includes(f.headKernel)) return `head kernel ${f.headKernel} is not 1, 3, 5 or 7`;
  return null;
}
