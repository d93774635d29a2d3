/**
 * The addon's contract: every function native/*.cpp exports, with its argument and return types.
 * The sections follow the C++ files. test/engine.native-contract.test.ts checks that the built
 * addon exports exactly the names of NATIVE_EXPORTS, and the compiler checks NATIVE_EXPORTS against
 * this interface, so an export added or removed on one side only fails the tests.
 */

export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';
export type Device = 'cpu' | 'cuda' | `cuda:${number}`;
export type MemoryFormat = 'contiguous' | 'channels_last' | 'preserve';
export type Reduction = 'mean' | 'sum' | 'none';
export type Scalar = number | boolean;
export type DeviceType = 'cpu' | 'cuda';

/** Opaque handle to an at::Tensor held by the addon. */
export interface NativeHandle {
  readonly __brand: 'TensorHandle';
}
type H = NativeHandle;
type HOpt = NativeHandle | null;
/** A number (one dimension) or a list of them; null or undefined: every dimension. */
type Dims = number | number[] | null;
/** Device strings are checked by the addon (cpu, cuda, cuda:N); null: cpu. */
type Dev = string | null;

export interface MemoryStats {
  liveTensors: number;
  liveBytes: number;
  cachedBytes: number;
}
export interface BuildInfo {
  torch: string;
  cuda: boolean;
  mkldnn: boolean;
  config: string;
  parallel: string;
}
export interface BackendFlags {
  cudnnBenchmark?: boolean;
  cudnnDeterministic?: boolean;
  allowTF32?: boolean;
  mkldnn?: boolean;
}
export interface ProcessGroupInit {
  rank: number;
  worldSize: number;
  masterAddr: string;
  masterPort: number;
  timeoutMs: number;
  backend: string;
}
export interface ProcessGroupState {
  initialized: boolean;
  rank: number;
  worldSize: number;
  backend: string;
  gloo: boolean;
  nccl: boolean;
}

/** Pillow's 8-bit resampling taps (native/resample.cpp, its `precompute_coeffs` in fixed point); null skips that pass. */
export type TapArg = Int32Array | null;

export interface NativeModule {
  // ---- tensor.cpp: handles, metadata, bytes
  TensorHandle: new () => H;
  fromBuffer(data: ArrayBufferView | ArrayBuffer, shape: number[], dtype: DType, device: Dev): H;
  toBuffer(t: H): ArrayBuffer;
  item(t: H): number | boolean;
  shape(t: H): number[];
  strides(t: H): number[];
  dtype(t: H): DType;
  device(t: H): string;
  numel(t: H): number;
  isContiguous(t: H, format?: MemoryFormat | null): boolean;
  requiresGrad(t: H): boolean;
  isLeaf(t: H): boolean;
  isDisposed(t: H): boolean;
  dispose(t: H): void;

  // ---- ops.cpp: creation (dtype null: float32, or int64 for randint/arange)
  zeros(shape: number[], dtype: DType | null, device: Dev): H;
  ones(shape: number[], dtype: DType | null, device: Dev): H;
  empty(shape: number[], dtype: DType | null, device: Dev): H;
  full(shape: number[], value: Scalar, dtype: DType | null, device: Dev): H;
  rand(shape: number[], dtype: DType | null, device: Dev): H;
  randn(shape: number[], dtype: DType | null, device: Dev): H;
  randint(low: number, high: number, shape: number[], dtype: DType | null, device: Dev): H;
  randperm(n: number, device: Dev): H;
  uniform_(t: H, from: number, to: number): H;
  normal_(t: H, mean: number, std: number): H;
  arange(start: number, end: number, step: number, dtype: DType | null, device: Dev): H;

  // ---- ops.cpp: conversion and views
  to(t: H, device: Dev, dtype: DType | null, nonBlocking: boolean, copy: boolean): H;
  contiguous(t: H, format?: MemoryFormat | null): H;
  clone(t: H, format?: MemoryFormat | null): H;
  pinMemory(t: H): H;
  detach(t: H): H;
  reshape(t: H, shape: number[]): H;
  view(t: H, shape: number[]): H;
  permute(t: H, dims: number[]): H;
  transpose(t: H, dim0: number, dim1: number): H;
  slice(t: H, dim: number, start: number | null, end: number | null, step?: number): H;
  narrow(t: H, dim: number, start: number, length: number): H;
  select(t: H, dim: number, index: number): H;
  indexSelect(t: H, dim: number, index: H): H;
  gather(t: H, dim: number, index: H): H;
  maskedSelect(t: H, mask: H): H;
  squeeze(t: H, dim?: number | null): H;
  unsqueeze(t: H, dim: number): H;
  flatten(t: H, start?: number, end?: number): H;
  expand(t: H, shape: number[]): H;
  cat(ts: H[], dim?: number): H;
  stack(ts: H[], dim?: number): H;
  chunk(t: H, chunks: number, dim: number): H[];

  // ---- ops.cpp: elementwise (a tensor or a number on the right)
  add(a: H, b: H | Scalar, alpha?: Scalar): H;
  sub(a: H, b: H | Scalar, alpha?: Scalar): H;
  mul(a: H, b: H | Scalar): H;
  div(a: H, b: H | Scalar): H;
  pow(a: H, b: H | Scalar): H;
  eq(a: H, b: H | Scalar): H;
  ne(a: H, b: H | Scalar): H;
  lt(a: H, b: H | Scalar): H;
  le(a: H, b: H | Scalar): H;
  gt(a: H, b: H | Scalar): H;
  ge(a: H, b: H | Scalar): H;
  remainder(a: H, b: H | Scalar): H;
  maximum(a: H, b: H): H;
  minimum(a: H, b: H): H;
  logicalAnd(a: H, b: H): H;
  logicalOr(a: H, b: H): H;
  where(cond: H, a: H | Scalar, b: H | Scalar): H;
  neg(t: H): H;
  abs(t: H): H;
  exp(t: H): H;
  log(t: H): H;
  log1p(t: H): H;
  sqrt(t: H): H;
  rsqrt(t: H): H;
  sigmoid(t: H): H;
  relu(t: H): H;
  tanh(t: H): H;
  square(t: H): H;
  reciprocal(t: H): H;
  floor(t: H): H;
  ceil(t: H): H;
  round(t: H): H;
  sign(t: H): H;
  isfinite(t: H): H;
  isnan(t: H): H;
  isinf(t: H): H;
  logicalNot(t: H): H;
  sin(t: H): H;
  cos(t: H): H;
  clamp(t: H, min: Scalar | null, max: Scalar | null): H;

  // ---- ops.cpp: reductions
  sum(t: H, dims: Dims, keepdim: boolean, dtype: DType | null): H;
  mean(t: H, dims: Dims, keepdim: boolean): H;
  amax(t: H, dims: Dims, keepdim: boolean): H;
  amin(t: H, dims: Dims, keepdim: boolean): H;
  argmax(t: H, dim: number | null, keepdim: boolean): H;
  argmin(t: H, dim: number | null, keepdim: boolean): H;
  all(t: H): H;
  any(t: H): H;
  norm(t: H, p: Scalar, dims: Dims, keepdim: boolean): H;
  var(t: H, dims: Dims, keepdim: boolean, unbiased: boolean): H;
  bincount(t: H, weights: HOpt, minlength: number): H;
  matmul(a: H, b: H): H;
  /** [values, indices], a stable sort. */
  sort(t: H, dim: number, descending: boolean): H[];
  cumsum(t: H, dim: number): H;

  // ---- ops.cpp: neural-network ops ([stride, padding, dilation] as [h, w] pairs)
  conv2d(x: H, weight: H, bias: HOpt, stride: number[], padding: number[], dilation: number[], groups: number): H;
  convTranspose2d(x: H, weight: H, bias: HOpt, stride: number[], padding: number[], outputPadding: number[], groups: number, dilation: number[]): H;
  batchNorm(x: H, weight: HOpt, bias: HOpt, runningMean: HOpt, runningVar: HOpt, training: boolean, momentum: number, eps: number): H;
  maxPool2d(x: H, kernel: number[], stride: number[], padding: number[], dilation: number[], ceilMode: boolean): H;
  avgPool2d(x: H, kernel: number[], stride: number[], padding: number[]): H;
  interpolate(x: H, size: number[], mode: 'nearest' | 'bilinear' | 'bicubic', alignCorners: boolean): H;
  softmax(x: H, dim: number, dtype: DType | null): H;
  logSoftmax(x: H, dim: number, dtype: DType | null): H;
  crossEntropy(logits: H, target: H, weight: HOpt, reduction: Reduction, ignoreIndex: number, labelSmoothing: number): H;
  bceWithLogits(logits: H, target: H, weight: HOpt, posWeight: HOpt, reduction: Reduction): H;
  mseLoss(a: H, b: H, reduction: Reduction): H;
  oneHot(t: H, numClasses: number): H;
  pad(x: H, pad: number[], mode: 'constant' | 'reflect' | 'replicate', value: Scalar): H;
  dropout(x: H, p: number, training: boolean): H;

  // ---- activations.cpp
  silu(x: H): H;
  gelu(x: H): H;
  hardswish(x: H): H;
  hardsigmoid(x: H): H;
  layerNorm(x: H, normalizedShape: number[], weight: HOpt, bias: HOpt, eps: number): H;

  // ---- ops.cpp: in place (return their first argument)
  add_(a: H, b: H | Scalar, alpha?: Scalar): H;
  mul_(a: H, b: H | Scalar): H;
  div_(a: H, b: H | Scalar): H;
  addcmul_(t: H, a: H, b: H, value: Scalar): H;
  addcdiv_(t: H, a: H, b: H, value: Scalar): H;
  lerp_(t: H, end: H, weight: Scalar): H;
  copy_(t: H, src: H, nonBlocking: boolean): H;
  zero_(t: H): H;
  fill_(t: H, value: Scalar): H;
  sqrt_(t: H): H;
  relu_(t: H): H;
  clamp_(t: H, min: Scalar | null, max: Scalar | null): H;
  setData(t: H, value: H): H;

  // ---- ops.cpp: foreach over tensor lists (torch._foreach_*)
  foreachAdd_(xs: H[], ys: H[] | number, alpha?: number): void;
  foreachAdd(xs: H[], ys: H[] | number, alpha?: number): H[];
  foreachMul_(xs: H[], ys: H[] | number | H): void;
  foreachDiv_(xs: H[], ys: H[] | number): void;
  foreachAddcmul_(xs: H[], a: H[], b: H[], value: number): void;
  foreachAddcdiv_(xs: H[], a: H[], b: H[], value: number): void;
  foreachSqrt(xs: H[]): H[];
  foreachZero_(xs: H[]): void;
  foreachLerp_(xs: H[], ys: H[], weight: number): void;
  foreachCopy_(xs: H[], ys: H[]): void;
  foreachNorm(xs: H[]): H;

  // ---- autograd.cpp: autograd, grad and inference modes, autocast, AMP
  setRequiresGrad(t: H, flag: boolean): H;
  backward(t: H, grad: HOpt, retainGraph: boolean): void;
  grad(t: H): HOpt;
  setGrad(t: H, grad: HOpt): void;
  clearGrads(ts: H[]): void;
  grads(ts: H[]): HOpt[];
  /** Returns the previous mode. */
  setGradEnabled(enabled: boolean): boolean;
  isGradEnabled(): boolean;
  /** Returns the nesting depth. */
  inferenceEnter(): number;
  inferenceExit(): void;
  autocastEnter(deviceType: DeviceType, dtype: DType, enabled?: boolean): void;
  autocastExit(): void;
  isAutocastEnabled(deviceType: DeviceType): boolean;
  ampUnscale_(grads: H[], foundInf: H, invScale: H): void;
  ampUpdateScale_(scale: H, growthTracker: H, foundInf: H, growth: number, backoff: number, interval: number): void;

  // ---- runtime.cpp: threads, seeds, devices, flags, memory, versions
  setNumThreads(n: number): void;
  getNumThreads(): number;
  manualSeed(seed: number): void;
  getRngState(): H;
  setRngState(state: H): void;
  cudaIsAvailable(): boolean;
  cudaDeviceCount(): number;
  setFlags(flags: BackendFlags): void;
  stats(): MemoryStats;
  mallocTrim(): boolean;
  buildInfo(): BuildInfo;

  // ---- distributed.cpp: c10d (what communicates returns a Promise)
  distInit(o: ProcessGroupInit): Promise<void>;
  distInfo(): ProcessGroupState;
  distBroadcast(tensors: H[], root: number): Promise<void>;
  distAllreduce(tensors: H[], op: 'sum' | 'max' | 'min'): Promise<void>;
  distBarrier(): Promise<void>;
  distReducer(params: H[], bucketCapMB: number): void;
  distBackward(loss: H, sync: boolean): Promise<void>;
  distBatchNorm(x: H, weight: H, bias: H, runningMean: H, runningVar: H, momentum: number, eps: number): H;
  distDestroy(): Promise<void>;

  // ---- resample.cpp: Pillow's 8-bit resampling, on the libuv pool
  resample8(
    src: Uint8Array, width: number, height: number, channels: number, dst: Uint8Array, newWidth: number, newHeight: number,
    hStart: TapArg, hCount: TapArg, hWeights: TapArg, vStart: TapArg, vCount: TapArg, vWeights: TapArg,
  ): Promise<void>;

}

// Each name once; `satisfies` makes the compiler refuse a name missing here or not in NativeModule.
const names = {
  TensorHandle: 1, fromBuffer: 1, toBuffer: 1, item: 1, shape: 1, strides: 1, dtype: 1, device: 1, numel: 1, isContiguous: 1,
  requiresGrad: 1, isLeaf: 1, isDisposed: 1, dispose: 1,
  zeros: 1, ones: 1, empty: 1, full: 1, rand: 1, randn: 1, randint: 1, randperm: 1, uniform_: 1, normal_: 1, arange: 1,
  to: 1, contiguous: 1, clone: 1, pinMemory: 1, detach: 1, reshape: 1, view: 1, permute: 1, transpose: 1, slice: 1, narrow: 1,
  select: 1, indexSelect: 1, gather: 1, maskedSelect: 1, squeeze: 1, unsqueeze: 1, flatten: 1, expand: 1, cat: 1, stack: 1, chunk: 1,
  add: 1, sub: 1, mul: 1, div: 1, pow: 1, eq: 1, ne: 1, lt: 1, le: 1, gt: 1, ge: 1, remainder: 1, maximum: 1, minimum: 1,
  logicalAnd: 1, logicalOr: 1, where: 1, neg: 1, abs: 1, exp: 1, log: 1, log1p: 1, sqrt: 1, rsqrt: 1, sigmoid: 1, relu: 1,
  tanh: 1, square: 1, reciprocal: 1, floor: 1, ceil: 1, round: 1, sign: 1, isfinite: 1, isnan: 1, isinf: 1, logicalNot: 1,
  sin: 1, cos: 1, clamp: 1,
  sum: 1, mean: 1, amax: 1, amin: 1, argmax: 1, argmin: 1, all: 1, any: 1, norm: 1, var: 1, bincount: 1, matmul: 1,
  sort: 1, cumsum: 1,
  conv2d: 1, convTranspose2d: 1, batchNorm: 1, maxPool2d: 1, avgPool2d: 1, interpolate: 1, softmax: 1, logSoftmax: 1,
  crossEntropy: 1, bceWithLogits: 1, mseLoss: 1, oneHot: 1, pad: 1, dropout: 1,
  silu: 1, gelu: 1, hardswish: 1, hardsigmoid: 1, layerNorm: 1,
  add_: 1, mul_: 1, div_: 1, addcmul_: 1, addcdiv_: 1, lerp_: 1, copy_: 1, zero_: 1, fill_: 1, sqrt_: 1, relu_: 1, clamp_: 1, setData: 1,
  foreachAdd_: 1, foreachAdd: 1, foreachMul_: 1, foreachDiv_: 1, foreachAddcmul_: 1, foreachAddcdiv_: 1, foreachSqrt: 1,
  foreachZero_: 1, foreachLerp_: 1, foreachCopy_: 1, foreachNorm: 1,
  setRequiresGrad: 1, backward: 1, grad: 1, setGrad: 1, clearGrads: 1, grads: 1, setGradEnabled: 1, isGradEnabled: 1,
  inferenceEnter: 1, inferenceExit: 1, autocastEnter: 1, autocastExit: 1, isAutocastEnabled: 1, ampUnscale_: 1, ampUpdateScale_: 1,
  setNumThreads: 1, getNumThreads: 1, manualSeed: 1, getRngState: 1, setRngState: 1, cudaIsAvailable: 1, cudaDeviceCount: 1,
  setFlags: 1, stats: 1, mallocTrim: 1, buildInfo: 1,
  distInit: 1, distInfo: 1, distBroadcast: 1, distAllreduce: 1, distBarrier: 1, distReducer: 1, distBackward: 1,
  distBatchNorm: 1, distDestroy: 1,
  resample8: 1,
} satisfies Record<keyof NativeModule, 1>;

/** The names the addon exports, sorted. */
export const NATIVE_EXPORTS: readonly (keyof NativeModule)[] = (Object.keys(names) as (keyof NativeModule)[]).sort();
