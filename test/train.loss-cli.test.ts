// --loss through `unet train` (narrow UNet, subprocesses): a bad name is a usage error; tversky
// trains, is recorded in config.json and the checkpoint, and --resume without --loss keeps it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { readCheckpointInfo } from '../src/model/checkpoint.js';
import { assertNoCrashText, runCli } from './helpers/cli.js';
import { startTs } from './helpers/dist.js';
import { demoDataDir } from './helpers/workdir.js';

const CLI = resolve(import.meta.dirname, 'helpers', 'tiny-cli.ts');
const { root, data } = demoDataDir('loss-cli', { count: 4, size: 32, classes: 3, seed: 5 });
const ckpt = join(root, 'checkpoints');

/** 3 training images, 1 validation image, batch 1: 3 steps per epoch. */
const train = (extra: string[]) =>
  startTs(
    CLI,
    [
      'train',
      '-c',
      '3',
      '-s',
      '1',
      '-v',
      '25',
      '-b',
      '1',
      '--bilinear',
      '--device',
      'cpu',
      '--workers',
      '1',
      '--no-tensorboard',
      '--patience',
      '0',
      '--imgs',
      join(data, 'imgs'),
      '--masks',
      join(data, 'masks'),
      '--checkpoint-dir',
      ckpt,
      '--logdir',
      join(root, 'runs'),
      ...extra,
    ],
    { cwd: root, timeoutMs: 120_000 },
  ).done;

test('--loss with an unknown name is a usage error naming the choices', async () => {
  const r = await runCli(['train', '--loss', 'dice+ce']);
  assert.equal(r.code, 64, r.stderr);
  assert.match(r.stderr, /'--loss <name>' argument 'dice\+ce' is invalid\. must be one of ce\+dice, focal\+dice, tversky, lovasz/);
  assertNoCrashText(r, 'train --loss');
});

test('--loss tversky trains, is recorded in config.json and the checkpoint, and --resume without --loss keeps it', { timeout: 240_000 }, async () => {
  const first = await train(['-e', '1', '--loss', 'tversky']);
  assert.equal(first.code, 0, first.out);
  const info = await readCheckpointInfo(join(ckpt, 'checkpoint_epoch1.pth'));
  assert.equal(info.config?.loss, 'tversky');
  const loss = Number(/Epoch 1\/1: loss ([\d.]+), validation Dice/.exec(first.out)?.[1]);
  assert.ok(loss > 0 && loss <= 1, `a Tversky loss lies in (0, 1] (CE + Dice would not): ${first.out}`);
  const recorded = JSON.parse(readFileSync(join(info.runDir as string, 'config.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(recorded.loss, 'tversky');

  const resumed = await train(['-e', '2', '--resume']);
  assert.equal(resumed.code, 0, resumed.out);
  assert.match(resumed.out, /Continuing with --loss tversky, the loss \S+checkpoint_epoch1\.pth was trained with/);
  assert.equal((await readCheckpointInfo(join(ckpt, 'checkpoint_epoch2.pth'))).config?.loss, 'tversky');
});
