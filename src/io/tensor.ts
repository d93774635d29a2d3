// The values a checkpoint holds, as TypeScript sees them: dense tensors (RawTensor), Python
// floats that must stay floats (PyFloat) and plain containers (PyValue). Shared by the .pth
// and safetensors readers and writers.

export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

/** A dense tensor: `data` holds C-contiguous little-endian bytes, `shape` its logical size ([] = scalar). */
export interface RawTensor {
  kind: 'tensor';
  dtype: DType;
  shape: number[];
  data: Uint8Array;
  requiresGrad?: boolean;
}

/** Forces a Python float when writing (a JS number 1 would become the int 1, e.g. lr = 1 must stay 1.0). */
export class PyFloat {
  constructor(public value: number) {}
}

export type PyValue = null | boolean | number | bigint | string | RawTensor | PyFloat | PyValue[] | { [k: string]: PyValue } | Map<string | number, PyValue>;

export const DTYPE_ITEMSIZE: Readonly<Record<DType, number>> = {
  float32: 4,
  float64: 8,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

/** torch's typed storage class for each dtype (the dtype of a saved tensor is carried by this class). */
export const STORAGE_CLASS: Readonly<Record<DType, string>> = {
  float32: 'FloatStorage',
  float64: 'DoubleStorage',
  float16: 'HalfStorage',
  bfloat16: 'BFloat16Storage',
  int64: 'LongStorage',
  int32: 'IntStorage',
  int16: 'ShortStorage',
  int8: 'CharStorage',
  uint8: 'ByteStorage',
  bool: 'BoolStorage',
};

export function isDType(x: unknown): x is DType {
  return typeof x === 'string' && Object.hasOwn(DTYPE_ITEMSIZE, x);
}

/** Wrap any typed array / view as a RawTensor (no copy). Throws if the byte length does not match the shape. */
export function rawTensor(dtype: DType, shape: readonly number[], data: ArrayBufferView): RawTensor {
  if (!isDType(dtype)) throw new Error(`unknown dtype ${String(dtype)}`);
  const numel = checkShape(shape, 'shape');
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const want = numel * DTYPE_ITEMSIZE[dtype];
  if (bytes.length !== want) throw new Error(`tensor data has ${bytes.length} bytes, but ${dtype}[${shape.join(', ')}] needs ${want}`);
  return { kind: 'tensor', dtype, shape: [...shape], data: bytes };
}

export function isRawTensor(v: unknown): v is RawTensor {
  return typeof v === 'object' && v !== null && (v as RawTensor).kind === 'tensor' && (v as RawTensor).data instanceof Uint8Array;
}

/** Validate a shape (non-negative safe integers) and return its element count. */
export function checkShape(shape: unknown, what: string): number {
  if (!Array.isArray(shape)) throw new Error(`${what} must be an array of integers`);
  let numel = 1;
  for (const s of shape) {
    if (!Number.isSafeInteger(s) || s < 0) throw new Error(`${what} [${shape.join(', ')}] has an invalid dimension ${String(s)}`);
    numel *= s;
  }
  if (!Number.isSafeInteger(numel)) throw new Error(`${what} [${shape.join(', ')}] has too many elements`);
  return numel;
}

/** Own copy of a byte range (Buffer#slice would return a view, Uint8Array#slice a copy; be explicit). */
export function copyBytes(src: Uint8Array, start = 0, end = src.length): Uint8Array {
  const out = new Uint8Array(end - start);
  out.set(src.subarray(start, end));
  return out;
}
