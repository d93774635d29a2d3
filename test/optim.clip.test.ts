// clipGradNorm against torch.nn.utils.clip_grad_norm_ (Debian PyTorch 1.13): total norm and the
// clipped gradients, for the 2-norm (clipping and no-clip), inf- and 1-norms, a parameter without a
// gradient, and a non-finite gradient.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as E from '../src/engine/index.js';
import type { Tensor } from '../src/engine/index.js';
import { clipGradNorm } from '../src/optim/index.js';
import { NO_TORCH, assertClose, hasTorch, runPython } from './helpers/python.js';

const SHAPES = [[3, 4], [6], [2, 2, 3]];
function gradValues(seed: number): number[][] {
  let s = (seed * 2654435761 + 1) >>> 0;
  const rnd = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
  return SHAPES.map((sh) => Array.from({ length: sh.reduce((a, b) => a * b, 1) }, () => Math.round((rnd() * 2 - 1) * 1e4) / 1e4));
}

interface Case {
  name: string;
  maxNorm: number;
  normType: number | 'inf';
  /** index of a parameter left without a gradient */
  noGrad?: number;
  /** put this value (inf / nan as strings) into grad 0 element 0 */
  poison?: 'inf' | 'nan';
}
const cases: Case[] = [
  { name: '2-norm, clipping', maxNorm: 1.0, normType: 2 },
  { name: '2-norm, no clipping (coef clamped to 1)', maxNorm: 100, normType: 2 },
  { name: 'inf-norm', maxNorm: 0.5, normType: 'inf' },
  { name: '1-norm', maxNorm: 2, normType: 1 },
  { name: '3-norm with a param without grad', maxNorm: 0.7, normType: 3, noGrad: 1 },
  { name: 'non-finite gradient (inf)', maxNorm: 1.0, normType: 2, poison: 'inf' },
  { name: 'non-finite gradient (nan)', maxNorm: 1.0, normType: 2, poison: 'nan' },
];

const PY = `
import json, sys, math, torch
from torch.nn.utils import clip_grad_norm_
enc = lambda xs: [x if math.isfinite(x) else str(x) for x in xs]
out = []
for c in json.load(sys.stdin):
    ps = []
    for i, (sh, g) in enumerate(zip(c['shapes'], c['grads'])):
        p = torch.zeros(sh, requires_grad=True)
        if i != c.get('noGrad'):
            gt = torch.tensor(g, dtype=torch.float32).reshape(sh)
            if i == 0 and c.get('poison'): gt.view(-1)[0] = float(c['poison'])
            p.grad = gt
        ps.append(p)
    nt = float('inf') if c['normType'] == 'inf' else c['normType']
    total = clip_grad_norm_(ps, c['maxNorm'], nt)
    out.append({'total': enc([total.item()])[0], 'grads': [None if p.grad is None else enc(p.grad.flatten().tolist()) for p in ps]})
print(json.dumps(out))
`;

const dec = (v: number | string): number => (typeof v === 'number' ? v : Number(v === 'inf' ? Infinity : v === '-inf' ? -Infinity : NaN));

test('clipGradNorm matches torch.nn.utils.clip_grad_norm_', { skip: !hasTorch() && NO_TORCH }, () => {
  const inputs = cases.map((c, i) => ({ ...c, shapes: SHAPES, grads: gradValues(i + 7) }));
  const golden = runPython<{ total: number | string; grads: ((number | string)[] | null)[] }[]>(PY, inputs);
  cases.forEach((c, ci) => {
    E.tidy(() => {
      const ps = SHAPES.map((sh, i) => {
        const p = E.zeros(sh).requiresGrad_(true);
        if (i !== c.noGrad) {
          const g = new Float32Array(inputs[ci].grads[i]);
          if (i === 0 && c.poison) g[0] = c.poison === 'inf' ? Infinity : NaN;
          p.grad = E.tensor(g, sh);
        }
        return p;
      });
      const total = clipGradNorm(ps, c.maxNorm, c.normType === 'inf' ? Infinity : c.normType);
      assert.deepEqual(total.shape, [], `${c.name}: total norm is a scalar`);
      const want = golden[ci];
      const wantTotal = dec(want.total);
      if (Number.isFinite(wantTotal)) assertClose([total.item()], [wantTotal], 1e-6, 1e-6, `${c.name}: total norm`);
      else assert.ok(Object.is(total.item(), wantTotal), `${c.name}: total norm ${total.item()}, expected ${wantTotal}`);
      ps.forEach((p, i) => {
        const g = p.grad;
        if (want.grads[i] === null) {
          assert.equal(g, null, `${c.name}: param ${i} has no grad`);
          return;
        }
        assert.ok(g);
        // assertClose treats NaN == NaN; infinities must match exactly
        const exp = (want.grads[i] as (number | string)[]).map(dec);
        const got = g.toArray();
        exp.forEach((e, k) => {
          if (!Number.isFinite(e) && !Number.isNaN(e)) assert.equal(got[k], e, `${c.name}: grad ${i}[${k}]`);
        });
        assertClose(
          got.map((x) => (Number.isFinite(x) || Number.isNaN(x) ? x : 0)),
          exp.map((x) => (Number.isFinite(x) || Number.isNaN(x) ? x : 0)),
          1e-7,
          1e-6,
          `${c.name}: grad ${i}`,
        );
      });
    });
  });
});

test('clipGradNorm: no grads gives tensor(0.); errorIfNonfinite throws; no leaked handles', () => {
  E.tidy(() => {
    const p = E.zeros([2]).requiresGrad_(true);
    const t = clipGradNorm([p], 1);
    assert.equal(t.item(), 0);
    p.grad = E.tensor([Infinity, 1]);
    assert.throws(() => clipGradNorm([p], 1, 2, { errorIfNonfinite: true }), /non-finite, so it cannot be clipped/);
  });
  const ps: Tensor[] = [E.ones([3]).requiresGrad_(true), E.ones([2, 2]).requiresGrad_(true)];
  for (const p of ps) E.full(p.shape, 3).disposeAfter((g) => (p.grad = g));
  const before = E.memoryStats().liveTensors;
  clipGradNorm(ps, 1).dispose();
  // the grads were clipped in place (total 2-norm of 7 threes = 3*sqrt(7) -> now ~1)
  const norm = E.tidy(() =>
    E.stack(ps.map((p) => (p.grad as Tensor).norm()))
      .norm()
      .item(),
  );
  assert.ok(Math.abs(norm - 1) < 1e-5, `clipped norm ${norm}`);
  clipGradNorm(ps, 1, Infinity).dispose();
  clipGradNorm(ps, 1, 1).dispose();
  assert.equal(E.memoryStats().liveTensors, before);
  E.dispose(ps);
});
