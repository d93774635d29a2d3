/**
 * ConvNeXt encoders (torchvision's convnext.py names: features.0 = the 4x4/4 stem conv + LayerNorm2d,
 * features.1/3/5/7 = the stages of CNBlocks, features.2/4/6 = LayerNorm2d + 2x2/2 conv downsampling;
 * classifier unused). ConvNeXt has no feature at /2: the stages give /4, /8, /16, /32.
 */
import { EXIT, UserError } from '../../config/errors.js';
import * as E from '../../engine/index.js';
import type { Tensor } from '../../engine/index.js';
import { Conv2d, GELU, LayerNorm, LayerNorm2d, Linear, Module, type OnnxSink, Permute, Sequential, StochasticDepth } from '../../nn/index.js';
import type { Encoder, EncoderSpec } from './encoder.js';

/** torchvision's LayerNorm eps in ConvNeXt (both the blocks' LayerNorm and LayerNorm2d). */
const EPS = 1e-6;
/** torchvision's initial layer_scale. */
const LAYER_SCALE = 1e-6;

/**
 * A ConvNeXt block: x + layer_scale * block(x), block = 7x7 depthwise conv, channels-last LayerNorm,
 * Linear 4x, GELU, Linear back; the branch dropped per sample with probability `sdProb` while training.
 */
class CNBlock extends Module {
  readonly block: Sequential;
  readonly layerScale: Tensor;
  readonly stochasticDepth: StochasticDepth;
  constructor(dim: number, sdProb: number) {
    super();
    this.block = this.child(
      'block',
      new Sequential(new Conv2d(dim, dim, 7, { padding: 3, groups: dim }), new Permute([0, 2, 3, 1]), new LayerNorm(dim, EPS), new Linear(dim, 4 * dim), new GELU(), new Linear(4 * dim, dim), new Permute([0, 3, 1, 2])),
    );
    this.layerScale = this.param('layer_scale', E.full([dim, 1, 1], LAYER_SCALE));
    this.stochasticDepth = this.child('stochastic_depth', new StochasticDepth(sdProb));
  }
  forward(x: Tensor): Tensor {
    return E.tidy(() => this.stochasticDepth.forward(this.block.forward(x).mul(this.layerScale)).add_(x));
  }
  /** StochasticDepth is the identity at inference, so it writes nothing. */
  onnx(g: OnnxSink, x: string, p: string): string {
    const scaled = g.node('Mul', `${p}layer_scale.mul`, [this.block.onnx(g, x, `${p}block.`), g.w(`${p}layer_scale`)]);
    return g.node('Add', `${p}add`, [scaled, x]);
  }
}

interface StageSetting {
  channels: number;
  blocks: number;
}

/** convnext_tiny's block setting (each stage's width and number of blocks; each stage after the first doubles the width). */
const TINY: StageSetting[] = [
  { channels: 96, blocks: 3 },
  { channels: 192, blocks: 3 },
  { channels: 384, blocks: 9 },
  { channels: 768, blocks: 3 },
];

/** features.{index} that ends the stage of the feature at /2^(i+1) (i >= 1): 1, 3, 5, 7. */
const stageIndex = (i: number): number => 2 * i - 1;

class ConvNeXtEncoder extends Module implements Encoder {
  /** torchvision's `features` (a name taken here by the Encoder method). */
  readonly stages: Sequential;
  readonly outChannels: number[];

  /** `sdProb`: the stochastic depth probability of the last block (torchvision's stochastic_depth_prob; 0.1 for tiny). */
  constructor(inChannels: number, depth: number, setting: StageSetting[], sdProb: number) {
    super();
    if (!Number.isInteger(depth) || depth < 2 || depth > setting.length + 1) {
      throw new UserError(`--encoder-depth ${depth}: a ConvNeXt encoder has features at /4../32 only; use 2..${setting.length + 1}`, EXIT.usage);
    }
    const total = setting.reduce((s, c) => s + c.blocks, 0);
    const layers: Sequential[] = [new Sequential(new Conv2d(inChannels, setting[0].channels, 4, { stride: 4 }), new LayerNorm2d(setting[0].channels, EPS))];
    let blockId = 0;
    setting.slice(0, depth - 1).forEach(({ channels, blocks }, s) => {
      if (s > 0) layers.push(new Sequential(new LayerNorm2d(setting[s - 1].channels, EPS), new Conv2d(setting[s - 1].channels, channels, 2, { stride: 2 })));
      // the drop probability grows linearly with the block's index over the whole network, unused stages included
      const stage = Array.from({ length: blocks }, () => new CNBlock(channels, (sdProb * blockId++) / (total - 1)));
      layers.push(new Sequential(...stage));
    });
    this.stages = this.child('features', new Sequential(...layers));
    this.outChannels = [0, ...setting.slice(0, depth - 1).map((c) => c.channels)];
    initConvNeXt(this);
  }

  /** The stem and the downsampling convolutions have no padding: sizes are floor(H/2^(i+1)), the contract's ceil when H and W are multiples of 32. */
  features(x: Tensor): (Tensor | null)[] {
    const out: (Tensor | null)[] = [null];
    let y = x;
    this.stages.layers.forEach((layer, j) => {
      y = layer.forward(y);
      if (j % 2 === 1) out.push(y);
    });
    return out;
  }

  onnxFeatures(g: OnnxSink, x: string, p: string): string[] {
    const out = [''];
    let y = x;
    (this.stages.layers as Sequential[]).forEach((layer, j) => {
      y = layer.onnx(g, y, `${p}features.${j}.`);
      if (j % 2 === 1) out.push(y);
    });
    return out;
  }
}

/**
 * torchvision's ConvNeXt initialisation: trunc_normal_(std=0.02) for every conv and linear weight,
 * zero biases. Its truncation is at +-2 absolute (100 standard deviations), so the clamp below
 * stands in for its resampling and never changes a value in practice.
 */
function initConvNeXt(m: Module): void {
  E.noGrad(() => {
    for (const c of m.modules()) {
      if (!(c instanceof Conv2d || c instanceof Linear)) continue;
      c.weight.normal_(0, 0.02).clamp_(-2, 2);
      c.bias?.zero_();
    }
  });
}

/** The classifier's keys and those of the stages past `depth` (features.{2 depth - 2}.. : features.{2i-1} holds /2^(i+1)). */
function convnextUnused(key: string, depth: number): boolean {
  if (key.startsWith('classifier.')) return true;
  const m = /^features\.(\d+)\./.exec(key);
  return m !== null && Number(m[1]) > stageIndex(depth - 1);
}

export const CONVNEXTS: Record<string, EncoderSpec> = {
  convnext_tiny: {
    family: 'convnext',
    build: (inChannels, depth) => new ConvNeXtEncoder(inChannels, depth, TINY, 0.1),
    firstConv: 'features.0.0.weight',
    unused: convnextUnused,
    torchvisionFile: 'convnext_tiny-983f1562.pth',
  },
};
