// Writing torch.save checkpoints (see pth.ts for the file layout), byte for byte the records
// Python's pickler would write for the same value (protocol 2, memoized globals and tensors).
import { basename, extname } from 'node:path';
import { writeFileAtomic } from './files.js';
import { PickleWriter } from './pickle.js';
import { DTYPE_ITEMSIZE, PyFloat, STORAGE_CLASS, checkShape, isDType, isRawTensor, type PyValue, type RawTensor } from './tensor.js';
import { concatChunks, zipChunks, type ZipRecord } from './zip.js';

/** Items per MARK frame, like Python's pickler: bounded frames for long lists and dicts. */
const BATCH = 1000;

/** Pickles one value the way torch.save does; tensors' bytes become the `data/<key>` records. */
class TorchPickler {
  readonly w = new PickleWriter();
  readonly storages: ZipRecord[] = [];
  private readonly tensorMemo = new Map<RawTensor, number>(); // same tensor object -> same Python tensor
  private readonly ancestors = new Set<object>(); // cycle detection

  constructor(private readonly archiveName: string) {}

  value(v: unknown, path: string): void {
    const w = this.w;
    if (v === null) return w.none();
    switch (typeof v) {
      case 'boolean':
        return w.bool(v);
      case 'number':
        return this.number(v);
      case 'bigint':
        return w.int(v);
      case 'string':
        return w.str(v);
      case 'object':
        break;
      default:
        throw new Error(`${path}: cannot save a ${typeof v}`);
    }
    const obj = v as object;
    if (obj instanceof PyFloat) {
      if (typeof obj.value !== 'number') throw new Error(`${path}: PyFloat value must be a number`);
      return w.float(obj.value);
    }
    if (isRawTensor(obj)) return this.tensor(obj, path);
    if (this.ancestors.has(obj)) throw new Error(`${path}: value contains a reference cycle`);
    this.ancestors.add(obj);
    if (Array.isArray(obj)) this.list(obj, path);
    else this.dict(obj, path);
    this.ancestors.delete(obj);
  }

  private list(items: readonly unknown[], path: string): void {
    const w = this.w;
    w.emptyList();
    for (let i = 0; i < items.length; i += BATCH) {
      w.mark();
      for (let j = i; j < Math.min(items.length, i + BATCH); j++) this.value(items[j], `${path}[${j}]`);
      w.appends();
    }
  }

  private dict(obj: object, path: string): void {
    const w = this.w;
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
        this.key(k, sub);
        this.value(x, sub);
      }
      w.setItems();
    }
  }

  private key(k: unknown, path: string): void {
    if (typeof k === 'string') this.w.str(k);
    else if (typeof k === 'number') this.number(k);
    else throw new Error(`${path}: Map keys must be strings or numbers, got ${typeof k}`);
  }

  private number(v: number): void {
    // An integral JS number is a Python int; use PyFloat to force a float. -0 stays a float to keep its sign.
    if (Number.isInteger(v) && !Object.is(v, -0)) this.w.int(v);
    else this.w.float(v);
  }

  private intTuple(xs: number[]): void {
    if (xs.length > 3) this.w.mark();
    for (const x of xs) this.w.int(x);
    this.w.tuple(xs.length);
  }

  private tensor(t: RawTensor, path: string): void {
    const w = this.w;
    const memo = this.tensorMemo.get(t);
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
    const key = String(this.storages.length);
    this.storages.push({ name: `${this.archiveName}/data/${key}`, data: t.data });

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
    this.intTuple(t.shape);
    this.intTuple(stride);
    w.bool(t.requiresGrad === true);
    w.global('collections', 'OrderedDict');
    w.emptyTuple();
    w.reduce();
    w.tuple(6);
    w.reduce();
    this.tensorMemo.set(t, w.put());
  }
}

/** Pickle `value` the way torch.save does and return the archive's records. */
function pthRecords(value: PyValue, archiveName: string): ZipRecord[] {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: archive names must not contain control characters
  if (!/^[^/\\\x00-\x1f]+$/.test(archiveName) || archiveName === '.' || archiveName === '..') {
    throw new Error(`invalid archive name ${JSON.stringify(archiveName)}`);
  }
  const p = new TorchPickler(archiveName);
  p.w.proto();
  p.value(value, 'value');
  p.w.stop();

  const text = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'latin1'));
  return [{ name: `${archiveName}/data.pkl`, data: p.w.bytes() }, { name: `${archiveName}/byteorder`, data: text('little') }, ...p.storages, { name: `${archiveName}/version`, data: text('3\n') }];
}

/** Encode `value` as a torch.save zip archive (readable by torch.load(..., weights_only=True)). */
export function encodePth(value: PyValue, archiveName = 'archive'): Uint8Array {
  return concatChunks(zipChunks(pthRecords(value, archiveName)));
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
