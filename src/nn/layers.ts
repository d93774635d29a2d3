/** Layers with PyTorch's parameter names, shapes and default initialisation. */
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import { Module } from './module.js';
import type { OnnxSink } from './onnx-sink.js';

/** U(-bound, bound), PyTorch's kaiming_uniform_(a=sqrt(5)) for conv weights reduces to bound = 1/sqrt(fan_in). */
const uniform = (shape: number[], bound: number): Tensor => E.empty(shape).uniform_(-bound, bound);

/** 2-D convolution. weight [out, in/groups, k, k], bias [out]. */
export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    readonly opts: { stride?: number; padding?: number; groups?: number; bias?: boolean } = {},
  ) {
    super();
    const groups = opts.groups ?? 1;
    const fanIn = (inChannels / groups) * kernelSize * kernelSize;
    const bound = 1 / Math.sqrt(fanIn);
    this.weight = this.param('weight', uniform([outChannels, inChannels / groups, kernelSize, kernelSize], bound));
    this.bias = opts.bias === false ? null : this.param('bias', uniform([outChannels], bound));
  }
  forward(x: Tensor): Tensor {
    return E.conv2d(x, this.weight, this.bias, { stride: this.opts.stride ?? 1, padding: this.opts.padding ?? 0, groups: this.opts.groups ?? 1 });
  }
  onnx(g: OnnxSink, x: string, prefix: string): string {
    const k = this.kernelSize;
    const s = this.opts.stride ?? 1;
    const p = this.opts.padding ?? 0;
    const inputs = [x, g.w(`${prefix}weight`), ...(this.bias ? [g.w(`${prefix}bias`)] : [])];
    return g.node('Conv', prefix.slice(0, -1), inputs, { kernel_shape: [k, k], strides: [s, s], pads: [p, p, p, p], group: this.opts.groups ?? 1 });
  }
}

/** Transposed convolution. weight [in, out, k, k]; PyTorch's fan_in for it is out*k*k. */
export class ConvTranspose2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: number,
    readonly stride: number,
  ) {
    super();
    const bound = 1 / Math.sqrt(outChannels * kernelSize * kernelSize);
    this.weight = this.param('weight', uniform([inChannels, outChannels, kernelSize, kernelSize], bound));
    this.bias = this.param('bias', uniform([outChannels], bound));
  }
  forward(x: Tensor): Tensor {
    return E.convTranspose2d(x, this.weight, this.bias, { stride: this.stride });
  }
}

/** Batch normalisation over [N,C,H,W] with running statistics (momentum 0.1, eps 1e-5). */
export class BatchNorm2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  /** null: a cumulative average over the batches since num_batches_tracked was 0 (PyTorch's momentum=None; precise BN uses it). */
  momentum: number | null;
  constructor(
    readonly numFeatures: number,
    momentum: number | null = 0.1,
    readonly eps = 1e-5,
  ) {
    super();
    this.momentum = momentum;
    this.weight = this.param('weight', E.ones([numFeatures]));
    this.bias = this.param('bias', E.zeros([numFeatures]));
    this.buffer('running_mean', E.zeros([numFeatures]));
    this.buffer('running_var', E.ones([numFeatures]));
    this.buffer('num_batches_tracked', E.zeros([], { dtype: 'int64' }));
  }
  /** Statistics over all ranks of a data-parallel run when training (--sync-bn). */
  syncStats = false;
  forward(x: Tensor): Tensor {
    let momentum = this.momentum ?? 0;
    if (this.training) {
      const tracked = this.buf('num_batches_tracked');
      E.noGrad(() => tracked.add_(1));
      if (this.momentum === null) momentum = 1 / tracked.item();
    }
    if (this.training && this.syncStats) return E.syncBatchNorm(x, this.weight, this.bias, this.buf('running_mean'), this.buf('running_var'), momentum, this.eps);
    return E.batchNorm(x, this.buf('running_mean'), this.buf('running_var'), this.weight, this.bias, this.training, momentum, this.eps);
  }
  onnx(g: OnnxSink, x: string, prefix: string): string {
    const inputs = ['weight', 'bias', 'running_mean', 'running_var'].map((k) => g.w(prefix + k));
    return g.node('BatchNormalization', prefix.slice(0, -1), [x, ...inputs], { epsilon: this.eps });
  }
}

/** In-place ReLU, as the reference's ReLU(inplace=True): its input is always a fresh BN output. */
export class ReLU extends Module {
  forward(x: Tensor): Tensor {
    return x.relu_();
  }
  onnx(g: OnnxSink, x: string, prefix: string): string {
    return g.node('Relu', `${prefix}relu`, [x]);
  }
}

/** Max pooling; stride defaults to the kernel size (PyTorch's MaxPool2d). */
export class MaxPool2d extends Module {
  constructor(
    readonly kernelSize: number,
    readonly stride = kernelSize,
    readonly padding = 0,
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return E.maxPool2d(x, this.kernelSize, this.stride, this.padding);
  }
  onnx(g: OnnxSink, x: string, prefix: string): string {
    const [k, s, p] = [this.kernelSize, this.stride, this.padding];
    return g.node('MaxPool', `${prefix}maxpool`, [x], { kernel_shape: [k, k], strides: [s, s], pads: [p, p, p, p] });
  }
}

/** Upsample by an integer factor with bilinear interpolation. */
export class Upsample extends Module {
  constructor(
    readonly scaleFactor: number,
    readonly alignCorners = true,
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    const [, , h, w] = x.shape;
    return E.interpolate(x, [h * this.scaleFactor, w * this.scaleFactor], 'bilinear', this.alignCorners);
  }
}

/** A layer with a single-input forward, as stored in Sequential; `onnx` where it can be exported. */
export interface Layer extends Module {
  forward(x: Tensor): Tensor;
  onnx?(g: OnnxSink, x: string, prefix: string): string;
}

/** Children named "0", "1", ... as torch.nn.Sequential. */
export class Sequential extends Module {
  readonly layers: Layer[];
  constructor(...layers: Layer[]) {
    super();
    this.layers = layers.map((l, i) => this.child(String(i), l));
  }
  forward(x: Tensor): Tensor {
    let y = x;
    for (const l of this.layers) y = l.forward(y);
    return y;
  }
  onnx(g: OnnxSink, x: string, prefix: string): string {
    let y = x;
    this.layers.forEach((l, i) => {
      if (!l.onnx) throw new Error(`${prefix}${i} (${l.constructor.name}) has no ONNX form`);
      y = l.onnx(g, y, `${prefix}${i}.`);
    });
    return y;
  }
}
