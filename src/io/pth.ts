// PyTorch `.pth` checkpoints (torch.save / torch.load zip format) in pure TypeScript.
//
// Why not libtorch's pickle_load: libtorch 1.13 cannot read OrderedDict state
// dicts (model.state_dict()), one-item dicts (SETITEM) or nn.Parameter values
// (see shared/reference/libtorch-binding-notes.md §2). This module reads and
// writes the format itself and never depends on the native addon.
//
// File layout (torch >= 1.6, "zip" serialization):
//   <archive>/data.pkl      pickle (protocol 2) of the object; tensors appear as
//                           _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)
//                           where `storage` is a persistent id ('storage', torch.FloatStorage, key, location, numel)
//   <archive>/data/<key>    raw little-endian bytes of storage <key> (numel * itemsize)
//   <archive>/byteorder     "little" (torch >= 2.1 writes it; absent means little)
//   <archive>/version       "3\n"
// <archive> is any name (Python uses the file stem); records are stored
// uncompressed with data aligned to 64 bytes.
//
// Loading is data-only: globals are checked against an allow-list and nothing
// is executed (see pickle.ts).
import { randomBytes } from 'node:crypto';
import { constants as bufferConstants } from 'node:buffer';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { PickleWriter, PyDict, unpickle, type DictKey, type UnpickleHooks } from './pickle.js';
import { ZipReader, concatChunks, zipChunks, type ZipRecord } from './zip.js';

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

export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | RawTensor
  | PyFloat
  | PyValue[]
  | { [k: string]: PyValue }
  | Map<string | number, PyValue>;

export const DTYPE_ITEMSIZE: Readonly<Record<DType, number>> = {
  float32: 4, float64: 8, float16: 2, bfloat16: 2, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1,
};

/** torch's typed storage class for each dtype (the dtype of a saved tensor is carried by this class). */
const STORAGE_CLASS: Readonly<Record<DType, string>> = {
  float32: 'FloatStorage', float64: 'DoubleStorage', float16: 'HalfStorage', bfloat16: 'BFloat16Storage',
  int64: 'LongStorage', int32: 'IntStorage', int16: 'ShortStorage', int8: 'CharStorage', uint8: 'ByteStorage', bool: 'BoolStorage',
};
const STORAGE_DTYPE = new Map<string, DType>(Object.entries(STORAGE_CLASS).map(([d, c]) => [c, d as DType]));

function isDType(x: unknown): x is DType {
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

function isRawTensor(v: unknown): v is RawTensor {
  return typeof v === 'object' && v !== null && (v as RawTensor).kind === 'tensor' && (v as RawTensor).data instanceof Uint8Array;
}

/** Validate a shape (non-negative safe integers) and return its element count. */
function checkShape(shape: unknown, what: string): number {
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
function copyBytes(src: Uint8Array, start = 0, end = src.length): Uint8Array {
  const out = new Uint8Array(end - start);
  out.set(src.subarray(start, end));
  return out;
}

// ===========================================================================
// Reading

/** Allow-listed globals become these tokens; the VM hands them back to our hooks. */
type CallableToken = 'OrderedDict' | 'rebuild_tensor_v2' | 'rebuild_tensor' | 'rebuild_parameter' | 'device' | 'Size';
class Callable {
  constructor(readonly kind: CallableToken, readonly qualname: string) {}
}
class StorageClass {
  constructor(readonly dtype: DType, readonly qualname: string) {}
}
/** A storage referenced by a persistent id; its bytes are the record data/<key>. */
class StorageRef {
  constructor(readonly dtype: DType, readonly key: string, readonly numel: number) {}
}

const ALLOWED_CALLABLES = new Map<string, CallableToken>([
  ['collections.OrderedDict', 'OrderedDict'],
  ['torch._utils._rebuild_tensor_v2', 'rebuild_tensor_v2'],
  ['torch._utils._rebuild_tensor', 'rebuild_tensor'],
  ['torch._utils._rebuild_parameter', 'rebuild_parameter'],
  ['torch.device', 'device'],
  ['torch.Size', 'Size'],
]);

/**
 * Every _rebuild_tensor_v2 call materialises a copy, so a few bytes of pickle can
 * ask for a huge allocation (a broadcast view, or one storage rebuilt thousands of
 * times). Real files materialise about their own size; allow a generous multiple
 * (and 1 GiB for small files with broadcast views), and fail cleanly past that
 * instead of running out of memory.
 */
const OUTPUT_BUDGET_FACTOR = 8;
const OUTPUT_BUDGET_MIN = 1 << 30;

function describeValue(v: unknown): string {
  if (v === null) return 'None';
  if (Array.isArray(v)) return 'sequence';
  if (v instanceof PyDict) return 'dict';
  if (v instanceof Callable) return v.qualname;
  if (v instanceof StorageClass) return v.qualname;
  if (v instanceof StorageRef) return 'storage';
  if (isRawTensor(v)) return 'tensor';
  return typeof v;
}

function isIntArray(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((x) => Number.isSafeInteger(x) && x >= 0);
}

class PthReader implements UnpickleHooks {
  private readonly storages = new Map<string, Uint8Array>();
  /** Bytes of tensor data we may still materialise (see OUTPUT_BUDGET_FACTOR). */
  private budget: number;

  constructor(
    private readonly zip: ZipReader,
    private readonly prefix: string, // "<archive>/"
    private readonly bigEndian: boolean,
    fileBytes: number,
  ) {
    this.budget = Math.max(OUTPUT_BUDGET_FACTOR * fileBytes, OUTPUT_BUDGET_MIN);
  }

  findGlobal(module: string, name: string): unknown {
    const qualname = `${module}.${name}`;
    const token = ALLOWED_CALLABLES.get(qualname);
    if (token) return new Callable(token, qualname);
    // torch.cuda.*Storage appears in files saved from GPU by old torch versions; the bytes are the same.
    if (module === 'torch' || module === 'torch.cuda') {
      const dtype = STORAGE_DTYPE.get(name);
      if (dtype) return new StorageClass(dtype, qualname);
    }
    if ((module === 'torch' || module === 'torch.storage') && (name === 'UntypedStorage' || name === '_UntypedStorage')) {
      return new StorageClass('uint8', qualname);
    }
    let hint = 'only tensors, storages, OrderedDict and plain Python values are allowed';
    if (module.startsWith('__torch__')) hint = 'this is a TorchScript archive (torch.jit.save); load it with torch.jit.load and save model.state_dict() instead';
    else if (module.startsWith('torch.nn') || module === '__main__') hint = 'the file pickles a whole Python object; save model.state_dict() instead';
    throw new Error(`refusing to load global "${qualname}": ${hint}`);
  }

  call(fn: unknown, args: readonly unknown[]): unknown {
    if (!(fn instanceof Callable)) throw new Error(`pickle calls a non-callable ${describeValue(fn)}`);
    switch (fn.kind) {
      case 'OrderedDict': {
        const d = new PyDict();
        if (args.length === 0) return d;
        // OrderedDict([(k, v), ...]) — rare, but harmless to support.
        if (args.length === 1 && Array.isArray(args[0])) {
          for (const kv of args[0]) {
            if (!Array.isArray(kv) || kv.length !== 2 || (typeof kv[0] !== 'string' && typeof kv[0] !== 'number')) {
              throw new Error('OrderedDict argument must be a list of (str|int, value) pairs');
            }
            d.entries.set(kv[0] as DictKey, kv[1]);
          }
          return d;
        }
        throw new Error('unsupported OrderedDict arguments');
      }
      case 'rebuild_tensor_v2':
        // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata]); hooks and metadata are dropped.
        if (args.length !== 6 && args.length !== 7) throw new Error(`_rebuild_tensor_v2 expects 6 or 7 arguments, got ${args.length}`);
        if (typeof args[4] !== 'boolean') throw new Error('_rebuild_tensor_v2: requires_grad must be a bool');
        return this.tensor(args[0], args[1], args[2], args[3], args[4]);
      case 'rebuild_tensor':
        if (args.length !== 4) throw new Error(`_rebuild_tensor expects 4 arguments, got ${args.length}`);
        return this.tensor(args[0], args[1], args[2], args[3], false);
      case 'rebuild_parameter': {
        // (data, requires_grad, backward_hooks): an nn.Parameter is its data tensor plus a flag.
        if (args.length < 2 || args.length > 3 || !isRawTensor(args[0]) || typeof args[1] !== 'boolean') {
          throw new Error('_rebuild_parameter expects (tensor, bool[, hooks])');
        }
        const t: RawTensor = { ...(args[0] as RawTensor) };
        if (args[1]) t.requiresGrad = true;
        else delete t.requiresGrad;
        return t;
      }
      case 'device': {
        // torch.device('cuda', 1) -> "cuda:1"
        const [type, index] = args;
        if (typeof type !== 'string' || args.length > 2 || (index !== undefined && index !== null && !Number.isSafeInteger(index))) {
          throw new Error('torch.device expects (str[, int])');
        }
        return index === undefined || index === null ? type : `${type}:${index}`;
      }
      case 'Size':
        if (args.length !== 1 || !isIntArray(args[0])) throw new Error('torch.Size expects a sequence of ints');
        return args[0];
    }
  }

  persistentLoad(pid: unknown): unknown {
    // ('storage', torch.FloatStorage, '<key>', '<location>', numel)
    if (!Array.isArray(pid) || pid.length !== 5 || pid[0] !== 'storage') throw new Error('unsupported persistent id (expected a storage tuple)');
    const [, cls, key, location, numel] = pid;
    if (!(cls instanceof StorageClass)) throw new Error(`persistent id names ${describeValue(cls)}, not a storage class`);
    if (typeof key !== 'string' || typeof location !== 'string') throw new Error('storage key and location must be strings');
    if (!Number.isSafeInteger(numel) || (numel as number) < 0) throw new Error(`storage ${key} has invalid size ${String(numel)}`);
    return new StorageRef(cls.dtype, key, numel as number);
  }

  build(obj: unknown, _state: unknown): unknown {
    // OrderedDict state is its instance __dict__, e.g. state_dict()'s `_metadata` (per-module versions). Not data; drop it.
    if (obj instanceof PyDict) return obj;
    throw new Error(`cannot BUILD a ${describeValue(obj)}`);
  }

  /** Bytes of a storage (numel * itemsize, little-endian), read and CRC-checked once per key. */
  private storageBytes(ref: StorageRef): Uint8Array {
    let b = this.storages.get(ref.key);
    if (!b) {
      const name = `${this.prefix}data/${ref.key}`;
      if (!this.zip.has(name)) throw new Error(`storage record "${name}" is missing`);
      b = this.zip.read(name);
      if (this.bigEndian && DTYPE_ITEMSIZE[ref.dtype] > 1) {
        const n = Math.floor(b.length / DTYPE_ITEMSIZE[ref.dtype]) * DTYPE_ITEMSIZE[ref.dtype];
        const swapped = Buffer.from(copyBytes(b, 0, n).buffer);
        if (DTYPE_ITEMSIZE[ref.dtype] === 2) swapped.swap16();
        else if (DTYPE_ITEMSIZE[ref.dtype] === 4) swapped.swap32();
        else swapped.swap64();
        b = new Uint8Array(swapped.buffer, swapped.byteOffset, swapped.length);
      }
      this.storages.set(ref.key, b);
    }
    const need = ref.numel * DTYPE_ITEMSIZE[ref.dtype];
    if (b.length < need) throw new Error(`storage ${ref.key} has ${b.length} bytes, expected ${need} (${ref.numel} × ${ref.dtype})`);
    return b.subarray(0, need);
  }

  private tensor(storage: unknown, offset: unknown, size: unknown, stride: unknown, requiresGrad: boolean): RawTensor {
    if (!(storage instanceof StorageRef)) throw new Error(`tensor storage is a ${describeValue(storage)}`);
    if (!Number.isSafeInteger(offset) || (offset as number) < 0) throw new Error(`invalid storage offset ${String(offset)}`);
    if (!isIntArray(size) || !isIntArray(stride) || size.length !== stride.length) throw new Error('tensor size/stride must be equal-length tuples of non-negative ints');
    const dtype = storage.dtype;
    const bytes = size.reduce((a, b) => a * b, DTYPE_ITEMSIZE[dtype]);
    if (bytes > this.budget) {
      throw new Error(`tensor data would exceed ${OUTPUT_BUDGET_FACTOR}× the file size (a ${bytes}-byte view of a ${storage.numel}-element storage); refusing to materialise it`);
    }
    this.budget -= bytes;
    const data = gather(this.storageBytes(storage), DTYPE_ITEMSIZE[dtype], offset as number, size, stride);
    const t: RawTensor = { kind: 'tensor', dtype, shape: [...size], data };
    if (requiresGrad) t.requiresGrad = true;
    return t;
  }
}

/**
 * Copy the strided view (offset, shape, stride in elements) of `src` into a new
 * C-contiguous buffer. Dims are first simplified (size-1 dims dropped, adjacent
 * dims merged when they are contiguous with each other), so ordinary tensors are
 * one memcpy, row-major slices a memcpy per row, and only truly permuted layouts
 * (transposes, channels_last) take the per-element loop.
 */
function gather(src: Uint8Array, itemsize: number, offset: number, shape: number[], stride: number[]): Uint8Array {
  let numel = 1;
  for (const s of shape) numel *= s;
  if (numel === 0) return new Uint8Array(0);
  const outBytes = numel * itemsize;
  const storageNumel = src.length / itemsize;
  let last = offset;
  for (let d = 0; d < shape.length; d++) last += (shape[d] - 1) * stride[d];
  if (!Number.isSafeInteger(outBytes) || last >= storageNumel) {
    throw new Error(`tensor view (offset ${offset}, size [${shape.join(', ')}], stride [${stride.join(', ')}]) exceeds its storage of ${storageNumel} elements`);
  }
  if (outBytes > bufferConstants.MAX_LENGTH) {
    throw new Error(`refusing to materialise a ${outBytes}-byte view (larger than a Node buffer can be)`);
  }

  // dims: [size, stride] outermost first, simplified.
  const dims: [number, number][] = [];
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const prev = dims[dims.length - 1];
    if (prev && prev[1] === shape[d] * stride[d]) {
      prev[0] *= shape[d];
      prev[1] = stride[d];
    } else dims.push([shape[d], stride[d]]);
  }
  if (dims.length === 0 || (dims.length === 1 && dims[0][1] === 1)) {
    return copyBytes(src, offset * itemsize, offset * itemsize + outBytes);
  }

  const out = new Uint8Array(outBytes);
  const [innerSize, innerStride] = dims[dims.length - 1];
  const outer = dims.slice(0, -1);
  const idx = new Array<number>(outer.length).fill(0);
  const rows = numel / innerSize;
  let base = offset; // element index of the current row's first element
  const advance = (): void => {
    for (let k = outer.length - 1; k >= 0; k--) {
      base += outer[k][1];
      if (++idx[k] < outer[k][0]) return;
      base -= outer[k][1] * outer[k][0];
      idx[k] = 0;
    }
  };

  if (innerStride === 1) {
    const rowBytes = innerSize * itemsize;
    for (let r = 0, o = 0; r < rows; r++, o += rowBytes) {
      out.set(src.subarray(base * itemsize, base * itemsize + rowBytes), o);
      advance();
    }
    return out;
  }

  // Per-element copy in word units (8-byte items as two u32 words, so NaN payloads are never touched).
  const word = Math.min(itemsize, 4);
  const wordsPerItem = itemsize / word;
  const aligned = src.byteOffset % word === 0 ? src : copyBytes(src);
  const view = (buf: ArrayBufferLike, byteOffset: number, bytes: number): Uint8Array | Uint16Array | Uint32Array =>
    word === 1 ? new Uint8Array(buf, byteOffset, bytes) : word === 2 ? new Uint16Array(buf, byteOffset, bytes / 2) : new Uint32Array(buf, byteOffset, bytes / 4);
  const s = view(aligned.buffer, aligned.byteOffset, aligned.length);
  const d = view(out.buffer, 0, out.length);
  let o = 0;
  for (let r = 0; r < rows; r++) {
    if (wordsPerItem === 1) {
      for (let j = 0, p = base; j < innerSize; j++, p += innerStride) d[o++] = s[p];
    } else {
      for (let j = 0, p = base * 2; j < innerSize; j++, p += innerStride * 2) {
        d[o++] = s[p];
        d[o++] = s[p + 1];
      }
    }
    advance();
  }
  return out;
}

/** Deepest container nesting we convert; Python's own pickler stops near 1000. */
const MAX_DEPTH = 2000;

/** Turn VM objects into PyValue: PyDict -> object or Map, tuples -> arrays. Shared/cyclic references stay shared. */
function toPyValue(root: unknown): PyValue {
  const seen = new Map<object, PyValue>();
  const convert = (v: unknown, depth: number): PyValue => {
    if (v === null || typeof v === 'boolean' || typeof v === 'number' || typeof v === 'bigint' || typeof v === 'string') return v;
    if (depth > MAX_DEPTH) throw new Error(`containers nested deeper than ${MAX_DEPTH} levels`);
    if (isRawTensor(v)) return v;
    const done = seen.get(v as object);
    if (done !== undefined) return done;
    if (Array.isArray(v)) {
      const out: PyValue[] = [];
      seen.set(v, out);
      for (const x of v) out.push(convert(x, depth + 1));
      return out;
    }
    if (v instanceof PyDict) {
      const allStrings = [...v.entries.keys()].every((k) => typeof k === 'string');
      if (allStrings) {
        // defineProperty, not assignment: a key "__proto__" must become an own property, not a prototype swap.
        const out: { [k: string]: PyValue } = {};
        seen.set(v, out);
        for (const [k, x] of v.entries) Object.defineProperty(out, k, { value: convert(x, depth + 1), enumerable: true, writable: true, configurable: true });
        return out;
      }
      const out = new Map<string | number, PyValue>();
      seen.set(v, out);
      for (const [k, x] of v.entries) out.set(k, convert(x, depth + 1));
      return out;
    }
    throw new Error(`checkpoint contains an unsupported object: ${describeValue(v)}`);
  };
  return convert(root, 0);
}

/** Decode a torch.save zip archive held in memory. */
export function decodePth(bytes: Uint8Array): PyValue {
  // A plain Uint8Array view: Buffer's slice() semantics differ and must not leak in.
  const u8 = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const isZip = u8.length >= 4 && u8[0] === 0x50 && u8[1] === 0x4b && (u8[2] === 3 || u8[2] === 5);
  if (!isZip) {
    // Legacy torch.save (before 1.6) wrote a bare pickle stream (starts with PROTO 0x80) or, before 0.4, a tar file.
    const isTar = u8.length > 262 && Buffer.from(u8.subarray(257, 262)).toString('latin1') === 'ustar';
    if ((u8.length > 0 && u8[0] === 0x80) || isTar) throw new Error('legacy torch.save format; re-save it with torch>=1.6');
    throw new Error('not a PyTorch checkpoint (not a zip archive)');
  }
  const zip = new ZipReader(u8);

  const pkl = [...zip.entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkl.length === 0) {
    const names = [...zip.entries.keys()];
    if (names.some((n) => /\/(constants\.pkl|code\/)/.test(n))) {
      throw new Error('this is a TorchScript archive (torch.jit.save), not a torch.save checkpoint');
    }
    throw new Error('zip archive has no <archive>/data.pkl record; not a PyTorch checkpoint');
  }
  if (pkl.length > 1) throw new Error(`ambiguous checkpoint: several data.pkl records (${pkl.join(', ')})`);
  const prefix = pkl[0].slice(0, -'data.pkl'.length);

  let bigEndian = false;
  if (zip.has(`${prefix}byteorder`)) {
    const order = Buffer.from(zip.read(`${prefix}byteorder`)).toString('latin1').trim();
    if (order === 'big') bigEndian = true;
    else if (order !== 'little') throw new Error(`unknown byteorder record "${order.slice(0, 20)}"`);
  }

  const reader = new PthReader(zip, prefix, bigEndian, u8.length);
  return toPyValue(unpickle(zip.read(pkl[0]), reader));
}

/** Load a torch.save checkpoint. Errors name the file. */
export async function loadPth(path: string): Promise<PyValue> {
  const bytes = await readFile(path);
  try {
    return decodePth(bytes);
  } catch (err) {
    throw new Error(`${path}: ${(err as Error).message}`, { cause: err });
  }
}

// ===========================================================================
// Writing

/** Pickle `value` the way torch.save does and return the archive's records. */
function pthRecords(value: PyValue, archiveName: string): ZipRecord[] {
  if (!/^[^/\\\x00-\x1f]+$/.test(archiveName) || archiveName === '.' || archiveName === '..') {
    throw new Error(`invalid archive name ${JSON.stringify(archiveName)}`);
  }
  const w = new PickleWriter();
  const storages: ZipRecord[] = [];
  const tensorMemo = new Map<RawTensor, number>(); // same tensor object -> same Python tensor
  const ancestors = new Set<object>(); // cycle detection

  const writeKey = (k: unknown, path: string): void => {
    if (typeof k === 'string') w.str(k);
    else if (typeof k === 'number') writeNumber(k);
    else throw new Error(`${path}: Map keys must be strings or numbers, got ${typeof k}`);
  };
  const writeNumber = (v: number): void => {
    // An integral JS number is a Python int; use PyFloat to force a float. -0 stays a float to keep its sign.
    if (Number.isInteger(v) && !Object.is(v, -0)) w.int(v);
    else w.float(v);
  };
  const intTuple = (xs: number[]): void => {
    if (xs.length > 3) w.mark();
    for (const x of xs) w.int(x);
    w.tuple(xs.length);
  };

  const writeTensor = (t: RawTensor, path: string): void => {
    const memo = tensorMemo.get(t);
    if (memo !== undefined) return w.get(memo);
    if (!isDType(t.dtype)) throw new Error(`${path}: unknown dtype ${String(t.dtype)}`);
    const numel = checkShape(t.shape, `${path}: shape`);
    const want = numel * DTYPE_ITEMSIZE[t.dtype];
    if (t.data.length !== want) throw new Error(`${path}: tensor data has ${t.data.length} bytes, but ${t.dtype}[${t.shape.join(', ')}] needs ${want}`);
    // Contiguous strides as torch computes them (a size-0 dim counts as 1).
    const stride = new Array<number>(t.shape.length);
    for (let d = t.shape.length - 1, s = 1; d >= 0; d--) {
      stride[d] = s;
      s *= Math.max(t.shape[d], 1);
    }
    const key = String(storages.length);
    storages.push({ name: `${archiveName}/data/${key}`, data: t.data });

    // _rebuild_tensor_v2(('storage', torch.XStorage, key, 'cpu', numel), 0, size, stride, requires_grad, OrderedDict())
    w.global('torch._utils', '_rebuild_tensor_v2');
    w.mark();
    w.mark();
    w.str('storage');
    w.global('torch', STORAGE_CLASS[t.dtype]);
    w.str(key);
    w.str('cpu');
    w.int(numel);
    w.tuple(5);
    w.binPersId();
    w.int(0);
    intTuple(t.shape);
    intTuple(stride);
    w.bool(t.requiresGrad === true);
    w.global('collections', 'OrderedDict');
    w.emptyTuple();
    w.reduce();
    w.tuple(6);
    w.reduce();
    tensorMemo.set(t, w.put());
  };

  const BATCH = 1000; // like Python's pickler: bounded MARK frames
  const write = (v: unknown, path: string): void => {
    if (v === null) return w.none();
    switch (typeof v) {
      case 'boolean': return w.bool(v);
      case 'number': return writeNumber(v);
      case 'bigint': return w.int(v);
      case 'string': return w.str(v);
      case 'object': break;
      default: throw new Error(`${path}: cannot save a ${typeof v}`);
    }
    const obj = v as object;
    if (obj instanceof PyFloat) {
      if (typeof obj.value !== 'number') throw new Error(`${path}: PyFloat value must be a number`);
      return w.float(obj.value);
    }
    if (isRawTensor(obj)) return writeTensor(obj, path);
    if (ancestors.has(obj)) throw new Error(`${path}: value contains a reference cycle`);
    ancestors.add(obj);
    if (Array.isArray(obj)) {
      w.emptyList();
      for (let i = 0; i < obj.length; i += BATCH) {
        w.mark();
        for (let j = i; j < Math.min(obj.length, i + BATCH); j++) write(obj[j], `${path}[${j}]`);
        w.appends();
      }
    } else {
      let entries: [unknown, unknown][];
      if (obj instanceof Map) entries = [...obj.entries()];
      else {
        const proto = Object.getPrototypeOf(obj);
        if (proto !== Object.prototype && proto !== null) throw new Error(`${path}: cannot save a ${obj.constructor?.name ?? 'object'}`);
        entries = Object.entries(obj);
      }
      // Always SETITEMS, even for one item: libtorch 1.13's unpickler lacks SETITEM.
      w.emptyDict();
      for (let i = 0; i < entries.length; i += BATCH) {
        w.mark();
        for (const [k, x] of entries.slice(i, i + BATCH)) {
          const sub = `${path}[${JSON.stringify(k) ?? String(k)}]`;
          writeKey(k, sub);
          write(x, sub);
        }
        w.setItems();
      }
    }
    ancestors.delete(obj);
  };

  w.proto();
  write(value, 'value');
  w.stop();

  const text = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));
  return [
    { name: `${archiveName}/data.pkl`, data: w.bytes() },
    { name: `${archiveName}/byteorder`, data: text('little') },
    ...storages,
    { name: `${archiveName}/version`, data: text('3\n') },
  ];
}

/** Encode `value` as a torch.save zip archive (readable by torch.load(..., weights_only=True)). */
export function encodePth(value: PyValue, archiveName = 'archive'): Uint8Array {
  return concatChunks(zipChunks(pthRecords(value, archiveName)));
}

/** Write chunks to `path` atomically: temp file in the same directory, fsync, rename. */
export async function writeFileAtomic(path: string, chunks: readonly Uint8Array[]): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx');
  try {
    for (const c of chunks) {
      for (let off = 0; off < c.length; ) off += (await fh.write(c, off, c.length - off)).bytesWritten;
    }
    await fh.sync();
    await fh.close();
  } catch (err) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw err;
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  // Persist the rename itself; not every platform can fsync a directory, so this is best effort.
  try {
    const dh = await open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch {
    /* best effort */
  }
}

/** Save `value` like torch.save (archive named after the file stem, as Python does); atomic. */
export async function savePth(path: string, value: PyValue): Promise<void> {
  const stem = basename(path, extname(path));
  const archiveName = /^[\w.-]+$/.test(stem) && stem !== '.' && stem !== '..' ? stem : 'archive';
  let chunks: Uint8Array[];
  try {
    chunks = zipChunks(pthRecords(value, archiveName));
  } catch (err) {
    throw new Error(`${path}: ${(err as Error).message}`, { cause: err });
  }
  await writeFileAtomic(path, chunks);
}
