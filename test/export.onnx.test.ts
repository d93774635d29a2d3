// `unet export --format onnx`: the graph written from the state dict gives our libtorch forward's
// logits in onnxruntime-node (odd sizes, batches, both upsampling variants, 1/3 channels, 1/2/5
// classes), passes Debian's onnx checker (full check, with shape inference), carries its
// metadata, and our protobuf subset matches the official onnx.proto. Inputs below 16 px are
// refused by the Node-side ONNX predictor.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import protobuf from 'protobufjs';
import * as E from '../src/engine/index.js';
import { OPSET, writeOnnx } from '../src/export/onnx.js';
import { loadOnnxPredictor } from '../src/export/onnx-runtime.js';
import { ONNX_SUBSET } from '../src/export/onnx-schema.js';
import { UNet, type UNetArgs } from '../src/model/index.js';
import { exportCommand } from '../src/export/command.js';
import { saveCheckpoint, toRaw } from '../src/model/checkpoint.js';
import { PYTHON, maxDiff, runPython } from './helpers/python.js';
import { evalUNet } from './helpers/tiny-unet.js';

const ONNX_PROTO = '/usr/include/onnx/onnx.proto';
const NO_PROTO = existsSync(ONNX_PROTO) ? false : `${ONNX_PROTO} is missing (apt-get install libonnx-dev)`;
const NO_ONNX = spawnSync(PYTHON, ['-c', 'import onnx'], { encoding: 'utf8' }).status === 0 ? false : `${PYTHON} cannot import onnx (apt-get install python3-onnx)`;
let NO_ORT: string | false = false;
try {
  await import('onnxruntime-node');
} catch {
  NO_ORT = 'onnxruntime-node is not installed (npm ci installs it as a devDependency)';
}

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'unet-onnx-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const model = evalUNet;

const META = { model_args: '{}', mask_values: '[]', scale: '0.5', min_size: '16' };

describe('ONNX export', () => {
  const cases: [UNetArgs, number, number, number][] = [
    [{ nChannels: 1, nClasses: 2, bilinear: false }, 2, 61, 93],
    [{ nChannels: 3, nClasses: 5, bilinear: true }, 2, 61, 93],
    [{ nChannels: 3, nClasses: 1, bilinear: false }, 1, 48, 16],
    [{ nChannels: 1, nClasses: 1, bilinear: true }, 3, 33, 47],
  ];
  for (const [args, n, h, w] of cases) {
    test(`onnxruntime-node = libtorch: channels ${args.nChannels}, classes ${args.nClasses}, ${args.bilinear ? 'bilinear' : 'transposed'}, ${n}x${h}x${w}`, { skip: NO_ORT }, async () => {
      const m = model(args, 7 + args.nClasses);
      const file = join(dir, `m-${args.nChannels}-${args.nClasses}-${args.bilinear}.onnx`);
      await writeOnnx(file, new Map([...m.stateDict()].map(([k, t]) => [k, toRaw(t)])), m.args, META);
      const x = E.rand([n, args.nChannels, h, w]);
      const xd = x.data() as Float32Array;
      const ours = E.noGrad(() => m.forward(x)).disposeAfter((t) => t.data() as Float32Array);
      x.dispose();
      m.dispose();
      const p = await loadOnnxPredictor(file);
      const y = await p.run(xd, [n, args.nChannels, h, w]);
      // the dynamic axes: a second size through the same session
      const y2 = await p.run(new Float32Array(args.nChannels * 32 * 40), [1, args.nChannels, 32, 40]);
      await p.release();
      assert.deepEqual(y.dims, [n, args.nClasses, h, w]);
      assert.deepEqual(y2.dims, [1, args.nClasses, 32, 40]);
      const d = maxDiff(ours, y.data);
      assert.ok(d <= 1e-4, `max |diff| ${d}`);
    });
  }

  test('inputs below 16 px are refused (onnxruntime would return a wrong shape)', { skip: NO_ORT }, async () => {
    const m = model({ nChannels: 1, nClasses: 2, bilinear: false }, 1);
    const file = join(dir, 'small.onnx');
    await writeOnnx(file, new Map([...m.stateDict()].map(([k, t]) => [k, toRaw(t)])), m.args, META);
    m.dispose();
    const p = await loadOnnxPredictor(file);
    await assert.rejects(p.run(new Float32Array(15 * 40), [1, 1, 15, 40]), /input is 40x15, but the UNet needs at least 16x16 pixels/);
    await p.release();
  });

  test('unet export --format onnx: Debian onnx checker (full check), opset, dynamic axes, metadata', { skip: NO_ONNX }, async () => {
    const m = model({ nChannels: 3, nClasses: 4, bilinear: false }, 3);
    const ckpt = join(dir, 'model.pth');
    await saveCheckpoint(ckpt, { model: m.stateDict(), epoch: 1, globalStep: 5, loss: 0.5, valScore: 0.6, maskValues: [0, 60, 120, 255], modelArgs: m.args, config: { scale: 0.25 } });
    m.dispose();
    const out = join(dir, 'exported.onnx');
    const lines: string[] = [];
    assert.equal(await exportCommand({ model: ckpt, format: 'onnx', output: out, log: (l) => lines.push(l) }), 0);
    assert.match(lines[0], /Exported the UNet \(\d+ ONNX nodes, opset 17, \d+ initializers, scale 0\.25\)/);
    const py = runPython<{ opset: number; ir: number; meta: Record<string, string>; input: (string | number)[]; output: (string | number)[]; ops: string[]; inferred: (string | number)[] }>(
      `import sys, json, onnx
m = onnx.load(json.load(sys.stdin))
onnx.checker.check_model(m, full_check=True)
dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
inf = onnx.shape_inference.infer_shapes(m, strict_mode=True)
print(json.dumps({'opset': m.opset_import[0].version, 'ir': m.ir_version, 'meta': {p.key: p.value for p in m.metadata_props},
  'input': dims(m.graph.input[0]), 'output': dims(m.graph.output[0]), 'ops': sorted({n.op_type for n in m.graph.node}), 'inferred': dims(inf.graph.output[0])}))`,
      out,
    );
    assert.ok(py.opset >= 15);
    assert.equal(py.opset, OPSET);
    assert.equal(py.ir, 8);
    assert.deepEqual(py.input, ['batch', 3, 'height', 'width']);
    assert.deepEqual(py.output, ['batch', 4, 'height', 'width']);
    assert.deepEqual(JSON.parse(py.meta.model_args), { n_channels: 3, n_classes: 4, bilinear: false, depth: 4, base_channels: 8 }); // a narrow model: not the reference's width
    assert.deepEqual(JSON.parse(py.meta.mask_values), [0, 60, 120, 255]);
    assert.equal(py.meta.scale, '0.25');
    assert.equal(py.meta.min_size, '16');
    assert.deepEqual(py.ops, ['BatchNormalization', 'Concat', 'Conv', 'ConvTranspose', 'Div', 'MaxPool', 'Pad', 'Relu', 'Shape', 'Sub']);
    assert.equal(py.inferred[1], 4);
  });

  test('the writer streams: peak RSS grows by far less than the model while writing a full-width UNet', {
    skip: existsSync('/proc/self/clear_refs') ? false : 'needs Linux /proc/self/clear_refs',
  }, async () => {
    E.manualSeed(0);
    const m = new UNet({ nChannels: 3, nClasses: 2, bilinear: false });
    const weights = new Map([...m.stateDict()].map(([k, t]) => [k, toRaw(t)]));
    m.dispose();
    const mib = (key: string) =>
      Number(
        /(\d+) kB/.exec(
          readFileSync('/proc/self/status', 'utf8')
            .split('\n')
            .find((l) => l.startsWith(key)) ?? '',
        )?.[1],
      ) / 1024;
    writeFileSync('/proc/self/clear_refs', '5'); // resets the peak (VmHWM) to the current RSS
    const before = mib('VmRSS:');
    const r = await writeOnnx(join(dir, 'full.onnx'), weights, { nChannels: 3, nClasses: 2, bilinear: false }, META);
    const growth = mib('VmHWM:') - before;
    console.log(`# full-width UNet: ${(r.bytes / 1e6).toFixed(1)} MB written, peak RSS growth ${growth.toFixed(1)} MiB`);
    assert.ok(r.bytes > 120e6);
    assert.ok(growth < 16, `peak RSS grew by ${growth.toFixed(1)} MiB`);
    rmSync(join(dir, 'full.onnx'));
  });

  test('errors: a folder as -o for onnx, a file as -o for web', async () => {
    const m = model({ nChannels: 1, nClasses: 2, bilinear: false }, 2);
    const ckpt = join(dir, 'e.pth');
    await saveCheckpoint(ckpt, { model: m.stateDict(), epoch: 1, globalStep: 1, loss: 0, valScore: 0, maskValues: [0, 1], modelArgs: m.args, config: {} });
    m.dispose();
    await assert.rejects(exportCommand({ model: ckpt, format: 'onnx', output: dir, log: () => {} }), /is a folder; pass a file name/);
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    await assert.rejects(exportCommand({ model: ckpt, format: 'web', output: file, log: () => {} }), /is a file; --format web writes a folder/);
  });

  test('the protobuf subset matches libonnx-dev onnx.proto (ids, types, repeated, packed)', { skip: NO_PROTO }, () => {
    const official = new protobuf.Root().loadSync(ONNX_PROTO, { keepCase: true });
    let checked = 0;
    const walk = (nested: Record<string, { fields?: Record<string, { id: number; type: string; rule?: string; options?: { packed?: boolean } }>; values?: Record<string, number>; nested?: Record<string, unknown> }>, path: string) => {
      for (const [name, def] of Object.entries(nested)) {
        const full = `${path}.${name}`;
        if (def.values) {
          const e = official.lookupEnum(full);
          for (const [k, v] of Object.entries(def.values)) assert.equal(e.values[k], v, `${full}.${k}`);
        }
        if (def.fields) {
          const t = official.lookupType(full);
          for (const [fname, f] of Object.entries(def.fields)) {
            const o = t.fields[fname];
            assert.ok(o, `${full}.${fname} exists in onnx.proto`);
            assert.equal(o.id, f.id, `${full}.${fname} id`);
            assert.equal(o.type.replace(/^.*\./, ''), f.type, `${full}.${fname} type`);
            assert.equal(o.repeated, f.rule === 'repeated', `${full}.${fname} repeated`);
            assert.equal(o.options?.packed === true, f.options?.packed === true, `${full}.${fname} packed`);
            checked++;
          }
        }
        if (def.nested) walk(def.nested as never, full);
      }
    };
    walk(ONNX_SUBSET.nested.onnx.nested as never, 'onnx');
    assert.ok(checked >= 40, `${checked} fields checked`);
  });
});
