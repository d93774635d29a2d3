// The UNet against the project's PyTorch reference (test/reference/model.py, loss.py) in Debian's
// PyTorch: same weights -> same logits, loss, every gradient and BatchNorm statistics; 10 optimizer
// steps move every tensor by the same amount.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as E from '../src/engine/index.js';
import { UNet } from '../src/model/index.js';
import { segmentationLoss } from '../src/train/loss.js';
import { PY_EXCHANGE, assertMovedAsReference, dumpTensors, loadTensors } from './helpers/exchange.js';
import { NO_TORCH, assertClose, hasTorch, runPython } from './helpers/python.js';
import { PY_IMPORT_REFERENCE, REFERENCE_ROOT as REF } from './helpers/reference.js';

const canCompare = hasTorch();
const SKIP = NO_TORCH;

test('parameter counts and state_dict keys match the reference', () => {
  const m = new UNet({ nChannels: 3, nClasses: 2, bilinear: false });
  assert.equal(m.numParameters(), 31_037_698);
  const keys = [...m.stateDict().keys()];
  assert.equal(keys[0], 'inc.double_conv.0.weight');
  assert.ok(keys.includes('down1.maxpool_conv.1.double_conv.4.num_batches_tracked'));
  assert.ok(keys.includes('up1.up.weight'));
  assert.equal(keys[keys.length - 1], 'outc.conv.bias');
  m.dispose();
  const b = new UNet({ nChannels: 3, nClasses: 2, bilinear: true });
  assert.equal(b.numParameters(), 17_263_042);
  assert.ok(![...b.stateDict().keys()].some((k) => k.startsWith('up1.up.')));
  b.dispose();
  const c1 = new UNet({ nChannels: 3, nClasses: 1, bilinear: false });
  assert.equal(c1.numParameters(), 31_037_633);
  c1.dispose();
});

test("default initialisation has PyTorch's distribution", () => {
  E.manualSeed(0);
  const m = new UNet({ nChannels: 3, nClasses: 2, bilinear: false });
  const sd = m.stateDict();
  E.tidy(() => {
    // kaiming_uniform(a=sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in)); std = bound/sqrt(3)
    const w = sd.get('down2.maxpool_conv.1.double_conv.0.weight') as E.Tensor; // [256,128,3,3]
    const bound = 1 / Math.sqrt(128 * 9);
    assert.ok(w.amax().item() <= bound && w.amin().item() >= -bound);
    assert.ok(Math.abs(w.var().sqrt().item() - bound / Math.sqrt(3)) < bound * 0.01);
    const t = sd.get('up1.up.weight') as E.Tensor; // [1024,512,2,2], fan_in = 512*4
    assert.ok(t.amax().item() <= 1 / Math.sqrt(2048));
    assert.deepEqual((sd.get('inc.double_conv.1.running_var') as E.Tensor).toArray().slice(0, 3), [1, 1, 1]);
  });
  m.dispose();
});

const configs = [
  { nChannels: 3, nClasses: 2, bilinear: false, h: 64, w: 48 },
  { nChannels: 1, nClasses: 1, bilinear: true, h: 61, w: 93 },
  { nChannels: 1, nClasses: 5, bilinear: false, h: 61, w: 93 },
  { nChannels: 3, nClasses: 2, bilinear: true, h: 61, w: 93 },
];

const PY = `${PY_IMPORT_REFERENCE}${PY_EXCHANGE}
torch.set_num_threads(2)
from reference.model import UNet
from reference.loss import criterion
req = _REQ
d = req['dir']
m = UNet(req['nChannels'], req['nClasses'], req['bilinear'])
sd = load(d, 'weights.json')
m.load_state_dict(sd, strict=True)
m.train()
data = load(d, 'data.json')
x, y = data['x'], data['y']
pred = m(x)
loss = criterion(pred, y, req['nClasses'])
loss.backward()
dump(d, {'logits': pred}, 'logits.json')
dump(d, {k: p.grad for k, p in m.named_parameters()}, 'grads.json')
dump(d, {k: v for k, v in m.state_dict().items() if 'running' in k}, 'stats.json')
print(json.dumps({'loss': loss.item()}))
`;

for (const cfg of configs) {
  test(`forward, loss, gradients and BN stats match PyTorch: ${JSON.stringify(cfg)}`, { skip: !canCompare && SKIP }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'unet-parity-'));
    try {
      E.manualSeed(1);
      const m = new UNet(cfg);
      dumpTensors(dir, m.stateDict(), 'weights.json');
      const x = E.rand([2, cfg.nChannels, cfg.h, cfg.w]);
      const y = E.randint(0, Math.max(cfg.nClasses, 2), [2, cfg.h, cfg.w]);
      dumpTensors(
        dir,
        [
          ['x', x],
          ['y', y],
        ],
        'data.json',
      );
      const { loss: pyLoss } = runPython<{ loss: number }>(PY, { ...cfg, dir, root: REF });
      E.tidy(() => {
        const logits = m.forward(x);
        const loss = segmentationLoss(logits, y, cfg.nClasses);
        loss.backward();
        const ref = loadTensors(dir, 'logits.json');
        assertClose(logits.toArray(), (ref.get('logits') as E.Tensor).toArray(), 2e-5, 1e-4, 'logits');
        assert.ok(Math.abs(loss.item() - pyLoss) < 1e-5, `loss ${loss.item()} vs ${pyLoss}`);
        const grads = loadTensors(dir, 'grads.json');
        for (const [name, p] of m.namedParameters()) {
          const g = p.grad as E.Tensor;
          const r = grads.get(name) as E.Tensor;
          // Gradients summed over many pixels: compare relative to the tensor's scale.
          const scale = r.abs().amax().item() + 1e-12;
          const err = g.sub(r).abs().amax().item() / scale;
          assert.ok(err < 2e-3, `grad ${name}: relative max error ${err}`);
        }
        for (const [name, r] of loadTensors(dir, 'stats.json')) {
          assertClose((m.stateDict().get(name) as E.Tensor).toArray(), r.toArray(), 1e-5, 1e-4, name);
        }
      });
      x.dispose();
      y.dispose();
      m.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('loadStateDict is strict and lists missing, unexpected and mis-shaped keys', () => {
  const a = new UNet({ nChannels: 1, nClasses: 2, bilinear: true });
  const b = new UNet({ nChannels: 3, nClasses: 2, bilinear: false });
  assert.throws(
    () => a.loadStateDict(b.stateDict()),
    (e: Error) => /unexpected keys: up1\.up\.weight/.test(e.message) && /inc\.double_conv\.0\.weight: checkpoint has shape \[64,3,3,3\], model expects \[64,1,3,3\]/.test(e.message),
  );
  const sd = new Map(a.stateDict());
  sd.delete('outc.conv.bias');
  assert.throws(() => a.loadStateDict(sd), /missing keys: outc\.conv\.bias/);
  assert.doesNotThrow(() => a.loadStateDict(sd, false));
  a.dispose();
  b.dispose();
});

test('train/eval switch BatchNorm; to(channels_last) keeps parameter identity and outputs', () => {
  E.manualSeed(3);
  const m = new UNet({ nChannels: 1, nClasses: 2, bilinear: false });
  const p0 = m.parameters()[0];
  E.tidy(() => {
    const x = E.rand([1, 1, 32, 32]);
    m.eval();
    assert.equal(
      m.modules().every((x) => !x.training),
      true,
    );
    const y1 = E.noGrad(() => m.forward(x));
    m.to({ memoryFormat: 'channels_last' });
    assert.equal(m.parameters()[0], p0);
    assert.ok(p0.isContiguous('channels_last'));
    const y2 = E.noGrad(() => m.forward(x.contiguous('channels_last')));
    assert.ok(y1.sub(y2).abs().amax().item() < 1e-4);
    m.train();
    const bn = m.stateDict().get('inc.double_conv.1.num_batches_tracked') as E.Tensor;
    m.forward(x);
    assert.equal(bn.item(), 1);
  });
  m.dispose();
});

const STEPS_PY = `${PY_IMPORT_REFERENCE}${PY_EXCHANGE}
torch.set_num_threads(2)
from reference.model import UNet
from reference.loss import criterion
req = _REQ
d = req['dir']; C = req['nClasses']
m = UNet(req['nChannels'], C, req['bilinear'])
m.load_state_dict(load(d, 'weights.json'), strict=True)
m.train()
data = load(d, 'data.json')
if req['opt'] == 'rmsprop':
    opt = torch.optim.RMSprop(m.parameters(), lr=req['lr'], weight_decay=1e-8, momentum=0.999, foreach=True)
else:
    opt = torch.optim.Adam(m.parameters(), lr=req['lr'], weight_decay=1e-8, foreach=True)
losses = []
for i in range(req['steps']):
    x, y = data[f'x{i}'], data[f'y{i}']
    loss = criterion(m(x), y, C)
    opt.zero_grad(set_to_none=True); loss.backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0); opt.step(); losses.append(loss.item())
dump(d, m.state_dict(), 'after.json')
print(json.dumps({'losses': losses}))
`;

for (const [opt, cfg] of [
  ['rmsprop', { nChannels: 3, nClasses: 2, bilinear: false, h: 32, w: 48 }],
  ['adam', { nChannels: 1, nClasses: 1, bilinear: true, h: 37, w: 29 }],
  ['rmsprop', { nChannels: 1, nClasses: 5, bilinear: true, h: 61, w: 93 }],
] as const) {
  test(`10 ${opt} steps (clip 1.0) match PyTorch: weights and BatchNorm stats, ${JSON.stringify(cfg)}`, { skip: !canCompare && SKIP }, async () => {
    const { clipGradNorm, createOptimizer } = await import('../src/optim/index.js');
    const dir = mkdtempSync(join(tmpdir(), 'unet-steps-'));
    const steps = 10;
    const lr = 1e-4;
    try {
      E.manualSeed(5);
      const m = new UNet({ nChannels: cfg.nChannels, nClasses: cfg.nClasses, bilinear: cfg.bilinear });
      dumpTensors(dir, m.stateDict(), 'weights.json');
      const batches: [string, E.Tensor][] = [];
      for (let i = 0; i < steps; i++) {
        batches.push([`x${i}`, E.rand([2, cfg.nChannels, cfg.h, cfg.w])], [`y${i}`, E.randint(0, Math.max(cfg.nClasses, 2), [2, cfg.h, cfg.w])]);
      }
      dumpTensors(dir, batches, 'data.json');
      const py = runPython<{ losses: number[] }>(STEPS_PY, { ...cfg, dir, root: REF, opt, lr, steps });
      const params = m.parameters();
      const o = createOptimizer(opt, params, { lr, weightDecay: 1e-8, momentum: 0.999 });
      const losses: number[] = [];
      for (let i = 0; i < steps; i++) {
        losses.push(
          E.tidy(() => {
            o.zeroGrad();
            const loss = segmentationLoss(m.forward(batches[2 * i][1]), batches[2 * i + 1][1], cfg.nClasses);
            loss.backward();
            clipGradNorm(params, 1.0);
            o.step();
            return loss.item();
          }),
        );
      }
      assertClose(losses, py.losses, 1e-4, 1e-3, 'losses');
      const before = loadTensors(dir, 'weights.json');
      const after = loadTensors(dir, 'after.json');
      const ours = m.stateDict();
      // Against how far the 10 steps moved each tensor (a skipped BatchNorm update fails it).
      assertMovedAsReference(ours, before, after, { rel: 0.02, what: "PyTorch's 10 steps" });
      E.dispose([...before.values(), ...after.values(), ...batches.map(([, t]) => t)]);
      o.dispose();
      m.dispose();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('a state dict saved by us loads strict into the reference UNet in Python with the same outputs, and back', { skip: !canCompare && SKIP }, async () => {
  const { saveReferenceStateDict, loadCheckpoint, weightsToTensors } = await import('../src/model/checkpoint.js');
  const dir = mkdtempSync(join(tmpdir(), 'unet-sd-'));
  try {
    E.manualSeed(9);
    const m = new UNet({ nChannels: 3, nClasses: 2, bilinear: false }).eval();
    const x = E.rand([1, 3, 40, 56]);
    dumpTensors(dir, [['x', x]], 'data.json');
    await saveReferenceStateDict(join(dir, 'ours.pth'), m.stateDict(), [0, 255]);
    runPython(
      `${PY_IMPORT_REFERENCE}${PY_EXCHANGE}
from reference.model import UNet
req = _REQ; d = req['dir']
sd = torch.load(d + '/ours.pth', weights_only=True)
assert sd.pop('mask_values') == [0, 255]
m = UNet(3, 2, False); m.load_state_dict(sd, strict=True); m.eval()
with torch.no_grad(): y = m(load(d, 'data.json')['x'])
dump(d, {'y': y}, 'y.json')
# and back: Python trains one step, saves an OrderedDict state_dict (+ mask_values) for us
m.train(); opt = torch.optim.SGD(m.parameters(), lr=0.1); m(torch.rand(1, 3, 32, 32)).sum().backward(); opt.step(); m.eval()
sd2 = m.state_dict(); sd2['mask_values'] = [0, 255]; torch.save(sd2, d + '/py.pth')
with torch.no_grad(): y2 = m(load(d, 'data.json')['x'])
dump(d, {'y': y2}, 'y2.json')
print(json.dumps({}))`,
      { dir, root: REF },
    );
    E.tidy(() => {
      const y = E.noGrad(() => m.forward(x));
      assertClose(y.toArray(), (loadTensors(dir, 'y.json').get('y') as E.Tensor).toArray(), 1e-4, 1e-4, 'ours in python');
    });
    const back = await loadCheckpoint(join(dir, 'py.pth'));
    assert.equal(back.kind, 'reference');
    assert.deepEqual(back.maskValues, [0, 255]);
    const w = weightsToTensors(back.model);
    m.loadStateDict(w);
    E.tidy(() => {
      const y2 = E.noGrad(() => m.forward(x));
      assertClose(y2.toArray(), (loadTensors(dir, 'y2.json').get('y') as E.Tensor).toArray(), 1e-4, 1e-4, 'python in ours');
    });
    E.dispose([...w.values(), x]);
    m.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
