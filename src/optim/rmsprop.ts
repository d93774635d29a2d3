/**
 * RMSprop as torch.optim.RMSprop(foreach=True).
 *
 * The update mirrors PyTorch 1.13's `_multi_tensor_rmsprop` op for op:
 *   g  = grad (+ weight_decay * p)
 *   v  = alpha * v + (1 - alpha) * g^2                    (square_avg)
 *   centered: ga = alpha * ga + (1 - alpha) * g;  avg = sqrt(v - ga^2) + eps
 *   else:     avg = sqrt(v) + eps
 *   momentum > 0: b = momentum * b + g / avg;  p -= lr * b
 *   else:         p -= lr * g / avg
 * Differences from 1.13, on purpose: weight decay and maximize never modify `.grad` in place (1.13's
 * foreach path adds weight_decay * p into p.grad; 2.x fixed that; the parameter update is the same),
 * and `step` is a float32 scalar tensor (the 2.x layout; 1.13 stores a Python int; both versions
 * load either).
 */
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import { Optimizer, type ParamGroupInit, bool, checkNonNegative, foreachNeg, num } from './optimizer.js';

export interface RMSpropOptions {
  lr?: number; // default 1e-2 (PyTorch's)
  alpha?: number; // 0.99
  eps?: number; // 1e-8
  weightDecay?: number; // 0
  momentum?: number; // 0
  centered?: boolean; // false
  maximize?: boolean; // false
}

export class RMSprop extends Optimizer {
  readonly name = 'RMSprop';
  protected readonly hasStep = true;
  alpha: number;
  eps: number;
  weightDecay: number;
  momentum: number;
  centered: boolean;
  maximize: boolean;

  constructor(params: Tensor[] | ParamGroupInit[], o: RMSpropOptions = {}) {
    super(params, o.lr ?? 1e-2);
    this.alpha = o.alpha ?? 0.99;
    this.eps = o.eps ?? 1e-8;
    this.weightDecay = o.weightDecay ?? 0;
    this.momentum = o.momentum ?? 0;
    this.centered = o.centered ?? false;
    this.maximize = o.maximize ?? false;
    this.validate();
  }

  private validate(): void {
    checkNonNegative('epsilon value', this.eps);
    checkNonNegative('momentum value', this.momentum);
    checkNonNegative('weight_decay value', this.weightDecay);
    checkNonNegative('alpha value', this.alpha);
  }

  protected groupHyper(): Record<string, unknown> {
    // PyTorch 1.13's key order (lr first, added by the base).
    return {
      momentum: this.momentum,
      alpha: this.alpha,
      eps: this.eps,
      centered: this.centered,
      weight_decay: this.weightDecay,
      foreach: true,
      maximize: this.maximize,
      differentiable: false,
    };
  }

  protected loadGroupHyper(g: Record<string, unknown>): void {
    const w = 'RMSprop.loadStateDict';
    this.momentum = num(g, 'momentum', w);
    this.alpha = num(g, 'alpha', w);
    this.eps = num(g, 'eps', w);
    this.centered = bool(g, 'centered', w);
    this.weightDecay = num(g, 'weight_decay', w);
    this.maximize = bool(g, 'maximize', w, false);
    this.validate();
  }

  protected stateKeys(): string[] {
    const keys = ['square_avg'];
    if (this.momentum > 0) keys.push('momentum_buffer');
    if (this.centered) keys.push('grad_avg');
    return keys;
  }

  protected update(idx: number[], params: Tensor[], grads: Tensor[], lr: number): void {
    const { alpha, eps, weightDecay, momentum, centered } = this;
    const keys = this.stateKeys();
    for (const i of idx) this.ensureState(i, keys);
    this.incrementSteps(idx);

    let g = grads;
    if (this.maximize) g = foreachNeg(g);
    if (weightDecay !== 0) g = E.foreach.add(g, params, weightDecay); // out of place: .grad stays untouched

    const squareAvgs = idx.map((i) => this.st(i, 'square_avg'));
    E.foreach.mul_(squareAvgs, alpha);
    E.foreach.addcmul_(squareAvgs, g, g, 1 - alpha);

    let avg: Tensor[];
    if (centered) {
      const gradAvgs = idx.map((i) => this.st(i, 'grad_avg'));
      E.foreach.mul_(gradAvgs, alpha);
      E.foreach.add_(gradAvgs, g, 1 - alpha);
      // avg = _foreach_addcmul(square_avgs, grad_avgs, grad_avgs, value=-1), done as copy + in place
      const centeredVar = E.foreach.add(squareAvgs, 0);
      E.foreach.addcmul_(centeredVar, gradAvgs, gradAvgs, -1);
      avg = E.foreach.sqrt(centeredVar);
    } else {
      avg = E.foreach.sqrt(squareAvgs);
    }
    E.foreach.add_(avg, eps);

    if (momentum > 0) {
      const bufs = idx.map((i) => this.st(i, 'momentum_buffer'));
      E.foreach.mul_(bufs, momentum);
      E.foreach.addcdiv_(bufs, g, avg, 1);
      E.foreach.add_(params, bufs, -lr);
    } else {
      E.foreach.addcdiv_(params, g, avg, -lr);
    }
  }
}
