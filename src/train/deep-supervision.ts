/**
 * --deep-supervision: nnU-Net's auxiliary outputs. 1x1 heads on the decoder's lower-resolution
 * outputs (1/2, 1/4, ...) add their losses to the main output's, weighted 1/2^i for output i (0 =
 * full resolution), the lowest resolution weighted 0, normalised to sum 1; each output's target is
 * the mask resized to its size with nearest-exact (batchgeneratorsv2's DownsampleSegForDSTransform).
 *
 * The heads are training state only: they are not part of the UNet, so its state dict (predict,
 * export, best_model.pth's weights) is the plain model; checkpoints keep them beside it for --resume.
 */
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import { type UNet, type UNetArgs, decoderWidths, fullArgs } from '../model/index.js';
import { Conv2d, Module } from '../nn/index.js';

/** nnU-Net's loss weights for `n` outputs, full resolution first: 1/2^i, the last 0, normalised. */
export function deepSupervisionWeights(n: number): number[] {
  const w = Array.from({ length: n }, (_, i) => (i === n - 1 ? 0 : 1 / 2 ** i));
  const sum = w.reduce((a, b) => a + b, 0);
  return w.map((x) => x / sum);
}

/** Why --deep-supervision cannot apply to a UNet of `depth` stages (null: it can). */
export function deepSupervisionProblem(depth: number): string | null {
  return depth < 3 ? `--deep-supervision needs --depth 3 or more (at --depth ${depth} the only auxiliary output is the lowest resolution one, which nnU-Net weights 0)` : null;
}

/** Masks [N,H,W] (class indices, -100 ignored) at [h,w] by nearest-exact: source index floor((i + 0.5) * H/h). */
export function downsampleTarget(target: Tensor, h: number, w: number): Tensor {
  const [, H, W] = target.shape;
  if (H === h && W === w) return target;
  const index = (from: number, to: number) => {
    const idx = Array.from({ length: to }, (_, i) => Math.min(Math.floor(((i + 0.5) * from) / to), from - 1));
    return E.tensor(new BigInt64Array(idx.map(BigInt)), [to], { dtype: 'int64' }).to({ device: target.device });
  };
  return E.tidy(() => target.indexSelect(1, index(H, h)).indexSelect(2, index(W, w)));
}

/**
 * The auxiliary heads: aux{i} maps the decoder's output at 1/2^i to class logits, for i = 1 ..
 * depth - 2 (the lowest resolution, weight 0, needs none).
 */
export class AuxHeads extends Module {
  readonly heads: Conv2d[] = [];
  constructor(args: UNetArgs) {
    super();
    const { depth, nClasses } = fullArgs(args);
    const widths = decoderWidths(args);
    for (let i = 1; i <= depth - 2; i++) this.heads.push(this.child(`aux${i}`, new Conv2d(widths[i], nClasses, 1)));
  }

  /** The UNet's logits and the heads' (full resolution first, the lowest resolution left out). */
  outputs(model: UNet, x: Tensor): Tensor[] {
    const decoded = model.decode(x);
    return [model.outc.forward(decoded[0]), ...this.heads.map((h, i) => h.forward(decoded[i + 1]))];
  }

  /**
   * The deep-supervision loss of one batch: `criterion` (the run's segmentation loss, logits and
   * [N,H,W] targets) of each output against the mask at its size, weighted as nnU-Net.
   */
  loss(model: UNet, x: Tensor, target: Tensor, criterion: (logits: Tensor, target: Tensor) => Tensor): Tensor {
    return E.tidy(() => deepSupervisionLoss(this.outputs(model, x), target, fullArgs(model.args).depth, criterion));
  }
}

/** Σ w_i · criterion(outputs[i], target at outputs[i]'s size), the weights of a `depth`-stage decoder. */
export function deepSupervisionLoss(outputs: Tensor[], target: Tensor, depth: number, criterion: (logits: Tensor, target: Tensor) => Tensor): Tensor {
  const weights = deepSupervisionWeights(depth);
  return E.tidy(() => {
    let total: Tensor | null = null;
    outputs.forEach((o, i) => {
      const term = criterion(o, downsampleTarget(target, o.size(2), o.size(3))).mul(weights[i]);
      total = total ? total.add(term) : term;
    });
    return total as unknown as Tensor;
  });
}

/** The UNet and its heads as one module: the parameters the optimizer steps and data parallelism synchronises. */
export class WithAuxHeads extends Module {
  constructor(
    readonly model: UNet,
    readonly aux: AuxHeads,
  ) {
    super();
    this.child('model', model);
    this.child('aux', aux);
  }
  forward(x: Tensor): Tensor {
    return this.model.forward(x);
  }
}
