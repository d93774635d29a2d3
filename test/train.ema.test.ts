// --ema (src/train/ema.ts): the update and its warm-up equal Ultralytics' ModelEMA in PyTorch
// (test/reference/ema.py) over 20 steps, BatchNorm statistics included; a run stopped mid-epoch and
// resumed ends bit-identical to an uninterrupted one, the average included; best_model.pth and
// validation hold the average; the flag alone is 0.9999.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, test } from 'node:test';
import type { TrainConfig } from '../src/config/options.js';
import { makeDemoDataset } from '../src/data/index.js';
import * as E from '../src/engine/index.js';
import { type LoadedCheckpoint, loadCheckpoint } from '../src/model/checkpoint.js';
import type { UNetArgs } from '../src/model/index.js';
import { BatchNorm2d, Conv2d, ReLU, Sequential } from '../src/nn/index.js';
import { ModelEma, autoTau } from '../src/train/ema.js';
import { type TrainHooks, train } from '../src/train/train.js';
import { parseTrain as parse } from './helpers/parse.js';
import { NO_TORCH, assertClose, hasTorch, runPython } from './helpers/python.js';
import { quiet, runConfig, sameWeights } from './helpers/runs.js';
import { tinyUNet } from './helpers/tiny-unet.js';
import { tempDir } from './helpers/workdir.js';

type State = Record<string, [number[], number[], string]>;
const stateOf = (m: Sequential): State => Object.fromEntries([...m.stateDict()].map(([k, t]) => [k, [t.toArray(), t.shape, t.dtype]]));
const small = () => new Sequential(new Conv2d(2, 4, 3, { padding: 1 }), new BatchNorm2d(4), new ReLU(), new Conv2d(4, 2, 1));

for (const [decay, tau] of [
  [0.9, 5],
  [0.9999, 2000],
] as const) {
  test(`20 updates with warm-up (decay ${decay}, tau ${tau}) equal PyTorch's ModelEMA, BatchNorm buffers included`, { skip: hasTorch() ? false : NO_TORCH }, () => {
    E.manualSeed(3);
    const model = small();
    const ema = new ModelEma(model, small(), decay, { device: 'cpu' }, tau);
    const init = stateOf(model);
    const raws: State[] = [];
    const ours: State[] = [];
    for (let k = 0; k < 20; k++) {
      // A step's worth of change: the weights move, a training-mode forward moves BatchNorm's statistics.
      E.tidy(() =>
        E.noGrad(() => {
          for (const p of model.parameters()) p.add_(E.randn(p.shape).mul(0.05));
          model.forward(
            E.randn([3, 2, 5, 5])
              .mul(1 + k / 10)
              .add(k / 20),
          );
        }),
      );
      raws.push(stateOf(model));
      ema.update();
      ours.push(stateOf(ema.model));
    }
    const golden = runPython<Record<string, number[]>[]>(`import runpy, sys; sys.argv = ['ema.py']; runpy.run_path(${JSON.stringify(join(import.meta.dirname, 'reference', 'ema.py'))}, run_name='__main__')`, { decay, tau, init, raws });
    assert.equal(ema.updates, 20);
    golden.forEach((g, k) => {
      for (const [key, v] of Object.entries(g)) assertClose(ours[k][key][0], v, 1e-6, 0, `update ${k + 1}: ${key}`);
    });
    // The average is not the raw weights (the check above would not see a missing average otherwise).
    assert.ok(Math.abs(ours[19]['0.weight'][0][0] - raws[19]['0.weight'][0][0]) > 1e-4);
    assert.deepEqual(ours[19]['1.num_batches_tracked'][0], [20]);
    ema.dispose();
    model.dispose();
  });
}

const root = tempDir('ema');
const data = join(root, 'data');
before(() => makeDemoDataset(data, { count: 10, size: 32, classes: 2, seed: 4 }));

// 8 training images, batch 1, 2 micro-batches per step: 4 steps per epoch; precise BN before each validation.
const cfg = (dir: string, over: Partial<TrainConfig> = {}): TrainConfig =>
  runConfig(data, join(root, dir), {
    epochs: 2,
    batchSize: 1,
    learningRate: 1e-3,
    scale: 1,
    validation: 20,
    classes: 2,
    augment: true,
    accumulateGradBatches: 2,
    preciseBn: 2,
    valEvery: 0,
    patience: 0,
    ema: 0.9,
    ...over,
  });
// A warm-up of a few steps: the average then differs clearly from the training weights.
const hooks = (h: TrainHooks = {}): TrainHooks => ({ ...quiet, createModel: (args: UNetArgs) => tinyUNet(args, 16), emaTau: 4, ...h });
const ckpt = (dir: string, name: string): Promise<LoadedCheckpoint> => loadCheckpoint(join(root, dir, 'checkpoints', name));
const same = (a: LoadedCheckpoint, b: LoadedCheckpoint, what: string) => {
  assert.ok(sameWeights(a.model, b.model), `${what}: the average (model_state_dict) differs`);
  assert.ok(a.rawModel && b.rawModel && sameWeights(a.rawModel, b.rawModel), `${what}: the training weights differ`);
  assert.equal(a.emaUpdates, b.emaUpdates);
};

test('--ema: stopped mid-epoch and resumed = uninterrupted, bit for bit, both copies; best_model.pth holds the average', async () => {
  await train(cfg('a'), hooks());
  const ctrl = new AbortController();
  let n = 0;
  await train(cfg('b'), hooks({ signal: ctrl.signal, onTrainBatch: () => ++n === 3 && ctrl.abort() }));
  const stop = await ckpt('b', 'INTERRUPTED.pth');
  assert.equal(stop.emaUpdates, 2);
  assert.equal(stop.position?.batch, 4);
  await train(cfg('b', { load: join(root, 'b', 'checkpoints', 'INTERRUPTED.pth') }), hooks());
  const [a, b] = [await ckpt('a', 'checkpoint_epoch2.pth'), await ckpt('b', 'checkpoint_epoch2.pth')];
  same(a, b, 'resumed');
  assert.equal(b.emaUpdates, 8);
  assert.equal(b.valScore, a.valScore);

  // model_state_dict is the average, not the training weights; best_model.pth is an epoch's checkpoint.
  const best = await ckpt('a', 'best_model.pth');
  assert.ok(best.rawModel && !sameWeights(best.model, best.rawModel), 'best_model.pth: the average equals the training weights');
  same(best, await ckpt('a', `checkpoint_epoch${best.epoch}.pth`), 'best_model.pth');

  // Without --ema, a checkpoint saved with it continues from the training weights, which the average never touched.
  await train(cfg('c', { ema: 0, load: join(root, 'a', 'checkpoints', 'checkpoint_epoch1.pth') }), hooks());
  const c = await ckpt('c', 'checkpoint_epoch2.pth');
  assert.equal(c.rawModel, null);
  // Same training weights, another validation score: validation scored the average.
  assert.notEqual(c.valScore, a.valScore, 'validation scored the training weights, not the average');
  assert.ok(a.rawModel && sameWeights(c.model, a.rawModel), 'without --ema: not the training weights of the --ema run');
});

test('--ema alone is 0.9999, a value outside (0, 1) is a usage error naming the flag', async () => {
  assert.equal((await parse(['train', '--ema'])).cfg?.ema, 0.9999);
  assert.equal((await parse(['train', '--ema', '0.99', '-e', '2'])).cfg?.ema, 0.99);
  assert.equal((await parse(['train'])).cfg?.ema, 0);
  assert.match((await parse(['train', '--ema', '1'])).error ?? '', /--ema.*decay between 0 and 1/);
});

test('--ema-warmup auto: tau T/ln(T/10) leaves 1 - d = 10/T at the end of a T-step run (tau = T up to 27 steps); a number is kept', () => {
  for (const steps of [100, 1000, 30_000]) assert.ok(Math.abs(Math.exp(-steps / autoTau(steps)) - 10 / steps) < 1e-12, `${steps} steps`);
  assert.deepEqual([autoTau(8), autoTau(27)], [8, 27]);
  const m = small();
  const auto = new ModelEma(m, small(), 0.9999, { device: 'cpu' }, 'auto');
  auto.planFor(1000);
  assert.equal(auto.tau, autoTau(1000));
  const fixed = new ModelEma(m, small(), 0.9999, { device: 'cpu' }, 2000);
  fixed.planFor(1000);
  assert.equal(fixed.tau, 2000);
  for (const x of [auto, fixed, m]) x.dispose();
});

test('--ema-warmup auto in a run of -e epochs: the average of --ema-warmup <its steps>, not of 2000', async () => {
  // 2 epochs of 4 steps: autoTau(8) = 8.
  const run = (dir: string, emaWarmup: number | 'auto') => train(cfg(dir, { emaWarmup, preciseBn: 0, augment: false }), hooks({ emaTau: undefined }));
  await run('auto', 'auto');
  await run('eight', 8);
  await run('ultralytics', 2000);
  const warnings: string[] = [];
  await train(cfg('off', { ema: 0, emaWarmup: 'auto', epochs: 1 }), hooks({ warn: (w: string) => warnings.push(w) }));
  assert.deepEqual(warnings, ['--ema-warmup has no effect without --ema']);
  const [auto, eight, ultra] = [await ckpt('auto', 'checkpoint_epoch2.pth'), await ckpt('eight', 'checkpoint_epoch2.pth'), await ckpt('ultralytics', 'checkpoint_epoch2.pth')];
  assert.ok(sameWeights(auto.model, eight.model), 'auto is not tau 8');
  assert.ok(auto.rawModel && ultra.rawModel && sameWeights(auto.rawModel, ultra.rawModel), 'the training weights differ');
  assert.ok(!sameWeights(auto.model, ultra.model), 'tau 8 and tau 2000 gave the same average');
});

test('--ema-warmup takes a positive step count or auto, else a usage error naming the flag', async () => {
  assert.equal((await parse(['train'])).cfg?.emaWarmup, 2000);
  assert.equal((await parse(['train', '--ema', '--ema-warmup', 'auto'])).cfg?.emaWarmup, 'auto');
  assert.equal((await parse(['train', '--ema-warmup', '300'])).cfg?.emaWarmup, 300);
  for (const bad of ['0', '-5', 'soon']) assert.match((await parse(['train', '--ema-warmup', bad])).error ?? '', /--ema-warmup/);
});
