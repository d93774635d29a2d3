// Precise BatchNorm (--precise-bn): the recomputed running statistics equal PyTorch's
// momentum=None average over the same batches (test/reference/trainer.py precise_bn), the weights
// and num_batches_tracked are untouched, and afterwards eval mode predicts what train mode does.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as E from '../src/engine/index.js';
import { UNet } from '../src/model/index.js';
import { SegmentationDataset, listPairs } from '../src/data/index.js';
import { recomputeBatchNorm } from '../src/train/precise-bn.js';
import { preciseBnLoader } from '../src/train/setup.js';
import { writePairs } from './helpers/fixtures.js';
import { PY_EXCHANGE, dumpTensors, loadTensors } from './helpers/exchange.js';
import { NO_TORCH, assertClose, hasTorch, runPython } from './helpers/python.js';
import { PY_IMPORT_REFERENCE, REFERENCE_ROOT } from './helpers/reference.js';

const PY = `${PY_IMPORT_REFERENCE}${PY_EXCHANGE}
torch.set_num_threads(2)
from reference.model import UNet
from reference.trainer import precise_bn
r = _REQ; d = r['dir']
m = UNet(1, 3, False, width_divisor=16)
m.load_state_dict(load(d, 'before.json'), strict=True)
data = load(d, 'data.json')
precise_bn(m, [(data[f'x{i}'], None) for i in range(r['n'])])
dump(d, m.state_dict(), 'after.json')
print(json.dumps({}))
`;

async function* batchesOf(xs: E.Tensor[]) {
  for (const x of xs) yield x;
}

test('precise BN: statistics equal PyTorch momentum=None over the same batches; weights untouched; eval mode = train mode', { skip: hasTorch() ? false : NO_TORCH }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'unet-pbn-'));
  try {
    E.manualSeed(4);
    const m = new UNet({ nChannels: 1, nClasses: 3, bilinear: false }, 16);
    // Stale statistics, as after fast training: far from what the weights produce.
    E.noGrad(() => {
      for (const [k, t] of m.stateDict()) {
        if (k.endsWith('running_mean')) t.normal_(0, 3);
        if (k.endsWith('running_var')) t.uniform_(5, 9);
        if (k.endsWith('num_batches_tracked')) t.fill_(123);
      }
    });
    dumpTensors(dir, m.stateDict(), 'before.json');
    const xs = [0, 1, 2].map(() => E.rand([2, 1, 32, 32]).keep());
    dumpTensors(
      dir,
      xs.map((x, i) => [`x${i}`, x] as [string, E.Tensor]),
      'data.json',
    );
    const stale = E.tidy(() => E.noGrad(() => m.eval().forward(xs[0]).sub(m.train().forward(xs[0])).abs().amax().item()));
    const weights = E.tidy(() => m.parameters().map((p) => p.clone().keep()));
    // (the train-mode forward above moved the statistics a little: the recomputation resets them)
    const n = await recomputeBatchNorm(m, batchesOf(xs), 3, (x) => m.forward(x));
    assert.equal(n, 3);
    runPython(PY, { root: REFERENCE_ROOT, dir, n: 3 });
    const after = loadTensors(dir, 'after.json');
    const ours = m.stateDict();
    for (const [k, r] of after) {
      const t = ours.get(k) as E.Tensor;
      if (k.endsWith('num_batches_tracked'))
        assert.equal(t.item(), 124, k); // 123 + the one forward above
      else assertClose(t.toArray(), r.toArray(), 1e-5, 1e-4, k);
    }
    m.parameters().forEach((p, i) =>
      assert.equal(
        E.tidy(() => p.ne(weights[i]).sum().item()),
        0,
        'a weight changed',
      ),
    );
    assert.equal(m.training, true);
    // With statistics over one batch, eval mode on that batch is close to train mode on it (not
    // equal: running_var is the unbiased variance, n/(n-1) over the 8 values of the 2x2 bottleneck).
    await recomputeBatchNorm(m, batchesOf([xs[1]]), 5, (x) => m.forward(x));
    const fresh = E.tidy(() => E.noGrad(() => m.eval().forward(xs[1]).sub(m.train().forward(xs[1])).abs().amax().item()));
    assert.ok(fresh < 0.05 * stale, `eval vs train mode after precise BN: ${fresh} (stale statistics: ${stale})`);
    E.dispose([...xs, ...weights, ...after.values()]);
    m.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('precise BN with --patch-size: seeded random patches, the same at every recomputation (not centre crops)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'unet-pbn-patch-'));
  try {
    // 4 images of 64x64 whose value is the row: a patch's mean tells where it was cut
    await writePairs(
      dir,
      4,
      { width: 64, height: 64, channels: 1, name: (k) => `g${k}.png` },
      (i) => Math.floor(i / 64) * 4,
      (i) => (i % 64 > 32 ? 255 : 0),
    );
    const ds = new SegmentationDataset((await listPairs({ imgsDir: join(dir, 'imgs'), masksDir: join(dir, 'masks') })).pairs, { scale: 1, maskValues: [0, 255] });
    const patch = { size: [16, 16] as [number, number], oversampleFg: 0.33 };
    const rows = async () => {
      const out: number[] = [];
      for await (const b of preciseBnLoader(ds, [0, 1, 2, 3], { batchSize: 2, seed: 0, patch })) {
        for (let k = 0; k < 2; k++) out.push(Math.round(b.images.subarray(k * 256, (k + 1) * 256).reduce((s, v) => s + v, 0) / 256 / (4 / 255)));
      }
      return out;
    };
    const [first, again] = [await rows(), await rows()];
    assert.deepEqual(first, again, 'the same patches every time');
    assert.equal(first.length, 4);
    assert.ok(new Set(first).size > 1 && first.some((r) => r !== 31.5 && r !== 32), `patch centres at rows ${first}: not all at the centre`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
