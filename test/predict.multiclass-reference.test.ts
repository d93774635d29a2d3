// predict and evaluate on a 3-class model (transposed convolutions, odd image size, -s 0.5)
// against the reference's recipe in Python: PIL BICUBIC resize of the image (NEAREST of the mask),
// /255, the model's logits, F.interpolate(bilinear, align_corners=False) to the full size and
// argmax (predict); argmax at the scaled size against the NEAREST-resized mask (evaluate). The
// logits come from our UNet on PIL's input (the UNet itself is compared with PyTorch elsewhere),
// so every step around the network is checked here.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { decode } from 'fast-png';
import { defaults, evaluateOptions, predictOptions } from '../src/config/options.js';
import * as E from '../src/engine/index.js';
import { UNet } from '../src/model/index.js';
import { runEvaluate } from '../src/predict/evaluate-command.js';
import { runPredict } from '../src/predict/index.js';
import { loadPredictor } from '../src/predict/predictor.js';
import { saveCheckpoint } from '../src/model/checkpoint.js';
import { PY_EXCHANGE, dumpTensors, loadTensors } from './helpers/exchange.js';
import { prng, writePng } from './helpers/fixtures.js';
import { NO_TORCH, hasTorch, runPython } from './helpers/python.js';
import { tempDir } from './helpers/workdir.js';

const dir = tempDir('mcref');
const W = 45;
const H = 37;
const SCALE = 0.5; // 22 x 18
const LEVELS = [0, 127, 255];

const PY_PREPARE = `${PY_EXCHANGE}
import sys
from PIL import Image
req = json.load(sys.stdin)
img = Image.open(req['image'])
w, h = img.size
nw, nh = int(w * req['scale']), int(h * req['scale'])
x = np.asarray(img.resize((nw, nh), resample=Image.BICUBIC), dtype=np.float32).transpose(2, 0, 1) / 255.0
m = np.asarray(Image.open(req['mask']).resize((nw, nh), resample=Image.NEAREST))
cls = np.zeros(m.shape, dtype=np.int64)
for i, v in enumerate(req['levels']): cls[m == v] = i
dump(req['dir'], {'x': torch.from_numpy(x.copy())[None], 'mask': torch.from_numpy(cls)}, 'prep.json')
print(json.dumps({'size': [nw, nh]}))
`;
const PY_POST = `${PY_EXCHANGE}
import sys
import torch.nn.functional as F
req = json.load(sys.stdin)
t = load(req['dir'], 'logits.json')
logits, mask = t['logits'], load(req['dir'], 'prep.json')['mask']
full = F.interpolate(logits, size=(req['h'], req['w']), mode='bilinear', align_corners=False).argmax(1)[0]
small = logits.argmax(1)[0]
k = logits.shape[1]
conf = torch.bincount((mask * k + small).flatten(), minlength=k * k).reshape(k, k)
levels = torch.tensor(req['levels'])
print(json.dumps({'mask': levels[full].flatten().tolist(), 'confusion': conf.tolist()}))
`;

test('predict and evaluate on a multi-class model equal PIL resize + PyTorch interpolate/argmax', { skip: !hasTorch() && NO_TORCH }, async () => {
  for (const sub of ['imgs', 'masks']) mkdirSync(join(dir, sub), { recursive: true });
  const image = join(dir, 'imgs', 'a.png');
  const mask = join(dir, 'masks', 'a.png');
  const rnd = prng(5);
  // a smooth colour field with noise (so that bicubic resampling matters), and a 3-class mask
  await writePng(image, W, H, 3, (i) => {
    const p = Math.floor(i / 3);
    const x = p % W;
    const y = Math.floor(p / W);
    return Math.max(0, Math.min(255, Math.round(128 + 90 * Math.sin((x * (1 + (i % 3))) / 7 + y / 5) + 30 * (rnd() - 0.5))));
  });
  await writePng(mask, W, H, 1, (i) => LEVELS[(i % W > W / 2 ? 1 : 0) + (Math.floor(i / W) > H / 2 ? 1 : 0)]);
  const model = join(dir, 'model.pth');
  E.manualSeed(3);
  const args = { nChannels: 3, nClasses: 3, bilinear: false };
  const net = new UNet(args);
  try {
    // a freshly initialised UNet picks one class everywhere: a larger output layer lets the
    // (spatially varying) features decide between the classes
    E.noGrad(() => (net.stateDict().get('outc.conv.weight') as E.Tensor).mul_(30));
    await saveCheckpoint(model, { model: net.stateDict(), epoch: 1, globalStep: 1, loss: 1, valScore: 0, maskValues: LEVELS, modelArgs: args, config: {} });
  } finally {
    net.dispose();
  }

  const prep = runPython<{ size: number[] }>(PY_PREPARE, { image, mask, scale: SCALE, levels: LEVELS, dir });
  assert.deepEqual(prep.size, [22, 18]);
  const p = await loadPredictor(model, { device: 'cpu' });
  try {
    const t = loadTensors(dir, 'prep.json');
    const logits = E.inferenceMode(() => p.model.forward(t.get('x') as E.Tensor));
    dumpTensors(dir, [['logits', logits]], 'logits.json');
    E.dispose([logits, ...t.values()]);
  } finally {
    p.dispose();
  }
  const want = runPython<{ mask: number[]; confusion: number[][] }>(PY_POST, { dir, w: W, h: H, levels: LEVELS });
  assert.ok(new Set(want.mask).size >= 2, `the model predicts several classes: ${[...new Set(want.mask)]}`);

  const out = join(dir, 'out');
  const r = await runPredict({ ...defaults(predictOptions), model, input: [image], outputDir: out, scale: SCALE, device: 'cpu', workers: 1 }, { log: () => {}, warn: () => {}, progress: false });
  assert.equal(r.failed.length, 0);
  const png = decode(readFileSync(join(out, 'a_OUT.png')));
  assert.deepEqual([png.width, png.height, png.channels], [W, H, 1]);
  const got = Array.from(png.data as Uint8Array);
  const wrong = got.filter((v, i) => v !== want.mask[i]).length;
  assert.equal(wrong, 0, `${wrong} of ${W * H} mask pixels differ from PIL + PyTorch`);

  const ev = await runEvaluate({ ...defaults(evaluateOptions), model, imgs: join(dir, 'imgs'), masks: join(dir, 'masks'), scale: SCALE, device: 'cpu', workers: 1 }, { warn: () => {} });
  assert.deepEqual(ev.confusion, want.confusion);
});
