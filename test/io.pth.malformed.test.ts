// src/io/pth.ts on malformed input: forbidden globals, non-checkpoints, truncation at every length,
// random byte flips and pickle-level fuzz: a clean Error or success, never a hang or a crash.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { decodePth, encodePth, loadPth, rawTensor } from '../src/io/pth.js';
import { PickleWriter } from '../src/io/pickle.js';
import { ZipReader, concatChunks, zipChunks } from '../src/io/zip.js';
import { archive, decodeOrCleanError, pickleTensor, tmpDir } from './helpers/pth.js';
import { prng } from './helpers/fixtures.js';

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
  const ts = concatChunks(
    zipChunks([
      { name: 'm/code/__torch__.py', data: Buffer.from('') },
      { name: 'm/constants.pkl', data: Buffer.from('') },
    ]),
  );
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
  const rand = prng(1234);
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
  const rand = prng(99);
  const outcomes = { ok: 0, error: 0 };
  const t0 = performance.now();
  for (let iter = 0; iter < 4000; iter++) {
    let p = Uint8Array.from(pkl);
    const mode = iter % 4;
    if (mode === 0) p[Math.floor(rand() * p.length)] ^= 1 + Math.floor(rand() * 255);
    else if (mode === 1)
      p[Math.floor(rand() * p.length)] = Math.floor(rand() * 256); // random opcode/operand
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
