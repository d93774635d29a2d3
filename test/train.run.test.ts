// unet train end to end on small synthetic data: the guide's scenarios run, checkpoints hold what
// the guide lists, resume is exact, early stopping and errors behave.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { type Handlers, buildProgram } from '../src/cli/program.js';
import type { TrainConfig } from '../src/config/options.js';
import { makeDemoDataset } from '../src/data/index.js';
import { loadPth } from '../src/io/pth.js';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { train } from '../src/train/train.js';
import type { UNetArgs } from '../src/model/index.js';
import { GUIDE_LINES } from './helpers/guide.js';
import { tinyUNet } from './helpers/tiny-unet.js';
import { runConfig } from './helpers/runs.js';
import { tempDir } from './helpers/workdir.js';

const root = tempDir('train');
const data2 = join(root, 'd2'); // 2 classes, 64x64
const data5 = join(root, 'd5'); // 5 classes
const data3 = join(root, 'd3'); // 3 classes, 32x32
const quiet = { log: () => {}, warn: () => {} };

before(async () => {
  await makeDemoDataset(data2, { count: 6, size: 64, classes: 2, seed: 1 });
  await makeDemoDataset(data5, { count: 6, size: 64, classes: 5, seed: 2 });
  await makeDemoDataset(data3, { count: 8, size: 32, classes: 3, seed: 3 });
});

const base = (data: string, dir: string): TrainConfig => runConfig(data, dir);

test("the guide's command lines run (1 epoch each) on a small dataset", { timeout: 600_000 }, async () => {
  let lastCkpt = '';
  let i = 0;
  // Quick start, scenarios 1-6 and configurations 1 and 4 (the other lines only vary flag values,
  // and all of them are parsed by train.cli.test.ts). A narrow UNet: the flags are the point, and
  // their code paths do not depend on the width (train.binary-e2e.test.ts runs the full one).
  const hooks = { ...quiet, createModel: (args: UNetArgs) => tinyUNet(args, 8) };
  for (const line of GUIDE_LINES.slice(0, 10).concat(GUIDE_LINES[12])) {
    let cfg: TrainConfig | undefined;
    const h: Handlers = { train: async (c) => ((cfg = c), 0), predict: async () => 0, evaluate: async () => 0 };
    await buildProgram(h, { exitOverride: true }).parseAsync(line.split(' '), { from: 'user' });
    assert.ok(cfg, line);
    const data = cfg.classes === 5 ? data5 : data2;
    const dir = join(root, 'guide', String(i++));
    const { imgs, masks, checkpointDir, logdir, device, workers } = base(data, dir);
    const run: TrainConfig = { ...cfg, imgs, masks, checkpointDir, logdir, device, workers, epochs: 1 };
    if (cfg.load) {
      // The guide resumes from files of an earlier run: make them from the last checkpoint.
      const target = join(dir, cfg.load);
      mkdirSync(join(target, '..'), { recursive: true });
      copyFileSync(lastCkpt, target);
      run.load = target;
      run.epochs = (await loadCheckpoint(target)).epoch + 1;
    }
    const r = await train(run, hooks);
    assert.equal(r.epochsRun, 1, line);
    assert.ok(r.lastCheckpoint && existsSync(r.lastCheckpoint), line);
    if (cfg.classes === 2 && !cfg.bilinear) lastCkpt = r.lastCheckpoint;
  }
});

test('checkpoints hold weights, optimizer, scheduler, epoch, loss and val score; best_model is written', async () => {
  const dir = join(root, 'ckpt');
  const r = await train({ ...base(data3, dir), epochs: 2, batchSize: 2, learningRate: 1e-3, scale: 1, validation: 25, classes: 3, bilinear: true }, quiet);
  const files = readdirSync(join(dir, 'checkpoints')).sort();
  assert.deepEqual(files, ['best_model.pth', 'checkpoint_epoch1.pth', 'checkpoint_epoch2.pth']);
  const raw = (await loadPth(join(dir, 'checkpoints', 'checkpoint_epoch2.pth'))) as Record<string, unknown>;
  for (const k of ['model_state_dict', 'optimizer_state_dict', 'scheduler_state_dict', 'grad_scaler_state_dict', 'early_stopping', 'epoch', 'loss', 'val_score', 'mask_values', 'model_args', 'config', 'run_dir']) {
    assert.ok(k in raw, k);
  }
  assert.equal(raw.epoch, 2);
  assert.deepEqual(raw.mask_values, [0, 127, 255]);
  assert.deepEqual(raw.model_args, { n_channels: 3, n_classes: 3, bilinear: true, depth: 4, base_channels: 64 });
  const opt = raw.optimizer_state_dict as { state: Map<number, Record<string, unknown>>; param_groups: Record<string, unknown>[] };
  assert.ok(opt.state instanceof Map && opt.state.size > 0);
  assert.ok('square_avg' in (opt.state.get(0) as object));
  assert.equal(r.runDir, raw.run_dir);
  assert.ok(existsSync(join(r.runDir, 'metrics.jsonl')));
});

test('resuming at epoch 2 of 4 ends with the same weights as an uninterrupted run (also with --precise-bn)', { timeout: 900_000 }, async () => {
  // Precise BN reads training batches between steps: it must leave the data order and RNGs alone.
  // Batch 1: 6 batches per epoch, so validation rounds (every 6 // 5 = 1 batch) run mid-epoch too.
  const cfg = (dir: string): TrainConfig => ({
    ...base(data3, dir),
    epochs: 4,
    batchSize: 1,
    learningRate: 1e-3,
    scale: 1,
    validation: 25,
    classes: 3,
    bilinear: true,
    augment: true,
    accumulateGradBatches: 2,
    preciseBn: 2,
  });
  const a = join(root, 'resume-a');
  const b = join(root, 'resume-b');
  const hooks = { ...quiet, createModel: (args: UNetArgs) => tinyUNet(args, 8) };
  await train(cfg(a), hooks);
  await train({ ...cfg(b), epochs: 2 }, hooks);
  await train({ ...cfg(b), load: join(b, 'checkpoints', 'checkpoint_epoch2.pth') }, hooks);
  const ca = await loadCheckpoint(join(a, 'checkpoints', 'checkpoint_epoch4.pth'));
  const cb = await loadCheckpoint(join(b, 'checkpoints', 'checkpoint_epoch4.pth'));
  assert.equal(cb.epoch, 4);
  assert.equal(cb.globalStep, ca.globalStep);
  for (const [k, t] of ca.model) assert.deepEqual(Buffer.from(cb.model.get(k)?.data ?? []), Buffer.from(t.data), `weights differ: ${k}`);
  assert.equal(cb.valScore, ca.valScore);
});

test('--load of a reference-format file starts from its weights; a different architecture is a clear error', async () => {
  const dir = join(root, 'arch');
  const narrow = { baseChannels: 16 }; // the architecture checks read the width like every other dimension
  await train({ ...base(data3, dir), epochs: 1, batchSize: 4, scale: 1, validation: 25, classes: 3, bilinear: true, ...narrow }, quiet);
  const ck = join(dir, 'checkpoints', 'checkpoint_epoch1.pth');
  await assert.rejects(train({ ...base(data3, dir), epochs: 1, scale: 1, validation: 25, classes: 3, bilinear: false, ...narrow, load: ck }, quiet), /another architecture[\s\S]*upsampling: checkpoint bilinear, flags no --bilinear/);
  const { saveReferenceStateDict, weightsToTensors } = await import('../src/model/checkpoint.js');
  const loaded = await loadCheckpoint(ck);
  const ref = join(dir, 'reference.pth');
  await saveReferenceStateDict(ref, weightsToTensors(loaded.model), [0, 127, 255]);
  const logs: string[] = [];
  const r = await train({ ...base(data3, join(dir, 'from-ref')), epochs: 1, batchSize: 4, scale: 1, validation: 25, classes: 3, bilinear: true, ...narrow, load: ref }, { ...quiet, log: (l) => logs.push(l) });
  assert.equal(r.epochsRun, 1);
  assert.ok(
    logs.some((l) => /weights only .*reference trainer/.test(l)),
    logs.join('\n'),
  );
});

test('mask values that do not match --classes stop before training with the values and the flag to use', async () => {
  await assert.rejects(train({ ...base(data3, join(root, 'cls')), classes: 2, scale: 1 }, quiet), /0, 127, 255[\s\S]*-c 3|--classes 3/);
});

test('early stopping stops after patience epochs without gain and keeps the last checkpoint', async () => {
  const dir = join(root, 'early');
  // lr 0: the score never improves, so training stops after patience epochs (a narrow UNet: base 16).
  const r = await train({ ...base(data3, dir), epochs: 6, batchSize: 4, learningRate: 1e-12, scale: 1, validation: 25, classes: 3, bilinear: true, patience: 2, minDelta: 0.5, baseChannels: 16 }, quiet);
  assert.equal(r.stoppedEarly, true);
  assert.equal(r.epochsRun, 3);
  assert.ok(existsSync(join(dir, 'checkpoints', 'checkpoint_epoch3.pth')));
  assert.equal(r.bestEpoch >= 1, true);
});

test('missing data directories name the folder and the flags', async () => {
  await assert.rejects(train({ ...base(join(root, 'nope'), join(root, 'x')) }, quiet), /nope[\s\S]*--imgs/);
});
