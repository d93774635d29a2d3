/**
 * SGD as torch.optim.SGD(foreach=True): momentum, dampening, Nesterov, weight decay, maximize.
 *
 * Mirrors PyTorch 1.13's `_multi_tensor_sgd`:
 *   g = grad (+ weight_decay * p)
 *   momentum != 0: b = g.clone() on the first step, else b = momentum * b + (1 - dampening) * g
 *                  g = nesterov ? g + momentum * b : b
 *   p -= lr * g
 * Unlike 1.13, Nesterov never adds into `.grad` in place. State: `{momentum_buffer}` per parameter
 * that got a gradient, `null` (Python None) when momentum = 0, as PyTorch saves it. No step count.
 */
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import { Optimizer, type ParamGroupInit, type StateRecord, bool, checkNonNegative, foreachNeg, num } from './optimizer.js';

export interface SGDOptions {
  lr: number; // required, as in PyTorch
  momentum?: number; // 0
  dampening?: number; // 0
  weightDecay?: number; // 0
  nesterov?: boolean; // false
  maximize?: boolean; // false
}

export class SGD extends Optimizer {
  readonly name = 'SGD';
  protected readonly hasStep = false;
  momentum: number;
  dampening: number;
  weightDecay: number;
  nesterov: boolean;
  maximize: boolean;

  constructor(params: Tensor[] | ParamGroupInit[], o: SGDOptions) {
    if (o === undefined || typeof o.lr !== 'number') throw new Error('SGD: lr is required');
    super(params, o.lr);
    this.momentum = o.momentum ?? 0;
    this.dampening = o.dampening ?? 0;
    this.weightDecay = o.weightDecay ?? 0;
    this.nesterov = o.nesterov ?? false;
    this.maximize = o.maximize ?? false;
    this.validate();
  }

  private validate(): void {
    checkNonNegative('momentum value', this.momentum);
    checkNonNegative('weight_decay value', this.weightDecay);
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) throw new Error('Nesterov momentum requires a momentum and zero dampening');
  }

  protected groupHyper(): Record<string, unknown> {
    return {
      momentum: this.momentum,
      dampening: this.dampening,
      weight_decay: this.weightDecay,
      nesterov: this.nesterov,
      maximize: this.maximize,
      foreach: true,
      differentiable: false,
    };
  }

  protected loadGroupHyper(g: Record<string, unknown>): void {
    const w = 'SGD.loadStateDict';
    this.momentum = num(g, 'momentum', w);
    this.dampening = num(g, 'dampening', w);
    this.weightDecay = num(g, 'weight_decay', w);
    this.nesterov = bool(g, 'nesterov', w);
    this.maximize = bool(g, 'maximize', w, false);
    this.validate();
  }

  protected stateKeys(): string[] {
    return ['momentum_buffer'];
  }
  protected allowsNullState(key: string): boolean {
    return key === 'momentum_buffer';
  }

  protected update(idx: number[], params: Tensor[], grads: Tensor[], lr: number): void {
    const { momentum, dampening, weightDecay } = this;
    let g = grads;
    if (this.maximize) g = foreachNeg(g);
    if (weightDecay !== 0) g = E.foreach.add(g, params, weightDecay);

    // PyTorch creates the state entry ({momentum_buffer: None}) for every parameter with a grad.
    const states: StateRecord[] = idx.map((i) => (this.states[i] ??= { momentum_buffer: null }));

    if (momentum !== 0) {
      const withBuf: number[] = [];
      states.forEach((s, pos) => {
        if (s.momentum_buffer) withBuf.push(pos);
      });
      if (withBuf.length > 0) {
        const bufs = withBuf.map((pos) => states[pos].momentum_buffer as Tensor);
        E.foreach.mul_(bufs, momentum);
        E.foreach.add_(
          bufs,
          withBuf.map((pos) => g[pos]),
          1 - dampening,
        );
      }
      // First step for a parameter: buf = clone(g) (no dampening), as PyTorch.
      states.forEach((s, pos) => {
        if (!s.momentum_buffer) s.momentum_buffer = g[pos].detach().clone().keep();
      });
      const bufs = states.map((s) => s.momentum_buffer as Tensor);
      g = this.nesterov ? E.foreach.add(g, bufs, momentum) : bufs;
    }
    E.foreach.add_(params, g, -lr);
  }
}
