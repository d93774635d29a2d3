// LR schedulers against Debian PyTorch 1.13: ReduceLROnPlateau (lr sequence and state dict after
// every step, several modes, and PyTorch continuing from our state dict), PolynomialLR(power=0.9)
// for PolyLR, CosineAnnealingLR for the warmup-free cosine; the warmup against its formula.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as E from '../src/engine/index.js';
import { CosineWarmupLR, NoneScheduler, type Optimizer, PolyLR, ReduceLROnPlateau, type ReduceLROnPlateauOptions, SGD, createScheduler } from '../src/optim/index.js';
import { NO_TORCH, hasTorch, runPython } from './helpers/python.js';

function withOpt<T>(lr: number, fn: (opt: Optimizer) => T): T {
  return E.tidy(() => {
    const p = E.zeros([1]).requiresGrad_(true);
    const opt = new SGD([p], { lr });
    try {
      return fn(opt);
    } finally {
      opt.dispose();
    }
  });
}

// Python's json writes inf as Infinity, which JSON.parse rejects: encode non-finite floats as strings.
const PY_HEAD = `
import json, sys, math, torch
from torch.optim import lr_scheduler as L
def enc(v):
    if isinstance(v, float) and not math.isfinite(v): return str(v)
    if isinstance(v, list): return [enc(x) for x in v]
    if isinstance(v, dict): return {k: enc(x) for k, x in v.items()}
    return v
def dec(v):
    if isinstance(v, str) and v in ('inf', '-inf', 'nan'): return float(v)
    if isinstance(v, list): return [dec(x) for x in v]
    if isinstance(v, dict): return {k: dec(x) for k, x in v.items()}
    return v
def opt(lr):
    return torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
`;
const dec = (v: unknown): unknown => {
  if (v === 'inf') return Infinity;
  if (v === '-inf') return -Infinity;
  if (v === 'nan') return NaN;
  if (Array.isArray(v)) return v.map(dec);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, dec(x)]));
  return v;
};
const enc = (v: unknown): unknown => {
  if (typeof v === 'number' && !Number.isFinite(v)) return String(v === Infinity ? 'inf' : v === -Infinity ? '-inf' : 'nan');
  if (Array.isArray(v)) return v.map(enc);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, enc(x)]));
  return v;
};

// A crafted validation-Dice sequence: improvements, plateaus longer than the patience, tiny
// improvements under the relative threshold, a drop and a recovery.
const DICE = [0.1, 0.3, 0.5, 0.5, 0.5, 0.5, 0.50004, 0.6, 0.59, 0.58, 0.6, 0.6, 0.61, 0.61, 0.61, 0.61, 0.2, 0.7, 0.7, 0.7, 0.7, 0.7];

interface PlateauCase {
  name: string;
  py: string; // kwargs
  ts: ReduceLROnPlateauOptions;
  metrics: number[];
}
const plateauCases: PlateauCase[] = [
  { name: 'mode max, patience 2 (the Dice case)', py: "mode='max', patience=2", ts: { mode: 'max', patience: 2 }, metrics: DICE },
  { name: 'reference: mode max, patience 5', py: "mode='max', patience=5", ts: { mode: 'max', patience: 5 }, metrics: [...DICE, ...DICE.map((d) => d * 0.5)] },
  {
    name: 'mode min, abs threshold, cooldown, min_lr',
    py: "mode='min', patience=1, factor=0.5, threshold=0.05, threshold_mode='abs', cooldown=2, min_lr=0.02",
    ts: { mode: 'min', patience: 1, factor: 0.5, threshold: 0.05, thresholdMode: 'abs', cooldown: 2, minLr: 0.02 },
    metrics: DICE.map((d) => 1 - d),
  },
  {
    name: 'mode max, abs threshold, eps blocks tiny reductions',
    py: "mode='max', patience=0, factor=0.5, threshold=0.01, threshold_mode='abs', eps=0.01",
    ts: { mode: 'max', patience: 0, factor: 0.5, threshold: 0.01, thresholdMode: 'abs', eps: 0.01 },
    metrics: DICE,
  },
];

test('ReduceLROnPlateau matches PyTorch (lr and state dict after every step; PyTorch resumes from our state)', { skip: !hasTorch() && NO_TORCH }, () => {
  const py = `${PY_HEAD}
out = []
for c in json.load(sys.stdin):
    o = opt(0.1)
    s = eval('L.ReduceLROnPlateau(o, ' + c['kw'] + ')', {'L': L, 'o': o})
    rec = {'init': enc(s.state_dict()), 'steps': []}
    for m in c['metrics']:
        s.step(m)
        rec['steps'].append({'lr': o.param_groups[0]['lr'], 'sd': enc(s.state_dict())})
    # continue from OUR state dict after half the sequence
    o2 = opt(c['midLr'])
    s2 = eval('L.ReduceLROnPlateau(o2, ' + c['kw'] + ')', {'L': L, 'o2': o2})
    s2.load_state_dict(dec(c['midSd']))
    rest = []
    for m in c['metrics'][c['mid']:]:
        s2.step(m); rest.append(o2.param_groups[0]['lr'])
    rec['resumed'] = rest
    out.append(rec)
print(json.dumps(out))
`;
  // our runs first (the resume input for Python comes from our mid-sequence state dict)
  const ours = plateauCases.map((c) =>
    withOpt(0.1, (opt) => {
      const s = new ReduceLROnPlateau(opt, c.ts);
      const init = s.stateDict();
      const steps: { lr: number; sd: Record<string, unknown> }[] = [];
      const mid = Math.floor(c.metrics.length / 2);
      let midSd: Record<string, unknown> = {};
      let midLr = 0;
      c.metrics.forEach((m, i) => {
        s.step(m);
        steps.push({ lr: opt.lr, sd: s.stateDict() });
        assert.deepEqual(s.getLastLr(), [opt.lr]);
        if (i + 1 === mid) {
          midSd = s.stateDict();
          midLr = opt.lr;
        }
      });
      // and our own resume
      const resumed = withOpt(midLr, (o2) => {
        const s2 = new ReduceLROnPlateau(o2, c.ts);
        s2.loadStateDict(midSd);
        return c.metrics.slice(mid).map((m) => {
          s2.step(m);
          return o2.lr;
        });
      });
      return { init, steps, mid, midSd, midLr, resumed };
    }),
  );
  const golden = runPython<{ init: unknown; steps: { lr: number; sd: unknown }[]; resumed: number[] }[]>(
    py,
    plateauCases.map((c, i) => ({ kw: c.py, metrics: c.metrics, mid: ours[i].mid, midSd: enc(ours[i].midSd), midLr: ours[i].midLr })),
  );
  plateauCases.forEach((c, ci) => {
    const g = golden[ci];
    const o = ours[ci];
    assert.deepEqual(o.init, dec(g.init), `${c.name}: state dict before any step`);
    g.steps.forEach((gs, t) => {
      assert.equal(o.steps[t].lr, gs.lr, `${c.name}: lr after step ${t}`);
      assert.deepEqual(o.steps[t].sd, dec(gs.sd), `${c.name}: state dict after step ${t}`);
      assert.deepEqual(Object.keys(o.steps[t].sd), Object.keys(gs.sd as object), `${c.name}: key order`);
    });
    assert.deepEqual(
      g.resumed,
      o.steps.slice(o.mid).map((s) => s.lr),
      `${c.name}: PyTorch continuing from our state dict`,
    );
    assert.deepEqual(
      o.resumed,
      o.steps.slice(o.mid).map((s) => s.lr),
      `${c.name}: we continue from our state dict`,
    );
  });
  // the Dice case really reduces (twice or more)
  assert.ok(new Set(ours[0].steps.map((s) => s.lr)).size >= 3);
});

test('PolyLR matches PolynomialLR(power=0.9); warmup-free cosine matches CosineAnnealingLR; initial_lr in the optimizer state', { skip: !hasTorch() && NO_TORCH }, () => {
  const py = `${PY_HEAD}
c = json.load(sys.stdin)
res = {}
o = opt(0.01); s = L.PolynomialLR(o, total_iters=c['total'], power=0.9)
res['poly'] = [o.param_groups[0]['lr']]
for _ in range(c['total'] + 3): s.step(); res['poly'].append(o.param_groups[0]['lr'])
res['poly_sd'] = enc(s.state_dict())
res['poly_group'] = {k: v for k, v in o.state_dict()['param_groups'][0].items()}
o = opt(0.01); s = L.CosineAnnealingLR(o, T_max=c['total'], eta_min=1e-4)
res['cos'] = [o.param_groups[0]['lr']]
for _ in range(c['total']): s.step(); res['cos'].append(o.param_groups[0]['lr'])
res['cos_sd'] = enc(s.state_dict())
print(json.dumps(res))
`;
  const total = 12;
  const g = runPython<{ poly: number[]; poly_sd: Record<string, unknown>; poly_group: Record<string, unknown>; cos: number[]; cos_sd: Record<string, unknown> }>(py, { total });
  const close = (a: number[], b: number[], what: string) => {
    assert.equal(a.length, b.length, what);
    a.forEach((x, i) => assert.ok(Math.abs(x - b[i]) <= 1e-12 + 1e-9 * Math.abs(b[i]), `${what}[${i}]: ${x} vs ${b[i]}`));
  };
  withOpt(0.01, (opt) => {
    const s = new PolyLR(opt, { total });
    const lrs = [opt.lr];
    for (let i = 0; i < total + 3; i++) {
      s.step();
      lrs.push(opt.lr);
    }
    close(lrs, g.poly, 'poly lr');
    const sd = s.stateDict();
    assert.deepEqual(Object.keys(sd), Object.keys(g.poly_sd), 'poly state keys');
    for (const k of ['total_iters', 'power', 'base_lrs', 'last_epoch', '_step_count', 'verbose', '_get_lr_called_within_step']) assert.deepEqual(sd[k], g.poly_sd[k], `poly ${k}`);
    close(sd._last_lr as number[], g.poly_sd._last_lr as number[], 'poly _last_lr');
    const group = opt.stateDict().param_groups[0];
    assert.deepEqual(Object.keys(group), Object.keys(g.poly_group), 'optimizer group keys incl. initial_lr');
    assert.equal(group.initial_lr, 0.01);
  });
  withOpt(0.01, (opt) => {
    const s = new CosineWarmupLR(opt, { total, minLr: 1e-4 });
    const lrs = [opt.lr];
    for (let i = 0; i < total; i++) {
      s.step();
      lrs.push(opt.lr);
    }
    close(lrs, g.cos, 'cosine lr');
    const sd = s.stateDict();
    for (const k of ['T_max', 'eta_min', 'base_lrs', 'last_epoch', '_step_count']) assert.deepEqual(sd[k], g.cos_sd[k], `cosine ${k}`);
  });
});

test('cosine with linear warmup follows its formula; per-step mode; resume', () => {
  const base = 0.1;
  const minLr = 0.001;
  const expected = (t: number, T: number, W: number) => (t < W ? base * ((t + 1) / W) : minLr + ((base - minLr) * (1 + Math.cos((Math.PI * Math.min(t - W, T - W)) / (T - W)))) / 2);
  withOpt(base, (opt) => {
    const s = createScheduler('cosine', opt, { epochs: 10, warmupEpochs: 3, minLr });
    assert.equal(s.interval, 'epoch');
    const lrs = [opt.lr];
    for (let t = 1; t <= 12; t++) {
      s.step();
      lrs.push(opt.lr);
    }
    lrs.forEach((lr, t) => assert.ok(Math.abs(lr - expected(t, 10, 3)) < 1e-15, `t=${t}: ${lr} vs ${expected(t, 10, 3)}`));
    // warmup ramps base/3, 2base/3, base; cosine starts at base; ends at minLr (held)
    assert.ok(Math.abs(lrs[0] - base / 3) < 1e-15 && lrs[2] === base && lrs[3] === base);
    assert.equal(lrs[10], minLr);
    assert.equal(lrs[12], minLr);
  });
  withOpt(base, (opt) => {
    const s = createScheduler('cosine', opt, { epochs: 4, warmupEpochs: 1, stepsPerEpoch: 5, minLr });
    assert.equal(s.interval, 'step');
    const lrs = [opt.lr];
    for (let t = 1; t < 20; t++) {
      s.step();
      lrs.push(opt.lr);
    }
    lrs.forEach((lr, t) => assert.ok(Math.abs(lr - expected(t, 20, 5)) < 1e-15, `per-step t=${t}`));
    // resume at t = 7 into a fresh optimizer + scheduler
    const sd = withOpt(base, (o1) => {
      const a = new CosineWarmupLR(o1, { total: 20, warmup: 5, minLr, interval: 'step' });
      for (let t = 1; t <= 7; t++) a.step();
      return { sched: a.stateDict(), group: o1.stateDict().param_groups[0] };
    });
    withOpt(base, (o2) => {
      const b = new CosineWarmupLR(o2, { total: 20, warmup: 5, minLr, interval: 'step' });
      o2.lr = sd.group.lr as number;
      b.loadStateDict(sd.sched);
      assert.deepEqual(b.getLastLr(), [lrs[7]]);
      b.step();
      assert.equal(o2.lr, lrs[8]);
    });
  });
  assert.throws(() => withOpt(base, (opt) => new CosineWarmupLR(opt, { total: 5, warmup: 5 })), /warmup must be an integer in \[0, total\)/);
});

test('poly via the factory, none scheduler, factory errors', () => {
  withOpt(0.01, (opt) => {
    const s = createScheduler('poly', opt, { epochs: 10 });
    assert.equal(s.interval, 'epoch');
    for (let e = 1; e <= 10; e++) {
      s.step();
      assert.ok(Math.abs(opt.lr - 0.01 * (1 - e / 10) ** 0.9) < 1e-15, `epoch ${e}`);
    }
  });
  withOpt(0.01, (opt) => {
    const s = createScheduler('none', opt);
    assert.ok(s instanceof NoneScheduler);
    s.step(0.5);
    s.step();
    assert.equal(opt.lr, 0.01);
    assert.deepEqual(s.stateDict(), {});
    assert.equal(s.interval, 'never');
  });
  withOpt(0.01, (opt) => {
    const s = createScheduler('plateau', opt);
    assert.equal(s.interval, 'metric');
    const sd = s.stateDict();
    assert.equal(sd.mode, 'max');
    assert.equal(sd.patience, 5);
    assert.equal(sd.factor, 0.1);
    assert.throws(() => s.step(), /needs the metric/);
    assert.throws(() => createScheduler('cosine', opt, {}), /needs epochs/);
    assert.throws(() => createScheduler('step' as never, opt), /unknown scheduler 'step'/);
    assert.throws(() => new ReduceLROnPlateau(opt, { factor: 1 }), /Factor should be < 1.0/);
  });
});
