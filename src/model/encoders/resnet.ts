/**
 * ResNet encoders (torchvision's resnet.py names: conv1, bn1, layer1..4, blocks with downsample),
 * returning the features smp's ResNetEncoder returns: relu(bn1(conv1)) at /2, layer1..layer4 at /4../32.
 */
import * as E from '../../engine/index.js';
import type { Tensor } from '../../engine/index.js';
import { BatchNorm2d, Conv2d, MaxPool2d, Module, type OnnxSink, ReLU, Sequential } from '../../nn/index.js';
import type { Encoder, EncoderSpec } from './encoder.js';

interface Block extends Module {
  forward(x: Tensor): Tensor;
  onnx(g: OnnxSink, x: string, prefix: string): string;
}

const conv = (i: number, o: number, k: number, stride = 1) => new Conv2d(i, o, k, { stride, padding: (k - 1) >> 1, bias: false });

/** The shortcut of a block that changes stride or width: 1x1 conv + BN (torchvision's `downsample`). */
const shortcut = (i: number, o: number, stride: number): Sequential | null => (stride !== 1 || i !== o ? new Sequential(conv(i, o, 1, stride), new BatchNorm2d(o)) : null);

/** out = relu(residual(x) + shortcut(x)), in PyTorch's in-place order. */
function residualSum(g: OnnxSink, body: string, x: string, ds: Sequential | null, prefix: string): string {
  const identity = ds ? ds.onnx(g, x, `${prefix}downsample.`) : x;
  return g.node('Relu', `${prefix}out.relu`, [g.node('Add', `${prefix}add`, [body, identity])]);
}

/** Two 3x3 convolutions (resnet18/34). */
class BasicBlock extends Module implements Block {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly downsample: Sequential | null;
  static readonly expansion = 1;
  constructor(inPlanes: number, planes: number, stride: number) {
    super();
    this.conv1 = this.child('conv1', conv(inPlanes, planes, 3, stride));
    this.bn1 = this.child('bn1', new BatchNorm2d(planes));
    this.conv2 = this.child('conv2', conv(planes, planes, 3));
    this.bn2 = this.child('bn2', new BatchNorm2d(planes));
    const ds = shortcut(inPlanes, planes, stride);
    this.downsample = ds ? this.child('downsample', ds) : null;
  }
  forward(x: Tensor): Tensor {
    const out = this.bn2.forward(this.conv2.forward(this.bn1.forward(this.conv1.forward(x)).relu_()));
    return out.add_(this.downsample ? this.downsample.forward(x) : x).relu_();
  }
  onnx(g: OnnxSink, x: string, p: string): string {
    let y = g.node('Relu', `${p}relu1`, [this.bn1.onnx(g, this.conv1.onnx(g, x, `${p}conv1.`), `${p}bn1.`)]);
    y = this.bn2.onnx(g, this.conv2.onnx(g, y, `${p}conv2.`), `${p}bn2.`);
    return residualSum(g, y, x, this.downsample, p);
  }
}

/** 1x1 -> 3x3 (the stride) -> 1x1 x4 (resnet50, torchvision's v1.5). */
class Bottleneck extends Module implements Block {
  readonly convs: Conv2d[];
  readonly bns: BatchNorm2d[];
  readonly downsample: Sequential | null;
  static readonly expansion = 4;
  constructor(inPlanes: number, planes: number, stride: number) {
    super();
    const out = planes * Bottleneck.expansion;
    const specs: [number, number, number, number][] = [
      [inPlanes, planes, 1, 1],
      [planes, planes, 3, stride],
      [planes, out, 1, 1],
    ];
    this.convs = [];
    this.bns = [];
    specs.forEach(([i, o, k, s], j) => {
      this.convs.push(this.child(`conv${j + 1}`, conv(i, o, k, s)));
      this.bns.push(this.child(`bn${j + 1}`, new BatchNorm2d(o)));
    });
    const ds = shortcut(inPlanes, out, stride);
    this.downsample = ds ? this.child('downsample', ds) : null;
  }
  forward(x: Tensor): Tensor {
    let y = x;
    for (let j = 0; j < 3; j++) {
      y = this.bns[j].forward(this.convs[j].forward(y));
      if (j < 2) y = y.relu_();
    }
    return y.add_(this.downsample ? this.downsample.forward(x) : x).relu_();
  }
  onnx(g: OnnxSink, x: string, p: string): string {
    let y = x;
    for (let j = 0; j < 3; j++) {
      y = this.bns[j].onnx(g, this.convs[j].onnx(g, y, `${p}conv${j + 1}.`), `${p}bn${j + 1}.`);
      if (j < 2) y = g.node('Relu', `${p}relu${j + 1}`, [y]);
    }
    return residualSum(g, y, x, this.downsample, p);
  }
}

type BlockClass = (typeof BasicBlock | typeof Bottleneck) & (new (i: number, p: number, s: number) => Block);

class ResNetEncoder extends Module implements Encoder {
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly relu = new ReLU();
  readonly maxpool = new MaxPool2d(3, 2, 1);
  readonly layers: Sequential[] = [];
  readonly outChannels: number[];

  constructor(inChannels: number, depth: number, block: BlockClass, counts: number[]) {
    super();
    this.conv1 = this.child('conv1', new Conv2d(inChannels, 64, 7, { stride: 2, padding: 3, bias: false }));
    this.bn1 = this.child('bn1', new BatchNorm2d(64));
    this.outChannels = [64];
    let inPlanes = 64;
    for (let i = 0; i < depth - 1; i++) {
      const planes = 64 * 2 ** i;
      const blocks = counts[i];
      const layer = new Sequential(...Array.from({ length: blocks }, (_, b) => new block(b === 0 ? inPlanes : planes * block.expansion, planes, b === 0 && i > 0 ? 2 : 1)));
      this.layers.push(this.child(`layer${i + 1}`, layer));
      inPlanes = planes * block.expansion;
      this.outChannels.push(inPlanes);
    }
    initResNet(this);
  }

  features(x: Tensor): Tensor[] {
    const out = [this.bn1.forward(this.conv1.forward(x)).relu_()];
    this.layers.forEach((layer, i) => out.push(layer.forward(i === 0 ? this.maxpool.forward(out[0]) : out[out.length - 1])));
    return out;
  }

  onnxFeatures(g: OnnxSink, x: string, p: string): string[] {
    const out = [this.relu.onnx(g, this.bn1.onnx(g, this.conv1.onnx(g, x, `${p}conv1.`), `${p}bn1.`), p)];
    this.layers.forEach((layer, i) => out.push(layer.onnx(g, i === 0 ? this.maxpool.onnx(g, out[0], p) : out[out.length - 1], `${p}layer${i + 1}.`)));
    return out;
  }
}

/** torchvision's ResNet initialisation: kaiming_normal_(mode='fan_out', nonlinearity='relu') for convolutions, BN 1 and 0. */
function initResNet(m: Module): void {
  E.noGrad(() => {
    for (const c of m.modules()) {
      if (c instanceof Conv2d) c.weight.normal_(0, Math.sqrt(2 / (c.outChannels * c.kernelSize * c.kernelSize)));
    }
  });
}

/** Keys of the classifier and of the stages past `depth` (layer{depth}.. : layer k holds the feature at /2^(k+1)). */
const resnetUnused = (key: string, depth: number): boolean => key.startsWith('fc.') || [1, 2, 3, 4].some((k) => k >= depth && key.startsWith(`layer${k}.`));

const resnet = (block: BlockClass, counts: number[], torchvisionFile: string): EncoderSpec => ({
  family: 'resnet',
  build: (inChannels, depth) => new ResNetEncoder(inChannels, depth, block, counts),
  firstConv: 'conv1.weight',
  unused: resnetUnused,
  torchvisionFile,
});

export const RESNETS: Record<string, EncoderSpec> = {
  resnet18: resnet(BasicBlock as BlockClass, [2, 2, 2, 2], 'resnet18-f37072fd.pth'),
  resnet34: resnet(BasicBlock as BlockClass, [3, 4, 6, 3], 'resnet34-b627a593.pth'),
  resnet50: resnet(Bottleneck as BlockClass, [3, 4, 6, 3], 'resnet50-0676ba61.pth'),
};
