// The Stateful contract (src/io/stateful.ts): every object a checkpoint restores beside the weights
// (the four optimizers, the LR schedulers, GradScaler, EarlyStopping, the data Rng and libtorch's
// generator) goes through a real .pth file (the checkpoint's own toPy + savePth, then loadPth +
// fromPy) into a fresh object, whose next step or decision must equal the un-saved object's. Each
// case is chosen so that a fresh object without the loaded state would decide differently.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { Rng, type RngStateDict } from '../src/data/index.js';
import * as E from '../src/engine/index.js';
import type { Tensor } from '../src/engine/index.js';
import { loadPth, savePth } from '../src/io/pth.js';
import type { Stateful } from '../src/io/stateful.js';
import { fromPy, toPy } from '../src/model/checkpoint.js';
import { CosineWarmupLR, GradScaler, type GradScalerStateDict, type LRScheduler, type LoadableOptimizerStateDict, NoneScheduler, type OptimizerName, PolyLR, ReduceLROnPlateau, SGD, createOptimizer } from '../src/optim/index.js';
import { EarlyStopping, type EarlyStoppingState } from '../src/train/early-stopping.js';
import { torchRng } from '../src/train/rng.js';

const dir = mkdtempSync(join(tmpdir(), 'unet-state-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Saves a state dict as a .pth file and reads it back as `unet train --load` does. */
async function roundTrip<L>(name: string, target: Stateful<unknown, L>, saved: unknown): Promise<() => void> {
  const file = join(dir, `${name}.pth`);
  await savePth(file, toPy(saved));
  const loaded = fromPy(await loadPth(file));
  target.loadStateDict(loaded as L);
  return () => E.dispose(loaded);
}

/** Runs `body` and checks that it left no tensor alive. */
async function noLeak(body: () => Promise<void>): Promise<void> {
  const live0 = E.memoryStats().liveTensors;
  await body();
  assert.equal(E.memoryStats().liveTensors, live0, 'tensors left alive');
}

const SHAPES = [[3, 2], [4]];
const numbers = (seed: number, n: number) => Array.from({ length: n }, (_, i) => Math.round(Math.sin(seed * 97 + i * 13) * 1e4) / 1e4);
const makeParams = (data: number[][]) => data.map((d, i) => E.tensor(new Float32Array(d), SHAPES[i]).requiresGrad_(true).keep());
const setGrads = (ps: Tensor[], t: number) => ps.forEach((p, i) => E.tensor(new Float32Array(numbers(100 + 7 * t + i, p.numel)), p.shape).disposeAfter((g) => (p.grad = g)));
const values = (ps: Tensor[]) => ps.map((p) => p.toArray());

describe('optimizers', () => {
  for (const name of ['rmsprop', 'adam', 'adamw', 'sgd'] as OptimizerName[]) {
    test(`${name}: the step after loading equals the step of the un-saved optimizer`, () =>
      noLeak(async () => {
        const pa = makeParams(SHAPES.map((sh, i) => numbers(i + 1, sh[0] * (sh[1] ?? 1))));
        const a = createOptimizer(name, pa, { lr: 1e-2, weightDecay: 1e-2, momentum: 0.9 });
        for (let t = 0; t < 3; t++) {
          setGrads(pa, t);
          a.step();
        }
        const pb = makeParams(values(pa));
        // Other hyper-parameters: loading must restore them with the state.
        const b = createOptimizer(name, pb, { lr: 0.5, weightDecay: 0, momentum: 0.5 });
        const free = await roundTrip<LoadableOptimizerStateDict>(name, b, a.stateDict());
        free();
        for (const [o, ps] of [
          [a, pa],
          [b, pb],
        ] as const) {
          setGrads(ps, 3);
          o.step();
        }
        assert.deepEqual(values(pb), values(pa));
        assert.equal(b.lr, a.lr);
        a.dispose();
        b.dispose();
        E.dispose([...pa, ...pb]);
      }));
  }
});

describe('LR schedulers', () => {
  // Metrics for ReduceLROnPlateau (mode max, patience 1): the 4th round is the 2nd bad one in a row.
  const metrics = [0.5, 0.6, 0.55, 0.54];
  const cases: [string, (t: { lr: number; initialLr: number | undefined }) => LRScheduler][] = [
    ['ReduceLROnPlateau', (t) => new ReduceLROnPlateau(t, { mode: 'max', patience: 1 })],
    ['CosineWarmupLR', (t) => new CosineWarmupLR(t, { total: 10, warmup: 2 })],
    ['PolyLR', (t) => new PolyLR(t, { total: 10 })],
    ['NoneScheduler', (t) => new NoneScheduler(t)],
  ];
  for (const [name, make] of cases) {
    test(`${name}: the lr after loading equals the un-saved scheduler's`, async () => {
      const ta = { lr: 0.1, initialLr: undefined as number | undefined };
      const a = make(ta);
      for (const m of metrics.slice(0, 3)) a.step(m);
      const tb = { lr: 0.1, initialLr: undefined as number | undefined };
      const b = make(tb);
      (await roundTrip(name, b, a.stateDict()))();
      // The lr itself lives in the optimizer's state dict, restored beside the scheduler's.
      Object.assign(tb, { lr: ta.lr, initialLr: ta.initialLr });
      a.step(metrics[3]);
      b.step(metrics[3]);
      assert.deepEqual(b.getLastLr(), a.getLastLr());
      assert.equal(tb.lr, ta.lr);
      assert.deepEqual(b.stateDict(), a.stateDict());
    });
  }
});

test("GradScaler: the next step, scale and growth tracker after loading equal the un-saved scaler's", () =>
  noLeak(async () => {
    const opts = { initScale: 2 ** 4, growthInterval: 2 };
    /** One scaled step; `poison` puts an inf into the loss's gradient. */
    const step = (scaler: GradScaler, opt: SGD, ps: Tensor[], t: number, poison = false) => {
      opt.zeroGrad();
      const stepped = E.tidy(() => {
        const cs = ps.map((p, i) => {
          const c = new Float32Array(numbers(50 + t + i, p.numel));
          if (poison && i === 0) c[0] = Infinity;
          return E.tensor(c, p.shape);
        });
        const loss = ps.map((p, i) => p.mul(cs[i]).sum()).reduce((x, y) => x.add(y));
        scaler.scale(loss).backward();
        scaler.unscale_(opt);
        return scaler.step(opt);
      });
      scaler.update();
      return stepped;
    };
    const pa = makeParams(SHAPES.map((sh, i) => numbers(i + 1, sh[0] * (sh[1] ?? 1))));
    const oa = new SGD(pa, { lr: 0.1 });
    const a = new GradScaler(opts);
    step(a, oa, pa, 0);
    step(a, oa, pa, 1, true); // backoff
    step(a, oa, pa, 2); // tracker 1: the next clean step grows the scale
    const pb = makeParams(values(pa));
    const ob = new SGD(pb, { lr: 0.1 });
    const b = new GradScaler(opts);
    (await roundTrip<GradScalerStateDict>('grad-scaler', b, a.stateDict()))();
    assert.equal(step(b, ob, pb, 3), step(a, oa, pa, 3));
    assert.equal(a.getScale(), 2 ** 4, 'the case is decisive: backed off to 8, then grown to 16');
    assert.equal(b.getScale(), a.getScale());
    assert.deepEqual(b.stateDict(), a.stateDict());
    assert.deepEqual(values(pb), values(pa));
    for (const x of [oa, ob, a, b]) x.dispose();
    E.dispose([...pa, ...pb]);
  }));

test("EarlyStopping: the stop decision after loading equals the un-saved one's", async () => {
  const a = new EarlyStopping(2, 0.01);
  a.update(0.5, 1);
  a.update(0.505, 2); // a new best, but not by min_delta: counter 1
  const b = new EarlyStopping(2, 0.01);
  (await roundTrip<Partial<EarlyStoppingState> | null>('early-stopping', b, a.stateDict()))();
  const got = b.update(0.504, 3);
  assert.deepEqual(got, a.update(0.504, 3));
  assert.equal(got.stop, true, 'the case is decisive: a fresh EarlyStopping would not stop here');
  assert.deepEqual(b.stateDict(), a.stateDict());
});

test("the data Rng: the draws after loading equal the un-saved generator's", async () => {
  const a = new Rng(3);
  for (let i = 0; i < 5; i++) a.next();
  const b = new Rng(99);
  (await roundTrip<RngStateDict>('data-rng', b, a.stateDict()))();
  assert.deepEqual(
    Array.from({ length: 4 }, () => b.next()),
    Array.from({ length: 4 }, () => a.next()),
  );
});

test("libtorch's generator: the draws after loading equal the un-saved ones", () =>
  noLeak(async () => {
    E.manualSeed(1);
    E.rand([3]).dispose();
    const state = torchRng.stateDict();
    const expected = E.rand([8]).disposeAfter((t) => t.toArray());
    E.manualSeed(12345);
    (await roundTrip<Tensor>('torch-rng', torchRng, state))();
    state.dispose();
    assert.deepEqual(
      E.rand([8]).disposeAfter((t) => t.toArray()),
      expected,
    );
  }));
