/**
 * The channels-last layers of ConvNeXt (torchvision's names and PyTorch's default initialisation):
 * Linear and LayerNorm over the last dim, Permute, and LayerNorm2d, which normalises each pixel
 * over its channels. Each writes itself as ONNX (opset 17).
 */
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import { Module } from './module.js';
import type { OnnxSink } from './onnx-sink.js';

/** y = x W^T + b over the last dim of x. weight [out, in], bias [out]; PyTorch's U(-1/sqrt(in), 1/sqrt(in)) for both. */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    bias = true,
  ) {
    super();
    const bound = 1 / Math.sqrt(inFeatures);
    this.weight = this.param('weight', E.empty([outFeatures, inFeatures]).uniform_(-bound, bound));
    this.bias = bias ? this.param('bias', E.empty([outFeatures]).uniform_(-bound, bound)) : null;
  }
  forward(x: Tensor): Tensor {
    return E.tidy(() => {
      const y = x.matmul(this.weight.transpose(0, 1));
      return this.bias ? y.add_(this.bias) : y;
    });
  }
  /** MatMul by the transposed weight (constant-folded by runtimes), then Add: any input rank, as torch's linear. */
  onnx(g: OnnxSink, x: string, prefix: string): string {
    const wt = g.node('Transpose', `${prefix}weight_t`, [g.w(`${prefix}weight`)], { perm: [1, 0] });
    const y = g.node('MatMul', `${prefix}matmul`, [x, wt]);
    return this.bias ? g.node('Add', prefix.slice(0, -1), [y, g.w(`${prefix}bias`)]) : y;
  }
}

/** Layer normalisation over the last dim (torch.nn.LayerNorm(dim, eps)): weight 1, bias 0. */
export class LayerNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  constructor(
    readonly dim: number,
    readonly eps = 1e-5,
  ) {
    super();
    this.weight = this.param('weight', E.ones([dim]));
    this.bias = this.param('bias', E.zeros([dim]));
  }
  /**
   * Under CPU bf16 autocast x arrives in bf16, and libtorch 1.13's CPU layer_norm wants x and the
   * fp32 weight alike (PyTorch 1.13's own LayerNorm fails there): it runs in fp32, as CUDA
   * autocast's fp32 policy for layer_norm does.
   */
  forward(x: Tensor): Tensor {
    if (x.dtype === this.weight.dtype) return E.layerNorm(x, [this.dim], this.weight, this.bias, this.eps);
    return E.tidy(() => E.layerNorm(x.float(), [this.dim], this.weight, this.bias, this.eps));
  }
  /** LayerNormalization(axis=-1) normalises over the last dim only, as torch's normalized_shape [dim]. */
  onnx(g: OnnxSink, x: string, prefix: string): string {
    return g.node('LayerNormalization', prefix.slice(0, -1), [x, g.w(`${prefix}weight`), g.w(`${prefix}bias`)], { axis: -1, epsilon: this.eps });
  }
}

/** torch's x.permute(dims) as a layer (torchvision.ops.Permute): no parameters, a view. */
export class Permute extends Module {
  constructor(readonly dims: number[]) {
    super();
  }
  forward(x: Tensor): Tensor {
    return x.permute(this.dims);
  }
  onnx(g: OnnxSink, x: string, prefix: string): string {
    return g.node('Transpose', `${prefix}permute`, [x], { perm: this.dims });
  }
}

const TO_CHANNELS_LAST = [0, 2, 3, 1];
const TO_CHANNELS_FIRST = [0, 3, 1, 2];

/**
 * torchvision's LayerNorm2d: [N,C,H,W] normalised per pixel over C (permute to channels-last,
 * layer norm, permute back), so its keys and eps are a LayerNorm's. ONNX's LayerNormalization
 * over axis 1 would normalise over C, H and W together, hence the two Transposes there too.
 */
export class LayerNorm2d extends LayerNorm {
  override forward(x: Tensor): Tensor {
    return E.tidy(() => super.forward(x.permute(TO_CHANNELS_LAST)).permute(TO_CHANNELS_FIRST));
  }
  override onnx(g: OnnxSink, x: string, prefix: string): string {
    const last = g.node('Transpose', `${prefix}to_channels_last`, [x], { perm: TO_CHANNELS_LAST });
    return g.node('Transpose', `${prefix}to_channels_first`, [super.onnx(g, last, prefix)], { perm: TO_CHANNELS_FIRST });
  }
}
