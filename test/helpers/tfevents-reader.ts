/**
 * Decodes TensorBoard event files with an independent reader: Python's google.protobuf (Debian
 * python3-protobuf) with descriptors built by hand from tensorboard/compat/proto/{event,summary,
 * histogram}.proto, and a CRC32C written here in Python.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { PYTHON } from './python.js';

export const PY_READER = String.raw`
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

export interface PyEvent {
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

/** A reason when python3-protobuf cannot be imported, else false. */
export function pythonProtobufMissing(): string | false {
  const r = spawnSync(PYTHON, ['-c', 'import google.protobuf'], { encoding: 'utf8' });
  if (r.error) return `${PYTHON} not runnable (${r.error.message})`;
  if (r.status !== 0) return `python3-protobuf is missing (${PYTHON}: import google.protobuf failed; apt-get install python3-protobuf)`;
  return false;
}

export interface DecodedEvents {
  records: number;
  crc_errors: string[];
  events: PyEvent[];
}

/** Every record of an event file, decoded in Python. */
export function decodeEvents(path: string): DecodedEvents {
  const r = spawnSync(PYTHON, ['-c', PY_READER, path], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  assert.equal(r.status, 0, `python reader failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as DecodedEvents;
}
