// RMSprop, Adam, AdamW and SGD against Debian's PyTorch 1.13 (foreach=True): the same initial
// parameters and the same 10 gradients (one parameter gets no gradient on two of the steps) must give
// the same parameters and state dicts; resuming from a state dict (ours or PyTorch's) must continue
// the uninterrupted run; 200 steps must not leak tensors.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as E from '../src/engine/index.js';
import type { Tensor } from '../src/engine/index.js';
import { Adam, AdamW, type Optimizer, RMSprop, SGD, createOptimizer } from '../src/optim/index.js';
import { NO_TORCH, assertClose, hasTorch, runPython } from './helpers/python.js';

const SHAPES = [[4, 3], [5], [2, 3, 2, 2]];
const STEPS = 10;
const SNAPSHOT = 5;
/** (step, param) pairs with no gradient: PyTorch skips the parameter, its step count lags. */
const NULL_GRADS = new Set(['2:2', '6:2']);

function xorshift(seed: number): () => number {
  let s = (seed * 2654435761 + 1) >>> 0;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}
const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
/** Values rounded to 4 decimals so both sides parse identical float32 numbers. */
function vals(rnd: () => number, n: number, scale = 1): number[] {
  return Array.from({ length: n }, () => Math.round((rnd() * 2 - 1) * scale * 1e4) / 1e4);
}

interface Data {
  params: { shape: number[]; data: number[] }[];
  grads: (number[] | null)[][];
}
function makeData(seed: number): Data {
  const rnd = xorshift(seed);
  const params = SHAPES.map((shape) => ({ shape, data: vals(rnd, numel(shape)) }));
  const grads = Array.from({ length: STEPS }, (_, t) => SHAPES.map((shape, i) => (NULL_GRADS.has(`${t}:${i}`) ? null : vals(rnd, numel(shape), t === 4 ? 5 : 0.5 + t / 10))));
  return { params, grads };
}

type PyState = Record<string, Record<string, number | number[] | null>>;
interface PySd {
  state: PyState;
  param_groups: Record<string, unknown>[];
  step_kind: Record<string, string>;
}
interface PyRun {
  params: number[][];
  sd: PySd;
  snap: { params: number[][]; sd: PySd };
}

const PY = `
import json, sys, torch
torch.set_num_threads(1)
def run(inp):
  ps = [torch.tensor(p['data'], dtype=torch.float32).reshape(p['shape']).requires_grad_() for p in inp['params']]
  opt = eval(inp['ctor'], {'torch': torch, 'ps': ps})
  def dump(opt):
      sd = opt.state_dict()
      st, kind = {}, {}
      for k, v in sd['state'].items():
          rec = {}
          for kk, vv in v.items():
              if vv is None: rec[kk] = None
              elif kk == 'step':
                  if torch.is_tensor(vv):
                      rec[kk] = vv.item(); kind[str(k)] = 'tensor:%s:%s' % (str(vv.dtype), list(vv.shape))
                  else:
                      rec[kk] = vv; kind[str(k)] = type(vv).__name__
              else: rec[kk] = vv.flatten().tolist()
          st[str(k)] = rec
      return {'state': st, 'param_groups': sd['param_groups'], 'step_kind': kind}
  snap = None
  for t, gs in enumerate(inp['grads']):
      for p, g in zip(ps, gs):
          p.grad = None if g is None else torch.tensor(g, dtype=torch.float32).reshape(p.shape)
      opt.step()
      if t + 1 == inp['snapshot']:
          snap = {'params': [p.detach().flatten().tolist() for p in ps], 'sd': dump(opt)}
  return {'params': [p.detach().flatten().tolist() for p in ps], 'sd': dump(opt), 'snap': snap}
print(json.dumps([run(c) for c in json.load(sys.stdin)]))
`;

interface Case {
  name: string;
  py: string;
  make: (ps: Tensor[]) => Optimizer;
}
const cases: Case[] = [
  {
    name: 'RMSprop (reference: weight_decay 1e-8, momentum 0.999)',
    py: 'torch.optim.RMSprop(ps, lr=1e-3, weight_decay=1e-8, momentum=0.999, foreach=True)',
    make: (ps) => new RMSprop(ps, { lr: 1e-3, weightDecay: 1e-8, momentum: 0.999 }),
  },
  {
    name: 'RMSprop centered, momentum, weight decay',
    py: 'torch.optim.RMSprop(ps, lr=1e-2, alpha=0.9, eps=1e-6, weight_decay=0.01, momentum=0.5, centered=True, foreach=True)',
    make: (ps) => new RMSprop(ps, { lr: 1e-2, alpha: 0.9, eps: 1e-6, weightDecay: 0.01, momentum: 0.5, centered: true }),
  },
  {
    name: 'RMSprop centered without momentum',
    py: 'torch.optim.RMSprop(ps, lr=1e-2, centered=True, foreach=True)',
    make: (ps) => new RMSprop(ps, { lr: 1e-2, centered: true }),
  },
  {
    name: 'RMSprop plain',
    py: 'torch.optim.RMSprop(ps, lr=1e-2, foreach=True)',
    make: (ps) => new RMSprop(ps, { lr: 1e-2 }),
  },
  {
    name: 'Adam with L2 weight decay',
    py: 'torch.optim.Adam(ps, lr=1e-2, weight_decay=0.01, foreach=True)',
    make: (ps) => new Adam(ps, { lr: 1e-2, weightDecay: 0.01 }),
  },
  {
    name: 'Adam amsgrad, custom betas',
    py: 'torch.optim.Adam(ps, lr=1e-2, betas=(0.8, 0.99), eps=1e-6, amsgrad=True, foreach=True)',
    make: (ps) => new Adam(ps, { lr: 1e-2, betas: [0.8, 0.99], eps: 1e-6, amsgrad: true }),
  },
  {
    name: 'Adam maximize',
    py: 'torch.optim.Adam(ps, lr=1e-2, maximize=True, foreach=True)',
    make: (ps) => new Adam(ps, { lr: 1e-2, maximize: true }),
  },
  {
    name: 'AdamW (default weight decay 1e-2)',
    py: 'torch.optim.AdamW(ps, lr=1e-2, foreach=True)',
    make: (ps) => new AdamW(ps, { lr: 1e-2 }),
  },
  {
    name: 'AdamW amsgrad (the fork: weight_decay 1e-8)',
    py: 'torch.optim.AdamW(ps, lr=1e-2, weight_decay=1e-8, amsgrad=True, foreach=True)',
    make: (ps) => new AdamW(ps, { lr: 1e-2, weightDecay: 1e-8, amsgrad: true }),
  },
  {
    name: 'SGD plain',
    py: 'torch.optim.SGD(ps, lr=0.1, foreach=True)',
    make: (ps) => new SGD(ps, { lr: 0.1 }),
  },
  {
    name: 'SGD momentum, dampening, weight decay',
    py: 'torch.optim.SGD(ps, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-3, foreach=True)',
    make: (ps) => new SGD(ps, { lr: 0.05, momentum: 0.9, dampening: 0.1, weightDecay: 1e-3 }),
  },
  {
    name: 'SGD Nesterov',
    py: 'torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-4, foreach=True)',
    make: (ps) => new SGD(ps, { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-4 }),
  },
];

const ATOL = 1e-6;
const RTOL = 1e-5;

function makeParams(values: { shape: number[]; data: number[] }[]): Tensor[] {
  return values.map(({ shape, data }) => E.tensor(new Float32Array(data), shape).requiresGrad_(true).keep());
}
function setGrads(ps: Tensor[], gs: (number[] | null)[]): void {
  ps.forEach((p, i) => {
    const g = gs[i];
    if (g === null) p.grad = null;
    else E.tensor(new Float32Array(g), p.shape).disposeAfter((t) => (p.grad = t));
  });
}
function runSteps(opt: Optimizer, ps: Tensor[], grads: (number[] | null)[][]): void {
  for (const gs of grads) {
    setGrads(ps, gs);
    opt.step();
  }
}
const flat = (t: Tensor): number[] => t.toArray();

/** Compares our state dict with PyTorch's (same keys, same values, same group). */
function compareStateDict(opt: Optimizer, py: PySd, what: string): void {
  const sd = opt.stateDict();
  assert.deepEqual([...sd.state.keys()].map(String).sort(), Object.keys(py.state).sort(), `${what}: state indices`);
  for (const [i, rec] of sd.state) {
    const pyRec = py.state[String(i)];
    assert.deepEqual(Object.keys(rec).sort(), Object.keys(pyRec).sort(), `${what}: state keys of param ${i}`);
    for (const [k, v] of Object.entries(rec)) {
      const pv = pyRec[k];
      if (v === null) {
        assert.equal(pv, null, `${what}: ${k} of param ${i} should be None`);
        continue;
      }
      if (k === 'step') {
        assert.equal(v.dtype, 'float32', `${what}: step dtype`);
        assert.deepEqual(v.shape, [], `${what}: step shape`);
        assert.equal(v.item(), pv, `${what}: step of param ${i}`);
        continue;
      }
      assertClose(flat(v), pv as number[], ATOL, RTOL, `${what}: ${k} of param ${i}`);
    }
  }
  // param_groups: the same keys and values (JSON: Python tuples become lists)
  assert.deepEqual(JSON.parse(JSON.stringify(sd.param_groups)), py.param_groups, `${what}: param_groups`);
}

/** PyTorch's state as loadable input (tensors from the JSON lists, step as Python gave it). */
function pyStateToLoadable(py: PySd, shapes: number[][]) {
  const state = new Map<number, Record<string, Tensor | number | null>>();
  for (const [k, rec] of Object.entries(py.state)) {
    const out: Record<string, Tensor | number | null> = {};
    for (const [kk, v] of Object.entries(rec)) {
      if (v === null || typeof v === 'number') out[kk] = kk === 'step' && py.step_kind[k]?.startsWith('tensor') ? E.scalar(v as number) : v;
      else out[kk] = E.tensor(new Float32Array(v), shapes[Number(k)]);
    }
    state.set(Number(k), out);
  }
  return { state, param_groups: py.param_groups };
}

// One Python process computes every case (spawning torch once per case costs ~1 s each).
let golden: PyRun[] | undefined;
const goldenFor = (ci: number): PyRun => {
  golden ??= runPython<PyRun[]>(
    PY,
    cases.map((c, i) => ({ ...makeData(100 + i), ctor: c.py, snapshot: SNAPSHOT })),
  );
  return golden[ci];
};

for (const [ci, c] of cases.entries()) {
  test(`${c.name} matches PyTorch 1.13 over ${STEPS} steps, state dict and resume`, { skip: !hasTorch() && NO_TORCH }, () => {
    const data = makeData(100 + ci);
    const py = goldenFor(ci);

    // 1. uninterrupted run
    const ps = makeParams(data.params);
    const opt = c.make(ps);
    runSteps(opt, ps, data.grads.slice(0, SNAPSHOT));
    ps.forEach((p, i) => assertClose(flat(p), py.snap.params[i], ATOL, RTOL, `${c.name}: param ${i} after ${SNAPSHOT} steps`));
    compareStateDict(opt, py.snap.sd, `${c.name} @${SNAPSHOT}`);
    const ours5 = opt.stateDict({ clone: true });
    const params5 = ps.map((p) => p.detach().clone().keep());
    runSteps(opt, ps, data.grads.slice(SNAPSHOT));
    ps.forEach((p, i) => assertClose(flat(p), py.params[i], ATOL, RTOL, `${c.name}: param ${i} after ${STEPS} steps`));
    compareStateDict(opt, py.sd, `${c.name} @${STEPS}`);

    // 2. resume from our own state dict: bit-identical to the uninterrupted run
    const ps2 = params5.map((p) => p.clone().requiresGrad_(true).keep());
    const opt2 = c.make(ps2);
    opt2.lr = 123; // load must restore the saved hyper-parameters
    opt2.loadStateDict(ours5);
    E.dispose(ours5.state);
    runSteps(opt2, ps2, data.grads.slice(SNAPSHOT));
    ps2.forEach((p, i) => assert.deepEqual(flat(p), flat(ps[i]), `${c.name}: resumed (own state) param ${i}`));

    // 3. resume from PyTorch's state dict at the snapshot
    const ps3 = makeParams(py.snap.params.map((d, i) => ({ shape: SHAPES[i], data: d })));
    const opt3 = c.make(ps3);
    const loadable = pyStateToLoadable(py.snap.sd, SHAPES);
    opt3.loadStateDict(loadable);
    E.dispose([...loadable.state.values()].flatMap((r) => Object.values(r)));
    runSteps(opt3, ps3, data.grads.slice(SNAPSHOT));
    ps3.forEach((p, i) => assertClose(flat(p), py.params[i], ATOL, RTOL, `${c.name}: resumed (PyTorch state) param ${i}`));

    for (const o of [opt, opt2, opt3]) o.dispose();
    E.dispose([ps, ps2, ps3, params5]);
  });
}

test('step() leaves .grad untouched (weight decay / maximize / nesterov work on copies)', () => {
  E.tidy(() => {
    for (const make of [
      (ps: Tensor[]) => new RMSprop(ps, { lr: 0.1, weightDecay: 0.5, maximize: true, momentum: 0.9 }),
      (ps: Tensor[]) => new Adam(ps, { lr: 0.1, weightDecay: 0.5, maximize: true }),
      (ps: Tensor[]) => new SGD(ps, { lr: 0.1, weightDecay: 0.5, momentum: 0.9, nesterov: true }),
    ]) {
      const p = E.tensor([1, 2, 3]).requiresGrad_(true);
      p.grad = E.tensor([0.5, -0.5, 1]);
      const opt = make([p]);
      opt.step();
      opt.step();
      assert.deepEqual((p.grad as Tensor).toArray(), [0.5, -0.5, 1]);
      opt.dispose();
    }
  });
});

test('params without grads are skipped and get no state; zeroGrad drops grads', () => {
  E.tidy(() => {
    const a = E.tensor([1, 2]).requiresGrad_(true);
    const b = E.tensor([3, 4]).requiresGrad_(true);
    const opt = new Adam([a, b], { lr: 0.1 });
    a.grad = E.tensor([1, 1]);
    assert.equal(opt.step(), true);
    assert.deepEqual(b.toArray(), [3, 4]);
    assert.deepEqual([...opt.stateDict().state.keys()], [0]);
    opt.zeroGrad();
    assert.equal(a.grad, null);
    const before = a.toArray();
    opt.step(); // no grads at all: nothing changes
    assert.deepEqual(a.toArray(), before);
    // a found_inf flag makes step() a no-op (GradScaler protocol)
    a.grad = E.tensor([1, 1]);
    assert.equal(opt.step({ foundInf: E.ones([1]) }), false);
    assert.deepEqual(a.toArray(), before);
    assert.equal(opt.step({ foundInf: E.zeros([1]) }), true);
    assert.notDeepEqual(a.toArray(), before);
    opt.dispose();
  });
});

test('loadStateDict validates and leaves the optimizer unchanged on error', () => {
  E.tidy(() => {
    const ps = [E.zeros([2, 2]).requiresGrad_(true), E.zeros([3]).requiresGrad_(true)];
    const opt = new RMSprop(ps, { lr: 0.01, momentum: 0.9 });
    for (const p of ps) p.grad = E.ones(p.shape);
    opt.step();
    const good = opt.stateDict({ clone: true });
    const other = new RMSprop([ps[0]], { lr: 0.01 });
    assert.throws(() => other.loadStateDict(good), /doesn't match the size of optimizer's group/);
    assert.throws(() => opt.loadStateDict({ ...good, param_groups: [good.param_groups[0], good.param_groups[0]] }), /2 parameter groups/);
    const badShape = new Map(good.state);
    badShape.set(1, { ...good.state.get(1), square_avg: E.zeros([4]) });
    assert.throws(() => opt.loadStateDict({ state: badShape, param_groups: [{ ...good.param_groups[0], lr: 5 }] }), /square_avg' of parameter 1 has shape \[4\], the parameter has \[3\]/);
    assert.equal(opt.lr, 0.01, 'lr restored after a failed load');
    const adam = new Adam(ps, { lr: 0.1 });
    assert.throws(() => adam.loadStateDict(good), /betas must be a pair/);
    const missing = new Map(good.state);
    missing.set(0, { step: E.scalar(1), square_avg: E.zeros([2, 2]) });
    assert.throws(() => opt.loadStateDict({ state: missing, param_groups: good.param_groups }), /lacks tensor 'momentum_buffer'/);
    // still the original state
    assertClose(opt.stateDict().state.get(0)?.square_avg?.toArray() ?? [], good.state.get(0)?.square_avg?.toArray() ?? [], 0, 0, 'state kept');
    // plain-object state with string keys and int steps (a PyTorch 1.13 RMSprop checkpoint read back) loads
    const obj = Object.fromEntries([...good.state].map(([k, v]) => [String(k), { ...v, step: 1 }]));
    opt.loadStateDict({ state: obj, param_groups: good.param_groups });
    assert.equal(opt.stateDict().state.get(1)?.step?.item(), 1);
    E.dispose(good.state);
    for (const o of [opt, other, adam]) o.dispose();
  });
});

test('lr is mutable and validated; constructor checks', () => {
  E.tidy(() => {
    const p = E.tensor([1]).requiresGrad_(true);
    const opt = new SGD([p], { lr: 0.1 });
    opt.lr = 0.5;
    assert.equal(opt.stateDict().param_groups[0].lr, 0.5);
    assert.throws(() => (opt.lr = -1), /Invalid learning rate: -1/);
    assert.throws(() => new SGD([p], { lr: 0.1, nesterov: true }), /Nesterov momentum requires a momentum and zero dampening/);
    assert.throws(() => new Adam([p], { betas: [1, 0.9] }), /Invalid beta parameter at index 0/);
    assert.throws(() => new RMSprop([]), /empty parameter list/);
    assert.throws(() => new RMSprop([p, p]), /more than once/);
  });
});

test('createOptimizer uses the reference defaults', () => {
  E.tidy(() => {
    const p = E.tensor([1]).requiresGrad_(true);
    const rms = createOptimizer('rmsprop', [p], { lr: 1e-5 }).stateDict().param_groups[0];
    assert.deepEqual(
      { lr: rms.lr, momentum: rms.momentum, alpha: rms.alpha, eps: rms.eps, weight_decay: rms.weight_decay, centered: rms.centered, foreach: rms.foreach },
      { lr: 1e-5, momentum: 0.999, alpha: 0.99, eps: 1e-8, weight_decay: 1e-8, centered: false, foreach: true },
    );
    assert.ok(createOptimizer('adamw', [p], { lr: 1e-4, amsgrad: true }) instanceof AdamW);
    assert.ok(createOptimizer('adam', [p], { lr: 1e-4 }) instanceof Adam);
    assert.equal(createOptimizer('sgd', [p], { lr: 1e-2 }).stateDict().param_groups[0].momentum, 0.9);
    assert.throws(() => createOptimizer('lion' as never, [p], { lr: 1 }), /unknown optimizer 'lion'/);
  });
});

test('no memory growth: 200 steps leave the live tensor count unchanged', () => {
  const makes: ((ps: Tensor[]) => Optimizer)[] = [
    (ps) => new RMSprop(ps, { lr: 1e-3, weightDecay: 1e-8, momentum: 0.999, centered: true }),
    (ps) => new Adam(ps, { lr: 1e-3, weightDecay: 0.1, amsgrad: true, maximize: true }),
    (ps) => new AdamW(ps, { lr: 1e-3 }),
    (ps) => new SGD(ps, { lr: 1e-3, momentum: 0.9, nesterov: true, weightDecay: 0.1 }),
  ];
  for (const make of makes) {
    const before = E.memoryStats().liveTensors;
    const ps = [E.randn([8, 4]).requiresGrad_(true), E.randn([4]).requiresGrad_(true)];
    const opt = make(ps);
    const oneStep = (t: number) =>
      E.tidy(() => {
        // a real backward, so .grad is produced by autograd as in training
        const loss = ps[0]
          .sum([0])
          .mul(ps[1])
          .sum()
          .add(
            ps[0]
              .square()
              .sum()
              .mul(t % 3),
          );
        loss.backward();
        opt.step();
        opt.zeroGrad();
      });
    oneStep(0);
    const base = E.memoryStats().liveTensors;
    assert.equal(base, before + ps.length + opt.stateTensorCount(), `${opt.name}: params + state are the only new live handles`);
    for (let t = 1; t <= 200; t++) oneStep(t);
    assert.equal(E.memoryStats().liveTensors, base, `${opt.name}: live tensors after 200 steps`);
    opt.dispose();
    E.dispose(ps);
    assert.equal(E.memoryStats().liveTensors, before, `${opt.name}: dispose() frees the state`);
  }
});

const PY_LOAD = `
import json, sys, torch
torch.set_num_threads(1)
out = []
for c in json.load(sys.stdin):
    ps = [torch.tensor(d, dtype=torch.float32).reshape(sh).requires_grad_() for d, sh in zip(c['params'], c['shapes'])]
    opt = eval(c['ctor'], {'torch': torch, 'ps': ps})
    state = {}
    for k, rec in c['sd']['state'].items():
        st = {}
        for kk, v in rec.items():
            if v is None: st[kk] = None
            elif kk == 'step': st[kk] = torch.tensor(float(v))
            else: st[kk] = torch.tensor(v, dtype=torch.float32).reshape(c['shapes'][int(k)])
        state[int(k)] = st
    opt.load_state_dict({'state': state, 'param_groups': c['sd']['param_groups']})
    for gs in c['grads']:
        for p, g in zip(ps, gs):
            p.grad = None if g is None else torch.tensor(g, dtype=torch.float32).reshape(p.shape)
        opt.step()
    out.append([p.detach().flatten().tolist() for p in ps])
print(json.dumps(out))
`;

test('PyTorch 1.13 loads our state dicts (step as a float32 tensor) and continues identically', { skip: !hasTorch() && NO_TORCH }, () => {
  const inputs: unknown[] = [];
  const finals: number[][][] = [];
  for (const [ci, c] of cases.entries()) {
    const data = makeData(100 + ci);
    const ps = makeParams(data.params);
    const opt = c.make(ps);
    runSteps(opt, ps, data.grads.slice(0, SNAPSHOT));
    const sd = opt.stateDict();
    const state = Object.fromEntries([...sd.state].map(([k, rec]) => [String(k), Object.fromEntries(Object.entries(rec).map(([kk, v]) => [kk, v === null ? null : kk === 'step' ? v.item() : flat(v)]))]));
    inputs.push({ ctor: c.py, shapes: SHAPES, params: ps.map(flat), sd: { state, param_groups: sd.param_groups }, grads: data.grads.slice(SNAPSHOT) });
    runSteps(opt, ps, data.grads.slice(SNAPSHOT));
    finals.push(ps.map(flat));
    opt.dispose();
    E.dispose(ps);
  }
  const py = runPython<number[][][]>(PY_LOAD, inputs);
  cases.forEach((c, ci) => py[ci].forEach((p, i) => assertClose(p, finals[ci][i], ATOL, RTOL, `${c.name}: PyTorch resumed from our state, param ${i}`)));
});
