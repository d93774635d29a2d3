// unet train --patch-size: batches of patches from images of mixed sizes, validation of whole
// images (through predict's sliding window where one would not fit --max-memory), the patch size in the checkpoint, exact mid-epoch
// resume, the flag's errors, and padding as the ignore index on the device.
import assert from 'node:assert/strict';
import { readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { type Handlers, buildProgram } from '../src/cli/program.js';
import type { TrainConfig } from '../src/config/options.js';
import { type Batch, PAD_CLASS, makeDemoDataset } from '../src/data/index.js';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import type { UNetArgs } from '../src/model/index.js';
import { toDevice } from '../src/train/device.js';
import type { TrainRun } from '../src/train/context.js';
import { type TrainHooks, train } from '../src/train/train.js';
import { quiet, runConfig, sameWeights } from './helpers/runs.js';
import { tinyUNet } from './helpers/tiny-unet.js';
import { tempDir } from './helpers/workdir.js';

const root = tempDir('patches');
const data = join(root, 'data'); // 4 images of 48x48 and 4 of 64x64, 3 classes
before(async () => {
  await makeDemoDataset(data, { count: 4, size: 48, classes: 3, seed: 5 });
  const big = join(root, 'big');
  await makeDemoDataset(big, { count: 4, size: 64, classes: 3, seed: 6 });
  for (const sub of ['imgs', 'masks']) for (const f of readdirSync(join(big, sub))) renameSync(join(big, sub, f), join(data, sub, `big${f}`));
});

/** Input shapes [N, C, H, W] the model saw, in training and in eval mode. */
function spyModel(seen: { train: number[][]; eval: number[][] }, div = 16): TrainHooks['createModel'] {
  return (args: UNetArgs) => {
    const m = tinyUNet(args, div);
    const forward = m.forward.bind(m);
    m.forward = (x) => {
      (m.training ? seen.train : seen.eval).push([...x.shape]);
      return forward(x);
    };
    return m;
  };
}

/** `unet train ARGV` parsed by the CLI, run in this process with a narrow UNet. */
async function cli(argv: string[], hooks: TrainHooks): Promise<{ cfg: TrainConfig; dir: string }> {
  let cfg: TrainConfig | undefined;
  const h: Handlers = { train: async (c) => ((cfg = c), 0), predict: async () => 0, evaluate: async () => 0 };
  await buildProgram(h, { exitOverride: true }).parseAsync(['train', ...argv], { from: 'user' });
  assert.ok(cfg);
  const dir = join(root, `run${Math.random().toString(36).slice(2, 8)}`);
  const { imgs, masks, checkpointDir, logdir, workers } = runConfig(data, dir);
  cfg = { ...cfg, imgs, masks, checkpointDir, logdir, workers, device: 'cpu', tensorboard: false };
  await train(cfg, hooks);
  return { cfg, dir };
}

test('--patch-size 32 on 48 and 64 px images: batches of patches, validation by sliding windows under --max-memory 1, size in the checkpoint', { timeout: 120_000 }, async () => {
  const seen = { train: [] as number[][], eval: [] as number[][] };
  const logs: string[] = [];
  const { dir } = await cli(['-e', '1', '-b', '2', '-s', '1', '-v', '25', '-c', '3', '--augment', '--patch-size', '32', '-l', '1e-3', '--max-memory', '1'], {
    ...quiet,
    log: (l) => logs.push(l),
    createModel: spyModel(seen, 4), // width 16: a forward pass needs 1.4 KB per pixel
  });
  assert.match(logs.join('\n'), /Patches: {9}32x32, 33% centred on a foreground class; validation of whole images \(sliding windows where one would not fit --max-memory\)/);
  // 6 training images, -b 2: 3 batches of 32x32 patches (images of both sizes share batches).
  assert.deepEqual(seen.train, [
    [2, 3, 32, 32],
    [2, 3, 32, 32],
    [2, 3, 32, 32],
  ]);
  // 2 validation images, each whole through overlapping 32x32 windows (a 48x48 image's forward pass
  // needs 3.3 MB, over the 1 MiB allowed), batched.
  assert.ok(seen.eval.length >= 4, JSON.stringify(seen.eval));
  for (const s of seen.eval) assert.deepEqual(s.slice(1), [3, 32, 32]);
  assert.ok(
    seen.eval.some((s) => s[0] === 2),
    'windows are batched',
  );
  const ckpt = await loadCheckpoint(join(dir, 'checkpoints', 'checkpoint_epoch1.pth'));
  assert.deepEqual([ckpt.config?.patchSize, ckpt.config?.oversampleFg], [[32, 32], 0.33]);
  assert.ok(Number.isFinite(ckpt.valScore), 'validation Dice on the whole images');
});

test('-c 1, greyscale, a non-square patch, validated whole where the image fits; without --patch-size the whole images as before', { timeout: 120_000 }, async () => {
  const seen = { train: [] as number[][], eval: [] as number[][] };
  // Binary masks (2 mask values), RGB images read as grey.
  const bin = join(root, 'bin');
  await makeDemoDataset(bin, { count: 5, size: 48, classes: 2, seed: 7 });
  const cfg = runConfig(bin, join(root, 'c1'), { epochs: 1, batchSize: 2, scale: 1, validation: 25, classes: 1, channels: 1, patchSize: [32, 48], learningRate: 1e-3, tensorboard: false });
  await train(cfg, { ...quiet, createModel: spyModel(seen) });
  assert.ok(seen.train.length > 0 && seen.train.every((s) => s[1] === 1 && s[2] === 32 && s[3] === 48), JSON.stringify(seen.train));
  // Validation as predict and evaluate score: each 48x48 image whole, in one pass.
  assert.deepEqual(seen.eval, [[1, 1, 48, 48]], JSON.stringify(seen.eval));

  const whole = { train: [] as number[][], eval: [] as number[][] };
  await train({ ...cfg, patchSize: null, checkpointDir: join(root, 'c1w', 'ck'), logdir: join(root, 'c1w', 'runs') }, { ...quiet, createModel: spyModel(whole) });
  assert.ok(
    [...whole.train, ...whole.eval].every((s) => s[2] === 48 && s[3] === 48),
    JSON.stringify(whole),
  );
});

test('a patch run stopped mid-epoch and resumed ends with the same weights, bit for bit', { timeout: 180_000 }, async () => {
  const cfg = (d: string): TrainConfig =>
    runConfig(data, join(root, d), {
      epochs: 1,
      batchSize: 2,
      scale: 1,
      validation: 25,
      classes: 3,
      augment: true,
      patchSize: [32, 32],
      oversampleFg: 0.5,
      learningRate: 1e-3,
      patience: 0,
      tensorboard: false,
    });
  const hooks: TrainHooks = { ...quiet, createModel: (a) => tinyUNet(a, 16) };
  await train(cfg('ra'), hooks);
  const ctrl = new AbortController();
  let n = 0;
  const r = await train(cfg('rb'), { ...hooks, signal: ctrl.signal, onTrainBatch: () => ++n === 2 && ctrl.abort() });
  assert.equal(r.interrupted, true);
  const interrupted = join(root, 'rb', 'checkpoints', 'INTERRUPTED.pth');
  assert.equal((await loadCheckpoint(interrupted)).position?.batch, 2);
  await assert.rejects(train({ ...cfg('rb'), load: interrupted, patchSize: [48, 48] }, hooks), /--patch-size 32x32 --oversample-fg 0\.5 \(now --patch-size 48x48/);
  await train({ ...cfg('rb'), load: interrupted }, hooks);
  const [a, b] = await Promise.all(['ra', 'rb'].map((d) => loadCheckpoint(join(root, d, 'checkpoints', 'checkpoint_epoch1.pth'))));
  assert.ok(sameWeights(a.model, b.model), 'the resumed run differs from the uninterrupted one');
});

test("--patch-size errors name the flag and the rule; config.json's [h, w] replays", async () => {
  for (const [value, ok] of [
    ['32', [32, 32]],
    ['64x96', [64, 96]],
    ['30', null],
    ['32x0', null],
    ['0', null],
    ['32x', null],
    ['big', null],
  ] as const) {
    let err = '';
    let cfg: TrainConfig | undefined;
    const h: Handlers = { train: async (c) => ((cfg = c), 0), predict: async () => 0, evaluate: async () => 0 };
    await buildProgram(h, { exitOverride: true, writeErr: (s) => (err += s) })
      .parseAsync(['train', '--patch-size', value], { from: 'user' })
      .catch(() => {});
    if (ok) assert.deepEqual(cfg?.patchSize, ok, value);
    else assert.match(err, /--patch-size.*expects HxW or N \(NxN\).*multiple of 16.*halves the size 4 times/, value);
  }
  // A run's config.json records [h, w]; --config replays it.
  const file = join(root, 'config.json');
  writeFileSync(file, JSON.stringify({ patchSize: [32, 48], oversampleFg: 0.5 }));
  let cfg: TrainConfig | undefined;
  const h: Handlers = { train: async (c) => ((cfg = c), 0), predict: async () => 0, evaluate: async () => 0 };
  await buildProgram(h, { exitOverride: true }).parseAsync(['train', '--config', file], { from: 'user' });
  assert.deepEqual([cfg?.patchSize, cfg?.oversampleFg], [[32, 48], 0.5]);
});

test('patch padding reaches the loss as the ignore index -100', () => {
  const b = { images: new Float32Array(4), masks: Uint8Array.from([0, 2, PAD_CLASS, 1]), padded: true, n: 1, c: 1, h: 2, w: 2 } as Batch;
  const { x, y } = toDevice({ cuda: false, device: 'cpu', channelsLast: false, cfg: { ignoreIndex: null } } as unknown as TrainRun, b);
  assert.deepEqual(y.toArray(), [0, 2, -100, 1]);
  x.dispose();
  y.dispose();
});
