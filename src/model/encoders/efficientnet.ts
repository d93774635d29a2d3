/**
 * EfficientNet-B0..B3 encoders (torchvision's efficientnet.py: `features.0` the stem, `features.1..7`
 * the MBConv stages, keys `features.<stage>.<block>.block.<i>.*`), returning the features smp
 * takes from it: the stem at /2, then the outputs of features.2, .3, .5 and .7 at /4../32.
 * features.8 (the 1x1 head conv) and the classifier are not part of the encoder.
 */
import { type Layer, Sequential, SiLU } from '../../nn/index.js';
import type { EncoderSpec } from './encoder.js';
import { InvertedResidual, type NormCfg, Sigmoid, SqueezeExcitation, TappedFeatures, convNormAct, featuresUnused, makeDivisible } from './mobile-blocks.js';

/** Table 1 of the EfficientNet paper, as torchvision lists it: expand ratio, kernel, stride, in, out, blocks. */
const STAGES: [number, number, number, number, number, number][] = [
  [1, 3, 1, 32, 16, 1],
  [6, 3, 2, 16, 24, 2],
  [6, 5, 2, 24, 40, 2],
  [6, 3, 2, 40, 80, 3],
  [6, 5, 1, 80, 112, 3],
  [6, 5, 2, 112, 192, 4],
  [6, 3, 1, 192, 320, 1],
];
/** features.<i> whose outputs are the features at /2, /4, /8, /16, /32. */
const TAPS = [0, 2, 3, 5, 7];
/** torchvision's default BatchNorm2d for B0..B3 (B4 and up use other settings). */
const NORM: NormCfg = { momentum: 0.1, eps: 1e-5 };
/** The stochastic-depth probability of the last block; block j of n gets STOCHASTIC_DEPTH * j / n. */
const STOCHASTIC_DEPTH = 0.2;

const silu = () => new SiLU();

/** One MBConv: [1x1 expand], depthwise, squeeze-excitation (in/4 channels, SiLU, sigmoid), 1x1 project. */
function mbconv(expandRatio: number, kernel: number, stride: number, inC: number, outC: number, sdProb: number): InvertedResidual {
  const expanded = makeDivisible(inC * expandRatio);
  const layers: Layer[] = expanded === inC ? [] : [convNormAct(inC, expanded, 1, NORM, silu)];
  layers.push(convNormAct(expanded, expanded, kernel, NORM, silu, { stride, groups: expanded }), new SqueezeExcitation(expanded, Math.max(1, Math.floor(inC / 4)), new SiLU(), new Sigmoid()), convNormAct(expanded, outC, 1, NORM, null));
  return new InvertedResidual(layers, stride === 1 && inC === outC, sdProb);
}

function efficientNet(inChannels: number, depth: number, widthMult: number, depthMult: number): TappedFeatures {
  const stages = STAGES.map(([e, k, s, i, o, n]) => ({ e, k, s, i: makeDivisible(i * widthMult), o: makeDivisible(o * widthMult), n: Math.ceil(n * depthMult) }));
  const total = stages.reduce((sum, st) => sum + st.n, 0);
  const layers: Layer[] = [convNormAct(inChannels, stages[0].i, 3, NORM, silu, { stride: 2 })];
  const channels = [stages[0].i];
  let blockId = 0;
  for (const st of stages.slice(0, TAPS[depth - 1])) {
    const blocks = Array.from({ length: st.n }, (_, b) => mbconv(st.e, st.k, b === 0 ? st.s : 1, b === 0 ? st.i : st.o, st.o, (STOCHASTIC_DEPTH * blockId++) / total));
    layers.push(new Sequential(...blocks));
    channels.push(st.o);
  }
  return new TappedFeatures(
    layers,
    TAPS.slice(0, depth),
    TAPS.slice(0, depth).map((t) => channels[t]),
  );
}

const spec = (widthMult: number, depthMult: number, torchvisionFile: string): EncoderSpec => ({
  family: 'efficientnet',
  build: (inChannels, depth) => efficientNet(inChannels, depth, widthMult, depthMult),
  firstConv: 'features.0.0.weight',
  unused: featuresUnused(TAPS),
  torchvisionFile,
});

/** Width and depth multipliers of torchvision's efficientnet_b0..b3; the files of their IMAGENET1K_V1 weights. */
export const EFFICIENTNETS: Record<string, EncoderSpec> = {
  efficientnet_b0: spec(1.0, 1.0, 'efficientnet_b0_rwightman-3dd342df.pth'),
  efficientnet_b1: spec(1.0, 1.1, 'efficientnet_b1_rwightman-533bc792.pth'),
  efficientnet_b2: spec(1.1, 1.2, 'efficientnet_b2_rwightman-bcdf34b7.pth'),
  efficientnet_b3: spec(1.2, 1.4, 'efficientnet_b3_rwightman-cf984f9c.pth'),
};
