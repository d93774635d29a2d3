// TensorBoard shows what the dashboard shows: the run's config as a text summary (text plugin) and
// per-class Dice/IoU as scalars. The event file is decoded by Python's google.protobuf (Debian
// python3-protobuf) with descriptors written here from tensorboard/compat/proto/*.proto. Also the
// CRC32C of the record framing against the published check values.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { Tracker } from '../src/tracking/index.js';
import { crc32c } from '../src/tracking/crc32c.js';
import { PYTHON } from './helpers/python.js';
import { tempDir } from './helpers/workdir.js';

const dir = tempDir('tb');

const hasProtobuf = spawnSync(PYTHON, ['-c', 'import google.protobuf'], { encoding: 'utf8' }).status === 0;
const skip = hasProtobuf ? false : 'python3-protobuf is not installed (bash scripts/setup.sh --test installs it)';

const PY = String.raw`
import json, struct, sys
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
F = descriptor_pb2.FieldDescriptorProto
fdp = descriptor_pb2.FileDescriptorProto(name="tb_text.proto", package="tb", syntax="proto2")  # proto2: HasField works on scalars
def msg(name, fields, parent=None):
    m = (parent.nested_type if parent else fdp.message_type).add(name=name)
    for (n, num, t, *rest) in fields:
        f = m.field.add(name=n, number=num, type=t, label=F.LABEL_REPEATED if "rep" in rest else F.LABEL_OPTIONAL)
        for r in rest:
            if r.startswith("."): f.type_name = r
    return m
dim = msg("Dim", [("size", 1, F.TYPE_INT64)])
msg("TensorShapeProto", [("dim", 2, F.TYPE_MESSAGE, "rep", ".tb.Dim")])
msg("TensorProto", [("dtype", 1, F.TYPE_INT32), ("tensor_shape", 2, F.TYPE_MESSAGE, ".tb.TensorShapeProto"), ("string_val", 8, F.TYPE_BYTES, "rep")])
msg("PluginData", [("plugin_name", 1, F.TYPE_STRING), ("content", 2, F.TYPE_BYTES)])
msg("SummaryMetadata", [("plugin_data", 1, F.TYPE_MESSAGE, ".tb.PluginData")])
msg("Value", [("tag", 1, F.TYPE_STRING), ("simple_value", 2, F.TYPE_FLOAT), ("tensor", 8, F.TYPE_MESSAGE, ".tb.TensorProto"), ("metadata", 9, F.TYPE_MESSAGE, ".tb.SummaryMetadata")])
msg("Summary", [("value", 1, F.TYPE_MESSAGE, "rep", ".tb.Value")])
msg("Event", [("wall_time", 1, F.TYPE_DOUBLE), ("step", 2, F.TYPE_INT64), ("file_version", 3, F.TYPE_STRING), ("summary", 5, F.TYPE_MESSAGE, ".tb.Summary")])
pool = descriptor_pool.DescriptorPool(); pool.Add(fdp)
get = getattr(message_factory, "GetMessageClass", None) or (lambda d: message_factory.MessageFactory(pool).GetPrototype(d))
Event = get(pool.FindMessageTypeByName("tb.Event"))
data = open(sys.argv[1], "rb").read(); pos = 0; out = []
while pos < len(data):
    (n,) = struct.unpack_from("<Q", data, pos); ev = Event(); ev.ParseFromString(data[pos + 12: pos + 12 + n]); pos += 12 + n + 4
    for v in ev.summary.value:
        out.append({"step": ev.step, "tag": v.tag, "value": v.simple_value if v.HasField("simple_value") else None,
                    "plugin": v.metadata.plugin_data.plugin_name, "dtype": v.tensor.dtype,
                    "text": [s.decode() for s in v.tensor.string_val]})
print(json.dumps(out))
`;

test('the config is a text summary and per-class Dice/IoU are scalars in the event file', { skip }, async () => {
  const config = { epochs: 3, learningRate: 1e-4, maskValues: [0, 127, 255] };
  const tracker = await Tracker.create({ logdir: dir, name: 'tb', config, onWarning: (m) => assert.fail(m) });
  tracker.scalar('validation Dice', 0.5, 4);
  tracker.record({ type: 'epoch', epoch: 1, step: 4, perClassDice: [0.99, 0.75, 0.5], perClassIoU: [0.98, 0.6, 0.33] });
  await tracker.close();
  const r = spawnSync(PYTHON, ['-c', PY, tracker.eventFile as string], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const values = JSON.parse(r.stdout) as { step: number; tag: string; value: number | null; plugin: string; dtype: number; text: string[] }[];
  const text = values.find((v) => v.tag === 'config');
  assert.ok(text, JSON.stringify(values));
  assert.equal(text.plugin, 'text');
  assert.equal(text.dtype, 7, 'DT_STRING');
  assert.deepEqual(JSON.parse(text.text[0]), config, 'the config.json text (an indented Markdown code block)');
  assert.match(text.text[0], /^ {4}\{/);
  const scalars = Object.fromEntries(values.filter((v) => v.value !== null).map((v) => [`${v.tag}@${v.step}`, v.value]));
  for (const [k, want] of [
    ['per-class Dice/class 0@4', 0.99],
    ['per-class Dice/class 1@4', 0.75],
    ['per-class Dice/class 2@4', 0.5],
    ['per-class IoU/class 2@4', 0.33],
    ['validation Dice@4', 0.5],
  ] as const) {
    assert.ok(Math.abs((scalars[k] ?? Number.NaN) - Math.fround(want)) < 1e-7, `${k}: ${scalars[k]}`);
  }
});

test('CRC32C: the check value and the iSCSI (RFC 3720 B.4) vectors', () => {
  const enc = new TextEncoder();
  assert.equal(crc32c(enc.encode('123456789')), 0xe3069283);
  assert.equal(crc32c(new Uint8Array(32)), 0x8a9136aa);
  assert.equal(crc32c(new Uint8Array(32).fill(0xff)), 0x62a8ab43);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => i)), 0x46dd794e);
  assert.equal(crc32c(Uint8Array.from({ length: 32 }, (_, i) => 31 - i)), 0x113fdb5c);
  assert.equal(crc32c(new Uint8Array(0)), 0);
});
