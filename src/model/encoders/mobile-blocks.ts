/**
 * The blocks EfficientNet and MobileNetV3 share, as torchvision.ops / torchvision.models build them
 * (same children, so the same state-dict keys): Conv2dNormActivation, SqueezeExcitation, the
 * inverted residual (MBConv), and the encoder that runs `features.0..k` and taps some of them.
 */
import * as E from '../../engine/index.js';
import type { Tensor } from '../../engine/index.js';
import { BatchNorm2d, Conv2d, type Hardsigmoid, type Layer, Module, type OnnxSink, Sequential, StochasticDepth } from '../../nn/index.js';
import type { Encoder } from './encoder.js';

/** BatchNorm settings of a family: torchvision's defaults (0.1, 1e-5) for EfficientNet-B0..B3, (0.01, 1e-3) for MobileNetV3. */
export interface NormCfg {
  momentum: number;
  eps: number;
}

/** torchvision's _make_divisible: the nearest multiple of `divisor`, at least `min`, never more than 10% below v. */
export function makeDivisible(v: number, divisor = 8, min = divisor): number {
  const rounded = Math.max(min, Math.floor((v + divisor / 2) / divisor) * divisor);
  return rounded < 0.9 * v ? rounded + divisor : rounded;
}

/** Conv2dNormActivation: conv (no bias, 'same' padding) -> BN -> activation (children 0, 1, 2; no 2 when `act` is null). */
export function convNormAct(inC: number, outC: number, kernel: number, norm: NormCfg, act: (() => Layer) | null, o: { stride?: number; groups?: number } = {}): Sequential {
  const conv = new Conv2d(inC, outC, kernel, { stride: o.stride ?? 1, padding: (kernel - 1) >> 1, groups: o.groups ?? 1, bias: false });
  const bn = new BatchNorm2d(outC, norm.momentum, norm.eps);
  return act ? new Sequential(conv, bn, act()) : new Sequential(conv, bn);
}

/** The logistic gate of EfficientNet's squeeze-excitation (torch.nn.Sigmoid). */
export class Sigmoid extends Module {
  forward(x: Tensor): Tensor {
    return x.sigmoid();
  }
  onnx(g: OnnxSink, x: string, prefix: string): string {
    return g.node('Sigmoid', `${prefix}sigmoid`, [x]);
  }
}

/** torchvision.ops.SqueezeExcitation: x * gate(fc2(act(fc1(mean over H, W of x)))); fc1, fc2 are 1x1 convs with bias. */
export class SqueezeExcitation extends Module {
  readonly fc1: Conv2d;
  readonly fc2: Conv2d;
  readonly activation: Layer & { onnx(g: OnnxSink, x: string, prefix: string): string };
  readonly scaleActivation: Sigmoid | Hardsigmoid;
  constructor(channels: number, squeeze: number, activation: SqueezeExcitation['activation'], gate: Sigmoid | Hardsigmoid) {
    super();
    this.fc1 = this.child('fc1', new Conv2d(channels, squeeze, 1));
    this.fc2 = this.child('fc2', new Conv2d(squeeze, channels, 1));
    this.activation = this.child('activation', activation);
    this.scaleActivation = this.child('scale_activation', gate);
  }
  forward(x: Tensor): Tensor {
    const scale = this.fc2.forward(this.activation.forward(this.fc1.forward(x.mean([2, 3], true))));
    return this.scaleActivation.forward(scale).mul(x);
  }
  onnx(g: OnnxSink, x: string, p: string): string {
    let s = this.fc1.onnx(g, g.node('GlobalAveragePool', `${p}avgpool`, [x]), `${p}fc1.`);
    s = this.fc2.onnx(g, this.activation.onnx(g, s, `${p}activation.`), `${p}fc2.`);
    return g.node('Mul', `${p}scale`, [this.scaleActivation.onnx(g, s, `${p}scale_activation.`), x]);
  }
}

/**
 * An inverted residual (EfficientNet's MBConv, MobileNetV3's InvertedResidual): `block` =
 * [1x1 expand], depthwise kxk (the stride), [squeeze-excitation], 1x1 project without activation;
 * plus the input when stride is 1 and the width is kept, after stochastic depth (EfficientNet only).
 */
export class InvertedResidual extends Module {
  readonly block: Sequential;
  readonly stochasticDepth: StochasticDepth | null;
  readonly useResidual: boolean;
  constructor(layers: Layer[], useResidual: boolean, stochasticDepthProb: number | null) {
    super();
    this.block = this.child('block', new Sequential(...layers));
    this.useResidual = useResidual;
    this.stochasticDepth = stochasticDepthProb === null ? null : this.child('stochastic_depth', new StochasticDepth(stochasticDepthProb));
  }
  forward(x: Tensor): Tensor {
    let y = this.block.forward(x);
    if (!this.useResidual) return y;
    if (this.stochasticDepth) y = this.stochasticDepth.forward(y);
    return y.add_(x);
  }
  onnx(g: OnnxSink, x: string, p: string): string {
    const y = this.block.onnx(g, x, `${p}block.`);
    return this.useResidual ? g.node('Add', `${p}add`, [y, x]) : y;
  }
}

/** torchvision's initialisation of both families: kaiming_normal_(mode='fan_out') for convs, biases 0 (BN already 1 and 0). */
export function initMobile(m: Module): void {
  E.noGrad(() => {
    for (const c of m.modules()) {
      if (!(c instanceof Conv2d)) continue;
      c.weight.normal_(0, Math.sqrt(2 / (c.outChannels * c.kernelSize * c.kernelSize)));
      c.bias?.zero_();
    }
  });
}

/**
 * The encoder both families are: torchvision's `features` Sequential cut after the last stage it
 * needs (so its keys stay `features.<i>.*`), returning the outputs of the stages in `taps`.
 */
export class TappedFeatures extends Module implements Encoder {
  readonly stages: Sequential;
  readonly outChannels: number[];
  constructor(
    stages: Layer[],
    readonly taps: number[],
    outChannels: number[],
  ) {
    super();
    this.stages = this.child('features', new Sequential(...stages));
    this.outChannels = outChannels;
    initMobile(this);
  }
  features(x: Tensor): Tensor[] {
    const out: Tensor[] = [];
    let y = x;
    this.stages.layers.forEach((stage, i) => {
      y = stage.forward(y);
      if (this.taps.includes(i)) out.push(y);
    });
    return out;
  }
  onnxFeatures(g: OnnxSink, x: string, prefix: string): string[] {
    const out: string[] = [];
    let y = x;
    this.stages.layers.forEach((stage, i) => {
      if (!stage.onnx) throw new Error(`${prefix}features.${i} has no ONNX form`);
      y = stage.onnx(g, y, `${prefix}features.${i}.`);
      if (this.taps.includes(i)) out.push(y);
    });
    return out;
  }
}

/** `unused` for a torchvision `features` + `classifier` model whose feature at /2^(d+1) is the output of features.<taps[d]>. */
export const featuresUnused =
  (taps: number[]) =>
  (key: string, depth: number): boolean => {
    if (key.startsWith('classifier.')) return true;
    return key.startsWith('features.') && Number(key.split('.')[1]) > taps[depth - 1];
  };
