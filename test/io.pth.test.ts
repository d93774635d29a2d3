// Tests for src/io/pth.ts (torch.save / torch.load format) and its zip + pickle layers.
//
// Two kinds of tests:
//  - pure TypeScript: round trips, hand-built pickles (strided views, byte order),
//    malformed input (truncation, byte flips, forbidden globals) and speed;
//  - interop with Python (/usr/bin/python3 + torch): Python writes, we read and
//    compare exactly; we write, Python reads (weights_only where torch allows it)
//    and loads the results into real modules/optimizers. Skipped without torch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  DTYPE_ITEMSIZE, PyFloat, decodePth, encodePth, loadPth, rawTensor, savePth,
  type DType, type PyValue, type RawTensor,
} from '../src/io/pth.js';
import { PickleWriter } from '../src/io/pickle.js';
import { ZipReader, concatChunks, zipChunks, type ZipRecord } from '../src/io/zip.js';

// ---------------------------------------------------------------------------
// Helpers

const PY = '/usr/bin/python3';
const torchProbe = spawnSync(PY, ['-c', 'import torch'], { encoding: 'utf8', timeout: 120_000 });
const NO_TORCH = torchProbe.status === 0 ? false : `${PY} cannot import torch (${(torchProbe.stderr || String(torchProbe.error ?? '')).trim().split('\n').pop()})`;

function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'unet-pth-'));
}

/** Run a Python script (source passed with -c) and return stdout; throws with stderr on failure. */
function python(script: string, args: string[]): string {
  const r = spawnSync(PY, ['-c', script, ...args], { encoding: 'utf8', timeout: 300_000, maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`python failed (${r.status ?? r.signal}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

/** Deterministic PRNG (mulberry32) so fuzz failures reproduce. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const f32 = (xs: number[]): Uint8Array => new Uint8Array(new Float32Array(xs).buffer);
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Typed-array copy of a tensor's values. */
function values(t: RawTensor): Iterable<number | bigint> & ArrayLike<number | bigint> {
  const b = t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength);
  switch (t.dtype) {
    case 'float32': return new Float32Array(b);
    case 'float64': return new Float64Array(b);
    case 'int64': return new BigInt64Array(b);
    case 'int32': return new Int32Array(b);
    case 'int16': return new Int16Array(b);
    case 'int8': return new Int8Array(b);
    case 'uint8': case 'bool': return new Uint8Array(b);
    case 'float16': case 'bfloat16': return new Uint16Array(b);
  }
}

/** Build a checkpoint archive from raw pickle bytes plus storage records. */
function archive(pickle: Uint8Array, storages: Record<string, Uint8Array> = {}, extra: ZipRecord[] = [], prefix = 'archive'): Uint8Array {
  const recs: ZipRecord[] = [{ name: `${prefix}/data.pkl`, data: pickle }];
  for (const [k, v] of Object.entries(storages)) recs.push({ name: `${prefix}/data/${k}`, data: v });
  recs.push(...extra, { name: `${prefix}/version`, data: Buffer.from('3\n') });
  return concatChunks(zipChunks(recs));
}

/** Emit a torch-style tensor reference, independent of pth.ts's writer, with any offset/stride. */
function pickleTensor(w: PickleWriter, storageClass: string, key: string, numel: number, offset: number, shape: number[], stride: number[]): void {
  const tup = (xs: number[]): void => {
    if (xs.length > 3) w.mark();
    for (const x of xs) w.int(x);
    w.tuple(xs.length);
  };
  w.global('torch._utils', '_rebuild_tensor_v2');
  w.mark();
  w.mark();
  w.str('storage');
  w.global('torch', storageClass);
  w.str(key);
  w.str('cpu');
  w.int(numel);
  w.tuple(5);
  w.binPersId();
  w.int(offset);
  tup(shape);
  tup(stride);
  w.bool(false);
  w.global('collections', 'OrderedDict');
  w.emptyTuple();
  w.reduce();
  w.tuple(6);
  w.reduce();
}

/** Decode must either succeed or throw a deliberate plain Error (a TypeError/RangeError means a missed check). */
function decodeOrCleanError(bytes: Uint8Array): 'ok' | 'error' {
  try {
    decodePth(bytes);
    return 'ok';
  } catch (err) {
    assert.ok(err instanceof Error, `threw a non-Error: ${String(err)}`);
    assert.equal(err.constructor, Error, `unexpected ${err.constructor.name}: ${err.message}\n${err.stack}`);
    return 'error';
  }
}

// Tagged JSON from Python: ints/floats are tagged so nothing is lost to JSON numbers.
type Tagged =
  | null | boolean | string
  | { __int__: string } | { __float__: string } // float: little-endian IEEE-754 double bits, hex
  | { __list__: Tagged[] } | { __dict__: [Tagged, Tagged][] }
  | { __tensor__: { dtype: DType; shape: number[]; hex: string; requires_grad: boolean; values?: Tagged[] } };

function floatBits(x: number): string {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(x);
  return b.toString('hex');
}

/**
 * Assert that a PyValue matches what Python reports. Number rules: a Python int
 * must be an integral number or bigint; a Python float must be a number or
 * PyFloat with the same double bits, except that an integral float is allowed
 * to come back as a number when `floatMayBeInt` (reading: 1.0 -> 1).
 */
function assertMatches(actual: unknown, expected: Tagged, where: string, floatMayBeInt: boolean): void {
  if (expected === null || typeof expected !== 'object') {
    assert.equal(actual, expected, where);
    return;
  }
  if ('__int__' in expected) {
    assert.ok(typeof actual === 'bigint' || Number.isSafeInteger(actual), `${where}: expected int ${expected.__int__}, got ${String(actual)}`);
    assert.equal(BigInt(actual as number | bigint), BigInt(expected.__int__), where);
    if (typeof actual === 'bigint') assert.ok(actual > BigInt(Number.MAX_SAFE_INTEGER) || actual < BigInt(Number.MIN_SAFE_INTEGER), `${where}: small int decoded as bigint`);
  } else if ('__float__' in expected) {
    const v = actual instanceof PyFloat ? actual.value : actual;
    assert.equal(typeof v, 'number', `${where}: expected float, got ${typeof v}`);
    if (!floatMayBeInt && !(actual instanceof PyFloat)) assert.ok(!Number.isInteger(v) || Object.is(v, -0), `${where}: written as int, Python read a float`);
    const bits = floatBits(v as number);
    const nan = Number.isNaN(v) && Number.isNaN(Buffer.from(expected.__float__, 'hex').readDoubleLE());
    assert.ok(nan || bits === expected.__float__, `${where}: float bits ${bits} != ${expected.__float__}`);
  } else if ('__list__' in expected) {
    assert.ok(Array.isArray(actual), `${where}: expected a list, got ${typeof actual}`);
    assert.equal(actual.length, expected.__list__.length, `${where}: length`);
    expected.__list__.forEach((e, i) => assertMatches((actual as unknown[])[i], e, `${where}[${i}]`, floatMayBeInt));
  } else if ('__dict__' in expected) {
    const stringKeys = expected.__dict__.every(([k]) => typeof k === 'string');
    let entries: [unknown, unknown][];
    if (actual instanceof Map) {
      assert.ok(!stringKeys || expected.__dict__.length === 0 || !floatMayBeInt, `${where}: all-string-key dict decoded as a Map`);
      entries = [...actual.entries()];
    } else {
      assert.ok(actual !== null && typeof actual === 'object' && !Array.isArray(actual), `${where}: expected a dict`);
      assert.ok(stringKeys, `${where}: dict with non-string keys decoded as a plain object`);
      entries = Object.entries(actual as object);
    }
    assert.equal(entries.length, expected.__dict__.length, `${where}: number of keys`);
    expected.__dict__.forEach(([ek, ev], i) => {
      const [ak, av] = entries[i];
      assertMatches(ak, ek, `${where} key #${i}`, floatMayBeInt);
      assertMatches(av, ev, `${where}[${JSON.stringify(ak)}]`, floatMayBeInt);
    });
  } else if ('__tensor__' in expected) {
    const e = expected.__tensor__;
    const t = actual as RawTensor;
    assert.equal(t?.kind, 'tensor', `${where}: expected a tensor`);
    assert.equal(t.dtype, e.dtype, `${where}: dtype`);
    assert.deepEqual(t.shape, e.shape, `${where}: shape`);
    assert.equal(hex(t.data), e.hex, `${where}: bytes`);
    assert.equal(t.requiresGrad === true, e.requires_grad, `${where}: requires_grad`);
    if (e.values) {
      const vs = values(t);
      assert.equal(vs.length, e.values.length, `${where}: numel`);
      e.values.forEach((ev, i) => {
        const av = vs[i];
        if (t.dtype === 'bool') assert.equal(av === 1, ev, `${where}[${i}]`);
        else assertMatches(typeof av === 'bigint' && av >= BigInt(Number.MIN_SAFE_INTEGER) && av <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(av) : av, ev, `${where}[${i}]`, true);
      });
    }
  } else {
    assert.fail(`${where}: unknown tag ${JSON.stringify(expected)}`);
  }
}

// Python side of the tagged format (shared by both interop directions).
const PY_TAG = String.raw`
import json, math, struct, sys, collections, pickletools, zipfile
import torch
DT = {torch.float32: 'float32', torch.float64: 'float64', torch.float16: 'float16', torch.bfloat16: 'bfloat16',
      torch.int64: 'int64', torch.int32: 'int32', torch.int16: 'int16', torch.int8: 'int8', torch.uint8: 'uint8', torch.bool: 'bool'}
def tensor_hex(t):
    t = t.detach().contiguous().clone()
    if t.dtype == torch.bfloat16: t = t.view(torch.int16)
    return t.numpy().tobytes().hex()
def tag(v):
    if isinstance(v, torch.Tensor):
        d = {'dtype': DT[v.dtype], 'shape': list(v.shape), 'hex': tensor_hex(v), 'requires_grad': v.requires_grad}
        if v.dtype not in (torch.float16, torch.bfloat16): d['values'] = [tag(x) for x in v.detach().flatten().tolist()]
        return {'__tensor__': d}
    if v is None or isinstance(v, (bool, str)): return v
    if isinstance(v, int): return {'__int__': str(v)}
    if isinstance(v, float): return {'__float__': struct.pack('<d', v).hex()}
    if isinstance(v, dict): return {'__dict__': [[tag(k), tag(x)] for k, x in v.items()]}
    if isinstance(v, (list, tuple)): return {'__list__': [tag(x) for x in v]}
    if isinstance(v, torch.device): return str(v)
    raise TypeError(type(v))
`;

// ---------------------------------------------------------------------------
// Pure TypeScript

test('round trip of every value kind, dtype and tensor shape', () => {
  const shared = rawTensor('float32', [2], new Float32Array([1.5, -2]));
  const proto = { ['__proto__']: 7, normal: 1 } as Record<string, PyValue>; // computed key: an own property
  const value: PyValue = {
    f32: rawTensor('float32', [2, 3], new Float32Array([1, 2, 3, 4, 5, NaN])),
    f64: rawTensor('float64', [2], new Float64Array([Math.PI, -0])),
    f16: rawTensor('float16', [3], new Uint16Array([0x3c00, 0x7e01, 0x8000])),
    bf16: rawTensor('bfloat16', [1, 2], new Uint16Array([0x3f80, 0xff81])),
    i64: rawTensor('int64', [2], new BigInt64Array([-(2n ** 62n), 5n])),
    i32: rawTensor('int32', [1], new Int32Array([-7])),
    i16: rawTensor('int16', [1], new Int16Array([-300])),
    i8: rawTensor('int8', [2], new Int8Array([-128, 127])),
    u8: rawTensor('uint8', [2], new Uint8Array([0, 255])),
    bool: rawTensor('bool', [3], new Uint8Array([1, 0, 1])),
    scalar: rawTensor('int64', [], new BigInt64Array([42n])),
    empty: rawTensor('float32', [0, 3], new Float32Array(0)),
    big5d: rawTensor('uint8', [1, 2, 1, 2, 2], new Uint8Array(8).map((_, i) => i)),
    grad: { ...rawTensor('float32', [1], new Float32Array([3])), requiresGrad: true },
    a: shared,
    b: shared,
    ints: [0, 255, 256, 65535, 65536, -1, 2 ** 31 - 1, -(2 ** 31), 2 ** 31, 2 ** 53 - 1, -(2 ** 53) + 1],
    bigints: [2n ** 64n, -(2n ** 70n)],
    floats: [0.5, -1e-300, Infinity, -Infinity, NaN],
    pyfloat: new PyFloat(1),
    str: 'héllo ✓ 𝄞',
    empties: ['', [], {}, new Map()],
    nested: [null, true, false, [[['deep']]], { x: { y: [1] } }],
    intKeys: new Map<string | number, PyValue>([[0, 'zero'], [1, [1]], ['s', 2], [2.5, 'float key']]),
    proto,
    bigList: Array.from({ length: 2500 }, (_, i) => i), // > one 1000-item APPENDS batch
  };
  const back = decodePth(encodePth(value)) as Record<string, PyValue>;

  for (const [k, v] of Object.entries(value)) {
    if (v && typeof v === 'object' && 'kind' in v && v.kind === 'tensor') {
      const [t, src] = [back[k] as RawTensor, v as RawTensor];
      assert.equal(t.dtype, src.dtype, k);
      assert.deepEqual(t.shape, src.shape, k);
      assert.equal(hex(t.data), hex(src.data), k);
      assert.equal(t.requiresGrad, src.requiresGrad, k);
    }
  }
  assert.equal(back.a, back.b, 'a tensor referenced twice stays one object');
  assert.deepEqual(back.ints, value.ints);
  assert.deepEqual(back.bigints, value.bigints);
  assert.deepEqual(back.floats, value.floats);
  assert.equal(back.pyfloat, 1, 'floats read back as numbers');
  assert.equal(back.str, value.str);
  assert.deepEqual(back.empties, ['', [], {}, {}], 'an empty dict has only string keys, so it is an object');
  assert.deepEqual(back.nested, value.nested);
  assert.deepEqual(back.intKeys, value.intKeys);
  assert.deepEqual(back.bigList, value.bigList);
  const p = back.proto as Record<string, PyValue>;
  assert.equal(Object.getPrototypeOf(p), Object.prototype, 'prototype untouched');
  assert.deepEqual(Object.keys(p), ['__proto__', 'normal']);
  assert.equal(Object.getOwnPropertyDescriptor(p, '__proto__')?.value, 7);
});

test('a top-level tensor and a one-item dict round trip', () => {
  const t = rawTensor('float32', [2], new Float32Array([1, 2]));
  assert.equal(hex((decodePth(encodePth(t)) as RawTensor).data), hex(t.data));
  const one = decodePth(encodePth({ only: t })) as Record<string, RawTensor>;
  assert.deepEqual(Object.keys(one), ['only']);
});

test('zip layout matches torch.save: records, 64-byte alignment, CRC, version', () => {
  const bytes = encodePth({ w: rawTensor('float32', [3], new Float32Array([1, 2, 3])), b: rawTensor('uint8', [1], new Uint8Array([9])) }, 'best_model');
  const zip = new ZipReader(bytes);
  assert.deepEqual([...zip.entries.keys()], ['best_model/data.pkl', 'best_model/byteorder', 'best_model/data/0', 'best_model/data/1', 'best_model/version']);
  assert.equal(Buffer.from(zip.read('best_model/version')).toString(), '3\n');
  assert.equal(Buffer.from(zip.read('best_model/byteorder')).toString(), 'little');
  const dv = new DataView(bytes.buffer, bytes.byteOffset);
  for (const e of zip.entries.values()) {
    assert.equal(e.method, 0, 'stored');
    const h = e.localHeaderOffset;
    const dataStart = h + 30 + dv.getUint16(h + 26, true) + dv.getUint16(h + 28, true);
    assert.equal(dataStart % 64, 0, `${e.name} data is 64-byte aligned`);
    assert.equal(Buffer.from(bytes.subarray(h + 30 + e.name.length, h + 32 + e.name.length)).toString(), 'FB', 'torch-style padding field');
    zip.read(e.name); // CRC checked here
  }
  // Deterministic output.
  assert.equal(hex(encodePth({ x: 1 })), hex(encodePth({ x: 1 })));
});

test('zip64 archives are read: Python zipfile with its limits lowered, and a saturated end record', () => {
  // CPython's own trick for testing zip64 on small files: lower the limits so every record
  // gets a zip64 extra field (sizes and offsets 0xffffffff in the fixed headers).
  const script = [
    'import io, sys, zipfile',
    'zipfile.ZIP64_LIMIT = 8',
    'zipfile.ZIP_FILECOUNT_LIMIT = 1',
    'buf = io.BytesIO()',
    "with zipfile.ZipFile(buf, 'w', allowZip64=True) as z:",
    "    z.writestr('a/data.bin', b'0123456789abcdef' * 4)",
    "    z.writestr('a/small', b'hi')",
    "    z.writestr('a/deflated', b'x' * 100, compress_type=zipfile.ZIP_DEFLATED)",
    'sys.stdout.write(buf.getvalue().hex())',
  ].join('\n');
  const bytes = new Uint8Array(Buffer.from(python(script, []), 'hex'));
  const check = (b: Uint8Array): void => {
    const zip = new ZipReader(b);
    assert.deepEqual([...zip.entries.values()].map((e) => [e.name, e.size, e.compressedSize > 0]), [['a/data.bin', 64, true], ['a/small', 2, true], ['a/deflated', 100, true]]);
    assert.equal(Buffer.from(zip.read('a/data.bin')).toString(), '0123456789abcdef'.repeat(4));
    assert.equal(Buffer.from(zip.read('a/small')).toString(), 'hi');
    assert.equal(Buffer.from(zip.read('a/deflated')).toString(), 'x'.repeat(100));
  };
  check(bytes);
  // An archive past 65535 records or 4 GiB saturates the classic end record: the zip64 one must be used.
  const sat = new Uint8Array(bytes);
  const eocd = sat.length - 22;
  sat.fill(0xff, eocd + 10, eocd + 12);
  sat.fill(0xff, eocd + 12, eocd + 20);
  check(sat);
  // Without the zip64 locator that saturated record cannot be resolved.
  const noLocator = new Uint8Array(sat);
  noLocator.fill(0, eocd - 20, eocd - 16);
  assert.throws(() => new ZipReader(noLocator), /zip: zip64 end-of-central-directory locator is missing/);
});

test('savePth is atomic, names the archive after the file, and loadPth reads it back', async () => {
  const dir = tmpDir();
  const file = path.join(dir, 'best_model.pth');
  await savePth(file, { step: 3 });
  await savePth(file, { step: 4 }); // overwrite in place
  assert.deepEqual(fs.readdirSync(dir), ['best_model.pth'], 'no temp files left behind');
  assert.ok(new ZipReader(fs.readFileSync(file)).has('best_model/data.pkl'));
  assert.deepEqual(await loadPth(file), { step: 4 });
  await assert.rejects(savePth(path.join(dir, 'bad.pth'), { f: (() => 0) as unknown as PyValue }), /bad\.pth: .*cannot save a function/);
  assert.deepEqual(fs.readdirSync(dir), ['best_model.pth'], 'a failed save writes nothing');
  fs.rmSync(dir, { recursive: true });
});

test('writing rejects values Python could not receive faithfully', () => {
  const cyc: PyValue[] = [];
  cyc.push(cyc);
  assert.throws(() => encodePth(cyc), /reference cycle/);
  assert.throws(() => encodePth({ d: new Date() as unknown as PyValue }), /value\["d"\]: cannot save a Date/);
  assert.throws(() => encodePth({ t: { kind: 'tensor', dtype: 'float32', shape: [2], data: new Uint8Array(4) } }), /needs 8/);
  assert.throws(() => encodePth({ t: { kind: 'tensor', dtype: 'complex64' as DType, shape: [1], data: new Uint8Array(8) } }), /unknown dtype/);
  assert.throws(() => encodePth('\ud800'), /lone surrogate/);
  assert.throws(() => encodePth(new Map([[true as unknown as string, 1]])), /Map keys must be strings or numbers/);
  assert.throws(() => encodePth(1, 'a/b'), /invalid archive name/);
  assert.throws(() => rawTensor('float32', [3], new Float32Array(2)), /needs 12/);
});

test('strided views are materialised in logical order (hand-built pickles)', () => {
  // One float32 storage 0..11 shared by several views, like torch.save of views of one tensor.
  const storage = f32(Array.from({ length: 12 }, (_, i) => i));
  const i64 = new Uint8Array(new BigInt64Array(Array.from({ length: 12 }, (_, i) => BigInt(i) - 6n)).buffer);
  const at = (i: number): number => i;
  const cases: { name: string; offset: number; shape: number[]; stride: number[]; want: number[] }[] = [
    { name: 'contiguous', offset: 0, shape: [3, 4], stride: [4, 1], want: Array.from({ length: 12 }, (_, i) => at(i)) },
    { name: 'transposed', offset: 0, shape: [4, 3], stride: [1, 4], want: [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11] },
    { name: 'offset slice rows', offset: 4, shape: [2, 4], stride: [4, 1], want: [4, 5, 6, 7, 8, 9, 10, 11] },
    { name: 'column block', offset: 1, shape: [3, 2], stride: [4, 1], want: [1, 2, 5, 6, 9, 10] },
    { name: 'step slice', offset: 2, shape: [4], stride: [3], want: [2, 5, 8, 11] },
    { name: 'broadcast', offset: 3, shape: [2, 3], stride: [0, 1], want: [3, 4, 5, 3, 4, 5] },
    { name: 'broadcast scalar', offset: 7, shape: [2, 2], stride: [0, 0], want: [7, 7, 7, 7] },
    // channels_last: logical [N=1, C=3, H=2, W=2] stored as NHWC
    { name: 'channels_last', offset: 0, shape: [1, 3, 2, 2], stride: [12, 1, 6, 3], want: [0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11] },
    { name: 'size-1 dims', offset: 5, shape: [1, 1, 1], stride: [99, 7, 3], want: [5] },
    { name: 'scalar', offset: 11, shape: [], stride: [], want: [11] },
    { name: 'empty', offset: 0, shape: [0, 5], stride: [5, 1], want: [] },
  ];
  const w = new PickleWriter();
  w.proto();
  w.emptyDict();
  w.mark();
  for (const c of cases) {
    w.str(c.name);
    pickleTensor(w, 'FloatStorage', '0', 12, c.offset, c.shape, c.stride);
    w.str(`${c.name} i64`);
    pickleTensor(w, 'LongStorage', '1', 12, c.offset, c.shape, c.stride);
  }
  w.setItems();
  w.stop();
  const out = decodePth(archive(w.bytes(), { 0: storage, 1: i64 })) as Record<string, RawTensor>;
  for (const c of cases) {
    assert.deepEqual(out[c.name].shape, c.shape, c.name);
    assert.deepEqual([...values(out[c.name])], c.want, c.name);
    assert.deepEqual([...values(out[`${c.name} i64`])], c.want.map((x) => BigInt(x) - 6n), `${c.name} (8-byte items)`);
  }
});

test('views outside their storage and oversized broadcasts are rejected', () => {
  const one = (offset: number, shape: number[], stride: number[], numel = 4, bytes = 16): Uint8Array => {
    const w = new PickleWriter();
    w.proto();
    pickleTensor(w, 'FloatStorage', '0', numel, offset, shape, stride);
    w.stop();
    return archive(w.bytes(), { 0: new Uint8Array(bytes) });
  };
  assert.throws(() => decodePth(one(1, [4], [1])), /exceeds its storage/);
  assert.throws(() => decodePth(one(0, [2, 2], [3, 1])), /exceeds its storage/);
  assert.throws(() => decodePth(one(0, [4], [1], 4, 12)), /has 12 bytes, expected 16/);
  assert.throws(() => decodePth(one(0, [2 ** 20, 2 ** 20], [0, 0])), /refusing to materialise/);
  // One 4 MB storage rebuilt 1000 times by a tiny pickle (BINGET of the memoized arguments): 4 GB of output.
  const N = 2 ** 20;
  const w = new PickleWriter();
  w.proto();
  w.emptyList();
  w.mark();
  w.global('torch._utils', '_rebuild_tensor_v2');
  w.mark();
  w.mark();
  w.str('storage');
  w.global('torch', 'FloatStorage');
  w.str('0');
  w.str('cpu');
  w.int(N);
  w.tuple(5);
  w.binPersId();
  w.int(0);
  w.int(N);
  w.tuple(1);
  w.int(1);
  w.tuple(1);
  w.bool(false);
  w.global('collections', 'OrderedDict');
  w.emptyTuple();
  w.reduce();
  w.tuple(6);
  const args = w.put();
  w.reduce();
  for (let i = 0; i < 1000; i++) {
    w.get(0); // _rebuild_tensor_v2 (first memo entry)
    w.get(args);
    w.reduce();
  }
  w.appends();
  w.stop();
  assert.throws(() => decodePth(archive(w.bytes(), { 0: new Uint8Array(4 * N) })), /refusing to materialise/);
  assert.throws(() => decodePth(one(0, [2], [1, 1])), /size\/stride/);
});

test('a big-endian archive (byteorder record) is byte-swapped on read', () => {
  const w = new PickleWriter();
  w.proto();
  w.emptyDict();
  w.mark();
  w.str('f');
  pickleTensor(w, 'FloatStorage', '0', 2, 0, [2], [1]);
  w.str('d');
  pickleTensor(w, 'DoubleStorage', '1', 1, 0, [], []);
  w.str('h');
  pickleTensor(w, 'HalfStorage', '2', 1, 0, [1], [1]);
  w.setItems();
  w.stop();
  const be = (xs: number[], size: 2 | 4 | 8): Uint8Array => {
    const b = Buffer.alloc(xs.length * size);
    xs.forEach((x, i) => (size === 4 ? b.writeFloatBE(x, i * 4) : size === 8 ? b.writeDoubleBE(x, i * 8) : b.writeUInt16BE(x, i * 2)));
    return b;
  };
  const bytes = archive(w.bytes(), { 0: be([1.5, -2], 4), 1: be([Math.E], 8), 2: be([0x3c00], 2) }, [{ name: 'archive/byteorder', data: Buffer.from('big') }]);
  const out = decodePth(bytes) as Record<string, RawTensor>;
  assert.deepEqual([...values(out.f)], [1.5, -2]);
  assert.deepEqual([...values(out.d)], [Math.E]);
  assert.deepEqual([...values(out.h)], [0x3c00]);
  const odd = archive(w.bytes(), {}, [{ name: 'archive/byteorder', data: Buffer.from('middle') }]);
  assert.throws(() => decodePth(odd), /unknown byteorder/);
});

test('forbidden globals are refused without running anything, naming the global and the file', async () => {
  // os.system('touch <marker>') — what a malicious checkpoint looks like.
  const dir = tmpDir();
  const marker = path.join(dir, 'pwned');
  const w = new PickleWriter();
  w.proto();
  w.global('os', 'system');
  w.str(`touch ${marker}`);
  w.tuple(1);
  w.reduce();
  w.stop();
  const file = path.join(dir, 'evil.pth');
  fs.writeFileSync(file, archive(w.bytes()));
  await assert.rejects(loadPth(file), (err: Error) => {
    assert.match(err.message, /evil\.pth/);
    assert.match(err.message, /refusing to load global "os\.system"/);
    return true;
  });
  assert.equal(fs.existsSync(marker), false);
  // Also via STACK_GLOBAL (protocol 4) and for builtins.eval.
  const p4 = Uint8Array.from([0x80, 4, 0x8c, 8, ...Buffer.from('builtins'), 0x8c, 4, ...Buffer.from('eval'), 0x93, 0x2e]);
  assert.throws(() => decodePth(archive(p4)), /"builtins\.eval"/);
  fs.rmSync(dir, { recursive: true });
});

test('non-checkpoints and legacy files give clear errors', () => {
  assert.throws(() => decodePth(new Uint8Array(0)), /not a PyTorch checkpoint \(not a zip archive\)/);
  assert.throws(() => decodePth(Buffer.from('hello world, definitely not a zip')), /not a zip archive/);
  // Legacy torch.save: a bare pickle stream starting with PROTO 2 and the magic number.
  assert.throws(() => decodePth(Uint8Array.from([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e])), /legacy torch\.save format; re-save it with torch>=1\.6/);
  // A zip that is not a checkpoint.
  const noPkl = concatChunks(zipChunks([{ name: 'readme.txt', data: Buffer.from('hi') }]));
  assert.throws(() => decodePth(noPkl), /no <archive>\/data\.pkl record/);
  const ts = concatChunks(zipChunks([{ name: 'm/code/__torch__.py', data: Buffer.from('') }, { name: 'm/constants.pkl', data: Buffer.from('') }]));
  assert.throws(() => decodePth(ts), /TorchScript archive/);
  const emptyZip = concatChunks(zipChunks([]));
  assert.throws(() => decodePth(emptyZip), /no <archive>\/data\.pkl record/);
  // Missing storage record.
  const w = new PickleWriter();
  w.proto();
  pickleTensor(w, 'FloatStorage', '0', 1, 0, [1], [1]);
  w.stop();
  assert.throws(() => decodePth(archive(w.bytes())), /storage record "archive\/data\/0" is missing/);
  // Unsupported storage type.
  const c = new PickleWriter();
  c.proto();
  pickleTensor(c, 'ComplexFloatStorage', '0', 1, 0, [1], [1]);
  c.stop();
  assert.throws(() => decodePth(archive(c.bytes(), { 0: new Uint8Array(8) })), /"torch\.ComplexFloatStorage"/);
});

test('a sample checkpoint truncated at every length fails cleanly', () => {
  const bytes = encodePth({
    model: { 'conv.weight': rawTensor('float32', [2, 1, 2, 2], new Float32Array(8).fill(0.5)), 'bn.num_batches_tracked': rawTensor('int64', [], new BigInt64Array([3n])) },
    optimizer: { state: new Map([[0, { step: 1 }]]), param_groups: [{ lr: 0.001, params: [0] }] },
    epoch: 2,
  });
  assert.ok(bytes.length < 4096);
  for (let n = 0; n < bytes.length; n++) {
    assert.equal(decodeOrCleanError(bytes.subarray(0, n)), 'error', `cut at ${n}/${bytes.length} must fail`);
  }
});

test('random byte flips anywhere in the archive: clean Error or success, never a hang or crash', () => {
  const base = encodePth({ w: rawTensor('float32', [4, 4], new Float32Array(16).fill(1)), m: new Map([[1, [1, 2.5, 'x']]]), s: 'text' });
  const rand = rng(1234);
  let errors = 0;
  const t0 = performance.now();
  for (let iter = 0; iter < 3000; iter++) {
    const b = Uint8Array.from(base);
    const flips = 1 + Math.floor(rand() * 3);
    for (let k = 0; k < flips; k++) b[Math.floor(rand() * b.length)] ^= 1 + Math.floor(rand() * 255);
    if (decodeOrCleanError(b) === 'error') errors++;
  }
  assert.ok(errors > 2000, `most corruptions are detected (${errors}/3000)`);
  assert.ok(performance.now() - t0 < 20_000, 'fuzzing finished promptly');
});

test('pickle-level fuzz (valid zip/CRC around a corrupted pickle): clean Error or success', () => {
  // Flips inside data.pkl are normally caught by the CRC; re-zip so the VM itself sees the damage.
  const original = encodePth({
    sd: { a: rawTensor('float32', [2, 3], new Float32Array(6)), n: rawTensor('int64', [], new BigInt64Array(1)) },
    opt: { state: new Map([[0, { step: 1, buf: [1, 2] }]]), groups: [{ lr: 0.5, eps: 1e-8, params: [0, 1], flag: true, none: null }] },
  });
  const zip = new ZipReader(original);
  const pkl = zip.read('archive/data.pkl');
  const storages = { 0: zip.read('archive/data/0'), 1: zip.read('archive/data/1') };
  const rand = rng(99);
  const outcomes = { ok: 0, error: 0 };
  const t0 = performance.now();
  for (let iter = 0; iter < 4000; iter++) {
    let p = Uint8Array.from(pkl);
    const mode = iter % 4;
    if (mode === 0) p[Math.floor(rand() * p.length)] ^= 1 + Math.floor(rand() * 255);
    else if (mode === 1) p[Math.floor(rand() * p.length)] = Math.floor(rand() * 256); // random opcode/operand
    else if (mode === 2) p = p.subarray(0, Math.floor(rand() * p.length));
    else {
      // Splice a random chunk of the pickle into a random place (stack/memo confusion).
      const a = Math.floor(rand() * p.length);
      const len = Math.floor(rand() * 16);
      const at = Math.floor(rand() * p.length);
      p = Uint8Array.from([...p.subarray(0, at), ...p.subarray(a, a + len), ...p.subarray(at)]);
    }
    outcomes[decodeOrCleanError(archive(p, storages))]++;
  }
  assert.ok(outcomes.error > 0 && performance.now() - t0 < 30_000, JSON.stringify(outcomes));
});

test('a 124 MB UNet-sized state dict encodes and decodes quickly', () => {
  // Shapes of milesial UNet(n_channels=3, n_classes=2): ~31M float32 parameters.
  const sd: Record<string, RawTensor> = {};
  let n = 0;
  const add = (name: string, shape: number[]): void => {
    const numel = shape.reduce((a, b) => a * b, 1);
    n += numel;
    sd[name] = rawTensor('float32', shape, new Float32Array(numel).fill(0.25));
  };
  const convs: [number, number][] = [[3, 64], [64, 64], [64, 128], [128, 128], [128, 256], [256, 256], [256, 512], [512, 512], [512, 1024], [1024, 1024],
    [1024, 512], [512, 512], [512, 256], [256, 256], [256, 128], [128, 128], [128, 64], [64, 64]];
  convs.forEach(([cin, cout], i) => {
    add(`conv${i}.weight`, [cout, cin, 3, 3]);
    for (const p of ['weight', 'bias', 'running_mean', 'running_var']) add(`bn${i}.${p}`, [cout]);
    sd[`bn${i}.num_batches_tracked`] = rawTensor('int64', [], new BigInt64Array([100n]));
  });
  for (const [cin, cout] of [[1024, 512], [512, 256], [256, 128], [128, 64]]) add(`up${cin}.weight`, [cin, cout, 2, 2]);
  add('outc.weight', [2, 64, 1, 1]);
  assert.ok(n * 4 > 120e6, `${(n * 4) / 1e6} MB`);

  let t = performance.now();
  const bytes = encodePth(sd);
  const encMs = performance.now() - t;
  t = performance.now();
  const back = decodePth(bytes) as Record<string, RawTensor>;
  const decMs = performance.now() - t;
  console.log(`${(bytes.length / 1e6).toFixed(1)} MB: encode ${encMs.toFixed(0)} ms, decode ${decMs.toFixed(0)} ms`);
  assert.equal(Object.keys(back).length, Object.keys(sd).length);
  assert.equal(hex(back['conv9.weight'].data.subarray(0, 8)), hex(sd['conv9.weight'].data.subarray(0, 8)));
  // Generous bounds: this machine is small and shared; typical numbers are printed above.
  assert.ok(encMs < 3000 && decMs < 3000);
});

// ---------------------------------------------------------------------------
// Interop with Python torch

const PY_WRITE_CASES = PY_TAG + String.raw`
out = sys.argv[1]
torch.manual_seed(0)
cases = {}
def case(name, obj, **kw):
    torch.save(obj, f'{out}/{name}.pth', **kw)
    cases[name] = tag(obj)

model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
model.train(); model(torch.randn(2, 3, 6, 6))   # running stats and num_batches_tracked = 1
sd = model.state_dict()
assert isinstance(sd, collections.OrderedDict) and hasattr(sd, '_metadata')
case('state_dict', sd)
case('plain_dict', {'w': torch.randn(3, 4), 'b': torch.randn(4)})
case('one_item', {'only': torch.arange(5)})
case('top_level_tensor', torch.randn(2, 2))

special = torch.tensor([0.0, -0.0, 1.5, float('inf'), float('-inf'), float('nan'), 1e-30, 65504.0])
case('dtypes', {
    'f32': special.clone(), 'f64': special.double() * 1e200, 'f16': special.half(), 'bf16': special.bfloat16(),
    'i64': torch.tensor([-2**63, 2**63 - 1, 0, -1]), 'i32': torch.tensor([-2**31, 2**31 - 1], dtype=torch.int32),
    'i16': torch.tensor([-32768, 32767], dtype=torch.int16), 'i8': torch.tensor([-128, 127], dtype=torch.int8),
    'u8': torch.tensor([0, 128, 255], dtype=torch.uint8), 'bool': torch.tensor([True, False, True]),
    'f16_rand': torch.randn(5, 3).half(), 'bf16_rand': torch.randn(3, 5).bfloat16(),
})

base = torch.arange(24.).reshape(4, 6)
case('views', {
    'base': base, 'transposed': base.t(), 'slice': base[1:3, 2:5], 'row': base[2], 'column': base[:, 3],
    'step': torch.arange(10)[::3], 'expand': torch.ones(3).expand(2, 3),
    'channels_last': torch.randn(2, 3, 4, 5).to(memory_format=torch.channels_last),
    'channels_last_i64': torch.arange(2 * 3 * 2 * 2).reshape(2, 3, 2, 2).to(memory_format=torch.channels_last),
    'channels_last_bf16': torch.randn(1, 3, 2, 2).bfloat16().to(memory_format=torch.channels_last),
    'permuted': torch.randn(2, 3, 4).permute(2, 0, 1), 'empty': torch.empty(0, 3), 'scalar': torch.tensor(3.5),
})
assert base.t().storage().data_ptr() == base.storage().data_ptr()

case('params', {'p': torch.nn.Parameter(torch.randn(2, 2)), 'p_frozen': torch.nn.Parameter(torch.randn(2), requires_grad=False),
                'leaf_requires_grad': torch.randn(3).requires_grad_()})
case('nested', {'a': [1, 2.5, 'x', True, False, None, [], {'k': (1, 2)}], 'big': 2**70, 'neg': -2**40, 'one_float': 1.0,
                'inf': float('inf'), 'nan': float('nan'), 'unicode': 'héllo ✓ 𝄞', 'empty_dict': {}, 'tuple': (1, (2, 3)),
                '__proto__': 'own key', 'int_keys': {0: 'a', 1: 'b', -5: 'c'}, 'float_key': {0.5: 1}})

opt_model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
opt = torch.optim.RMSprop(opt_model.parameters(), lr=1e-5, weight_decay=1e-8, momentum=0.9)
opt_model(torch.randn(2, 3, 6, 6)).sum().backward(); opt.step()
case('optimizer', opt.state_dict())
case('checkpoint', {'model': opt_model.state_dict(), 'optimizer': opt.state_dict(), 'epoch': 3, 'mask_values': [0, 1]})
case('device_size', {'dev': torch.device('cuda', 1), 'cpu': torch.device('cpu'), 'size': torch.Size([2, 3])})
case('protocol4', {'a': torch.arange(6.).reshape(2, 3).t(), 'b': 'hi', 'c': [1.5, {2: 3}]}, pickle_protocol=4)

# Files we must refuse.
torch.save(torch.ones(2), f'{out}/legacy.pth', _use_new_zipfile_serialization=False)
torch.save(torch.nn.Linear(2, 2), f'{out}/whole_module.pth')
torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), f'{out}/torchscript.pth')

json.dump(cases, open(f'{out}/expected.json', 'w'))
`;

test('reads what Python torch.save writes, exactly', { skip: NO_TORCH }, async () => {
  const dir = tmpDir();
  python(PY_WRITE_CASES, [dir]);
  const expected = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8')) as Record<string, Tagged>;
  assert.equal(Object.keys(expected).length, 12);
  for (const [name, exp] of Object.entries(expected)) {
    const v = await loadPth(path.join(dir, `${name}.pth`));
    assertMatches(v, exp, name, true);
  }
  // Spot checks of the data model.
  const sd = (await loadPth(path.join(dir, 'state_dict.pth'))) as Record<string, RawTensor>;
  assert.equal(Object.getPrototypeOf(sd), Object.prototype, 'OrderedDict state dict -> plain object');
  assert.deepEqual(Object.keys(sd), ['0.weight', '0.bias', '1.weight', '1.bias', '1.running_mean', '1.running_var', '1.num_batches_tracked']);
  assert.deepEqual(sd['1.num_batches_tracked'].shape, []);
  assert.equal(sd['1.num_batches_tracked'].dtype, 'int64');
  assert.deepEqual([...values(sd['1.num_batches_tracked'])], [1n]);
  const opt = (await loadPth(path.join(dir, 'optimizer.pth'))) as { state: Map<number, Record<string, PyValue>>; param_groups: Record<string, PyValue>[] };
  assert.ok(opt.state instanceof Map, 'int-keyed optimizer state -> Map');
  assert.deepEqual([...opt.state.keys()], [0, 1, 2, 3]);
  assert.deepEqual(opt.param_groups[0].params, [0, 1, 2, 3]);
  const nested = (await loadPth(path.join(dir, 'nested.pth'))) as Record<string, PyValue>;
  assert.equal(Object.getOwnPropertyDescriptor(nested, '__proto__')?.value, 'own key');
  assert.equal(Object.getPrototypeOf(nested), Object.prototype);
  assert.equal(nested.one_float, 1);
  assert.equal(nested.big, 2n ** 70n);
  assert.deepEqual(await loadPth(path.join(dir, 'device_size.pth')), { dev: 'cuda:1', cpu: 'cpu', size: [2, 3] });

  await assert.rejects(loadPth(path.join(dir, 'legacy.pth')), /legacy\.pth: legacy torch\.save format; re-save it with torch>=1\.6/);
  await assert.rejects(loadPth(path.join(dir, 'whole_module.pth')), /whole_module\.pth: refusing to load global "torch\.nn\.modules\.linear\.Linear".*state_dict/);
  await assert.rejects(loadPth(path.join(dir, 'torchscript.pth')), /torchscript\.pth: .*TorchScript/);
  fs.rmSync(dir, { recursive: true });
});

const PY_READ_CASES = PY_TAG + String.raw`
from torch._weights_only_unpickler import _get_allowed_globals
d = sys.argv[1]
names = json.loads(sys.argv[2])
TORCH2 = tuple(int(x) for x in torch.__version__.split('.')[:2]) >= (2, 0)
# Opcodes torch 1.13's weights_only unpickler implements. It lacks BINFLOAT, so it cannot load
# *any* file containing a Python float (Python's own torch.save({'lr': 0.1}) fails the same way);
# for such files we check the opcodes/globals ourselves and load with weights_only=False.
WO_OPS = {'GLOBAL', 'NEWOBJ', 'REDUCE', 'BUILD', 'APPEND', 'APPENDS', 'SETITEM', 'SETITEMS', 'MARK', 'TUPLE', 'TUPLE1',
          'TUPLE2', 'TUPLE3', 'NONE', 'NEWFALSE', 'NEWTRUE', 'EMPTY_TUPLE', 'EMPTY_LIST', 'EMPTY_DICT', 'EMPTY_SET',
          'BININT', 'BININT1', 'BININT2', 'BINUNICODE', 'SHORT_BINSTRING', 'BINPERSID', 'BINGET', 'LONG_BINGET',
          'BINPUT', 'LONG_BINPUT', 'LONG1', 'PROTO', 'STOP'}
result = {}
for name in names:
    p = f'{d}/{name}.pth'
    z = zipfile.ZipFile(p)
    assert z.testzip() is None
    raw = open(p, 'rb').read()
    for info in z.infolist():   # torch's 64-byte alignment of record data
        h = info.header_offset
        n, e = struct.unpack('<HH', raw[h + 26:h + 30])
        assert (h + 30 + n + e) % 64 == 0, (name, info.filename)
    pkl = [n for n in z.namelist() if n.endswith('/data.pkl')][0]
    uses_float = False
    for op, arg, pos in pickletools.genops(z.read(pkl)):
        if op.name == 'BINFLOAT': uses_float = True
        else: assert op.name in WO_OPS, (name, op.name)
        if op.name == 'GLOBAL': assert arg.replace(' ', '.') in _get_allowed_globals(), (name, arg)
    wo = TORCH2 or not uses_float
    v = torch.load(p, weights_only=wo)
    result[name] = {'value': tag(v), 'weights_only': wo}
    if name == 'kitchen_sink':
        assert v['shared_a'] is v['shared_b'], 'one JS tensor object -> one Python tensor'
        assert all(t.is_contiguous() for t in v.values() if isinstance(t, torch.Tensor))
    if name == 'state_dict':
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
        model.load_state_dict(v, strict=True)
        ref = torch.load(f'{d}/ref_state_dict.pth')
        for k, t in model.state_dict().items(): assert torch.equal(t, ref[k]), k
    if name == 'optimizer':
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
        opt = torch.optim.RMSprop(model.parameters(), lr=1e-5, weight_decay=1e-8, momentum=0.9)
        opt.load_state_dict(v)
        ref = torch.load(f'{d}/ref_optimizer.pth')
        got = opt.state_dict()
        assert got['param_groups'] == ref['param_groups'], (got['param_groups'], ref['param_groups'])
        for i, st in ref['state'].items():
            for k, x in st.items():
                assert (torch.equal(got['state'][i][k], x) if torch.is_tensor(x) else got['state'][i][k] == x), (i, k)
        model(torch.randn(2, 3, 6, 6)).sum().backward(); opt.step()   # the loaded state is usable
print(json.dumps(result))
`;

test('Python torch.load reads what we write (weights_only), state dict and optimizer load into torch', { skip: NO_TORCH }, async () => {
  const dir = tmpDir();
  // Reference files from Python, decoded by us and re-encoded: the round trip Python -> TS -> Python.
  python(PY_TAG + String.raw`
d = sys.argv[1]
torch.manual_seed(1)
model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
opt = torch.optim.RMSprop(model.parameters(), lr=1e-5, weight_decay=1e-8, momentum=0.9)
model(torch.randn(2, 3, 6, 6)).sum().backward(); opt.step()
torch.save(model.state_dict(), f'{d}/ref_state_dict.pth')
torch.save(opt.state_dict(), f'{d}/ref_optimizer.pth')
`, [dir]);
  const cases: Record<string, PyValue> = {
    state_dict: await loadPth(path.join(dir, 'ref_state_dict.pth')),
    optimizer: await loadPth(path.join(dir, 'ref_optimizer.pth')),
  };
  const shared = rawTensor('float32', [2], new Float32Array([1, 2]));
  cases.kitchen_sink = {
    f32: rawTensor('float32', [2, 3], new Float32Array([1, -2, 3.5, NaN, Infinity, -0])),
    f64: rawTensor('float64', [2], new Float64Array([Math.PI, 1e-300])),
    f16: rawTensor('float16', [2], new Uint16Array([0x3c00, 0xfc00])),
    bf16: rawTensor('bfloat16', [2, 1], new Uint16Array([0x3f80, 0x7fc1])),
    i64: rawTensor('int64', [3], new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, 0n])),
    i32: rawTensor('int32', [1], new Int32Array([-5])),
    i16: rawTensor('int16', [1], new Int16Array([300])),
    i8: rawTensor('int8', [1], new Int8Array([-1])),
    u8: rawTensor('uint8', [2, 2], new Uint8Array([0, 1, 254, 255])),
    bool: rawTensor('bool', [2], new Uint8Array([1, 0])),
    scalar: rawTensor('int64', [], new BigInt64Array([7n])),
    empty: rawTensor('float32', [0, 2], new Float32Array(0)),
    rank5: rawTensor('uint8', [1, 2, 1, 2, 1], new Uint8Array([1, 2, 3, 4])),
    grad: { ...rawTensor('float32', [1], new Float32Array([1])), requiresGrad: true },
    shared_a: shared,
    shared_b: shared,
    lr: new PyFloat(1),
    eps: 1e-8,
    epoch: 3,
    big: 2n ** 80n,
    neg: -(2 ** 40),
    list: [1, 'two', [3, [4]], null, true, false, new PyFloat(0)],
    int_keys: new Map<string | number, PyValue>([[0, 'a'], [7, { nested: [1] }]]),
    ['__proto__']: 'own',
    unicode: 'héllo ✓ 𝄞',
  } as Record<string, PyValue>;
  cases.one_item = { only: rawTensor('int64', [2], new BigInt64Array([1n, 2n])) };
  cases.top_tensor = rawTensor('float32', [2], new Float32Array([0.5, 0.25]));
  cases.ints_only = { a: [1, 2, 3], b: new Map([[1, 'x']]), c: null, d: true };

  for (const [name, v] of Object.entries(cases)) await savePth(path.join(dir, `${name}.pth`), v);
  const got = JSON.parse(python(PY_READ_CASES, [dir, JSON.stringify(Object.keys(cases))])) as Record<string, { value: Tagged; weights_only: boolean }>;
  for (const [name, v] of Object.entries(cases)) {
    assertMatches(v, got[name].value, name, name === 'state_dict' || name === 'optimizer' /* decoded from Python: 1.0 became 1 */);
  }
  for (const name of ['state_dict', 'one_item', 'top_tensor', 'ints_only']) assert.ok(got[name].weights_only, `${name} loaded with weights_only=True`);
  fs.rmSync(dir, { recursive: true });
});
