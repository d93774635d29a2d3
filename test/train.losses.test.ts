// --loss (src/train/losses.ts) against test/reference/losses.py in Debian's PyTorch: each loss and its
// gradient w.r.t. the logits, multiclass and binary (-c 1), with and without ignored (-100) pixels,
// with class weights; and pixels marked -100 count nowhere.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LossName } from '../src/config/options.js';
import * as E from '../src/engine/index.js';
import { IGNORED, namedLoss } from '../src/train/losses.js';
import { segmentationLoss } from '../src/train/loss.js';
import { NO_TORCH, assertClose, hasTorch, runPython } from './helpers/python.js';
import { PY_IMPORT_REFERENCE, REFERENCE_ROOT } from './helpers/reference.js';

type Named = Exclude<LossName, 'ce+dice'>;
const NAMES: Named[] = ['focal+dice', 'tversky', 'lovasz'];
const [N, H, W] = [2, 5, 7];

interface Case {
  name: Named;
  c: number;
  ignore: boolean;
  weight: number[] | null;
  logits: number[];
  masks: number[];
}

// Multiclass cases use 4 classes of which class 3 never occurs (the absent-class rules of tversky and lovasz).
function makeCase(name: Named, c: number, ignore: boolean, weight: number[] | null, seed: number): Case {
  E.manualSeed(seed);
  return E.tidy(() => {
    const logits = E.randn([N, Math.max(c, 1), H, W]).mul(2);
    let masks = E.randint(0, c === 1 ? 2 : 3, [N, H, W]);
    if (ignore) masks = E.where(E.rand([N, H, W]).lt(0.3), IGNORED, masks);
    return { name, c, ignore, weight, logits: logits.toArray() as number[], masks: masks.toArray() as number[] };
  });
}

function ours(k: Case): { loss: number; grad: number[] } {
  return E.tidy(() => {
    const logits = E.tensor(new Float32Array(k.logits), [N, k.c, H, W]).requiresGrad_(true);
    const masks = E.tensor(new BigInt64Array(k.masks.map(BigInt)), [N, H, W]);
    const weight = k.weight ? E.tensor(k.weight) : null;
    const loss = namedLoss(k.name, logits, masks, k.c, weight);
    loss.backward();
    return { loss: loss.item(), grad: (logits.grad as E.Tensor).toArray() as number[] };
  });
}

const PY = `${PY_IMPORT_REFERENCE}
import json, torch
from reference.losses import loss_by_name
out = []
for k in _REQ['cases']:
    logits = torch.tensor(k['logits'], dtype=torch.float32).reshape(${N}, k['c'], ${H}, ${W}).requires_grad_()
    masks = torch.tensor(k['masks'], dtype=torch.int64).reshape(${N}, ${H}, ${W})
    weight = None if k['weight'] is None else torch.tensor(k['weight'], dtype=torch.float32)
    loss = loss_by_name(k['name'], logits, masks, weight)
    loss.backward()
    out.append({'loss': loss.item(), 'grad': logits.grad.reshape(-1).tolist()})
print(json.dumps(out))
`;

test('each loss and its gradient equals its golden (multiclass and binary, with and without -100, class weights)', { skip: !hasTorch() && NO_TORCH }, () => {
  const cases: Case[] = [];
  let seed = 1;
  for (const name of NAMES) {
    for (const c of [4, 1]) for (const ignore of [false, true]) cases.push(makeCase(name, c, ignore, null, seed++));
    cases.push(makeCase(name, 4, true, [0.5, 2, 1, 3], seed++));
  }
  const golden = runPython<{ loss: number; grad: number[] }[]>(PY, { root: REFERENCE_ROOT, cases });
  cases.forEach((k, i) => {
    const what = `${k.name} c=${k.c}${k.ignore ? ' with -100' : ''}${k.weight ? ' weighted' : ''}`;
    const got = ours(k);
    assert.ok(Number.isFinite(golden[i].loss) && golden[i].loss > 0, `${what}: golden ${golden[i].loss}`);
    assertClose([got.loss], [golden[i].loss], 1e-5, 0, `${what}: loss`);
    assertClose(got.grad, golden[i].grad, 1e-5, 0, `${what}: d loss / d logits`);
  });
});

test('pixels marked -100 count nowhere: changing their logits changes no loss, all of them ignored gives 0', () => {
  E.manualSeed(7);
  E.tidy(() => {
    for (const c of [3, 1]) {
      const masks = E.where(E.rand([N, H, W]).lt(0.4), IGNORED, E.randint(0, c === 1 ? 2 : c, [N, H, W]));
      const logits = E.randn([N, c, H, W]);
      const moved = E.where(masks.eq(IGNORED).unsqueeze(1), logits.mul(-3).add(5), logits);
      for (const name of NAMES) {
        const a = segmentationLoss(logits, masks, c, name).item();
        assertClose([segmentationLoss(moved, masks, c, name).item()], [a], 1e-6, 1e-6, `${name} c=${c}`);
        const leaf = logits.detach().requiresGrad_(true);
        const none = segmentationLoss(leaf, E.full([N, H, W], IGNORED, { dtype: 'int64' }), c, name);
        none.backward();
        assert.ok(none.item() === 0, `${name} c=${c}: all ignored`);
        assert.equal((leaf.grad as E.Tensor).abs().sum().item(), 0, `${name} c=${c}: all ignored, gradient`);
      }
    }
  });
});
