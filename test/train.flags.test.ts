// Training flags on one real `unet train` run through the command line: -l reaches the optimizer,
// --val-every adds validations at those optimizer steps, --keep-last prunes epoch checkpoints, and
// --dashboard serves this run's metrics while it trains.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { type CliResult, ROOT, assertNoCrashText, spawnCli } from './helpers/cli.js';
import { readJsonl, runRecords, scalarSeries } from './helpers/runs.js';
import { demoDataDir } from './helpers/workdir.js';

const BLOCK = join(ROOT, 'test', 'helpers', 'block-main.ts');
const { root: work, ready } = demoDataDir('flags', { count: 7, size: 32, classes: 3, seed: 31 });

interface Served {
  status: string;
  records: { type: string; step?: number; values?: Record<string, unknown> }[];
}
let result: CliResult;
let runDir = '';
/** What the dashboard served while the run was still training (the last such answer). */
let whileTraining: Served | null = null;
let answers = 0;

before(async () => {
  await ready();
  // 5 training images in batches of 2: 3 optimizer steps per epoch, 9 in all.
  const run = spawnCli(
    [
      'train',
      '-c',
      '3',
      '-e',
      '3',
      '-b',
      '2',
      '-l',
      '3e-4',
      '-s',
      '1',
      '-v',
      '30',
      '--bilinear',
      '--scheduler',
      'none',
      '--val-every',
      '2',
      '--keep-last',
      '1',
      '--dashboard',
      '--port',
      '0',
      '--device',
      'cpu',
      '--workers',
      '2',
      '--name',
      'flags',
      '--base-channels',
      '16',
    ],
    // A narrow UNet whose forward passes take 200 ms each (block-main.ts): the dashboard sees the run training.
    { cwd: work, timeoutMs: 600_000, preload: [BLOCK], env: { UNET_TEST_BLOCK_FORWARD_MS: '200' } },
  );
  let url = '';
  while (run.child.exitCode === null) {
    url ||= /Dashboard: (http:\/\/\S+)/.exec(run.out())?.[1] ?? '';
    if (url) {
      try {
        const runs = (await (await fetch(`${url}api/runs`)).json()) as { runs: { name: string; status: string }[] };
        const mine = runs.runs.find((r) => r.name.endsWith('-flags'));
        if (mine) {
          const m = (await (await fetch(`${url}api/runs/${mine.name}/metrics?from=0`)).json()) as { records: Served['records'] };
          // the last answer while the run was still going (between its end record and the
          // process's exit the dashboard already says 'finished')
          if (run.child.exitCode === null && mine.status === 'running') {
            whileTraining = { status: mine.status, records: m.records };
            answers++;
          }
        }
      } catch {
        // the server closes when training ends
      }
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  result = await run.done;
  assert.equal(result.code, 0, result.stderr);
  assertNoCrashText(result, 'train');
  runDir = (await loadCheckpoint(join(work, 'checkpoints', 'best_model.pth'))).runDir as string;
});

test('-l reaches the optimizer', async () => {
  const ck = await loadCheckpoint(join(work, 'checkpoints', 'checkpoint_epoch3.pth'));
  const groups = (ck.optimizer as unknown as { param_groups: { lr: number; alpha: number; momentum: number }[] }).param_groups;
  assert.deepEqual([groups[0].lr, groups[0].momentum], [3e-4, 0.999], "RMSprop with the given lr and the guide's momentum");
  assert.ok(scalarSeries(runRecords(runDir).scalars, 'learning rate').every(([, v]) => v === 3e-4));
  assert.equal((ck.config as { learningRate: number }).learningRate, 3e-4);
});

test('--val-every 2: validations at every 2nd optimizer step, and at each epoch end', () => {
  const steps = new Set(scalarSeries(runRecords(runDir).scalars, 'validation Dice').map(([s]) => s));
  assert.deepEqual(
    [...steps].sort((a, b) => a - b),
    [2, 3, 4, 6, 8, 9],
  );
});

test('--keep-last 1: only the last epoch checkpoint (and the best model) are left', () => {
  assert.deepEqual(readdirSync(join(work, 'checkpoints')).sort(), ['best_model.pth', 'checkpoint_epoch3.pth']);
  assert.match(result.stdout, /Epoch 1\/3[\s\S]*Epoch 2\/3[\s\S]*Epoch 3\/3/, 'three epochs ran (and wrote their checkpoints)');
});

test("--dashboard served this run's metrics while it trained", () => {
  assert.ok(whileTraining, `the dashboard answered during training (${answers} answers); stdout:\n${result.stdout}`);
  assert.equal(whileTraining.status, 'running');
  const losses = whileTraining.records.filter((r) => r.type === 'scalars' && r.values && 'train loss' in r.values);
  assert.ok(losses.length >= 1, 'train loss records while training');
  // exactly the records the run wrote, in order: a prefix of its metrics.jsonl
  const file = readJsonl(join(runDir, 'metrics.jsonl'));
  assert.ok(whileTraining.records.length < file.length, 'served before the run ended');
  assert.deepEqual(whileTraining.records, file.slice(0, whileTraining.records.length));
});
