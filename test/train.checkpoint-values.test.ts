// Checkpoint values, not keys: a real run's checkpoints hold its figures (epoch, global_step, the
// epoch loss, the validation Dice that `unet evaluate` gives the saved weights), the scheduler
// state after a forced plateau shows the learning-rate reduction, and the GradScaler state
// round-trips through a checkpoint.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { defaults, evaluateOptions } from '../src/config/options.js';
import { Rng, randomSplit } from '../src/data/index.js';
import * as E from '../src/engine/index.js';
import { GradScaler, SGD, createScheduler } from '../src/optim/index.js';
import { runEvaluate } from '../src/predict/evaluate-command.js';
import { loadCheckpoint, saveCheckpoint } from '../src/model/checkpoint.js';
import { EarlyStopping } from '../src/train/early-stopping.js';
import { restore, train } from '../src/train/train.js';
import { quiet, runConfig, runRecords, scalarSeries } from './helpers/runs.js';
import { tinyUNet } from './helpers/tiny-unet.js';
import { demoDataDir } from './helpers/workdir.js';

const COUNT = 7;
const { root, data } = demoDataDir('ckvalues', { count: COUNT, size: 32, classes: 3, seed: 11 });

test("epoch, global_step, loss and val_score are the run's; val_score is what unet evaluate gives the saved weights", { timeout: 600_000 }, async () => {
  const dir = join(root, 'values');
  // 5 training images in batches of 2 = 3 batches, accumulated by 2: 2 optimizer steps per epoch
  // (one full window, then the remainder flushed). A UNet `unet evaluate` can load (the real one,
  // narrowed by --base-channels 16).
  const r = await train(runConfig(data, dir, { epochs: 2, batchSize: 2, accumulateGradBatches: 2, learningRate: 1e-3, scale: 1, validation: 30, classes: 3, bilinear: true, patience: 0, valEvery: 0, baseChannels: 16 }), quiet);
  const split = randomSplit(COUNT, 30, 0);
  assert.deepEqual([split.train.length, split.val.length], [5, 2]);
  const { epochs, scalars } = runRecords(r.runDir);
  const dice = new Map(scalarSeries(scalars, 'validation Dice'));
  // the validation images alone, to score the checkpoints independently of the training loop
  const val = join(root, 'val');
  for (const sub of ['imgs', 'masks']) mkdirSync(join(val, sub), { recursive: true });
  for (const i of split.val) for (const sub of ['imgs', 'masks']) copyFileSync(join(data, sub, `00${i}.png`), join(val, sub, `00${i}.png`));

  assert.equal(epochs.length, 2);
  for (const rec of epochs) {
    const path = join(r.checkpointDir, `checkpoint_epoch${rec.epoch}.pth`);
    const ck = await loadCheckpoint(path);
    assert.equal(ck.epoch, rec.epoch);
    assert.equal(ck.globalStep, 2 * rec.epoch, 'optimizer steps, the flushed remainder included');
    assert.equal(ck.loss, rec.loss);
    assert.ok(Number.isFinite(ck.loss) && (ck.loss as number) > 0);
    assert.equal(ck.valScore, rec.valDice);
    assert.equal(dice.get(rec.step), Math.fround(rec.valDice), 'the logged validation Dice');
    const ev = await runEvaluate({ ...defaults(evaluateOptions), model: path, imgs: join(val, 'imgs'), masks: join(val, 'masks'), scale: 1, device: 'cpu', workers: 2 }, { warn: () => {} });
    assert.equal(ev.images, 2);
    assert.ok(Math.abs(ev.referenceDice - (ck.valScore as number)) < 1e-6, `epoch ${rec.epoch}: evaluate ${ev.referenceDice}, checkpoint ${ck.valScore}`);
  }
});

test("a forced plateau: the checkpoint's scheduler state shows the reduction, the optimizer holds the reduced LR", async () => {
  const dir = join(root, 'plateau');
  const lr = 1e-3;
  // The same score at every validation (each optimizer step with --val-every 1): 9 or more
  // scheduler steps, whether or not the epoch-end validation steps it too.
  const r = await train(runConfig(data, dir, { epochs: 3, batchSize: 2, learningRate: lr, scale: 1, validation: 30, classes: 3, bilinear: true, valEvery: 1, patience: 0 }), {
    ...quiet,
    createModel: tinyUNet,
    validationScore: () => 0.5,
  });
  const ck = await loadCheckpoint(join(r.checkpointDir, 'checkpoint_epoch3.pth'));
  const s = ck.scheduler as unknown as Record<string, number | number[] | string>;
  const steps = s.last_epoch as number;
  const patience = s.patience as number;
  assert.ok(steps >= 7, `scheduler steps: ${steps}`);
  // the first step sets the best; every later one is bad, and each patience+1 bad ones cut the LR
  const cuts = Math.floor((steps - 1) / (patience + 1));
  assert.ok(cuts >= 1, `${steps} steps with patience ${patience}`);
  assert.deepEqual([s.mode, s.best, s.num_bad_epochs, s.factor], ['max', 0.5, (steps - 1) % (patience + 1), 0.1]);
  const want = lr * 0.1 ** cuts;
  const lastLr = (s._last_lr as number[])[0];
  const groupLr = (ck.optimizer as unknown as { param_groups: { lr: number }[] }).param_groups[0].lr;
  for (const got of [lastLr, groupLr]) assert.ok(Math.abs(got - want) < 1e-12, `lr ${got}, expected ${want}`);
  // and the logged learning rate shows the drop
  const logged = scalarSeries(runRecords(r.runDir).scalars, 'learning rate').map(([, v]) => v);
  assert.equal(logged[0], lr);
  assert.ok(Math.abs(logged[logged.length - 1] - want) < 1e-12);
});

test('GradScaler state round-trips through a checkpoint and goes on identically', async () => {
  // A scaler with history: an overflow (backoff) and two clean steps since (growth tracker 2).
  const p = E.tensor(new Float32Array([0.5, -1, 2]), [3]).requiresGrad_(true);
  const opt = new SGD([p], { lr: 0.1 });
  const mk = () => new GradScaler({ initScale: 1024, growthInterval: 3 });
  const step = (scaler: GradScaler, bad: boolean) => {
    opt.zeroGrad();
    E.tidy(() => scaler.scale(p.mul(E.tensor(new Float32Array([1, bad ? Infinity : 2, 3]), [3])).sum()).backward());
    scaler.step(opt);
    scaler.update();
  };
  const a = mk();
  for (const bad of [false, true, false, false]) step(a, bad);
  assert.deepEqual(a.stateDict(), { scale: 512, growth_factor: 2, backoff_factor: 0.5, growth_interval: 3, _growth_tracker: 2 });
  const path = join(root, 'scaler.pth');
  const model = new Map([['w', p]]);
  await saveCheckpoint(path, {
    model,
    gradScaler: a.stateDict(),
    epoch: 1,
    globalStep: 4,
    loss: 1,
    valScore: 0.5,
    maskValues: [0, 255],
    modelArgs: { nChannels: 1, nClasses: 1, bilinear: false },
    config: {},
  });
  const b = mk();
  const early = new EarlyStopping(10, 1e-3);
  const sched = createScheduler('plateau', opt, { epochs: 1, mode: 'max', patience: 5 });
  restore(await loadCheckpoint(path), { optimizer: opt, scheduler: sched, scaler: b, early, dataRng: new Rng(1) });
  assert.deepEqual(b.stateDict(), a.stateDict());
  // the next clean step completes the growth interval on both (scale doubles), an overflow halves both
  for (const bad of [false, true]) {
    step(a, bad);
    step(b, bad);
    assert.deepEqual(b.stateDict(), a.stateDict());
  }
  assert.deepEqual([a.getScale(), a.stateDict()._growth_tracker], [512, 0]);
  opt.dispose();
  a.dispose();
  b.dispose();
  p.dispose();
});
