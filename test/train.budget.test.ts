// --time-budget (issue 22 items 6 and 7): the duration flag, the estimator's arithmetic, the
// schedule's re-planning, and `unet train` runs (narrow UNet, tiny data) that end by the budget
// with a usable best model and a poly schedule planned to reach zero at the end.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { NO_EPOCH_CAP, durationParser } from '../src/config/options.js';
import { type LoadedCheckpoint, readCheckpointInfo } from '../src/model/checkpoint.js';
import { PolyLR } from '../src/optim/index.js';
import { costOf, formatDuration, leaveBudget, stepsThatFit } from '../src/train/budget.js';
import type { TrainRun } from '../src/train/context.js';
import { autoTau } from '../src/train/ema.js';
import { validationSamples } from '../src/train/validation.js';
import { runCli } from './helpers/cli.js';
import { parseTrain as parse } from './helpers/parse.js';
import { freePort, startTs } from './helpers/dist.js';
import { squareMask, writePng } from './helpers/fixtures.js';
import { demoDataDir } from './helpers/workdir.js';

const CLI = resolve(import.meta.dirname, 'helpers', 'tiny-cli.ts');
const { root, data } = demoDataDir('budget', { count: 10, size: 32, classes: 2, seed: 5 });

test('--time-budget reads 90s, 15m, 1h, 1h30m and bare seconds; anything else is a usage error naming the flag', async () => {
  for (const [raw, s] of [
    ['90s', 90],
    ['15m', 900],
    ['1h', 3600],
    ['1h30m', 5400],
    ['2m30s', 150],
    ['45', 45],
    ['1.5h', 5400],
    ['0', 0],
  ] as const) {
    assert.equal(durationParser(raw, '--time-budget'), s, raw);
  }
  for (const bad of ['', 'abc', '10x', '-5', '1m1h', 'h', '5 m']) {
    const { error } = await parse(['train', '--time-budget', bad]);
    assert.match(error ?? '', /'--time-budget <duration>' argument .* is invalid\. expects a duration such as 90s, 15m, 1h, 1h30m or a number of seconds; got/, `'${bad}'`);
  }
  // Without -e the budget alone decides the epochs; a given -e caps them.
  assert.equal((await parse(['train', '--time-budget', '15m'])).cfg?.epochs, NO_EPOCH_CAP);
  assert.equal((await parse(['train', '--time-budget', '15m', '-e', '7'])).cfg?.epochs, 7);
  assert.equal((await parse(['train'])).cfg?.epochs, 5);
  assert.equal(formatDuration(5400), '1h30m');
  assert.equal(formatDuration(60), '1m');
});

test('the estimator: steps that fit after the epoch ends they pass and the final one', () => {
  const p = { step: 0.5, round: 2, roundsPerStep: 0.25, epochEnd: 3, plainEnd: 1, stepsPerEpoch: 10, done: 4, valLast: 0 };
  // 4 steps from the start of an epoch: 4 x (0.5 + 0.25 x 2) + the final end = 7 s.
  assert.equal(costOf(4, p, 0), 7);
  // 12 steps from step 5 of an epoch cross one epoch end: 12 x 1 + 3 + 3.
  assert.equal(costOf(12, p, 5), 18);
  assert.equal(costOf(0, p, 5), 3);
  assert.equal(stepsThatFit(18, p, 5), 12);
  assert.equal(stepsThatFit(17.9, p, 5), 11);
  assert.equal(stepsThatFit(2, p, 0), 0); // not even the final validation and checkpoint
  assert.equal(stepsThatFit(1000, { ...p, roundsPerStep: 0 }, 0), 1250); // 625 + 124 epoch ends x 3 + 3 = 1000
});

test('the estimator under --val-last: unscored epoch ends cost a checkpoint, the first epoch and the last N a validation', () => {
  const p = { step: 0.5, round: 0, roundsPerStep: 0, epochEnd: 3, plainEnd: 1, stepsPerEpoch: 10, done: 0, valLast: 1 };
  // 45 steps from step 5 of epoch 1 run to epoch 5: ends 1 and 5 validate, 2-4 do not.
  assert.equal(costOf(45, p, 5), 22.5 + 2 * 3 + 3 * 1);
  // From epoch 3 on, only the last end validates.
  assert.equal(costOf(25, { ...p, done: 2 }, 5), 12.5 + 3 + 2 * 1);
  assert.equal(costOf(25, { ...p, done: 2, valLast: 2 }, 5), 12.5 + 2 * 3 + 1);
  // Planned to end within the first epoch: its end is the only one.
  assert.equal(costOf(4, p, 0), 2 + 3);
  assert.equal(stepsThatFit(1000, { ...p, done: 2 }, 0), 1662); // 831 + 166 unscored ends x 1 + the last x 3 = 1000
});

test("the guess of a validation round before one is seen counts the sliding window's windows, or whole images' area", () => {
  // CamVid at full size, 192x320 windows: 3 rows x 2 columns; a 64x64 image is one window. Each
  // window, patch's area of a whole image, or whole image without patches is half a training sample.
  const run = (over: { patchSize?: [number, number] | null; worldSize?: number; maxMemory?: number; device?: string } = {}) =>
    ({
      cfg: { batchSize: 2, patchSize: [192, 320], maxMemory: 1, ...over },
      device: over.device ?? 'cpu',
      model: { namedParameters: () => [] }, // width unknown: counted as 64 channels, 5.8 KB per pixel
      worldSize: over.worldSize ?? 1,
      data: {
        split: { train: [], val: [1, 2, 3] },
        dataset: {
          scaledSizes: [
            { width: 1, height: 1 },
            { width: 480, height: 360 },
            { width: 480, height: 360 },
            { width: 64, height: 64 },
          ],
        },
      },
    }) as unknown as TrainRun;
  // --max-memory 1 (MiB): no image fits whole, all go by windows.
  assert.equal(validationSamples(run()), (6 + 6 + 1) / 2);
  assert.equal(validationSamples(run({ worldSize: 2 })), 7 / 2); // each rank its half
  // 100 GB: every image whole, counted by its area in patches (5.69 of them, a rank's share rounded up).
  assert.equal(validationSamples(run({ maxMemory: 100_000 })), Math.ceil((2 * 480 * 360 + 64 * 64) / (192 * 320)) / 2);
  // CUDA: by windows whatever the memory (the engine cannot query it).
  assert.equal(validationSamples(run({ maxMemory: 100_000, device: 'cuda' })), 13 / 2);
  assert.equal(validationSamples(run({ patchSize: null })), 3 / 2); // whole images
});

test('replanning a poly schedule moves its position and length and the lr with them', () => {
  const opt = { lr: 1e-3, initialLr: undefined as number | undefined };
  const s = new PolyLR(opt, { total: 1_000_000_000, interval: 'step' });
  for (let i = 0; i < 3; i++) s.step();
  assert.ok(opt.lr > 0.999e-3);
  s.replan(3, 13);
  assert.ok(Math.abs(opt.lr - 1e-3 * (1 - 3 / 13) ** 0.9) < 1e-12);
  for (let i = 0; i < 10; i++) s.step();
  assert.equal(opt.lr, 0);
});

test('resuming a budget run without a budget: the per-epoch schedule takes over at the epochs done, not at lr 0', () => {
  const opt = { lr: 1e-3, initialLr: undefined as number | undefined };
  const s = new PolyLR(opt, { total: 4, interval: 'epoch' }); // -e 4, per epoch
  // The checkpoint's per-step state: 40 steps done of 40 planned, lr 0.
  s.loadStateDict({ total_iters: 40, power: 0.9, base_lrs: [1e-3], last_epoch: 40, _step_count: 41, _last_lr: [0] });
  opt.lr = 0;
  const logs: string[] = [];
  const run = { cfg: { scheduler: 'poly', epochs: 4 }, scheduler: s, log: (l: string) => logs.push(l) } as unknown as TrainRun;
  leaveBudget(run, { kind: 'unet-ts', epoch: 2, config: { timeBudget: 60 } } as unknown as LoadedCheckpoint);
  assert.ok(Math.abs(opt.lr - 1e-3 * 0.5 ** 0.9) < 1e-12, String(opt.lr));
  assert.match(logs.join('\n'), /planned for its --time-budget; without one it continues over -e 4 epochs from epoch 2/);
  leaveBudget(run, { kind: 'unet-ts', epoch: 3, config: { timeBudget: 0 } } as unknown as LoadedCheckpoint); // not a budget run
  assert.equal(logs.length, 1);
});

interface EpochRecord {
  type: string;
  lr: number;
  valDice?: number;
  epoch: number;
}
const records = (runDir: string) =>
  readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as EpochRecord);

test('a --time-budget 60s run ends between 50 and 66 s with a usable best model, its poly schedule planned to reach ~0', { timeout: 150_000 }, async () => {
  const work = join(root, 'sixty');
  const t0 = performance.now();
  // --ema-warmup auto: the average's warm-up is fitted to the steps the budget plans. --val-last 1:
  // validation at the first epoch and at the last, which the budget ends mid-epoch.
  const args = [
    'train',
    '-s',
    '1',
    '-v',
    '20',
    '-b',
    '2',
    '--bilinear',
    '--device',
    'cpu',
    '--workers',
    '1',
    '--patience',
    '0',
    '--scheduler',
    'poly',
    '--optimizer',
    'adam',
    '-l',
    '1e-3',
    '--ema',
    '--ema-warmup',
    'auto',
    '--val-last',
    '1',
    '--val-every',
    '0',
  ];
  const r = await startTs(CLI, [...args, '--imgs', join(data, 'imgs'), '--masks', join(data, 'masks'), '--checkpoint-dir', join(work, 'ckpt'), '--logdir', join(work, 'runs'), '--time-budget', '60s', '--json'], { timeoutMs: 120_000 }).done;
  const seconds = (performance.now() - t0) / 1000;
  assert.equal(r.code, 0, r.out);
  assert.ok(seconds >= 50 && seconds <= 66, `ended after ${seconds.toFixed(1)} s:\n${r.out}`);
  const planned = /time budget 1m: ~(\d+) steps \(~[\d.]+ epochs\) at [\d.]+ s\/step; EMA warm-up tau (\d+) steps/.exec(r.out);
  assert.ok(planned, r.out);
  assert.equal(Number(planned[2]), Math.round(autoTau(Number(planned[1]))));
  const summary = JSON.parse(r.out.split('\n').find((l) => l.startsWith('{"status"')) ?? '{}');
  assert.equal(summary.status, 'finished');
  assert.equal(summary.budget.seconds, 60);
  assert.equal(summary.budget.endedByBudget, true);
  assert.ok(summary.budget.used <= 60 && summary.budget.used > 45, JSON.stringify(summary.budget));
  // The schedule was planned for the budget: full lr at first, close to 0 at the last epoch's end.
  const epochs = records(summary.runDir).filter((x) => x.type === 'epoch');
  assert.ok(epochs.length >= 3, `${epochs.length} epochs`);
  assert.ok(epochs[0].lr > 0.5e-3, `first epoch's lr ${epochs[0].lr}`);
  assert.ok(epochs[epochs.length - 1].lr < 0.15e-3, `last epoch's lr ${epochs[epochs.length - 1].lr}`);
  const validated = epochs.filter((x) => typeof x.valDice === 'number').map((x) => x.epoch);
  assert.deepEqual(validated, [1, epochs[epochs.length - 1].epoch], r.out);
  assert.ok([1, epochs[epochs.length - 1].epoch].includes(summary.bestEpoch), JSON.stringify(summary));
  const config = JSON.parse(readFileSync(join(summary.runDir, 'config.json'), 'utf8'));
  assert.equal(config.timeBudget, 60);
  assert.deepEqual(config.budget, summary.budget);
  assert.equal(config.epochs, epochs[epochs.length - 1].epoch);
  // The record replays: the same budget, the epochs it planned as the cap.
  const replay = await parse(['train', '--config', join(summary.runDir, 'config.json')]);
  assert.deepEqual([replay.cfg?.timeBudget, replay.cfg?.epochs], [60, config.epochs], replay.error);
  // best_model.pth predicts.
  const out = join(work, 'pred');
  mkdirSync(out);
  const image = join(data, 'imgs', readdirSync(join(data, 'imgs'))[0]);
  const p = await runCli(['predict', '-m', summary.bestModel, '-i', image, '--output-dir', out, '--device', 'cpu']);
  assert.equal(p.code, 0, p.stderr);
  assert.equal(readdirSync(out).length, 1);
});

test('-c 1 on grey images, two processes: both stop at the same step by the budget; --resume continues under a budget of its own', { timeout: 150_000 }, async () => {
  const grey = join(root, 'grey');
  mkdirSync(join(grey, 'imgs'), { recursive: true });
  mkdirSync(join(grey, 'masks'), { recursive: true });
  for (let i = 0; i < 8; i++) {
    await writePng(join(grey, 'imgs', `g${i}.png`), 32, 32, 1, (k) => (k * (i + 3)) & 255);
    await writeFile(join(grey, 'masks', `g${i}.png`), squareMask(32, 32));
  }
  const work = join(root, 'dist');
  const port = String(await freePort());
  const args = ['train', '-s', '1', '-v', '25', '-b', '1', '-c', '1', '--bilinear', '--device', 'cpu', '--workers', '1', '--patience', '0', '--scheduler', 'cosine', '--no-tensorboard'];
  const t0 = performance.now();
  const r = await startTs(
    CLI,
    [
      ...args,
      '--imgs',
      join(grey, 'imgs'),
      '--masks',
      join(grey, 'masks'),
      '--checkpoint-dir',
      join(work, 'ckpt'),
      '--logdir',
      join(work, 'runs'),
      '--time-budget',
      '12',
      '--nproc-per-node',
      '2',
      '--master-port',
      port,
      '--dist-timeout',
      '20',
    ],
    { timeoutMs: 90_000 },
  ).done;
  const seconds = (performance.now() - t0) / 1000;
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /Time budget: +12 s, [\d.]+ s used \(\d+%\), ended by it/);
  // Without the budget's stop it would train on (no -e): the bound is loose, as the workers' start-up
  // alone can take most of the budget on a loaded machine (it counts; then one step runs).
  assert.ok(seconds < 40, `${seconds.toFixed(1)} s`);
  assert.ok(existsSync(join(work, 'ckpt', 'best_model.pth')));
  const before = await readCheckpointInfo(join(work, 'ckpt', 'best_model.pth'));

  // One process continues from the newest checkpoint; the budget counts from this command's start.
  const t1 = performance.now();
  const again = await startTs(CLI, [...args, '--imgs', join(grey, 'imgs'), '--masks', join(grey, 'masks'), '--checkpoint-dir', join(work, 'ckpt'), '--logdir', join(work, 'runs'), '--time-budget', '8s', '--resume'], { timeoutMs: 60_000 })
    .done;
  assert.equal(again.code, 0, again.out);
  assert.match(again.out, /Resuming from .*checkpoint_epoch\d+\.pth/);
  assert.match(again.out, /Time budget: +8 s, [\d.]+ s used \(\d+%\), ended by it/);
  assert.ok((performance.now() - t1) / 1000 < 30);
  const last = /Last checkpoint: +(\S+)/.exec(again.out)?.[1] ?? '';
  assert.ok((await readCheckpointInfo(last)).globalStep > before.globalStep, again.out);
});
