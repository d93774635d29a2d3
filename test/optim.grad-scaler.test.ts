// GradScaler on CPU (libtorch 1.13 has no CPU amp kernels, so this exercises the plain-op
// fallback). PyTorch 1.13 disables torch.cuda.amp.GradScaler without CUDA, so the golden run is
// torch.cuda.amp.GradScaler's algorithm restated in Python over real torch tensors and a real
// torch.optim.SGD: scale -> backward -> unscale (found_inf + grads * inv_scale, inv_scale computed
// in double) -> [clip] -> step unless found_inf -> _amp_update_scale_ (backoff on inf, growth
// after growth_interval clean steps).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as E from '../src/engine/index.js';
import type { Tensor } from '../src/engine/index.js';
import { GradScaler, SGD, clipGradNorm, nativeAmpKernels } from '../src/optim/index.js';
import { NO_TORCH, assertClose, hasTorch, runPython } from './helpers/python.js';

const SHAPES = [[3, 2], [4]];
const STEPS = 12;
const POISON: Record<number, 'inf' | 'nan'> = { 3: 'inf', 8: 'nan' };

function values(seed: number, n: number): number[] {
  let s = (seed * 2654435761 + 1) >>> 0;
  return Array.from({ length: n }, () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return Math.round((s / 4294967296 - 0.5) * 1e4) / 1e4;
  });
}
const numel = (sh: number[]) => sh.reduce((a, b) => a * b, 1);
const init = SHAPES.map((sh, i) => values(i + 1, numel(sh)));
const coefs = Array.from({ length: STEPS }, (_, t) => SHAPES.map((sh, i) => values(100 + t * 7 + i, numel(sh))));

const PY = `
import json, sys, torch
from torch.nn.utils import clip_grad_norm_
inp = json.load(sys.stdin)
f32 = lambda x: torch.tensor(x, dtype=torch.float32).item()
def run(clip):
    ps = [torch.tensor(v, dtype=torch.float32).reshape(sh).requires_grad_() for v, sh in zip(inp['init'], inp['shapes'])]
    opt = torch.optim.SGD(ps, lr=0.1, momentum=0.9)
    scale = torch.full((1,), inp['initScale'], dtype=torch.float32)
    tracker = 0
    growth, backoff, interval = inp['growth'], inp['backoff'], inp['interval']
    rec = []
    for t, cs in enumerate(inp['coefs']):
        opt.zero_grad(set_to_none=True)
        cts = [torch.tensor(c, dtype=torch.float32).reshape(sh) for c, sh in zip(cs, inp['shapes'])]
        poison = inp['poison'].get(str(t))
        if poison: cts[0].view(-1)[0] = float(poison)
        loss = sum((p * c).sum() for p, c in zip(ps, cts))
        (loss * scale).backward()
        # _amp_foreach_non_finite_check_and_unscale_
        inv = scale.double().reciprocal().float()
        found = 0.0
        for p in ps:
            if not bool(torch.isfinite(p.grad).all()): found = 1.0
            p.grad.mul_(inv)
        unscaled = [p.grad.flatten().tolist() for p in ps] if not poison else None
        if clip: clip_grad_norm_(ps, 1.0)
        stepped = found == 0.0
        if stepped: opt.step()
        # _amp_update_scale_
        s = scale.item()
        if found:
            scale.fill_(f32(s * backoff)); tracker = 0
        else:
            succ = tracker + 1
            if succ == interval:
                ns = f32(s * growth)
                if abs(ns) != float('inf'): scale.fill_(ns)
                tracker = 0
            else:
                tracker = succ
        rec.append({'stepped': stepped, 'scale': scale.item(), 'tracker': tracker, 'unscaled': unscaled,
                    'params': [p.detach().flatten().tolist() for p in ps]})
    return rec
print(json.dumps({'plain': run(False), 'clip': run(True)}))
`;

interface Rec {
  stepped: boolean;
  scale: number;
  tracker: number;
  unscaled: number[][] | null;
  params: number[][];
}

const OPTS = { initScale: 2 ** 10, growthFactor: 2, backoffFactor: 0.5, growthInterval: 3 };

function runTs(clip: boolean): Rec[] {
  const ps = init.map((v, i) => E.tensor(new Float32Array(v), SHAPES[i]).requiresGrad_(true));
  const opt = new SGD(ps, { lr: 0.1, momentum: 0.9 });
  const scaler = new GradScaler(OPTS);
  const out: Rec[] = [];
  for (let t = 0; t < STEPS; t++) {
    opt.zeroGrad();
    let unscaled: number[][] | null = null;
    const stepped = E.tidy(() => {
      const cs = coefs[t].map((c, i) => {
        const a = new Float32Array(c);
        if (i === 0 && POISON[t]) a[0] = POISON[t] === 'inf' ? Infinity : NaN;
        return E.tensor(a, SHAPES[i]);
      });
      const loss = ps.map((p, i) => p.mul(cs[i]).sum()).reduce((a, b) => a.add(b));
      const scaled = scaler.scale(loss);
      assert.deepEqual(scaled.shape, [1], 'scaled loss is loss * scale[1]');
      scaled.backward();
      scaler.unscale_(opt);
      if (!POISON[t]) unscaled = E.grads(ps).map((g) => (g as Tensor).toArray());
      if (clip) clipGradNorm(ps, 1.0);
      return scaler.step(opt);
    });
    scaler.update();
    out.push({ stepped, scale: scaler.getScale(), tracker: scaler.stateDict()._growth_tracker as number, unscaled, params: ps.map((p) => p.toArray()) });
  }
  opt.dispose();
  scaler.dispose();
  E.dispose(ps);
  return out;
}

test('GradScaler on CPU follows PyTorch: unscale, inf/nan skip, backoff, growth after growthInterval', { skip: !hasTorch() && NO_TORCH }, () => {
  const golden = runPython<{ plain: Rec[]; clip: Rec[] }>(PY, {
    init,
    shapes: SHAPES,
    coefs,
    poison: POISON,
    initScale: OPTS.initScale,
    growth: OPTS.growthFactor,
    backoff: OPTS.backoffFactor,
    interval: OPTS.growthInterval,
  });
  for (const clip of [false, true]) {
    const ours = runTs(clip);
    const want = clip ? golden.clip : golden.plain;
    // sanity: the schedule really exercises growth and backoff
    assert.deepEqual(
      want.map((r) => r.scale),
      [1024, 1024, 2048, 1024, 1024, 1024, 2048, 2048, 1024, 1024, 1024, 2048],
    );
    ours.forEach((r, t) => {
      const w = want[t];
      const what = `${clip ? 'with clip' : 'plain'} step ${t}`;
      assert.equal(r.stepped, w.stepped, `${what}: stepped`);
      assert.equal(r.scale, w.scale, `${what}: scale`);
      assert.equal(r.tracker, w.tracker, `${what}: growth tracker`);
      if (w.unscaled) r.unscaled?.forEach((g, i) => assertClose(g, (w.unscaled as number[][])[i], 0, 0, `${what}: unscaled grad ${i}`));
      r.params.forEach((p, i) => assertClose(p, w.params[i], 1e-6, 1e-5, `${what}: param ${i}`));
    });
  }
  // libtorch 1.13 lacks the CPU kernels: the first call switched CPU to the fallback and cached it
  const info = E.buildInfo();
  if (info.torch.startsWith('1.')) assert.equal(nativeAmpKernels('cpu'), false);
});

test('GradScaler: protocol errors, growth capped at the fp32 range, state dict round trip', () => {
  E.tidy(() => {
    const p = E.ones([2]).requiresGrad_(true);
    const opt = new SGD([p], { lr: 0.1 });
    const scaler = new GradScaler({ initScale: 2 ** 127, growthInterval: 1 });
    assert.equal(scaler.getScale(), 2 ** 127, 'initScale before the first scale()');
    assert.throws(() => scaler.unscale_(opt), /scale is not initialized/);
    scaler.scale(p.sum().mul(1e-38)).backward();
    scaler.unscale_(opt);
    assert.throws(() => scaler.unscale_(opt), /unscale_\(\) has already been called on this optimizer since the last update\(\)/);
    assert.equal(scaler.step(opt), true);
    assert.throws(() => scaler.step(opt), /step\(\) has already been called since the last update\(\)/);
    assert.throws(() => scaler.unscale_(opt), /unscale_\(\) is being called after step\(\)/);
    scaler.update();
    assert.equal(scaler.getScale(), 2 ** 127, 'growth that would overflow to inf is not applied');
    assert.equal(scaler.stateDict()._growth_tracker, 0);
    assert.throws(() => scaler.update(), /No inf checks were recorded prior to update/);
    scaler.update(1024); // explicit new scale
    assert.equal(scaler.getScale(), 1024);

    const sd = scaler.stateDict();
    assert.deepEqual(Object.keys(sd), ['scale', 'growth_factor', 'backoff_factor', 'growth_interval', '_growth_tracker']);
    assert.deepEqual(sd, { scale: 1024, growth_factor: 2, backoff_factor: 0.5, growth_interval: 1, _growth_tracker: 0 });
    const other = new GradScaler();
    other.loadStateDict({ ...sd, _growth_tracker: 5 });
    assert.deepEqual(other.stateDict(), { ...sd, _growth_tracker: 5 });
    assert.throws(() => other.loadStateDict({}), /source state dict is empty/);

    // fp16 grads cannot be unscaled (as PyTorch)
    const h = E.ones([2]).requiresGrad_(true);
    h.grad = E.ones([2], { dtype: 'float16' });
    const s2 = new GradScaler();
    s2.scale(E.scalar(1));
    assert.throws(() => s2.unscale_(new SGD([h], { lr: 1 })), /Attempting to unscale FP16 gradients/);
    for (const s of [scaler, other, s2]) s.dispose();
  });
});

test('GradScaler disabled is a pass-through', () => {
  E.tidy(() => {
    const p = E.ones([2]).requiresGrad_(true);
    const opt = new SGD([p], { lr: 0.5 });
    const scaler = new GradScaler({ enabled: false });
    const loss = p.sum();
    assert.equal(scaler.scale(loss), loss, 'scale() returns the loss itself');
    loss.backward();
    scaler.unscale_(opt);
    assert.deepEqual((p.grad as Tensor).toArray(), [1, 1], 'grads untouched');
    assert.equal(scaler.step(opt), true);
    assert.deepEqual(p.toArray(), [0.5, 0.5]);
    scaler.update();
    assert.equal(scaler.getScale(), 1);
    assert.deepEqual(scaler.stateDict(), {});
    scaler.loadStateDict({}); // no-op
    assert.equal(scaler.enabled, false);
  });
});

test('GradScaler: no tensor leak over many iterations', () => {
  const p = E.randn([5, 5]).requiresGrad_(true);
  const opt = new SGD([p], { lr: 1e-3, momentum: 0.9 });
  const scaler = new GradScaler({ growthInterval: 4 });
  const iter = (t: number) => {
    opt.zeroGrad();
    E.tidy(() => {
      const loss = p
        .square()
        .sum()
        .mul(t % 5 === 0 ? Infinity : 1);
      scaler.scale(loss).backward();
      scaler.unscale_(opt);
      clipGradNorm([p], 1).dispose();
      scaler.step(opt);
    });
    scaler.update();
  };
  iter(1);
  const base = E.memoryStats().liveTensors;
  for (let t = 2; t < 60; t++) iter(t);
  assert.equal(E.memoryStats().liveTensors, base);
  opt.dispose();
  scaler.dispose();
  p.dispose();
});
