/** Parameter groups of an optimizer (optimizer.ts): PyTorch's param_groups, which here differ only in lr. */
import type { Tensor } from '../engine/index.js';

/** Python's `ValueError("Invalid learning rate: x")`. */
function checked(lr: number): number {
  if (typeof lr !== 'number' || !(lr >= 0)) throw new RangeError(`Invalid learning rate: ${lr}`);
  return lr;
}

/** A parameter group as the constructor takes it (PyTorch's `{'params': [...], 'lr': x}`); lr defaults to the optimizer's. */
export interface ParamGroupInit {
  params: Tensor[];
  lr?: number;
}

/** One parameter group: the positions of its parameters in `Optimizer.params`, its lr and initial_lr. */
export class ParamGroup {
  private _lr: number;
  /** `initial_lr`, which PyTorch's epoch-based schedulers write into the group when they are created. */
  initialLr: number | undefined;
  constructor(
    readonly indices: number[],
    lr: number,
  ) {
    this._lr = checked(lr);
  }
  get lr(): number {
    return this._lr;
  }
  set lr(v: number) {
    this._lr = checked(v);
  }
}
