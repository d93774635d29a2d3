// TensorBoard event files, decoded by an independent reader: Python's
// google.protobuf (Debian python3-protobuf) with descriptors built by hand from
// tensorboard/compat/proto/{event,summary,histogram}.proto, and a CRC32C written
// here in Python. Skips when python3-protobuf is missing.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  computeHistogram,
  EventFileWriter,
  encodePng,
  FILE_VERSION,
  frameRecord,
  maskedCrc32c,
  maskToImage,
  Tracker,
} from '../src/tracking/index.js';

const PY_READER = String.raw`
import json, struct, sys
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

# --- CRC32C (Castagnoli, reflected polynomial 0x82F63B78), independent of the JS one
_T = []
for i in range(256):
    c = i
    for _ in range(8):
        c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    _T.append(c)

def crc32c(b):
    c = 0xFFFFFFFF
    for x in b:
        c = _T[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF

def masked_crc(b):
    c = crc32c(b)
    rot = ((c >> 15) | (c << 17)) & 0xFFFFFFFF
    return (rot + 0xA282EAD8) & 0xFFFFFFFF

assert crc32c(b"123456789") == 0xE3069283  # the standard check value

# --- descriptors, field numbers from tensorboard/compat/proto/*.proto
F = descriptor_pb2.FieldDescriptorProto
fdp = descriptor_pb2.FileDescriptorProto(name="tb_subset.proto", package="tensorboard", syntax="proto3")

def field(m, name, number, ftype, label=F.LABEL_OPTIONAL, type_name=None, oneof=None, packed=False):
    f = m.field.add(name=name, number=number, type=ftype, label=label)
    if type_name:
        f.type_name = type_name
    if oneof is not None:
        f.oneof_index = oneof
    if packed:
        f.options.packed = True

hist = fdp.message_type.add(name="HistogramProto")
for i, n in enumerate(["min", "max", "num", "sum", "sum_squares"]):
    field(hist, n, i + 1, F.TYPE_DOUBLE)
field(hist, "bucket_limit", 6, F.TYPE_DOUBLE, F.LABEL_REPEATED, packed=True)
field(hist, "bucket", 7, F.TYPE_DOUBLE, F.LABEL_REPEATED, packed=True)

summ = fdp.message_type.add(name="Summary")
img = summ.nested_type.add(name="Image")
field(img, "height", 1, F.TYPE_INT32)
field(img, "width", 2, F.TYPE_INT32)
field(img, "colorspace", 3, F.TYPE_INT32)
field(img, "encoded_image_string", 4, F.TYPE_BYTES)
val = summ.nested_type.add(name="Value")
val.oneof_decl.add(name="value")
field(val, "node_name", 7, F.TYPE_STRING)
field(val, "tag", 1, F.TYPE_STRING)
field(val, "simple_value", 2, F.TYPE_FLOAT, oneof=0)
field(val, "obsolete_old_style_histogram", 3, F.TYPE_BYTES, oneof=0)
field(val, "image", 4, F.TYPE_MESSAGE, type_name=".tensorboard.Summary.Image", oneof=0)
field(val, "histo", 5, F.TYPE_MESSAGE, type_name=".tensorboard.HistogramProto", oneof=0)
field(summ, "value", 1, F.TYPE_MESSAGE, F.LABEL_REPEATED, type_name=".tensorboard.Summary.Value")

ev = fdp.message_type.add(name="Event")
ev.oneof_decl.add(name="what")
field(ev, "wall_time", 1, F.TYPE_DOUBLE)
field(ev, "step", 2, F.TYPE_INT64)
field(ev, "file_version", 3, F.TYPE_STRING, oneof=0)
field(ev, "graph_def", 4, F.TYPE_BYTES, oneof=0)
field(ev, "summary", 5, F.TYPE_MESSAGE, type_name=".tensorboard.Summary", oneof=0)

pool = descriptor_pool.DescriptorPool()
pool.Add(fdp)
desc = pool.FindMessageTypeByName("tensorboard.Event")
if hasattr(message_factory, "GetMessageClass"):
    Event = message_factory.GetMessageClass(desc)
else:
    Event = message_factory.MessageFactory(pool).GetPrototype(desc)

# --- read the TFRecord stream
data = open(sys.argv[1], "rb").read()
off, out, crc_errors = 0, [], []
while off < len(data):
    if off + 12 > len(data):
        crc_errors.append("truncated header at %d" % off)
        break
    header = data[off:off + 8]
    (length,) = struct.unpack("<Q", header)
    (hcrc,) = struct.unpack("<I", data[off + 8:off + 12])
    if hcrc != masked_crc(header):
        crc_errors.append("length crc at %d" % off)
    body = data[off + 12:off + 12 + length]
    (dcrc,) = struct.unpack("<I", data[off + 12 + length:off + 16 + length])
    if dcrc != masked_crc(body):
        crc_errors.append("data crc at %d" % off)
    off += 16 + length
    e = Event()
    e.ParseFromString(body)
    rec = {"wall_time": e.wall_time, "step": e.step, "what": e.WhichOneof("what")}
    if rec["what"] == "file_version":
        rec["file_version"] = e.file_version
    elif rec["what"] == "summary":
        vals = []
        for v in e.summary.value:
            kind = v.WhichOneof("value")
            d = {"tag": v.tag, "kind": kind}
            if kind == "simple_value":
                d["simple_value"] = v.simple_value
            elif kind == "histo":
                h = v.histo
                d["histo"] = {"min": h.min, "max": h.max, "num": h.num, "sum": h.sum, "sum_squares": h.sum_squares,
                              "bucket_limit": list(h.bucket_limit), "bucket": list(h.bucket)}
            elif kind == "image":
                im = v.image
                png = im.encoded_image_string
                ihdr_w, ihdr_h = struct.unpack(">II", png[16:24]) if len(png) >= 24 else (-1, -1)
                d["image"] = {"height": im.height, "width": im.width, "colorspace": im.colorspace,
                              "png_signature": png[:8] == b"\x89PNG\r\n\x1a\n", "ihdr_width": ihdr_w, "ihdr_height": ihdr_h,
                              "bytes": len(png)}
            vals.append(d)
        rec["values"] = vals
    out.append(rec)
print(json.dumps({"records": len(out), "crc_errors": crc_errors, "events": out}))
`;

interface PyEvent {
  wall_time: number;
  step: number;
  what: string;
  file_version?: string;
  values?: Array<{
    tag: string;
    kind: string;
    simple_value?: number;
    histo?: { min: number; max: number; num: number; sum: number; sum_squares: number; bucket_limit: number[]; bucket: number[] };
    image?: { height: number; width: number; colorspace: number; png_signature: boolean; ihdr_width: number; ihdr_height: number; bytes: number };
  }>;
}

const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

function pythonProtobufMissing(): string | false {
  const r = spawnSync(PYTHON, ['-c', 'import google.protobuf'], { encoding: 'utf8' });
  if (r.error) return `${PYTHON} not runnable (${r.error.message})`;
  if (r.status !== 0) return `python3-protobuf is missing (${PYTHON}: import google.protobuf failed; apt-get install python3-protobuf)`;
  return false;
}
const skipPy = pythonProtobufMissing();

const tmp = mkdtempSync(join(tmpdir(), 'unet-tfevents-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function decode(path: string): { records: number; crc_errors: string[]; events: PyEvent[] } {
  const script = join(tmp, 'read_events.py');
  writeFileSync(script, PY_READER);
  const r = spawnSync(PYTHON, [script, path], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  assert.equal(r.status, 0, `python reader failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

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
    assert.equal(c.counts.reduce((a, b) => a + b, 0), 7);
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
    assert.equal(h.bucket.reduce((a, b) => a + b, 0), 1000);
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
    t.histogram('Weights/outc.conv.weight', Float32Array.from({ length: 64 }, (_, i) => i / 64 - 0.5), 10);
    t.histogram('Gradients/outc.conv.weight', Float32Array.from({ length: 64 }, (_, i) => (i % 7) * 1e-3), 10);
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
