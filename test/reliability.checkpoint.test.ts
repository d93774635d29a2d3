// Hostile checkpoints: zip bombs (declared sizes that lie, and real high-ratio deflate streams) are
// refused from the central directory before anything is inflated, in one line naming the file and
// without the memory; keys such as "__proto__" stay keys through the checkpoint loader.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import zlib from 'node:zlib';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { rawTensor, savePth, type PyValue } from '../src/io/pth.js';
import { ZipReader, crc32 } from '../src/io/zip.js';
import { assertCleanFailure, runCli } from './helpers/cli.js';
import { writePng } from './helpers/fixtures.js';
import { tempDir } from './helpers/workdir.js';

const dir = tempDir('ckpt-hostile');

interface Rec {
  name: string;
  /** The record's bytes as stored in the archive (deflated when `size` is given). */
  stored: Uint8Array;
  /** Declared inflated size (deflate); absent: a stored record. */
  size?: number;
  crc?: number;
}

/** A zip archive with deflated records whose sizes are whatever the record declares. */
function zipOf(recs: Rec[]): Uint8Array {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let off = 0;
  for (const r of recs) {
    const name = Buffer.from(r.name);
    const method = r.size === undefined ? 0 : 8;
    const size = r.size ?? r.stored.length;
    const crc = r.crc ?? (r.size === undefined ? crc32(r.stored) : 0);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x0800, 6);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(r.stored.length, 18);
    local.writeUInt32LE(size, 22);
    local.writeUInt16LE(name.length, 26);
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(20, 4);
    cd.writeUInt16LE(20, 6);
    cd.writeUInt16LE(0x0800, 8);
    cd.writeUInt16LE(method, 10);
    cd.writeUInt32LE(crc, 16);
    cd.writeUInt32LE(r.stored.length, 20);
    cd.writeUInt32LE(size, 24);
    cd.writeUInt16LE(name.length, 28);
    cd.writeUInt32LE(off, 42);
    parts.push(local, name, Buffer.from(r.stored));
    central.push(cd, name);
    off += 30 + name.length + r.stored.length;
  }
  const cdBytes = Buffer.concat(central);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(recs.length, 8);
  eocd.writeUInt16LE(recs.length, 10);
  eocd.writeUInt32LE(cdBytes.length, 12);
  eocd.writeUInt32LE(off, 16);
  return Buffer.concat([...parts, cdBytes, eocd]);
}

/**
 * A raw deflate stream of `mib` MiB of zeros (about 1:1000), built without inflating or deflating
 * that much: after the first sync-flushed MiB, every further MiB is the same block of matches.
 */
async function zeroBomb(mib: number): Promise<Buffer> {
  const d = zlib.createDeflateRaw({ level: 9 });
  const chunks: Buffer[] = [];
  d.on('data', (c: Buffer) => chunks.push(c));
  const step = async () => {
    d.write(Buffer.alloc(1 << 20));
    await new Promise<void>((r) => d.flush(zlib.constants.Z_SYNC_FLUSH, () => r()));
    return Buffer.concat(chunks.splice(0));
  };
  const first = await step();
  const next = await step();
  d.end();
  await new Promise((r) => d.on('end', r));
  return Buffer.concat([first, ...new Array<Buffer>(mib - 1).fill(next), Buffer.concat(chunks)]);
}

test('zip: a declared size deflate cannot produce is refused before inflating', () => {
  const pkl = zlib.deflateRawSync(Buffer.from('\x80\x02}q\x00.', 'latin1'));
  const lie = zipOf([{ name: 'a/data.pkl', stored: pkl, size: 3_000_000_000 }]);
  assert.throws(() => new ZipReader(lie), /record "a\/data\.pkl" declares 3000000000 bytes from \d+ compressed, more than deflate can produce/);
  // Declaring less than the stream holds stops inflating at the declared size.
  const more = zipOf([{ name: 'a/data.pkl', stored: zlib.deflateRawSync(Buffer.alloc(1 << 20)), size: 100 }]);
  assert.throws(() => new ZipReader(more).read('a/data.pkl'), /cannot inflate "a\/data\.pkl"/);
});

test('zip: honest high-ratio records past the bound (a multiple of the file size) are refused; under it they read', async () => {
  const stream = await zeroBomb(4);
  assert.ok(stream.length < 8000, `${stream.length} bytes`);
  assert.equal(zlib.inflateRawSync(stream).length, 4 << 20, 'the stream really holds 4 MiB');
  const bytes = zipOf([{ name: 'a/data.pkl', stored: stream, size: 4 << 20, crc: crc32(new Uint8Array(4 << 20)) }]);
  assert.equal(new ZipReader(bytes).read('a/data.pkl').length, 4 << 20, 'under the default bound (16 MiB for small files)');
  assert.throws(() => new ZipReader(bytes, 1 << 20), /declare 4194304\+ bytes inflated, over the 1048576-byte bound for a \d+-byte file \(a zip bomb\?\)/);
});

test('a 1 GiB zip-bomb checkpoint is refused in one line naming the file, without the memory', async () => {
  const bomb = join(dir, 'bomb.pth');
  const stream = await zeroBomb(1024);
  writeFileSync(
    bomb,
    zipOf([
      { name: 'bomb/data.pkl', stored: stream, size: 1024 << 20 },
      { name: 'bomb/version', stored: Buffer.from('3\n') },
    ]),
  );
  const rss = join(dir, 'rss.mjs');
  writeFileSync(rss, "process.on('exit', () => process.stderr.write('maxrss-kb=' + process.resourceUsage().maxRSS + '\\n'));\n");
  await writePng(join(dir, 'in.png'), 16, 16, 3, (i) => i % 251);
  for (const args of [
    ['export', '-m', bomb, '-o', join(dir, 'x.safetensors')],
    ['predict', '-m', bomb, '-i', join(dir, 'in.png')],
  ]) {
    const r = await runCli(args, { preload: [rss] });
    assertCleanFailure(r, [/bomb\.pth.*zip bomb/], args[0], 1);
    const lines = r.stderr
      .trim()
      .split('\n')
      .filter((l) => !l.startsWith('maxrss-kb='));
    assert.equal(lines.length, 1, r.stderr);
    const kb = Number(/maxrss-kb=(\d+)/.exec(r.stderr)?.[1]);
    assert.ok(kb > 0 && kb < 700 * 1024, `${args[0]}: peak RSS ${Math.round(kb / 1024)} MB for a ${stream.length}-byte file`);
  }
});

test('checkpoint keys such as "__proto__" stay keys (config, not a prototype)', async () => {
  const path = join(dir, 'proto.pth');
  const hostile = { scale: 0.125, nChannels: 99 } as Record<string, PyValue>;
  const config = { epochs: 1 } as Record<string, PyValue>;
  Object.defineProperty(config, '__proto__', { value: hostile, enumerable: true, writable: true, configurable: true });
  await savePth(path, {
    format: 'unet-ts/1',
    model_state_dict: {
      'inc.double_conv.0.weight': rawTensor('float32', [2, 1, 3, 3], new Float32Array(18)),
      'outc.conv.weight': rawTensor('float32', [1, 2, 1, 1], new Float32Array(2)),
    },
    config,
  });
  const ck = await loadCheckpoint(path);
  assert.ok(ck.config);
  assert.equal(Object.getPrototypeOf(ck.config), Object.prototype);
  assert.equal(ck.config.scale, undefined, 'no value inherited through a stored "__proto__"');
  assert.deepEqual(Object.keys(ck.config), ['epochs', '__proto__']);
  assert.equal((Object.getOwnPropertyDescriptor(ck.config, '__proto__')?.value as Record<string, unknown> | undefined)?.scale, 0.125);
});
