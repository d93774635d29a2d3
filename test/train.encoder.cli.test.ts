// `unet train --encoder` end to end on tiny synthetic data, then `unet predict` and `unet evaluate`
// on its checkpoint (whole and in sliding windows), --resume; and the flags that do not go with an
// encoder (usage errors, exit 64: OptionError, which the CLI maps to it).
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { decode as decodePng } from 'fast-png';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { OptionError, type TrainConfig } from '../src/config/options.js';
import { checkArchitecture } from '../src/train/setup.js';
import { assertNoCrashText, runCli } from './helpers/cli.js';
import { freePort } from './helpers/dist.js';
import { parseTrain } from './helpers/parse.js';
import { writePairs } from './helpers/fixtures.js';
import { tempDir } from './helpers/workdir.js';

const work = tempDir('train-encoder');
after(() => rmSync(work, { recursive: true, force: true }));
const data = join(work, 'data');
const ready = writePairs(
  data,
  4,
  { width: 40, height: 36, channels: 3, name: (k) => `p${k}.png` },
  (i, k) => (i * 7 + k * 31) % 256,
  (i) => (i % 40 > 20 ? 255 : 0),
);

const train = (extra: string[]) =>
  runCli(
    [
      'train',
      '--imgs',
      join(data, 'imgs'),
      '--masks',
      join(data, 'masks'),
      '--checkpoint-dir',
      join(work, 'ck'),
      '--logdir',
      join(work, 'runs'),
      '--device',
      'cpu',
      '-s',
      '1',
      '-b',
      '2',
      '-v',
      '25',
      '--workers',
      '1',
      '--no-tensorboard',
      '--encoder',
      'resnet18',
      '--encoder-depth',
      '3',
      '--decoder-channels',
      '16,8,8',
      ...extra,
    ],
    { timeoutMs: 240_000 },
  );

test('train --encoder resnet18 trains, resumes, and its checkpoint predicts and evaluates', async () => {
  await ready;
  const r = await train(['-e', '1']);
  assertNoCrashText(r);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /encoder resnet18, encoder depth 3, decoder 16,8,8/);
  const ck = join(work, 'ck', 'checkpoint_epoch1.pth');
  const args = (await loadCheckpoint(ck)).modelArgs;
  assert.deepEqual([args?.encoder, args?.encoderDepth, args?.decoderChannels, args?.headKernel], ['resnet18', 3, [16, 8, 8], 1]);
  const resumed = await train(['-e', '2', '--resume']);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stdout, /resuming at 2/);
  const p = await runCli(['predict', '-m', join(work, 'ck', 'checkpoint_epoch2.pth'), '-i', join(data, 'imgs', 'p0.png'), '-o', join(work, 'p0.png'), '--device', 'cpu']);
  assert.equal(p.code, 0, p.stderr);
  assert.match(p.stdout, /encoder=resnet18/);
  assert.ok(existsSync(join(work, 'p0.png')));
  // Sliding windows of 32 px over the 40x36 image (the window code is the plain UNet's, tested
  // there): a full-size mask of the mask values. Agreement with the whole-image mask is not asked
  // of a model 2 epochs old, whose logits sit near the decision boundary everywhere.
  const tiled = await runCli(['predict', '-m', join(work, 'ck', 'checkpoint_epoch2.pth'), '-i', join(data, 'imgs', 'p0.png'), '-o', join(work, 'p0-tiled.png'), '--device', 'cpu', '--tile', '32']);
  assert.equal(tiled.code, 0, tiled.stderr);
  const mask = decodePng(readFileSync(join(work, 'p0-tiled.png')));
  assert.deepEqual([mask.width, mask.height, mask.channels], [40, 36, 1]);
  assert.ok(mask.data.every((v) => v === 0 || v === 255));
  const e = await runCli(['evaluate', '-m', join(work, 'ck', 'checkpoint_epoch2.pth'), '--imgs', join(data, 'imgs'), '--masks', join(data, 'masks'), '--device', 'cpu', '-s', '1']);
  assert.equal(e.code, 0, e.stderr);
  assert.match(e.stdout, /Confusion matrix/);
});

test('--nproc-per-node 2 --sync-bn with --freeze-encoder 2: epoch 2 leaves the encoder as it was, epoch 3 trains it', async () => {
  await ready;
  const ck = join(work, 'ck-ddp');
  const r = await runCli(
    [
      ...['train', '--imgs', join(data, 'imgs'), '--masks', join(data, 'masks'), '--checkpoint-dir', ck, '--logdir', join(work, 'runs-ddp'), '--no-tensorboard'],
      ...['--device', 'cpu', '-s', '1', '-b', '1', '-v', '25', '-e', '3', '--workers', '1', '--seed', '2'],
      ...['--encoder', 'resnet18', '--encoder-depth', '3', '--decoder-channels', '16,8,8', '--freeze-encoder', '2'],
      ...['--nproc-per-node', '2', '--sync-bn', '--master-port', String(await freePort())],
    ],
    { timeoutMs: 240_000 },
  );
  assert.equal(r.code, 0, r.stderr);
  const ckpts = await Promise.all([1, 2, 3].map((n) => loadCheckpoint(join(ck, `checkpoint_epoch${n}.pth`))));
  const same = (key: string, a: number, b: number) => Buffer.from(ckpts[a - 1].model.get(key)?.data ?? []).equals(Buffer.from(ckpts[b - 1].model.get(key)?.data ?? [1]));
  assert.ok(same('encoder.layer1.0.conv1.weight', 1, 2), 'frozen in epoch 2');
  assert.ok(!same('decoder.blocks.0.conv1.0.weight', 1, 2), 'the decoder trains meanwhile');
  assert.ok(!same('encoder.layer1.0.conv1.weight', 2, 3), 'the encoder trains once it thaws');
});

test('flags that do not go with --encoder are usage errors (exit 64, before any data is read)', async () => {
  for (const [extra, message] of [
    [['--encoder', 'resnet9'], /--encoder must be one of plain, resnet18, resnet34, resnet50/],
    [['--depth', '3'], /--depth 3 only shape the plain UNet/],
    [['--deep-supervision'], /--deep-supervision is not supported with --encoder/],
    [['--decoder-channels', '16,8'], /--decoder-channels has 2 widths, --encoder-depth 3 needs one per stage/],
  ] as [string[], RegExp][]) {
    const { cfg } = await parseTrain(['train', '--encoder', 'resnet18', '--encoder-depth', '3', '--decoder-channels', '16,8,8', ...extra]);
    assert.throws(
      () => checkArchitecture(cfg as TrainConfig),
      (e: Error) => e instanceof OptionError && message.test(e.message),
      extra.join(' '),
    );
  }
  const { error } = await parseTrain(['train', '--encoder-depth', '6']);
  assert.match(error ?? '', /--encoder-depth .* from 3 to 5; got '6'/);
});
