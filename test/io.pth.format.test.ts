// src/io/pth.ts (torch.save / torch.load format), pure TypeScript: round trips of every value kind,
// the zip layout (zip64, alignment, CRC), atomic saving, strided and big-endian storages, and speed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { PyFloat, decodePth, encodePth, loadPth, rawTensor, savePth, type DType, type PyValue, type RawTensor } from '../src/io/pth.js';
import { PickleWriter } from '../src/io/pickle.js';
import { ZipReader } from '../src/io/zip.js';
import { archive, f32, hex, pickleTensor, python, tmpDir, values } from './helpers/pth.js';

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
    big5d: rawTensor(
      'uint8',
      [1, 2, 1, 2, 2],
      new Uint8Array(8).map((_, i) => i),
    ),
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
    intKeys: new Map<string | number, PyValue>([
      [0, 'zero'],
      [1, [1]],
      ['s', 2],
      [2.5, 'float key'],
    ]),
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
    assert.deepEqual(
      [...zip.entries.values()].map((e) => [e.name, e.size, e.compressedSize > 0]),
      [
        ['a/data.bin', 64, true],
        ['a/small', 2, true],
        ['a/deflated', 100, true],
      ],
    );
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
    assert.deepEqual(
      [...values(out[`${c.name} i64`])],
      c.want.map((x) => BigInt(x) - 6n),
      `${c.name} (8-byte items)`,
    );
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

test('a 124 MB UNet-sized state dict encodes and decodes quickly', () => {
  // Shapes of milesial UNet(n_channels=3, n_classes=2): ~31M float32 parameters.
  const sd: Record<string, RawTensor> = {};
  let n = 0;
  const add = (name: string, shape: number[]): void => {
    const numel = shape.reduce((a, b) => a * b, 1);
    n += numel;
    sd[name] = rawTensor('float32', shape, new Float32Array(numel).fill(0.25));
  };
  const convs: [number, number][] = [
    [3, 64],
    [64, 64],
    [64, 128],
    [128, 128],
    [128, 256],
    [256, 256],
    [256, 512],
    [512, 512],
    [512, 1024],
    [1024, 1024],
    [1024, 512],
    [512, 512],
    [512, 256],
    [256, 256],
    [256, 128],
    [128, 128],
    [128, 64],
    [64, 64],
  ];
  convs.forEach(([cin, cout], i) => {
    add(`conv${i}.weight`, [cout, cin, 3, 3]);
    for (const p of ['weight', 'bias', 'running_mean', 'running_var']) add(`bn${i}.${p}`, [cout]);
    sd[`bn${i}.num_batches_tracked`] = rawTensor('int64', [], new BigInt64Array([100n]));
  });
  for (const [cin, cout] of [
    [1024, 512],
    [512, 256],
    [256, 128],
    [128, 64],
  ])
    add(`up${cin}.weight`, [cin, cout, 2, 2]);
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
