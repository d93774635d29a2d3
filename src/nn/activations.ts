/** The activations of the pretrained encoders (torchvision's names), each with its ONNX form (opset 17). */
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import { Module } from './module.js';
import type { OnnxSink } from './onnx-sink.js';

/** x * sigmoid(x) (EfficientNet). */
export class SiLU extends Module {
  forward(x: Tensor): Tensor {
    return E.silu(x);
  }
  onnx(g: OnnxSink, x: string, prefix: string): string {
    return g.node('Mul', `${prefix}silu`, [x, g.node('Sigmoid', `${prefix}silu.sigmoid`, [x])]);
  }
}

/** The exact GELU, x/2 (1 + erf(x/sqrt 2)) (ConvNeXt); opset 17 has no Gelu node, so it is written out. */
export class GELU extends Module {
  forward(x: Tensor): Tensor {
    return E.gelu(x);
  }
  onnx(g: OnnxSink, x: string, prefix: string): string {
    const erf = g.node('Erf', `${prefix}gelu.erf`, [g.node('Div', `${prefix}gelu.scaled`, [x, g.float(`${prefix}gelu.sqrt2`, [Math.SQRT2])])]);
    const onePlus = g.node('Add', `${prefix}gelu.one_plus`, [erf, g.float(`${prefix}gelu.one`, [1])]);
    return g.node('Mul', `${prefix}gelu`, [g.node('Mul', `${prefix}gelu.half_x`, [x, g.float(`${prefix}gelu.half`, [0.5])]), onePlus]);
  }
}

/** x * relu6(x + 3) / 6 (MobileNetV3). */
export class Hardswish extends Module {
  forward(x: Tensor): Tensor {
    return E.hardswish(x);
  }
  onnx(g: OnnxSink, x: string, prefix: string): string {
    return g.node('HardSwish', `${prefix}hardswish`, [x]);
  }
}

/** relu6(x + 3) / 6 (MobileNetV3's squeeze-excitation gate). */
export class Hardsigmoid extends Module {
  forward(x: Tensor): Tensor {
    return E.hardsigmoid(x);
  }
  onnx(g: OnnxSink, x: string, prefix: string): string {
    return g.node('HardSigmoid', `${prefix}hardsigmoid`, [x], { alpha: 1 / 6, beta: 0.5 });
  }
}

/**
 * torchvision.ops.StochasticDepth(p, mode='row'): while training, each sample's residual branch is
 * dropped with probability p and the kept ones scaled by 1/(1-p); the identity otherwise.
 */
export class StochasticDepth extends Module {
  constructor(readonly p: number) {
    super();
  }
  forward(x: Tensor): Tensor {
    if (!this.training || this.p === 0) return x;
    const survival = 1 - this.p;
    return E.tidy(() => {
      const keep = E.rand([x.size(0), 1, 1, 1], { device: x.device })
        .lt(survival)
        .to({ dtype: x.dtype });
      return x.mul(survival > 0 ? keep.div(survival) : keep);
    });
  }
  onnx(_g: OnnxSink, x: string): string {
    return x;
  }
}
