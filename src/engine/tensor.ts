/** Tensor: a typed handle over a libtorch tensor (native/tensor.cpp, ops.cpp, autograd.cpp). */
import { N, type NativeHandle } from './native.js';
import type { Device, DType, MemoryFormat, Scalar } from './native-contract.js';
import { keep, Scoped, tidy } from './scope.js';

export type { Device, DType, MemoryFormat, Reduction, Scalar } from './native-contract.js';
type TensorOrScalar = Tensor | Scalar;

const isT = (x: unknown): x is Tensor => x instanceof Tensor;
const h = (x: TensorOrScalar): NativeHandle | Scalar => (isT(x) ? x.h : x);
const hOpt = (x: Tensor | null | undefined): NativeHandle | null => (x ? x.h : null);

export function wrap(handle: NativeHandle): Tensor {
  return new Tensor(handle);
}
export function wrapList(handles: NativeHandle[]): Tensor[] {
  return handles.map(wrap);
}
/** The handles of a tensor list. */
export const handlesOf = (ts: Tensor[]): NativeHandle[] => ts.map((t) => t.h);

export class Tensor extends Scoped {
  /** @internal the native handle; only src/engine uses it. */
  readonly h: NativeHandle;

  constructor(handle: NativeHandle) {
    super();
    this.h = handle;
  }

  // ---- metadata
  get shape(): number[] {
    return N.shape(this.h);
  }
  get dtype(): DType {
    return N.dtype(this.h);
  }
  get device(): string {
    return N.device(this.h);
  }
  get ndim(): number {
    return this.shape.length;
  }
  get numel(): number {
    return N.numel(this.h);
  }
  get strides(): number[] {
    return N.strides(this.h);
  }
  get requiresGrad(): boolean {
    return N.requiresGrad(this.h);
  }
  get isLeaf(): boolean {
    return N.isLeaf(this.h);
  }
  get isDisposed(): boolean {
    return N.isDisposed(this.h);
  }
  isContiguous(format: MemoryFormat = 'contiguous'): boolean {
    return N.isContiguous(this.h, format);
  }
  size(dim: number): number {
    const s = this.shape;
    const d = dim < 0 ? s.length + dim : dim;
    if (d < 0 || d >= s.length) throw new RangeError(`dimension ${dim} out of range for a ${s.length}-d tensor`);
    return s[d];
  }
  toString(): string {
    return this.isDisposed ? 'Tensor(disposed)' : `Tensor(shape=[${this.shape}], dtype=${this.dtype}, device=${this.device})`;
  }

  // ---- lifetime
  dispose(): void {
    N.dispose(this.h);
  }
  /** Keeps this tensor alive past the enclosing tidy() scopes. */
  keep(): this {
    return keep(this);
  }

  // ---- data transfer
  /** Copies the data to a typed array (float16/bfloat16 come back as raw Uint16Array bits). */
  data(): Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array | Int16Array | Uint16Array {
    const buf: ArrayBuffer = N.toBuffer(this.h);
    switch (this.dtype) {
      case 'float32':
        return new Float32Array(buf);
      case 'float64':
        return new Float64Array(buf);
      case 'int32':
        return new Int32Array(buf);
      case 'int64':
        return new BigInt64Array(buf);
      case 'int16':
        return new Int16Array(buf);
      case 'int8':
        return new Int8Array(buf);
      case 'float16':
      case 'bfloat16':
        return new Uint16Array(buf);
      default:
        return new Uint8Array(buf);
    }
  }
  /** The raw little-endian C-contiguous bytes. */
  bytes(): Uint8Array {
    return new Uint8Array(N.toBuffer(this.h));
  }
  /** Values as plain numbers (converted through float64; fine for metrics and tests). */
  toArray(): number[] {
    return Array.from(tidy(() => this.to({ dtype: 'float64' })).disposeAfter((t) => t.data() as Float64Array));
  }
  item(): number {
    const v = N.item(this.h);
    return typeof v === 'boolean' ? Number(v) : v;
  }
  /** Runs fn(this) then disposes this tensor; returns fn's result. */
  disposeAfter<R>(fn: (t: this) => R): R {
    try {
      return fn(this);
    } finally {
      this.dispose();
    }
  }

  // ---- conversion and views
  to(opts: { device?: Device | string; dtype?: DType; nonBlocking?: boolean; copy?: boolean }): Tensor {
    return wrap(N.to(this.h, opts.device ?? null, opts.dtype ?? null, opts.nonBlocking ?? false, opts.copy ?? false));
  }
  float(): Tensor {
    return this.to({ dtype: 'float32' });
  }
  long(): Tensor {
    return this.to({ dtype: 'int64' });
  }
  contiguous(format: MemoryFormat = 'contiguous'): Tensor {
    return wrap(N.contiguous(this.h, format));
  }
  clone(format: MemoryFormat = 'preserve'): Tensor {
    return wrap(N.clone(this.h, format));
  }
  pinMemory(): Tensor {
    return wrap(N.pinMemory(this.h));
  }
  detach(): Tensor {
    return wrap(N.detach(this.h));
  }
  reshape(shape: number[]): Tensor {
    return wrap(N.reshape(this.h, shape));
  }
  view(shape: number[]): Tensor {
    return wrap(N.view(this.h, shape));
  }
  permute(dims: number[]): Tensor {
    return wrap(N.permute(this.h, dims));
  }
  transpose(d0: number, d1: number): Tensor {
    return wrap(N.transpose(this.h, d0, d1));
  }
  slice(dim: number, start: number | null, end: number | null, step = 1): Tensor {
    return wrap(N.slice(this.h, dim, start, end, step));
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return wrap(N.narrow(this.h, dim, start, length));
  }
  select(dim: number, index: number): Tensor {
    return wrap(N.select(this.h, dim, index));
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    return wrap(N.indexSelect(this.h, dim, index.h));
  }
  gather(dim: number, index: Tensor): Tensor {
    return wrap(N.gather(this.h, dim, index.h));
  }
  maskedSelect(mask: Tensor): Tensor {
    return wrap(N.maskedSelect(this.h, mask.h));
  }
  squeeze(dim?: number): Tensor {
    return wrap(N.squeeze(this.h, dim ?? null));
  }
  unsqueeze(dim: number): Tensor {
    return wrap(N.unsqueeze(this.h, dim));
  }
  flatten(start = 0, end = -1): Tensor {
    return wrap(N.flatten(this.h, start, end));
  }
  expand(shape: number[]): Tensor {
    return wrap(N.expand(this.h, shape));
  }
  chunk(chunks: number, dim = 0): Tensor[] {
    return wrapList(N.chunk(this.h, chunks, dim));
  }

  // ---- elementwise
  add(other: TensorOrScalar, alpha = 1): Tensor {
    return wrap(N.add(this.h, h(other), alpha));
  }
  sub(other: TensorOrScalar, alpha = 1): Tensor {
    return wrap(N.sub(this.h, h(other), alpha));
  }
  mul(other: TensorOrScalar): Tensor {
    return wrap(N.mul(this.h, h(other)));
  }
  div(other: TensorOrScalar): Tensor {
    return wrap(N.div(this.h, h(other)));
  }
  pow(other: TensorOrScalar): Tensor {
    return wrap(N.pow(this.h, h(other)));
  }
  remainder(other: TensorOrScalar): Tensor {
    return wrap(N.remainder(this.h, h(other)));
  }
  eq(other: TensorOrScalar): Tensor {
    return wrap(N.eq(this.h, h(other)));
  }
  ne(other: TensorOrScalar): Tensor {
    return wrap(N.ne(this.h, h(other)));
  }
  lt(other: TensorOrScalar): Tensor {
    return wrap(N.lt(this.h, h(other)));
  }
  le(other: TensorOrScalar): Tensor {
    return wrap(N.le(this.h, h(other)));
  }
  gt(other: TensorOrScalar): Tensor {
    return wrap(N.gt(this.h, h(other)));
  }
  ge(other: TensorOrScalar): Tensor {
    return wrap(N.ge(this.h, h(other)));
  }
  maximum(other: Tensor): Tensor {
    return wrap(N.maximum(this.h, other.h));
  }
  minimum(other: Tensor): Tensor {
    return wrap(N.minimum(this.h, other.h));
  }
  logicalAnd(other: Tensor): Tensor {
    return wrap(N.logicalAnd(this.h, other.h));
  }
  logicalOr(other: Tensor): Tensor {
    return wrap(N.logicalOr(this.h, other.h));
  }
  logicalNot(): Tensor {
    return wrap(N.logicalNot(this.h));
  }
  neg(): Tensor {
    return wrap(N.neg(this.h));
  }
  abs(): Tensor {
    return wrap(N.abs(this.h));
  }
  exp(): Tensor {
    return wrap(N.exp(this.h));
  }
  log(): Tensor {
    return wrap(N.log(this.h));
  }
  log1p(): Tensor {
    return wrap(N.log1p(this.h));
  }
  sqrt(): Tensor {
    return wrap(N.sqrt(this.h));
  }
  rsqrt(): Tensor {
    return wrap(N.rsqrt(this.h));
  }
  sigmoid(): Tensor {
    return wrap(N.sigmoid(this.h));
  }
  relu(): Tensor {
    return wrap(N.relu(this.h));
  }
  tanh(): Tensor {
    return wrap(N.tanh(this.h));
  }
  square(): Tensor {
    return wrap(N.square(this.h));
  }
  reciprocal(): Tensor {
    return wrap(N.reciprocal(this.h));
  }
  floor(): Tensor {
    return wrap(N.floor(this.h));
  }
  ceil(): Tensor {
    return wrap(N.ceil(this.h));
  }
  round(): Tensor {
    return wrap(N.round(this.h));
  }
  sign(): Tensor {
    return wrap(N.sign(this.h));
  }
  sin(): Tensor {
    return wrap(N.sin(this.h));
  }
  cos(): Tensor {
    return wrap(N.cos(this.h));
  }
  isfinite(): Tensor {
    return wrap(N.isfinite(this.h));
  }
  isnan(): Tensor {
    return wrap(N.isnan(this.h));
  }
  isinf(): Tensor {
    return wrap(N.isinf(this.h));
  }
  clamp(min: number | null, max: number | null = null): Tensor {
    return wrap(N.clamp(this.h, min, max));
  }

  // ---- reductions (dims omitted = over everything)
  sum(dims?: number | number[], keepdim = false, dtype?: DType): Tensor {
    return wrap(N.sum(this.h, dims ?? null, keepdim, dtype ?? null));
  }
  mean(dims?: number | number[], keepdim = false): Tensor {
    return wrap(N.mean(this.h, dims ?? null, keepdim));
  }
  amax(dims?: number | number[], keepdim = false): Tensor {
    return wrap(N.amax(this.h, dims ?? null, keepdim));
  }
  amin(dims?: number | number[], keepdim = false): Tensor {
    return wrap(N.amin(this.h, dims ?? null, keepdim));
  }
  argmax(dim?: number, keepdim = false): Tensor {
    return wrap(N.argmax(this.h, dim ?? null, keepdim));
  }
  argmin(dim?: number, keepdim = false): Tensor {
    return wrap(N.argmin(this.h, dim ?? null, keepdim));
  }
  all(): Tensor {
    return wrap(N.all(this.h));
  }
  any(): Tensor {
    return wrap(N.any(this.h));
  }
  norm(p = 2, dims?: number | number[], keepdim = false): Tensor {
    return wrap(N.norm(this.h, p, dims ?? null, keepdim));
  }
  var(dims?: number | number[], keepdim = false, unbiased = true): Tensor {
    return wrap(N.var(this.h, dims ?? null, keepdim, unbiased));
  }
  matmul(other: Tensor): Tensor {
    return wrap(N.matmul(this.h, other.h));
  }
  softmax(dim: number, dtype?: DType): Tensor {
    return wrap(N.softmax(this.h, dim, dtype ?? null));
  }
  logSoftmax(dim: number, dtype?: DType): Tensor {
    return wrap(N.logSoftmax(this.h, dim, dtype ?? null));
  }

  // ---- in place (return this)
  add_(other: TensorOrScalar, alpha = 1): this {
    N.add_(this.h, h(other), alpha);
    return this;
  }
  mul_(other: TensorOrScalar): this {
    N.mul_(this.h, h(other));
    return this;
  }
  div_(other: TensorOrScalar): this {
    N.div_(this.h, h(other));
    return this;
  }
  addcmul_(a: Tensor, b: Tensor, value = 1): this {
    N.addcmul_(this.h, a.h, b.h, value);
    return this;
  }
  addcdiv_(a: Tensor, b: Tensor, value = 1): this {
    N.addcdiv_(this.h, a.h, b.h, value);
    return this;
  }
  lerp_(end: Tensor, weight: number): this {
    N.lerp_(this.h, end.h, weight);
    return this;
  }
  copy_(src: Tensor, nonBlocking = false): this {
    N.copy_(this.h, src.h, nonBlocking);
    return this;
  }
  zero_(): this {
    N.zero_(this.h);
    return this;
  }
  fill_(v: Scalar): this {
    N.fill_(this.h, v);
    return this;
  }
  sqrt_(): this {
    N.sqrt_(this.h);
    return this;
  }
  relu_(): this {
    N.relu_(this.h);
    return this;
  }
  clamp_(min: number | null, max: number | null = null): this {
    N.clamp_(this.h, min, max);
    return this;
  }
  uniform_(from: number, to: number): this {
    N.uniform_(this.h, from, to);
    return this;
  }
  normal_(mean: number, std: number): this {
    N.normal_(this.h, mean, std);
    return this;
  }
  /** Replaces the data behind this (parameter) tensor, keeping its identity (`p.data = v`). */
  setData(value: Tensor): this {
    N.setData(this.h, value.h);
    return this;
  }

  // ---- autograd
  requiresGrad_(flag = true): this {
    N.setRequiresGrad(this.h, flag);
    return this;
  }
  backward(grad?: Tensor, retainGraph = false): void {
    N.backward(this.h, hOpt(grad), retainGraph);
  }
  /** The accumulated gradient (a new handle each call: dispose it or use it inside tidy). */
  get grad(): Tensor | null {
    const g = N.grad(this.h);
    return g === null ? null : wrap(g);
  }
  set grad(g: Tensor | null) {
    N.setGrad(this.h, hOpt(g));
  }
}

export { h as handleOf, hOpt as optHandleOf };
