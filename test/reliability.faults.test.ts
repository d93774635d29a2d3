// Faults during training: NaN/Inf losses and out-of-memory. The run stops with a message that
// says what to do and an exit code; the last good checkpoint stays as it was.
//
// The GradScaler's skipped step on inf/NaN gradients (fp16, CUDA) is tested at the unit level on
// CPU by optim.grad-scaler.test.ts ("inf/nan skip, backoff"); there is no GPU here.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { reportError } from '../src/cli/errors.js';
import { defaults, trainOptions } from '../src/config/options.js';
import { encodeNpy, readImage } from '../src/data/index.js';
import * as E from '../src/engine/index.js';
import { UNet } from '../src/model/index.js';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { listRuns } from '../src/tracking/index.js';
import { OOM_ADVICE, train } from '../src/train/train.js';
import { ROOT, assertCleanFailure, assertNoCrashText, quickTrainArgs, runCli, snapshotDir } from './helpers/cli.js';
import { demoDataDir } from './helpers/workdir.js';

// 6 pairs, PNG
const { root, data: pngData, ready } = demoDataDir('rel-faults', { count: 6, size: 32, classes: 2, seed: 5 }, 'png');
const npyData = join(root, 'npy'); // the same images as float32 .npy in 0..1
const nanData = join(root, 'nan'); // the same ids, images full of NaN
/** The CLI runs train a narrow UNet: the faults and their handling do not depend on its width. */
const NARROW = ['--base-channels', '16'];

before(async () => {
  await ready();
  for (const d of [npyData, nanData]) {
    mkdirSync(join(d, 'imgs'), { recursive: true });
    cpSync(join(pngData, 'masks'), join(d, 'masks'), { recursive: true });
  }
  for (const f of readdirSync(join(pngData, 'imgs'))) {
    const img = await readImage(join(pngData, 'imgs', f), { layout: 'hwc' } as never);
    const id = f.replace(/\.png$/, '');
    const hwc = new Float32Array(img.data.length);
    hwc.set(img.data);
    writeFileSync(join(npyData, 'imgs', `${id}.npy`), encodeNpy(hwc, [img.height, img.width, img.channels]));
    const nan = hwc.map((v, i) => (i % 7 === 0 ? Number.NaN : v));
    writeFileSync(join(nanData, 'imgs', `${id}.npy`), encodeNpy(nan, [img.height, img.width, img.channels]));
  }
});

test('NaN in the data: the run stops after 5 non-finite losses in a row with advice; the last good checkpoint is kept', { timeout: 300_000 }, async () => {
  const work = join(root, 'nan-run');
  const ckpt = join(work, 'checkpoints');
  // A good epoch first: the user's saved work.
  let r = await runCli(quickTrainArgs(npyData, work, [...NARROW, '-b', '1']), { cwd: root, timeoutMs: 180_000 });
  assert.equal(r.code, 0, r.stderr);
  const good = snapshotDir(ckpt);
  assert.deepEqual([...good.keys()].sort(), ['best_model.pth', 'checkpoint_epoch1.pth']);
  // The same ids with NaN pixels, resumed from the good checkpoint.
  r = await runCli(quickTrainArgs(nanData, work, [...NARROW, '-b', '1', '-e', '3', '--load', join(ckpt, 'checkpoint_epoch1.pth')]), { cwd: root, timeoutMs: 180_000 });
  assertCleanFailure(r, [/the loss was not finite \(NaN\) for 5 batches in a row; stopping/, /check the data for NaN values|check the data/, /last good checkpoint is kept/], 'nan data', 1);
  assert.deepEqual(snapshotDir(ckpt), good, 'no checkpoint written or changed');
  assert.equal((await loadCheckpoint(join(ckpt, 'checkpoint_epoch1.pth'))).epoch, 1);
});

test('a learning rate of 1e30 diverges: stopped with the message, never a crash', { timeout: 300_000 }, async () => {
  const work = join(root, 'lr-run');
  const r = await runCli(quickTrainArgs(pngData, work, [...NARROW, '-b', '1', '-e', '3', '-l', '1e30']), { cwd: root, timeoutMs: 180_000 });
  assertCleanFailure(r, [/the loss was not finite \((NaN|Infinity|-Infinity)\) for 5 batches in a row/, /Lower -l\/--learning-rate/], 'lr 1e30', 1);
  // Whatever was saved before the divergence loads.
  for (const f of existsSync(join(work, 'checkpoints')) ? readdirSync(join(work, 'checkpoints')) : []) {
    if (f.endsWith('.pth')) await loadCheckpoint(join(work, 'checkpoints', f));
  }
});

test('NaN logits from the model (injected): same stop, and a finite epoch before it is kept', { timeout: 300_000 }, async () => {
  const work = join(root, 'inject-nan');
  // 6 images, batch 1, no validation: forwards 1-6 are epoch 1; NaN from the 7th on (epoch 2).
  const r = await runCli(quickTrainArgs(pngData, work, [...NARROW, '-b', '1', '-e', '3']), {
    cwd: root,
    timeoutMs: 180_000,
    preload: [join(ROOT, 'test', 'helpers', 'inject-faults.ts')],
    env: { UNET_TEST_FAULT: 'nan@7' },
  });
  assertCleanFailure(r, [/not finite \(NaN\) for 5 batches in a row/], 'nan logits', 1);
  const files = [...snapshotDir(join(work, 'checkpoints')).keys()].sort();
  assert.deepEqual(files, ['best_model.pth', 'checkpoint_epoch1.pth']);
  const c = await loadCheckpoint(join(work, 'checkpoints', 'checkpoint_epoch1.pth'));
  assert.ok(Number.isFinite(c.loss), 'the kept checkpoint is the good one');
});

test("out of memory during training (the CLI): the guide's remedies, exit code 3, checkpoints intact", { timeout: 300_000 }, async () => {
  const work = join(root, 'oom');
  const r = await runCli(quickTrainArgs(pngData, work, [...NARROW, '-b', '1', '-e', '3']), {
    cwd: root,
    timeoutMs: 180_000,
    preload: [join(ROOT, 'test', 'helpers', 'inject-faults.ts')],
    env: { UNET_TEST_FAULT: 'oom@8' },
  });
  assertCleanFailure(r, [/out of memory/i, /--amp/, /-b 2/, /-s 0\.25/, /--bilinear/, /--accumulate-grad-batches/, /Saved checkpoints were not touched/], 'oom', 3);
  assertNoCrashText(r, 'oom');
  const ckpt = join(work, 'checkpoints');
  assert.deepEqual([...snapshotDir(ckpt).keys()].sort(), ['best_model.pth', 'checkpoint_epoch1.pth']);
  for (const f of ['best_model.pth', 'checkpoint_epoch1.pth']) assert.equal((await loadCheckpoint(join(ckpt, f))).epoch, 1);
  assert.deepEqual(
    readdirSync(ckpt).filter((f) => f.endsWith('.tmp')),
    [],
  );
  assert.equal((await listRuns(join(work, 'runs')))[0]?.status, 'failed', 'the dashboard says failed, not finished');
});

test('out of memory inside train() (in process): TrainError with the advice, reportError gives exit code 3', { timeout: 300_000 }, async () => {
  const work = join(root, 'oom-unit');
  const forward = UNet.prototype.forward;
  let calls = 0;
  UNet.prototype.forward = function (this: UNet, x) {
    if (++calls === 2) throw Object.assign(new Error('CUDA out of memory. Tried to allocate 20.00 MiB'), { code: 'ERR_OUT_OF_MEMORY' });
    return forward.call(this, x);
  };
  const live0 = E.memoryStats().liveTensors;
  try {
    const cfg = {
      ...defaults(trainOptions),
      imgs: join(pngData, 'imgs'),
      masks: join(pngData, 'masks'),
      checkpointDir: join(work, 'checkpoints'),
      logdir: join(work, 'runs'),
      device: 'cpu',
      workers: 2,
      bilinear: true,
      scale: 1,
      epochs: 1,
      validation: 0,
      tensorboard: false,
    };
    const err = await train(cfg, { log: () => {}, warn: () => {} }).then(
      () => assert.fail('train() should have failed'),
      (e: Error) => e,
    );
    assert.equal(err.name, 'TrainError');
    assert.equal((err as { exitCode?: number }).exitCode, 3);
    assert.ok(err.message.includes(OOM_ADVICE), err.message);
    const rep = reportError(err);
    assert.equal(rep.exitCode, 3);
    assert.match(rep.message, /^error: CUDA out of memory/);
    assert.ok(rep.message.includes('--accumulate-grad-batches 4'));
    assert.doesNotMatch(rep.message, /UNET_DEBUG|\n\s+at /);
  } finally {
    UNet.prototype.forward = forward;
  }
  assert.equal(E.memoryStats().liveTensors, live0, 'model, optimizer and scaler were freed although train() failed');
});
