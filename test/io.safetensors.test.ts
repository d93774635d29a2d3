// Tests for src/io/safetensors.ts: round trips, header validation, corrupt input,
// and interop with Python (json + numpy reading/writing the raw format; the
// safetensors package itself is not installed). Python tests skip without numpy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DTYPE_ITEMSIZE, rawTensor, type DType, type RawTensor } from '../src/io/pth.js';
import { decodeSafetensors, encodeSafetensors, loadSafetensors, saveSafetensors } from '../src/io/safetensors.js';

const PY = '/usr/bin/python3';
const probe = spawnSync(PY, ['-c', 'import numpy, torch'], { encoding: 'utf8', timeout: 120_000 });
const NO_PY = probe.status === 0 ? false : `${PY} cannot import numpy and torch (${(probe.stderr || String(probe.error ?? '')).trim().split('\n').pop()})`;

function python(script: string, args: string[]): string {
  const r = spawnSync(PY, ['-c', script, ...args], { encoding: 'utf8', timeout: 300_000, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`python failed (${r.status ?? r.signal}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Build a raw safetensors file from a header object (or literal JSON text) and data bytes. */
function file(header: unknown, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const json = header instanceof Uint8Array ? header : Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

function sample(): Record<string, RawTensor> {
  return {
    'down1.conv.weight': rawTensor('float32', [2, 1, 2, 2], new Float32Array([1, 2, 3, 4, 5, 6, 7, NaN])),
    f64: rawTensor('float64', [1], new Float64Array([Math.PI])),
    f16: rawTensor('float16', [3], new Uint16Array([0x3c00, 0x7e01, 0x8000])),
    bf16: rawTensor('bfloat16', [3], new Uint16Array([0x3f80, 0xff81, 0x0001])),
    steps: rawTensor('int64', [], new BigInt64Array([-(2n ** 63n)])),
    i32: rawTensor('int32', [2], new Int32Array([-1, 2 ** 31 - 1])),
    i16: rawTensor('int16', [1], new Int16Array([-300])),
    i8: rawTensor('int8', [1], new Int8Array([-128])),
    u8: rawTensor('uint8', [3], new Uint8Array([0, 7, 255])),
    mask: rawTensor('bool', [2, 2], new Uint8Array([1, 0, 0, 1])),
    empty: rawTensor('float32', [0, 4], new Float32Array(0)),
  };
}

function assertSameTensors(a: Record<string, RawTensor>, b: Record<string, RawTensor>): void {
  assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort());
  for (const k of Object.keys(a)) {
    assert.equal(a[k].dtype, b[k].dtype, k);
    assert.deepEqual(a[k].shape, b[k].shape, k);
    assert.equal(hex(a[k].data), hex(b[k].data), k);
  }
}

test('round trip of every dtype, scalars, empty tensors and metadata', () => {
  const tensors = sample();
  const metadata = { modelArgs: '{"nChannels":3}', epoch: '5', '': 'empty key' };
  const bytes = encodeSafetensors(tensors, metadata);
  const back = decodeSafetensors(bytes);
  assertSameTensors(back.tensors, tensors);
  assert.deepEqual(back.metadata, metadata);
  assert.deepEqual(decodeSafetensors(encodeSafetensors({})), { tensors: {}, metadata: {} });
  // "__proto__" is an ordinary name here.
  const proto = decodeSafetensors(encodeSafetensors({ ['__proto__']: tensors.u8 } as Record<string, RawTensor>));
  assert.equal(Object.getPrototypeOf(proto.tensors), Object.prototype);
  assert.deepEqual(Object.keys(proto.tensors), ['__proto__']);
});

test('layout: header padded to 8 bytes, tensors tile the buffer and are aligned to their item size', () => {
  const tensors = sample();
  const bytes = encodeSafetensors(tensors);
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(n % 8, 0);
  const header = JSON.parse(Buffer.from(bytes.subarray(8, 8 + n)).toString()) as Record<string, { dtype: string; data_offsets: [number, number] }>;
  const spans = Object.entries(header)
    .map(([k, v]) => ({ k, ...v }))
    .sort((a, b) => a.data_offsets[0] - b.data_offsets[0]);
  let expect = 0;
  for (const s of spans) {
    assert.equal(s.data_offsets[0], expect, s.k);
    assert.equal(s.data_offsets[0] % DTYPE_ITEMSIZE[tensors[s.k].dtype], 0, `${s.k} aligned`);
    expect = s.data_offsets[1];
  }
  assert.equal(8 + n + expect, bytes.length);
  assert.equal(hex(encodeSafetensors(tensors)), hex(bytes), 'deterministic');
});

test('saveSafetensors is atomic and loadSafetensors names the file in errors', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'unet-st-'));
  const p = path.join(dir, 'model.safetensors');
  await saveSafetensors(p, sample(), { epoch: '1' });
  assert.deepEqual(fs.readdirSync(dir), ['model.safetensors']);
  assertSameTensors((await loadSafetensors(p)).tensors, sample());
  fs.writeFileSync(p, new Uint8Array(3));
  await assert.rejects(loadSafetensors(p), /model\.safetensors: safetensors: file is too short/);
  fs.rmSync(dir, { recursive: true });
});

test('encoding rejects invalid input', () => {
  const t = sample().u8;
  assert.throws(() => encodeSafetensors({ __metadata__: t }), /cannot be a tensor name/);
  assert.throws(() => encodeSafetensors({ x: { ...t, data: new Uint8Array(2) } }), /needs 3/);
  assert.throws(() => encodeSafetensors({ x: { ...t, dtype: 'uint16' as DType } }), /unknown dtype/);
  assert.throws(() => encodeSafetensors({ x: t }, { n: 1 as unknown as string }), /must be a string/);
});

test('header validation: size limit, bounds, holes, overlaps, duplicates, dtype × shape', () => {
  const d8 = new Uint8Array(8);
  const ok = { a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  assert.doesNotThrow(() => decodeSafetensors(file(ok, d8)));
  const bad: [string, Uint8Array, RegExp][] = [
    [
      'huge header length',
      (() => {
        const b = file(ok, d8);
        new DataView(b.buffer).setBigUint64(0, 100_000_001n, true);
        return b;
      })(),
      /exceeds the 100000000-byte limit/,
    ],
    [
      'u64 header length',
      (() => {
        const b = file(ok, d8);
        new DataView(b.buffer).setBigUint64(0, 2n ** 63n, true);
        return b;
      })(),
      /exceeds/,
    ],
    [
      'header past the end',
      (() => {
        const b = file(ok, d8);
        new DataView(b.buffer).setBigUint64(0, 1000n, true);
        return b;
      })(),
      /runs past the end/,
    ],
    ['not an object', file('[1, 2]'), /not a JSON object/],
    ['invalid JSON', file('{"a": }'), /header JSON/],
    ['trailing garbage', file('{} x'), /trailing characters/],
    ['duplicate tensor', file('{"a": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1]}, "a": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}}', new Uint8Array(2)), /duplicate key "a"/],
    ['duplicate field', file('{"a": {"dtype": "U8", "dtype": "I8", "shape": [1], "data_offsets": [0, 1]}}', new Uint8Array(1)), /duplicate key "dtype"/],
    ['out of bounds', file({ a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, d8), /outside the 8-byte data buffer/],
    ['begin > end', file({ a: { dtype: 'U8', shape: [0], data_offsets: [4, 2] } }, d8), /outside/],
    ['span mismatch', file({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, d8), /needs 12 bytes/],
    ['overlap', file({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, d8), /hole or overlap/],
    ['hole', file({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, d8), /starts at 4, expected 0/],
    ['uncovered tail', file({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, d8), /cover 4 bytes, but the data buffer has 8/],
    ['unsupported dtype', file({ a: { dtype: 'U16', shape: [4], data_offsets: [0, 8] } }, d8), /unsupported dtype "U16"/],
    ['negative dim', file({ a: { dtype: 'U8', shape: [-8], data_offsets: [0, 8] } }, d8), /invalid shape/],
    ['fractional offset', file({ a: { dtype: 'U8', shape: [8], data_offsets: [0, 8.5] } }, d8), /invalid data_offsets/],
    ['metadata not strings', file({ __metadata__: { epoch: 3 } }), /__metadata__\["epoch"\] is not a string/],
    ['bad UTF-8', file(Uint8Array.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x7b, 0x7d, 0x7d])), /not valid UTF-8/],
    ['deep nesting', file(`{"a":${'['.repeat(50)}${']'.repeat(50)}}`), /nested too deeply/],
  ];
  for (const [name, bytes, re] of bad) assert.throws(() => decodeSafetensors(bytes), re, name);
});

test('truncation at every length and random byte flips fail cleanly', () => {
  const bytes = encodeSafetensors(sample(), { epoch: '3' });
  for (let n = 0; n < bytes.length; n++) {
    assert.throws(
      () => decodeSafetensors(bytes.subarray(0, n)),
      (e: Error) => e.constructor === Error,
      `cut at ${n}`,
    );
  }
  let seed = 7;
  const rand = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  for (let i = 0; i < 3000; i++) {
    const b = Uint8Array.from(bytes);
    b[Math.floor(rand() * b.length)] ^= 1 + Math.floor(rand() * 255);
    try {
      decodeSafetensors(b);
    } catch (err) {
      assert.equal((err as Error).constructor, Error, String(err));
    }
  }
});

test('Python (json + numpy) reads our files and we read files Python writes', { skip: NO_PY }, () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'unet-st-'));
  const ours = path.join(dir, 'ours.safetensors');
  fs.writeFileSync(ours, encodeSafetensors(sample(), { note: 'héllo' }));

  const script = String.raw`
import json, struct, sys, numpy as np, torch
ours, theirs = sys.argv[1], sys.argv[2]
NP = {'F32': np.float32, 'F64': np.float64, 'F16': np.float16, 'BF16': np.uint16, 'I64': np.int64, 'I32': np.int32,
      'I16': np.int16, 'I8': np.int8, 'U8': np.uint8, 'BOOL': np.bool_}
# 1. Read our file with nothing but the spec.
raw = open(ours, 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
header = json.loads(raw[8:8 + n])
data = raw[8 + n:]
got = {'__metadata__': header.pop('__metadata__')}
for name, info in header.items():
    b, e = info['data_offsets']
    a = np.frombuffer(data[b:e], dtype=NP[info['dtype']]).reshape(info['shape'])
    got[name] = {'dtype': info['dtype'], 'shape': list(a.shape), 'hex': a.tobytes().hex()}
# 2. Write a file the way another implementation might: insertion order, no padding, metadata last.
torch.manual_seed(0)
arrays = {
    'w': ('F32', torch.randn(3, 2).numpy()), 'h': ('F16', torch.randn(5).half().numpy()),
    'bf': ('BF16', torch.randn(2, 2).bfloat16().view(torch.int16).numpy()), 'i': ('I64', np.array([-2**63, 5], dtype=np.int64)),
    'b': ('BOOL', np.array([True, False])), 'u': ('U8', np.arange(7, dtype=np.uint8)), 'd': ('F64', np.array(np.pi)),
    'i32': ('I32', np.array([-7], dtype=np.int32)), 'i16': ('I16', np.array([9], dtype=np.int16)), 'i8': ('I8', np.array([-1], dtype=np.int8)),
    'z': ('F32', np.zeros((0, 3), dtype=np.float32)),
}
hdr, blobs, off = {}, [], 0
for name, (dt, a) in arrays.items():
    bts = np.ascontiguousarray(a).tobytes()
    hdr[name] = {'dtype': dt, 'shape': list(a.shape), 'data_offsets': [off, off + len(bts)]}
    blobs.append(bts); off += len(bts)
hdr['__metadata__'] = {'format': 'pt'}
hb = json.dumps(hdr).encode()
open(theirs, 'wb').write(struct.pack('<Q', len(hb)) + hb + b''.join(blobs))
expected = {name: {'dtype': dt, 'shape': list(a.shape), 'hex': np.ascontiguousarray(a).tobytes().hex()} for name, (dt, a) in arrays.items()}
print(json.dumps({'got': got, 'expected': expected}))
`;
  const theirs = path.join(dir, 'theirs.safetensors');
  const { got, expected } = JSON.parse(python(script, [ours, theirs])) as {
    got: Record<string, { dtype: string; shape: number[]; hex: string }> & { __metadata__: Record<string, string> };
    expected: Record<string, { dtype: string; shape: number[]; hex: string }>;
  };
  const ST: Record<DType, string> = { float32: 'F32', float64: 'F64', float16: 'F16', bfloat16: 'BF16', int64: 'I64', int32: 'I32', int16: 'I16', int8: 'I8', uint8: 'U8', bool: 'BOOL' };
  const { __metadata__, ...gotTensors } = got;
  assert.deepEqual(__metadata__, { note: 'héllo' });
  for (const [k, t] of Object.entries(sample())) assert.deepEqual(gotTensors[k], { dtype: ST[t.dtype], shape: t.shape, hex: hex(t.data) }, k);
  assert.equal(Object.keys(gotTensors).length, Object.keys(sample()).length);

  const back = decodeSafetensors(fs.readFileSync(theirs));
  assert.deepEqual(back.metadata, { format: 'pt' });
  assert.deepEqual(Object.keys(back.tensors), Object.keys(expected), 'header order kept');
  for (const [k, e] of Object.entries(expected)) {
    const t = back.tensors[k];
    assert.deepEqual({ dtype: ST[t.dtype], shape: t.shape, hex: hex(t.data) }, e, k);
  }
  fs.rmSync(dir, { recursive: true });
});
