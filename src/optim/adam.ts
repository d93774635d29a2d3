/**
 * Adam and AdamW as torch.optim.Adam / AdamW (foreach=True, capturable=False, fused=False).
 *
 * Mirrors PyTorch 1.13's `_multi_tensor_adam(w)` op for op:
 *   step += 1
 *   Adam:  g = grad (+ weight_decay * p)        AdamW: p *= 1 - lr * weight_decay
 *   m = beta1 * m + (1 - beta1) * g             (exp_avg)
 *   v = beta2 * v + (1 - beta2) * g^2           (exp_avg_sq)
 *   amsgrad: vmax = max(vmax, v), v' = vmax     (max_exp_avg_sq)
 *   bc1 = 1 - beta1^step, bc2 = 1 - beta2^step  (JS doubles, as Python floats)
 *   p += (-lr / bc1) * m / (sqrt(v') / sqrt(bc2) + eps)
 * Parameters whose step counts differ (some skipped steps with a null grad) are updated in one
 * foreach call per distinct step count, since the engine's foreach ops take one scalar per call
 * where PyTorch passes a per-tensor scalar list; the arithmetic is identical.
 * Weight decay and maximize never modify `.grad` in place (1.13's foreach Adam does; 2.x does not).
 */
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import { Optimizer, type ParamGroupInit, bool, checkNonNegative, foreachMaximum_, foreachNeg, num } from './optimizer.js';

export interface AdamOptions {
  lr?: number; // 1e-3
  betas?: [number, number]; // [0.9, 0.999]
  eps?: number; // 1e-8
  weightDecay?: number; // Adam 0, AdamW 1e-2 (PyTorch's defaults)
  amsgrad?: boolean; // false
  maximize?: boolean; // false
}

abstract class AdamBase extends Optimizer {
  protected readonly hasStep = true;
  betas: [number, number];
  eps: number;
  weightDecay: number;
  amsgrad: boolean;
  maximize: boolean;
  /** true: decoupled weight decay (AdamW); false: L2 added to the gradient (Adam). */
  protected abstract readonly decoupled: boolean;

  constructor(params: Tensor[] | ParamGroupInit[], o: AdamOptions, defaultWeightDecay: number) {
    super(params, o.lr ?? 1e-3);
    this.betas = [...(o.betas ?? [0.9, 0.999])] as [number, number];
    this.eps = o.eps ?? 1e-8;
    this.weightDecay = o.weightDecay ?? defaultWeightDecay;
    this.amsgrad = o.amsgrad ?? false;
    this.maximize = o.maximize ?? false;
    this.validate();
  }

  private validate(): void {
    checkNonNegative('epsilon value', this.eps);
    const [b1, b2] = this.betas;
    if (!(b1 >= 0 && b1 < 1)) throw new RangeError(`Invalid beta parameter at index 0: ${b1}`);
    if (!(b2 >= 0 && b2 < 1)) throw new RangeError(`Invalid beta parameter at index 1: ${b2}`);
    checkNonNegative('weight_decay value', this.weightDecay);
  }

  protected loadGroupHyper(g: Record<string, unknown>): void {
    const w = `${this.name}.loadStateDict`;
    const betas = g.betas;
    if (!Array.isArray(betas) || betas.length !== 2 || !betas.every((b) => typeof b === 'number')) {
      throw new Error(`${w}: param_groups[0].betas must be a pair of numbers, got ${String(betas)}`);
    }
    this.betas = [betas[0], betas[1]];
    this.eps = num(g, 'eps', w);
    this.weightDecay = num(g, 'weight_decay', w);
    this.amsgrad = bool(g, 'amsgrad', w);
    this.maximize = bool(g, 'maximize', w, false);
    this.validate();
  }

  protected stateKeys(): string[] {
    return this.amsgrad ? ['exp_avg', 'exp_avg_sq', 'max_exp_avg_sq'] : ['exp_avg', 'exp_avg_sq'];
  }

  protected update(idx: number[], params: Tensor[], grads: Tensor[], lr: number): void {
    const [beta1, beta2] = this.betas;
    const { eps, weightDecay } = this;
    const keys = this.stateKeys();
    for (const i of idx) this.ensureState(i, keys);
    this.incrementSteps(idx);

    let g = grads;
    if (this.maximize) g = foreachNeg(g);
    if (this.decoupled) E.foreach.mul_(params, 1 - lr * weightDecay);
    else if (weightDecay !== 0) g = E.foreach.add(g, params, weightDecay);

    const expAvgs = idx.map((i) => this.st(i, 'exp_avg'));
    const expAvgSqs = idx.map((i) => this.st(i, 'exp_avg_sq'));
    E.foreach.mul_(expAvgs, beta1);
    E.foreach.add_(expAvgs, g, 1 - beta1);
    E.foreach.mul_(expAvgSqs, beta2);
    E.foreach.addcmul_(expAvgSqs, g, g, 1 - beta2);

    let second = expAvgSqs;
    if (this.amsgrad) {
      second = idx.map((i) => this.st(i, 'max_exp_avg_sq'));
      foreachMaximum_(second, expAvgSqs);
    }

    // Group positions by step count (normally a single group).
    const byStep = new Map<number, number[]>();
    idx.forEach((i, pos) => {
      const s = this.hostSteps[i];
      const list = byStep.get(s);
      if (list) list.push(pos);
      else byStep.set(s, [pos]);
    });
    for (const [step, positions] of byStep) {
      const pick = <T>(xs: T[]): T[] => positions.map((p) => xs[p]);
      const biasCorrection1 = 1 - beta1 ** step;
      const biasCorrection2 = 1 - beta2 ** step;
      const stepSize = (lr / biasCorrection1) * -1;
      const biasCorrection2Sqrt = Math.sqrt(biasCorrection2);
      const denom = E.foreach.sqrt(pick(second));
      E.foreach.div_(denom, biasCorrection2Sqrt);
      E.foreach.add_(denom, eps); // PyTorch: denom = _foreach_add(sqrt, eps); same values
      E.foreach.addcdiv_(pick(params), pick(expAvgs), denom, stepSize);
    }
  }
}

export class Adam extends AdamBase {
  readonly name = 'Adam';
  protected readonly decoupled = false;
  constructor(params: Tensor[] | ParamGroupInit[], o: AdamOptions = {}) {
    super(params, o, 0);
  }
  protected groupHyper(): Record<string, unknown> {
    return {
      betas: [...this.betas], // a Python tuple in PyTorch's checkpoint
      eps: this.eps,
      weight_decay: this.weightDecay,
      amsgrad: this.amsgrad,
      maximize: this.maximize,
      foreach: true,
      capturable: false,
      differentiable: false,
      fused: false,
    };
  }
}

export class AdamW extends AdamBase {
  readonly name = 'AdamW';
  protected readonly decoupled = true;
  constructor(params: Tensor[] | ParamGroupInit[], o: AdamOptions = {}) {
    super(params, o, 1e-2);
  }
  protected groupHyper(): Record<string, unknown> {
    // PyTorch 1.13's AdamW group has no differentiable/fused keys (2.x fills them in on load).
    return {
      betas: [...this.betas],
      eps: this.eps,
      weight_decay: this.weightDecay,
      amsgrad: this.amsgrad,
      foreach: true,
      maximize: this.maximize,
      capturable: false,
    };
  }
}
