// `unet export` (safetensors, the reference's pth state_dict) and checkpoint interop with Python:
// our export loads into the reference UNet (strict) with equal outputs; the reference's
// torch.save files (plain dict and OrderedDict, with mask_values) load here with equal logits and
// masks. Python parts skip cleanly without /usr/bin/python3 + torch (numpy for safetensors).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { defaults, predictOptions } from '../src/config/options.js';
import { readMask } from '../src/data/index.js';
import * as E from '../src/engine/index.js';
import { decodeSafetensors } from '../src/io/safetensors.js';
import { UNet, type UNetArgs } from '../src/model/index.js';
import { exportCommand } from '../src/export/command.js';
import { forwardLogits, loadPredictor, preprocess, runPredict } from '../src/predict/index.js';
import { saveCheckpoint, toRaw } from '../src/model/checkpoint.js';
import { PY_EXCHANGE, dumpTensors, loadTensors } from './helpers/exchange.js';
import { NO_TORCH, PYTHON, assertClose, hasTorch, runPython } from './helpers/python.js';
import { REFERENCE_BENCH } from './helpers/reference.js';

// The project's reference UNet (test/reference/model.py), through the bench script that exposes it.
const REF = REFERENCE_BENCH;
const TORCH = hasTorch() ? false : NO_TORCH;
const NUMPY = spawnSync(PYTHON, ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0 ? false : `${PYTHON} cannot import numpy`;
const W = 48;
const H = 32;
const ARGS: UNetArgs = { nChannels: 1, nClasses: 3, bilinear: true };
let dir: string;
let ckpt: string;
let image: string;
const quiet = { log: () => {} };

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'unet-export-'));
  E.manualSeed(3);
  const m = new UNet(ARGS);
  // Non-trivial BatchNorm statistics, so eval-mode outputs depend on every buffer.
  E.noGrad(() => {
    for (const [k, t] of m.stateDict()) {
      if (k.endsWith('running_mean')) t.normal_(0, 0.1);
      else if (k.endsWith('running_var')) t.uniform_(0.5, 1.5);
    }
  });
  ckpt = join(dir, 'model.pth');
  await saveCheckpoint(ckpt, { model: m.stateDict(), epoch: 2, globalStep: 20, loss: 0.3, valScore: 0.7, maskValues: [0, 100, 200], modelArgs: ARGS, config: {} });
  m.dispose();
  image = join(dir, 'img.png');
  const px = Uint8Array.from({ length: W * H }, (_, i) => ((i % W) * 5 + Math.floor(i / W) * 7 + ((i * 31) % 17)) & 255);
  await sharp(px, { raw: { width: W, height: H, channels: 1 } })
    .toColourspace('b-w')
    .png()
    .toFile(image);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Our logits [1, K, h, w] for the preprocessed test image, and that input. */
async function ourLogits(model: string): Promise<{ x: Float32Array; y: Float32Array; h: number; w: number }> {
  const p = await loadPredictor(model, { device: 'cpu' });
  try {
    const pre = await preprocess(image, 0.5, p.args.nChannels);
    const y = forwardLogits(p, [pre]).disposeAfter((t) => t.data() as Float32Array);
    return { x: pre.data, y, h: pre.height, w: pre.width };
  } finally {
    p.dispose();
  }
}

describe('export', () => {
  test('safetensors: tensors and __metadata__ (format, model_args, mask_values)', async () => {
    const out = join(dir, 'model.safetensors');
    assert.equal(await exportCommand({ model: ckpt, format: 'safetensors', output: out, ...quiet }), 0);
    const st = decodeSafetensors(readFileSync(out));
    assert.equal(st.metadata.format, 'pt');
    assert.deepEqual(JSON.parse(st.metadata.model_args), { n_channels: 1, n_classes: 3, bilinear: true });
    assert.deepEqual(JSON.parse(st.metadata.mask_values), [0, 100, 200]);
    const ref = new UNet(ARGS);
    const keys = [...ref.stateDict().keys()];
    ref.dispose();
    assert.deepEqual(Object.keys(st.tensors).sort(), [...keys].sort());
    assert.equal(st.tensors['inc.double_conv.1.num_batches_tracked'].dtype, 'int64');
    const p = await loadPredictor(ckpt, { device: 'cpu' });
    const w = toRaw(p.model.stateDict().get('outc.conv.weight') as E.Tensor);
    p.dispose();
    assert.deepEqual(st.tensors['outc.conv.weight'].shape, [3, 64, 1, 1]);
    assert.deepEqual(Buffer.from(st.tensors['outc.conv.weight'].data), Buffer.from(w.data));
  });

  test('safetensors read in Python with json + numpy', { skip: NUMPY }, () => {
    const out = join(dir, 'model.safetensors');
    if (!existsSync(out)) return;
    const py = runPython<{ meta: Record<string, string>; shape: number[]; sum: number; n: number }>(
      `import sys, json, numpy as np
b = open(json.load(sys.stdin), 'rb').read()
n = int.from_bytes(b[:8], 'little'); h = json.loads(b[8:8 + n]); data = b[8 + n:]
e = h['outc.conv.weight']; s, t = e['data_offsets']
a = np.frombuffer(data[s:t], dtype=np.float32).reshape(e['shape'])
print(json.dumps({'meta': h['__metadata__'], 'shape': list(a.shape), 'sum': float(a.astype(np.float64).sum()), 'n': len(h) - 1}))`,
      out,
    );
    assert.deepEqual(py.shape, [3, 64, 1, 1]);
    assert.equal(py.meta.format, 'pt');
    assert.deepEqual(JSON.parse(py.meta.mask_values), [0, 100, 200]);
    const st = decodeSafetensors(readFileSync(out));
    assert.equal(py.n, Object.keys(st.tensors).length);
    const f = new Float32Array(st.tensors['outc.conv.weight'].data.slice().buffer);
    assert.ok(Math.abs(py.sum - f.reduce((a, b) => a + b, 0)) < 1e-4);
  });

  test('errors: unknown format, missing model, output = input', async () => {
    await assert.rejects(exportCommand({ model: ckpt, format: 'tflite', output: join(dir, 'x'), ...quiet }), /--format must be one of safetensors, pth-state-dict, onnx, web/);
    await assert.rejects(exportCommand({ model: join(dir, 'nope.pth'), format: 'safetensors', output: join(dir, 'x'), ...quiet }), (e: Error) => e.name === 'CheckpointError' && /nope\.pth does not exist/.test(e.message));
    await assert.rejects(exportCommand({ model: ckpt, format: 'pth-state-dict', output: ckpt, ...quiet }), /is the model file itself/);
  });

  test('pth-state-dict loads into the reference UNet (strict) with equal outputs', { skip: TORCH }, async () => {
    const out = join(dir, 'reference.pth');
    assert.equal(await exportCommand({ model: ckpt, format: 'pth-state-dict', output: out, ...quiet }), 0);
    const ours = await ourLogits(out);
    E.tensor(ours.x, [1, 1, ours.h, ours.w]).disposeAfter((x) => dumpTensors(dir, [['x', x]], 'x.json'));
    const py = runPython<{ mask_values: number[]; keys: number }>(
      `${PY_EXCHANGE}
import sys, importlib.util
torch.set_num_threads(2)
req = json.load(sys.stdin)
spec = importlib.util.spec_from_file_location('ref', req['ref']); ref = importlib.util.module_from_spec(spec); spec.loader.exec_module(ref)
sd = torch.load(req['pth'], map_location='cpu')
mask_values = sd.pop('mask_values', [0, 1])   # as the reference's predict.py
m = ref.UNet(1, 3, True)
m.load_state_dict(sd, strict=True)
m.eval()
with torch.no_grad():
    y = m(load(req['dir'], 'x.json')['x'])
dump(req['dir'], {'y': y}, 'y.json')
print(json.dumps({'mask_values': mask_values, 'keys': len(sd)}))`,
      { ref: REF, pth: out, dir },
    );
    assert.deepEqual(py.mask_values, [0, 100, 200]);
    const y = loadTensors(dir, 'y.json').get('y') as E.Tensor;
    assert.deepEqual(y.shape, [1, 3, ours.h, ours.w]);
    assertClose(
      ours.y,
      y.disposeAfter((t) => t.data() as Float32Array),
      1e-4,
      1e-4,
      'logits (ours vs reference UNet)',
    );
    // The export gives the same network as the original checkpoint.
    assertClose((await ourLogits(ckpt)).y, ours.y, 0, 0, 'export vs original');
  });
});

test("Python -> us: the reference's torch.save files (dict and OrderedDict + mask_values) give the same logits and masks", { skip: TORCH }, async () => {
  const pre = await preprocess(image, 0.5, 1);
  E.tensor(pre.data, [1, 1, pre.height, pre.width]).disposeAfter((x) => dumpTensors(dir, [['x', x]], 'pyx.json'));
  const files = { plain: join(dir, 'py_dict.pth'), ordered: join(dir, 'py_ordered.pth') };
  runPython(
    `${PY_EXCHANGE}
import sys, importlib.util
from torch import nn
import torch.nn.functional as F
torch.set_num_threads(2)
req = json.load(sys.stdin)
spec = importlib.util.spec_from_file_location('ref', req['ref']); ref = importlib.util.module_from_spec(spec); spec.loader.exec_module(ref)
torch.manual_seed(5)
m = ref.UNet(1, 3, True)
with torch.no_grad():
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.normal_(0, 0.1); mod.running_var.uniform_(0.5, 1.5)
            mod.weight.uniform_(0.5, 1.5); mod.bias.normal_(0, 0.1)
m.eval()
state = m.state_dict()                       # an OrderedDict (with _metadata)
plain = dict(state); plain['mask_values'] = [0, 127, 255]
torch.save(plain, req['plain'])              # the reference trainer: state_dict + mask_values
state['mask_values'] = [0, 127, 255]
torch.save(state, req['ordered'])
with torch.no_grad():
    y = m(load(req['dir'], 'pyx.json')['x'])
    pred = F.interpolate(y, (req['H'], req['W']), mode='bilinear').argmax(1)   # predict.py
dump(req['dir'], {'y': y, 'pred': pred}, 'py.json')
print(json.dumps(True))`,
    { ref: REF, dir, ...files, H, W },
  );
  const py = loadTensors(dir, 'py.json');
  const y = (py.get('y') as E.Tensor).disposeAfter((t) => t.data() as Float32Array);
  const pred = (py.get('pred') as E.Tensor).disposeAfter((t) => t.toArray());
  for (const file of [files.plain, files.ordered]) {
    const p = await loadPredictor(file, { device: 'cpu' });
    try {
      assert.equal(p.kind, 'reference');
      assert.deepEqual(p.args, { nChannels: 1, nClasses: 3, bilinear: true, depth: 4, baseChannels: 64 }); // depth and width read from the weights
      assert.deepEqual(p.maskValues, [0, 127, 255]);
      assertClose(
        forwardLogits(p, [pre]).disposeAfter((t) => t.data() as Float32Array),
        y,
        1e-4,
        1e-4,
        `logits of ${file}`,
      );
    } finally {
      p.dispose();
    }
    const out = join(dir, `${file.endsWith('dict.pth') ? 'plain' : 'ordered'}_mask.png`);
    const r = await runPredict({ ...defaults(predictOptions), device: 'cpu', model: file, input: [image], output: [out] }, { log: () => {}, warn: () => {}, progress: false });
    assert.equal(r.exitCode, 0);
    const mask = await readMask(out);
    let differ = 0;
    for (let i = 0; i < pred.length; i++) if (mask.data[i] !== [0, 127, 255][pred[i]]) differ++;
    assert.ok(differ <= pred.length * 0.005, `${differ} of ${pred.length} mask pixels differ from the reference's predict.py`);
  }
});
