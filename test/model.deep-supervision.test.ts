// --depth / --base-channels and --deep-supervision against PyTorch (test/reference/deep_supervision.py):
// a UNet of any depth and width loads our weights and gives our logits; the deep-supervision loss
// and its gradients are nnU-Net's. A depth-4 / base-64 UNet keeps the reference's keys.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as E from '../src/engine/index.js';
import { UNet } from '../src/model/index.js';
import { segmentationLoss } from '../src/train/loss.js';
import { AuxHeads, deepSupervisionLoss, deepSupervisionWeights, downsampleTarget } from '../src/train/deep-supervision.js';
import { PY_EXCHANGE, dumpTensors, loadTensors } from './helpers/exchange.js';
import { NO_TORCH, assertClose, hasTorch, runPython } from './helpers/python.js';
import { PY_IMPORT_REFERENCE, REFERENCE_ROOT as REF } from './helpers/reference.js';

const skip = !hasTorch() && NO_TORCH;

test("nnU-Net's weights: 1/2^i, the lowest resolution 0, normalised", () => {
  assert.deepEqual(deepSupervisionWeights(4), [1 / 1.75, 0.5 / 1.75, 0.25 / 1.75, 0]);
  assert.deepEqual(deepSupervisionWeights(3), [1 / 1.5, 0.5 / 1.5, 0]);
});

test('depth 4 / base 64 is the reference UNet: same keys, shapes and parameter count as the default', () => {
  // The narrow default against the explicit narrow depth 4 / base 4; the full width's count as the reference's.
  const a = new UNet({ nChannels: 3, nClasses: 2, bilinear: false }, 16);
  const b = new UNet({ nChannels: 3, nClasses: 2, bilinear: false, depth: 4, baseChannels: 4 });
  const shapes = (m: UNet) => [...m.stateDict()].map(([k, t]) => `${k}:${t.shape}`);
  assert.deepEqual(shapes(b), shapes(a));
  const full = new UNet({ nChannels: 3, nClasses: 2, bilinear: false, depth: 4, baseChannels: 64 });
  assert.equal(full.numParameters(), 31_037_698);
  assert.equal(full.stateDict().get('down4.maxpool_conv.1.double_conv.3.weight')?.shape.join(), '1024,1024,3,3');
  full.dispose();
  assert.equal(
    shapes(a)
      .filter((k) => /^(down|up)\d/.test(k))
      .map((k) => k.slice(0, k.indexOf('.')))
      .filter((k, i, all) => all.indexOf(k) === i)
      .join(','),
    'down1,down2,down3,down4,up1,up2,up3,up4',
  );
  assert.ok(!shapes(a).some((k) => k.startsWith('aux')));
  a.dispose();
  b.dispose();
});

test('targets are resized nearest-exact: index floor((i + 0.5) * H/h), ignored pixels kept', () => {
  E.tidy(() => {
    const t = E.tensor(new BigInt64Array(Array.from({ length: 32 }, (_, i) => BigInt(i === 5 ? -100 : i))), [1, 4, 8], { dtype: 'int64' });
    assert.deepEqual(downsampleTarget(t, 2, 4).toArray(), [9, 11, 13, 15, 25, 27, 29, 31]);
    assert.deepEqual(downsampleTarget(t, 4, 4).toArray().slice(0, 4), [1, 3, -100, 7]);
  });
});

// One Python process for every case: importing torch takes seconds on a loaded machine.
const PY = `${PY_IMPORT_REFERENCE}${PY_EXCHANGE}
torch.set_num_threads(2)
from reference.deep_supervision import DeepUNet, AuxHeads, ds_loss
results = []
for c in _REQ['cases']:
    d = c['dir']
    m = DeepUNet(c['nChannels'], c['nClasses'], c['bilinear'], c['depth'], c['base'])
    aux = AuxHeads(m)
    m.load_state_dict(load(d, 'weights.json'), strict=True)
    aux.load_state_dict(load(d, 'aux.json'), strict=True)
    m.train()
    data = load(d, 'data.json')
    x, y = data['x'], data['y']
    outs = aux.outputs(m, x)
    loss = ds_loss(outs, y, c['depth'], c['nClasses'])
    loss.backward()
    dump(d, {'logits': outs[0]}, 'logits.json')
    dump(d, {k: p.grad for k, p in list(m.named_parameters()) + [('aux.' + k, p) for k, p in aux.named_parameters()]}, 'grads.json')
    # The loss alone, from fixed outputs (leaves): its value and gradients at float precision.
    leaves = [o.detach().clone().requires_grad_(True) for o in outs]
    l2 = ds_loss(leaves, y, c['depth'], c['nClasses'])
    l2.backward()
    dump(d, {str(i): o for i, o in enumerate(outs)}, 'outs.json')
    dump(d, {str(i): o.grad for i, o in enumerate(leaves)}, 'outgrads.json')
    results.append({'loss': loss.item(), 'leafLoss': l2.item()})
print(json.dumps(results))
`;

const cases = [
  { nChannels: 3, nClasses: 3, bilinear: false, depth: 3, base: 8, h: 40, w: 24 },
  { nChannels: 1, nClasses: 1, bilinear: true, depth: 5, base: 4, h: 64, w: 32 },
];

test('logits, deep-supervision loss and gradients match PyTorch (depth 3 / base 8, depth 5 / base 4 bilinear binary)', { skip }, () => {
  const root = mkdtempSync(join(tmpdir(), 'unet-ds-'));
  const made = cases.map((c, i) => {
    E.manualSeed(7);
    const m = new UNet({ nChannels: c.nChannels, nClasses: c.nClasses, bilinear: c.bilinear, depth: c.depth, baseChannels: c.base });
    const aux = new AuxHeads(m.args);
    const x = E.rand([2, c.nChannels, c.h, c.w]);
    const y = E.randint(0, Math.max(c.nClasses, 2), [2, c.h, c.w]);
    const dir = join(root, String(i));
    mkdirSync(dir);
    dumpTensors(dir, m.stateDict(), 'weights.json');
    dumpTensors(dir, aux.stateDict(), 'aux.json');
    dumpTensors(
      dir,
      [
        ['x', x],
        ['y', y],
      ],
      'data.json',
    );
    return { c, m, aux, x, y, dir };
  });
  try {
    const py = runPython<{ loss: number; leafLoss: number }[]>(PY, { cases: made.map(({ c, dir }) => ({ ...c, dir })), root: REF });
    made.forEach(({ c, m, aux, x, y, dir }, k) => {
      const criterion = (l: E.Tensor, t: E.Tensor) => segmentationLoss(l, t, c.nClasses);
      E.tidy(() => {
        const outs = aux.outputs(m, x);
        const ref = loadTensors(dir, 'logits.json');
        assertClose(outs[0].toArray(), (ref.get('logits') as E.Tensor).toArray(), 1e-5, 1e-5, 'logits');
        const loss = deepSupervisionLoss(outs, y, c.depth, criterion);
        loss.backward();
        assert.ok(Math.abs(loss.item() - py[k].loss) < 1e-5, `loss ${loss.item()} vs ${py[k].loss}`);
        const grads = loadTensors(dir, 'grads.json');
        const ours = [...m.namedParameters(), ...aux.namedParameters().map(([n, p]) => [`aux.${n}`, p] as [string, E.Tensor])];
        assert.equal(ours.length, grads.size);
        for (const [name, p] of ours) {
          const r = grads.get(name) as E.Tensor;
          const err = (p.grad as E.Tensor).sub(r).abs().amax().item() / (r.abs().amax().item() + 1e-12);
          assert.ok(err < 1e-3, `grad ${name}: relative max error ${err}`); // summed over every pixel of a forward pass
        }
        // The criterion alone, on PyTorch's own outputs: value and gradients to 1e-5.
        const pyOuts = loadTensors(dir, 'outs.json');
        const leaves = outs.map((_, i) => (pyOuts.get(String(i)) as E.Tensor).requiresGrad_(true));
        const l2 = deepSupervisionLoss(leaves, y, c.depth, criterion);
        l2.backward();
        assert.ok(Math.abs(l2.item() - py[k].leafLoss) < 1e-5, `loss ${l2.item()} vs ${py[k].leafLoss}`);
        const outGrads = loadTensors(dir, 'outgrads.json');
        leaves.forEach((l, i) => assertClose((l.grad as E.Tensor).toArray(), (outGrads.get(String(i)) as E.Tensor).toArray(), 1e-5, 1e-5, `d loss / d output ${i}`));
      });
    });
  } finally {
    for (const { m, aux, x, y } of made) {
      E.dispose([x, y]);
      m.dispose();
      aux.dispose();
    }
    rmSync(root, { recursive: true, force: true });
  }
});
