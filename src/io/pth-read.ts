// Reading torch.save checkpoints (see pth.ts for the file layout). Loading is data-only: the
// pickle's globals are checked against an allow-list and nothing is executed (see pickle.ts).
import { readDecoded } from './files.js';
import { defineKey } from './own.js';
import { PyDict, unpickle, type DictKey, type UnpickleHooks } from './pickle.js';
import { gather } from './strided.js';
import { DTYPE_ITEMSIZE, STORAGE_CLASS, copyBytes, isRawTensor, type DType, type PyValue, type RawTensor } from './tensor.js';
import { ZipReader } from './zip.js';

const STORAGE_DTYPE = new Map<string, DType>(Object.entries(STORAGE_CLASS).map(([d, c]) => [c, d as DType]));

/** Allow-listed globals become these tokens; the VM hands them back to our hooks. */
type CallableToken = 'OrderedDict' | 'rebuild_tensor_v2' | 'rebuild_tensor' | 'rebuild_parameter' | 'device' | 'Size';
class Callable {
  constructor(
    readonly kind: CallableToken,
    readonly qualname: string,
  ) {}
}
class StorageClass {
  constructor(
    readonly dtype: DType,
    readonly qualname: string,
  ) {}
}
/** A storage referenced by a persistent id; its bytes are the record data/<key>. */
class StorageRef {
  constructor(
    readonly dtype: DType,
    readonly key: string,
    readonly numel: number,
  ) {}
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
    /** false: tensors keep dtype and shape but no data (reading a checkpoint's metadata only). */
    private readonly withData = true,
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
    if (!this.withData) return { kind: 'tensor', dtype, shape: [...size], data: new Uint8Array(0) };
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
        const out: { [k: string]: PyValue } = {};
        seen.set(v, out);
        for (const [k, x] of v.entries) defineKey(out, k as string, convert(x, depth + 1));
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

/** Decode a torch.save zip archive held in memory; `withData` false leaves every tensor's data empty. */
export function decodePth(bytes: Uint8Array, withData = true): PyValue {
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
    const order = Buffer.from(zip.read(`${prefix}byteorder`))
      .toString('latin1')
      .trim();
    if (order === 'big') bigEndian = true;
    else if (order !== 'little') throw new Error(`unknown byteorder record "${order.slice(0, 20)}"`);
  }

  const reader = new PthReader(zip, prefix, bigEndian, u8.length, withData);
  return toPyValue(unpickle(zip.read(pkl[0]), reader));
}

/** Load a torch.save checkpoint (`withData` false: tensors without data). Errors name the file. */
export function loadPth(path: string, withData = true): Promise<PyValue> {
  return readDecoded(path, (b) => decodePth(b, withData));
}
