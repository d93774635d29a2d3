// TensorBoard event files, decoded by an independent reader (helpers/tfevents-reader.ts: Python's
// google.protobuf with hand-built descriptors and its own CRC32C). Skips when python3-protobuf is missing.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, test } from 'node:test';
import { computeHistogram, EventFileWriter, encodePng, FILE_VERSION, frameRecord, maskedCrc32c, maskToImage, Tracker } from '../src/tracking/index.js';
import { decodeEvents as decode, type PyEvent, pythonProtobufMissing } from './helpers/tfevents-reader.js';
import { tempDir } from './helpers/workdir.js';

const skipPy = pythonProtobufMissing();

const tmp = tempDir('tfevents');

function f32(x: number): number {
  return Math.fround(x);
}

describe('tfevents framing (JS side)', () => {
  test('masked CRC32C and record layout', () => {
    // crc32c("123456789") = 0xE3069283; masked = rotr15 + 0xa282ead8
    const crc = 0xe3069283;
    const expected = ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
    assert.equal(maskedCrc32c(new TextEncoder().encode('123456789')), expected);
    const rec = frameRecord(new Uint8Array([1, 2, 3]));
    assert.equal(rec.length, 8 + 4 + 3 + 4);
    assert.equal(rec.readBigUInt64LE(0), 3n);
    assert.equal(rec.readUInt32LE(8), maskedCrc32c(rec.subarray(0, 8)));
    assert.equal(rec.readUInt32LE(15), maskedCrc32c(new Uint8Array([1, 2, 3])));
  });

  test('histogram summary: counts, constants, non-finite values', () => {
    const h = computeHistogram(Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]), 5);
    assert.ok(h);
    assert.deepEqual(h.counts, [2, 2, 2, 2, 2]);
    assert.equal(h.edges.length, 6);
    assert.equal(h.edges[0], 0);
    assert.equal(h.edges[5], 9);
    const c = computeHistogram(new Float32Array(7), 30);
    assert.ok(c);
    assert.equal(c.num, 7);
    assert.equal(
      c.counts.reduce((a, b) => a + b, 0),
      7,
    );
    assert.ok(c.edges[0] < 0 && c.edges[30] > 0);
    const n = computeHistogram(Float32Array.from([1, NaN, Infinity, 2]), 4);
    assert.ok(n);
    assert.equal(n.num, 2);
    assert.equal(n.nonFinite, 2);
    assert.equal(computeHistogram(Float32Array.from([NaN]), 4), null);
  });
});

describe('tfevents decoded by python3-protobuf', { skip: skipPy }, () => {
  test('EventFileWriter: scalars, histogram, image, CRCs', async () => {
    const dir = mkdtempSync(join(tmp, 'w-'));
    const w = new EventFileWriter(dir);
    assert.match(basename(w.path), /^events\.out\.tfevents\.\d{10}\.[^/]+$/);
    w.addScalar('train loss', 0.5, 1);
    w.addScalar('train loss', 0, 2); // zero must survive (proto3 oneof presence)
    w.addScalar('validation Dice', 0.75, 2);
    w.addScalar('big step', 1.5, 2 ** 40);
    const values = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 3);
    w.addHistogram('Weights/inc.double_conv.0.weight', values, 2, 30);
    const img = { data: new Uint8Array(20 * 12 * 3).fill(200), width: 20, height: 12, channels: 3 as const };
    w.addImage('images/0', encodePng(img), 20, 12, 3, 2);
    await w.close();

    const r = decode(w.path);
    assert.deepEqual(r.crc_errors, []);
    assert.equal(r.records, 7);
    const [first, ...rest] = r.events;
    assert.equal(first?.what, 'file_version');
    assert.equal(first?.file_version, FILE_VERSION);
    assert.ok(Math.abs((first?.wall_time ?? 0) - Date.now() / 1000) < 60);
    const scalars = rest.filter((e) => e.values?.[0]?.kind === 'simple_value').map((e) => [e.values?.[0]?.tag, e.step, e.values?.[0]?.simple_value]);
    assert.deepEqual(scalars, [
      ['train loss', 1, 0.5],
      ['train loss', 2, 0],
      ['validation Dice', 2, 0.75],
      ['big step', 2 ** 40, 1.5],
    ]);
    const hEv = rest.find((e) => e.values?.[0]?.kind === 'histo');
    const h = hEv?.values?.[0]?.histo;
    assert.ok(h);
    assert.equal(hEv?.values?.[0]?.tag, 'Weights/inc.double_conv.0.weight');
    assert.equal(h.num, 1000);
    assert.equal(h.bucket.length, 30);
    assert.equal(h.bucket_limit.length, 30);
    assert.equal(
      h.bucket.reduce((a, b) => a + b, 0),
      1000,
    );
    const js = computeHistogram(values, 30);
    assert.ok(js);
    assert.equal(h.min, js.min);
    assert.equal(h.max, js.max);
    assert.equal(h.bucket_limit[29], js.max);
    for (let i = 1; i < 30; i++) assert.ok(h.bucket_limit[i] > h.bucket_limit[i - 1]);
    const iEv = rest.find((e) => e.values?.[0]?.kind === 'image');
    assert.deepEqual(iEv?.values?.[0]?.image && { ...iEv.values[0].image, bytes: 0 }, {
      height: 12,
      width: 20,
      colorspace: 3,
      png_signature: true,
      ihdr_width: 20,
      ihdr_height: 12,
      bytes: 0,
    });
    assert.equal(iEv?.step, 2);
  });

  test('Tracker writes the reference tags into a valid event file', async () => {
    const logdir = join(tmp, 'runs');
    const t = await Tracker.create({ logdir, name: 'tb', config: { epochs: 1 }, onWarning: (m) => assert.fail(m) });
    for (let step = 1; step <= 10; step++) {
      t.scalar('train loss', 1 / step, step);
      t.scalar('learning rate', 1e-4, step);
      t.scalar('epoch', 1, step);
      t.scalar('img/s', 100 + step, step);
    }
    t.scalar('validation Dice', 0.625, 10);
    t.histogram(
      'Weights/outc.conv.weight',
      Float32Array.from({ length: 64 }, (_, i) => i / 64 - 0.5),
      10,
    );
    t.histogram(
      'Gradients/outc.conv.weight',
      Float32Array.from({ length: 64 }, (_, i) => (i % 7) * 1e-3),
      10,
    );
    const mask = new Uint8Array(16 * 8);
    mask.fill(1, 0, 64);
    t.image('images/0', { data: new Uint8Array(16 * 8).fill(128), width: 16, height: 8, channels: 1 }, 10);
    t.image('masks/true/0', maskToImage(mask, 16, 8), 10);
    t.image('masks/pred/0', maskToImage(mask, 16, 8, 3), 10);
    await t.close();

    const files = readdirSync(t.runDir).filter((f) => f.startsWith('events.out.tfevents.'));
    assert.equal(files.length, 1);
    const r = decode(join(t.runDir, files[0] as string));
    assert.deepEqual(r.crc_errors, []);
    assert.equal(r.events[0]?.file_version, 'brain.Event:2');
    const byTag = new Map<string, PyEvent[]>();
    for (const e of r.events.slice(1)) {
      for (const v of e.values ?? []) byTag.set(v.tag, [...(byTag.get(v.tag) ?? []), e]);
    }
    for (const tag of ['train loss', 'learning rate', 'epoch', 'img/s']) assert.equal(byTag.get(tag)?.length, 10, tag);
    assert.deepEqual(
      byTag.get('train loss')?.map((e) => [e.step, e.values?.[0]?.simple_value]),
      Array.from({ length: 10 }, (_, i) => [i + 1, f32(1 / (i + 1))]),
    );
    assert.equal(byTag.get('learning rate')?.[0]?.values?.[0]?.simple_value, f32(1e-4));
    assert.equal(byTag.get('validation Dice')?.[0]?.values?.[0]?.simple_value, 0.625);
    assert.equal(byTag.get('Weights/outc.conv.weight')?.[0]?.values?.[0]?.histo?.num, 64);
    assert.equal(byTag.get('Gradients/outc.conv.weight')?.[0]?.values?.[0]?.histo?.num, 64);
    const img = (tag: string) => byTag.get(tag)?.[0]?.values?.[0]?.image;
    assert.equal(img('images/0')?.colorspace, 1);
    assert.equal(img('masks/true/0')?.colorspace, 1);
    assert.equal(img('masks/pred/0')?.colorspace, 3);
    for (const tag of ['images/0', 'masks/true/0', 'masks/pred/0']) {
      assert.equal(img(tag)?.width, 16);
      assert.equal(img(tag)?.height, 8);
      assert.equal(img(tag)?.ihdr_width, 16);
      assert.equal(img(tag)?.png_signature, true);
      assert.equal(byTag.get(tag)?.[0]?.step, 10);
    }
    // the same PNG is in media/ for the dashboard
    const png = readFileSync(join(t.runDir, 'media', '10-masks_pred_0.png'));
    assert.equal(png.readUInt32BE(16), 16);
  });
});
