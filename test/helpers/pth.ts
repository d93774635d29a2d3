/** Builders and checks shared by the .pth tests (io.pth.*.test.ts): archives, hand-built pickles, typed views. */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { decodePth, type RawTensor } from '../../src/io/pth.js';
import type { PickleWriter } from '../../src/io/pickle.js';
import { type ZipRecord, concatChunks, zipChunks } from '../../src/io/zip.js';
import { PYTHON } from './python.js';

/** Run a Python script (source passed with -c, arguments after it) and return stdout; throws with stderr on failure. */
export function python(script: string, args: string[]): string {
  const r = spawnSync(PYTHON, ['-c', script, ...args], { encoding: 'utf8', timeout: 300_000, maxBuffer: 256 << 20 });
  if (r.status !== 0) throw new Error(`python failed (${r.status ?? r.signal}):\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
}

export function tmpDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'unet-pth-'));
}

export const f32 = (xs: number[]): Uint8Array => new Uint8Array(new Float32Array(xs).buffer);
export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

/** Typed-array copy of a tensor's values. */
export function values(t: RawTensor): Iterable<number | bigint> & ArrayLike<number | bigint> {
  const b = t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength);
  switch (t.dtype) {
    case 'float32':
      return new Float32Array(b);
    case 'float64':
      return new Float64Array(b);
    case 'int64':
      return new BigInt64Array(b);
    case 'int32':
      return new Int32Array(b);
    case 'int16':
      return new Int16Array(b);
    case 'int8':
      return new Int8Array(b);
    case 'uint8':
    case 'bool':
      return new Uint8Array(b);
    case 'float16':
    case 'bfloat16':
      return new Uint16Array(b);
  }
}

/** Build a checkpoint archive from raw pickle bytes plus storage records. */
export function archive(pickle: Uint8Array, storages: Record<string, Uint8Array> = {}, extra: ZipRecord[] = [], prefix = 'archive'): Uint8Array {
  const recs: ZipRecord[] = [{ name: `${prefix}/data.pkl`, data: pickle }];
  for (const [k, v] of Object.entries(storages)) recs.push({ name: `${prefix}/data/${k}`, data: v });
  recs.push(...extra, { name: `${prefix}/version`, data: Buffer.from('3\n') });
  return concatChunks(zipChunks(recs));
}

/** Emit a torch-style tensor reference, independent of pth.ts's writer, with any offset/stride. */
export function pickleTensor(w: PickleWriter, storageClass: string, key: string, numel: number, offset: number, shape: number[], stride: number[]): void {
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
export function decodeOrCleanError(bytes: Uint8Array): 'ok' | 'error' {
  try {
    decodePth(bytes);
    return 'ok';
  } catch (err) {
    assert.ok(err instanceof Error, `threw a non-Error: ${String(err)}`);
    assert.equal(err.constructor, Error, `unexpected ${err.constructor.name}: ${err.message}\n${err.stack}`);
    return 'error';
  }
}
