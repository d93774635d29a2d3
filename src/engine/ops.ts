/** Tensor creation, functional NN ops and foreach lists (native/ops.cpp). */
import { N } from './native.js';
import { type Device, type DType, type Reduction, type Scalar, type Tensor, handlesOf as hs, optHandleOf, wrap, wrapList } from './tensor.js';

type Opts = { dtype?: DType; device?: Device | string };

// ------------------------------------------------------------------------------------------------
// Creation

export const zeros = (shape: number[], o: Opts = {}): Tensor => wrap(N.zeros(shape, o.dtype ?? 'float32', o.device ?? 'cpu'));
export const ones = (shape: number[], o: Opts = {}): Tensor => wrap(N.ones(shape, o.dtype ?? 'float32', o.device ?? 'cpu'));
export const empty = (shape: number[], o: Opts = {}): Tensor => wrap(N.empty(shape, o.dtype ?? 'float32', o.device ?? 'cpu'));
export const full = (shape: number[], value: Scalar, o: Opts = {}): Tensor => wrap(N.full(shape, value, o.dtype ?? 'float32', o.device ?? 'cpu'));
export const rand = (shape: number[], o: Opts = {}): Tensor => wrap(N.rand(shape, o.dtype ?? 'float32', o.device ?? 'cpu'));
export const randn = (shape: number[], o: Opts = {}): Tensor => wrap(N.randn(shape, o.dtype ?? 'float32', o.device ?? 'cpu'));
export const randint = (low: number, high: number, shape: number[], o: Opts = {}): Tensor => wrap(N.randint(low, high, shape, o.dtype ?? 'int64', o.device ?? 'cpu'));
export const randperm = (n: number, o: Opts = {}): Tensor => wrap(N.randperm(n, o.device ?? 'cpu'));
export const arange = (start: number, end: number, step = 1, o: Opts = {}): Tensor => wrap(N.arange(start, end, step, o.dtype ?? 'int64', o.device ?? 'cpu'));
export const scalar = (value: number, o: Opts = {}): Tensor => wrap(N.full([], value, o.dtype ?? 'float32', o.device ?? 'cpu'));

const dtypeOfArray = (a: ArrayBufferView): DType => {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof BigInt64Array) return 'int64';
  if (a instanceof Int16Array) return 'int16';
  if (a instanceof Int8Array) return 'int8';
  if (a instanceof Uint8Array || a instanceof Uint8ClampedArray) return 'uint8';
  throw new TypeError(`cannot infer a dtype from ${a.constructor.name}; pass one explicitly`);
};

/** Copies a typed array into a new tensor (dtype inferred from the array type unless given). */
export function tensor(data: ArrayBufferView | number[], shape?: number[], o: Opts = {}): Tensor {
  const arr = Array.isArray(data) ? new Float32Array(data) : data;
  const dtype = o.dtype ?? dtypeOfArray(arr);
  const sh = shape ?? [Array.isArray(data) ? data.length : (arr as unknown as { length: number }).length];
  return wrap(N.fromBuffer(arr, sh, dtype, o.device ?? 'cpu'));
}

export const cat = (ts: Tensor[], dim = 0): Tensor =>
  wrap(
    N.cat(
      ts.map((t) => t.h),
      dim,
    ),
  );
export const stack = (ts: Tensor[], dim = 0): Tensor =>
  wrap(
    N.stack(
      ts.map((t) => t.h),
      dim,
    ),
  );
export const where = (cond: Tensor, a: Tensor | number, b: Tensor | number): Tensor => wrap(N.where(cond.h, typeof a === 'number' ? a : a.h, typeof b === 'number' ? b : b.h));
export const bincount = (t: Tensor, weights: Tensor | null = null, minlength = 0): Tensor => wrap(N.bincount(t.h, optHandleOf(weights), minlength));
/** [values, indices] along dim (torch.sort, stable: ties keep their order on every device). */
export function sort(t: Tensor, dim = -1, descending = false): [Tensor, Tensor] {
  const [values, indices] = wrapList(N.sort(t.h, dim, descending));
  return [values, indices];
}
export const cumsum = (t: Tensor, dim: number): Tensor => wrap(N.cumsum(t.h, dim));

// ------------------------------------------------------------------------------------------------
// Functional NN ops (torch.nn.functional names)

const pair = (v: number | number[]): number[] => (Array.isArray(v) ? v : [v, v]);

export function conv2d(
  x: Tensor, // [N,Cin,H,W]
  weight: Tensor, // [Cout,Cin/groups,kH,kW]
  bias: Tensor | null = null,
  o: { stride?: number | number[]; padding?: number | number[]; dilation?: number | number[]; groups?: number } = {},
): Tensor {
  return wrap(N.conv2d(x.h, weight.h, optHandleOf(bias), pair(o.stride ?? 1), pair(o.padding ?? 0), pair(o.dilation ?? 1), o.groups ?? 1));
}

export function convTranspose2d(
  x: Tensor, // [N,Cin,H,W]
  weight: Tensor, // [Cin,Cout/groups,kH,kW]
  bias: Tensor | null = null,
  o: { stride?: number | number[]; padding?: number | number[]; outputPadding?: number | number[]; groups?: number; dilation?: number | number[] } = {},
): Tensor {
  return wrap(N.convTranspose2d(x.h, weight.h, optHandleOf(bias), pair(o.stride ?? 1), pair(o.padding ?? 0), pair(o.outputPadding ?? 0), o.groups ?? 1, pair(o.dilation ?? 1)));
}

/** Updates runningMean/runningVar in place when training (momentum as in PyTorch). */
export function batchNorm(x: Tensor, runningMean: Tensor | null, runningVar: Tensor | null, weight: Tensor | null, bias: Tensor | null, training: boolean, momentum = 0.1, eps = 1e-5): Tensor {
  return wrap(N.batchNorm(x.h, optHandleOf(weight), optHandleOf(bias), optHandleOf(runningMean), optHandleOf(runningVar), training, momentum, eps));
}

export function maxPool2d(x: Tensor, kernel: number | number[], stride?: number | number[], padding: number | number[] = 0, dilation: number | number[] = 1, ceilMode = false): Tensor {
  return wrap(N.maxPool2d(x.h, pair(kernel), pair(stride ?? kernel), pair(padding), pair(dilation), ceilMode));
}

export function avgPool2d(x: Tensor, kernel: number | number[], stride?: number | number[], padding: number | number[] = 0): Tensor {
  return wrap(N.avgPool2d(x.h, pair(kernel), pair(stride ?? kernel), pair(padding)));
}

/** Resizes [N,C,H,W] to size [outH,outW]. */
export function interpolate(x: Tensor, size: [number, number], mode: 'nearest' | 'bilinear' | 'bicubic' = 'nearest', alignCorners = false): Tensor {
  return wrap(N.interpolate(x.h, size, mode, mode === 'nearest' ? false : alignCorners));
}

export const relu = (x: Tensor): Tensor => x.relu();
export const sigmoid = (x: Tensor): Tensor => x.sigmoid();
export const softmax = (x: Tensor, dim: number, dtype?: DType): Tensor => x.softmax(dim, dtype);
export const logSoftmax = (x: Tensor, dim: number, dtype?: DType): Tensor => x.logSoftmax(dim, dtype);

export function crossEntropy(
  logits: Tensor, // [N,C,...]
  target: Tensor, // [N,...] int64 class indices
  o: { weight?: Tensor | null; reduction?: Reduction; ignoreIndex?: number; labelSmoothing?: number } = {},
): Tensor {
  return wrap(N.crossEntropy(logits.h, target.h, optHandleOf(o.weight), o.reduction ?? 'mean', o.ignoreIndex ?? -100, o.labelSmoothing ?? 0));
}

export function binaryCrossEntropyWithLogits(logits: Tensor, target: Tensor, o: { weight?: Tensor | null; posWeight?: Tensor | null; reduction?: Reduction } = {}): Tensor {
  return wrap(N.bceWithLogits(logits.h, target.h, optHandleOf(o.weight), optHandleOf(o.posWeight), o.reduction ?? 'mean'));
}

export const mseLoss = (a: Tensor, b: Tensor, reduction: Reduction = 'mean'): Tensor => wrap(N.mseLoss(a.h, b.h, reduction));
/** [N,H,W] int64 -> [N,H,W,C] int64 */
export const oneHot = (t: Tensor, numClasses: number): Tensor => wrap(N.oneHot(t.h, numClasses));
/** pad = [left, right, top, bottom] for the last two dims (torch.nn.functional.pad order). */
export const pad = (x: Tensor, p: number[], mode: 'constant' | 'reflect' | 'replicate' = 'constant', value = 0): Tensor => wrap(N.pad(x.h, p, mode, value));
export const dropout = (x: Tensor, p: number, training: boolean): Tensor => wrap(N.dropout(x.h, p, training));
export const silu = (x: Tensor): Tensor => wrap(N.silu(x.h));
/** The exact (erf) GELU. */
export const gelu = (x: Tensor): Tensor => wrap(N.gelu(x.h));
export const hardswish = (x: Tensor): Tensor => wrap(N.hardswish(x.h));
export const hardsigmoid = (x: Tensor): Tensor => wrap(N.hardsigmoid(x.h));
/** Normalises over the last dims given by normalizedShape (torch.nn.functional.layer_norm). */
export const layerNorm = (x: Tensor, normalizedShape: number[], weight: Tensor | null, bias: Tensor | null, eps = 1e-5): Tensor => wrap(N.layerNorm(x.h, normalizedShape, optHandleOf(weight), optHandleOf(bias), eps));

// ------------------------------------------------------------------------------------------------
// Foreach ops over tensor lists (the building blocks of optimizers)

export const foreach = {
  add_: (xs: Tensor[], ys: Tensor[] | number, alpha = 1): void => N.foreachAdd_(hs(xs), typeof ys === 'number' ? ys : hs(ys), alpha),
  add: (xs: Tensor[], ys: Tensor[] | number, alpha = 1): Tensor[] => wrapList(N.foreachAdd(hs(xs), typeof ys === 'number' ? ys : hs(ys), alpha)),
  /** ys: a list, a number, or a one-element tensor (no host sync). */
  mul_: (xs: Tensor[], ys: Tensor[] | number | Tensor): void => N.foreachMul_(hs(xs), typeof ys === 'number' ? ys : Array.isArray(ys) ? hs(ys) : ys.h),
  div_: (xs: Tensor[], ys: Tensor[] | number): void => N.foreachDiv_(hs(xs), typeof ys === 'number' ? ys : hs(ys)),
  addcmul_: (xs: Tensor[], a: Tensor[], b: Tensor[], value = 1): void => N.foreachAddcmul_(hs(xs), hs(a), hs(b), value),
  addcdiv_: (xs: Tensor[], a: Tensor[], b: Tensor[], value = 1): void => N.foreachAddcdiv_(hs(xs), hs(a), hs(b), value),
  sqrt: (xs: Tensor[]): Tensor[] => wrapList(N.foreachSqrt(hs(xs))),
  zero_: (xs: Tensor[]): void => N.foreachZero_(hs(xs)),
  lerp_: (xs: Tensor[], ys: Tensor[], weight: number): void => N.foreachLerp_(hs(xs), hs(ys), weight),
  copy_: (xs: Tensor[], ys: Tensor[]): void => N.foreachCopy_(hs(xs), hs(ys)),
  /** Per-tensor 2-norms stacked into one float32 tensor [len]. */
  norm: (xs: Tensor[]): Tensor => wrap(N.foreachNorm(hs(xs))),
};
