/**
 * The MobileNetV3-Large encoder (torchvision's mobilenetv3.py: `features.0` the stem, `features.1..15`
 * inverted residuals, `features.16` the 960-channel 1x1 conv), returning the features smp takes from
 * it: the outputs of features.1, .3, .6, .12 and .16 at /2../32. The classifier is not part of it.
 */
import { Hardsigmoid, Hardswish, type Layer, ReLU } from '../../nn/index.js';
import type { EncoderSpec } from './encoder.js';
import { InvertedResidual, type NormCfg, SqueezeExcitation, TappedFeatures, convNormAct, featuresUnused, makeDivisible } from './mobile-blocks.js';

/** Table 1 of the MobileNetV3 paper (large), as torchvision lists it: in, kernel, expanded, out, squeeze-excitation, hard swish, stride. */
const BLOCKS: [number, number, number, number, boolean, boolean, number][] = [
  [16, 3, 16, 16, false, false, 1],
  [16, 3, 64, 24, false, false, 2],
  [24, 3, 72, 24, false, false, 1],
  [24, 5, 72, 40, true, false, 2],
  [40, 5, 120, 40, true, false, 1],
  [40, 5, 120, 40, true, false, 1],
  [40, 3, 240, 80, false, true, 2],
  [80, 3, 200, 80, false, true, 1],
  [80, 3, 184, 80, false, true, 1],
  [80, 3, 184, 80, false, true, 1],
  [80, 3, 480, 112, true, true, 1],
  [112, 3, 672, 112, true, true, 1],
  [112, 5, 672, 160, true, true, 2],
  [160, 5, 960, 160, true, true, 1],
  [160, 5, 960, 160, true, true, 1],
];
const LAST_CONV = 960;
/** features.<i> whose outputs are the features at /2, /4, /8, /16, /32. */
const TAPS = [1, 3, 6, 12, 16];
/** torchvision's norm_layer for MobileNetV3: BatchNorm2d(eps=0.001, momentum=0.01). */
const NORM: NormCfg = { momentum: 0.01, eps: 1e-3 };

/** One block: [1x1 expand], depthwise, [squeeze-excitation (expanded/4 rounded to 8, ReLU, hard sigmoid)], 1x1 project. */
function invertedResidual([inC, kernel, expanded, outC, se, hs, stride]: (typeof BLOCKS)[number]): InvertedResidual {
  const act = hs ? () => new Hardswish() : () => new ReLU();
  const layers: Layer[] = expanded === inC ? [] : [convNormAct(inC, expanded, 1, NORM, act)];
  layers.push(convNormAct(expanded, expanded, kernel, NORM, act, { stride, groups: expanded }));
  if (se) layers.push(new SqueezeExcitation(expanded, makeDivisible(Math.floor(expanded / 4)), new ReLU(), new Hardsigmoid()));
  layers.push(convNormAct(expanded, outC, 1, NORM, null));
  return new InvertedResidual(layers, stride === 1 && inC === outC, null);
}

function mobileNetV3Large(inChannels: number, depth: number): TappedFeatures {
  const hardswish = () => new Hardswish();
  const layers: Layer[] = [convNormAct(inChannels, BLOCKS[0][0], 3, NORM, hardswish, { stride: 2 }), ...BLOCKS.map(invertedResidual)];
  layers.push(convNormAct(BLOCKS[BLOCKS.length - 1][3], LAST_CONV, 1, NORM, hardswish));
  const channels = [BLOCKS[0][0], ...BLOCKS.map((b) => b[3]), LAST_CONV];
  const taps = TAPS.slice(0, depth);
  return new TappedFeatures(
    layers.slice(0, taps[depth - 1] + 1),
    taps,
    taps.map((t) => channels[t]),
  );
}

export const MOBILENETS: Record<string, EncoderSpec> = {
  mobilenet_v3_large: {
    family: 'mobilenet',
    build: mobileNetV3Large,
    firstConv: 'features.0.0.weight',
    unused: featuresUnused(TAPS),
    /** IMAGENET1K_V1 (torchvision's IMAGENET1K_V2 file is mobilenet_v3_large-5c1a4163.pth). */
    torchvisionFile: 'mobilenet_v3_large-8738ca79.pth',
  },
};
