// --val-last N (src/train/cadence.ts, train.ts): only the first epoch and the last N validate; the
// others still write their checkpoints, and the weights trained are the same as with validation at
// every epoch. Flags that need a score every epoch are refused together, naming each.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, test } from 'node:test';
import type { TrainConfig } from '../src/config/options.js';
import { makeDemoDataset } from '../src/data/index.js';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import type { UNetArgs } from '../src/model/index.js';
import { validatedEnds, validatesAt } from '../src/train/cadence.js';
import type { RunBudget } from '../src/train/context.js';
import { type TrainHooks, train } from '../src/train/train.js';
import { quiet, runConfig, runRecords, sameWeights, scalarSeries } from './helpers/runs.js';
import { tinyUNet } from './helpers/tiny-unet.js';
import { tempDir } from './helpers/workdir.js';

const root = tempDir('val-last');
const data = join(root, 'data');
before(() => makeDemoDataset(data, { count: 10, size: 32, classes: 2, seed: 5 }));

const cfg = (dir: string, over: Partial<TrainConfig> = {}): TrainConfig =>
  runConfig(data, join(root, dir), { epochs: 5, batchSize: 2, learningRate: 1e-3, scale: 1, validation: 20, optimizer: 'adam', scheduler: 'poly', valEvery: 0, patience: 0, valLast: 1, ...over });

test('which epochs validate: the first and the last N, or all with 0', () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5].filter((e) => validatesAt(e, 5, 1)),
    [1, 5],
  );
  assert.deepEqual(
    [1, 2, 3, 4, 5].filter((e) => validatesAt(e, 5, 2)),
    [1, 4, 5],
  );
  assert.deepEqual(
    [1, 2, 3].filter((e) => validatesAt(e, 3, 0)),
    [1, 2, 3],
  );
  // Counted as the budget counts them, from the epochs done to the planned last.
  for (const [done, last, n] of [
    [0, 5, 1],
    [0, 5, 2],
    [2, 5, 1],
    [0, 1, 1],
    [0, 2, 3],
    [3, 9, 0],
  ]) {
    const listed = Array.from({ length: last - done }, (_, i) => done + 1 + i).filter((e) => validatesAt(e, last, n)).length;
    assert.equal(validatedEnds(done, last, n), listed, `done ${done}, last ${last}, --val-last ${n}`);
  }
});

test('--val-last 1 over 5 epochs: validation at epochs 1 and 5 only, every epoch checkpointed, the same weights as validating each epoch', async () => {
  const scored: number[] = [];
  const lines: string[] = [];
  const hooks = (h: TrainHooks = {}): TrainHooks => ({ ...quiet, createModel: (args: UNetArgs) => tinyUNet(args, 16), ...h });
  // The score rises with the epoch: the last validated epoch is the best.
  const r = await train(cfg('last'), hooks({ log: (l) => lines.push(l), validationScore: (d, { epoch }) => (scored.push(epoch), d + epoch) }));
  assert.deepEqual(scored, [1, 5]);
  const epochs = runRecords(r.runDir).epochs;
  assert.deepEqual(
    epochs.map((e) => [e.epoch, typeof e.valDice]),
    [
      [1, 'number'],
      [2, 'undefined'],
      [3, 'undefined'],
      [4, 'undefined'],
      [5, 'number'],
    ],
  );
  assert.equal(lines.filter((l) => l.includes('(no validation: --val-last 1)')).length, 3, lines.join('\n'));
  assert.ok(
    lines.some((l) => l.includes("Validation: at the first epoch's end and the last epoch's end (--val-last)")),
    lines.join('\n'),
  );
  assert.equal(r.bestEpoch, 5);
  const best = await loadCheckpoint(join(root, 'last', 'checkpoints', 'best_model.pth'));
  assert.equal(best.epoch, 5);
  const third = await loadCheckpoint(join(root, 'last', 'checkpoints', 'checkpoint_epoch3.pth'));
  assert.ok(Number.isNaN(third.valScore), `epoch 3's val_score ${third.valScore}`);

  const every: number[] = [];
  await train(cfg('every', { valLast: 0 }), hooks({ validationScore: (d, { epoch }) => (every.push(epoch), d + epoch) }));
  assert.deepEqual(every, [1, 2, 3, 4, 5]);
  const [a, b] = [await loadCheckpoint(join(root, 'last', 'checkpoints', 'checkpoint_epoch5.pth')), await loadCheckpoint(join(root, 'every', 'checkpoints', 'checkpoint_epoch5.pth'))];
  assert.ok(sameWeights(a.model, b.model), 'skipping validation changed the weights');
});

test('--val-last with flags that need a score every epoch: one refusal naming each', async () => {
  await assert.rejects(train(cfg('bad', { valEvery: 'auto', patience: 10, scheduler: 'plateau' }), quiet), (e: Error) =>
    /--val-last 1 validates only at the first and the last 1 epoch\(s\); it needs --val-every 0 .*now auto.*--patience 0 .*now 10.*--scheduler poly, cosine or none/.test(e.message),
  );
  await assert.rejects(train(cfg('bad', { patience: 3 }), quiet), (e: Error) => /needs --patience 0 \(early stopping scores every epoch; now 3\)\. --auto/.test(e.message));
});

test('a budget that ends the run after an unscored epoch: that epoch is validated then and can be the best model', async () => {
  const scored: number[] = [];
  const lines: string[] = [];
  // Ends the run after epoch 3 of 5, which --val-last 1 left unscored (a machine slower than planned).
  const budget = (): RunBudget => ({
    ended: false,
    afterStep: async () => false,
    roundDone: async () => {},
    afterEpoch: async (_run, epoch) => epoch === 3,
    finish: async () => ({ seconds: 1, used: 1, plannedSteps: 0, steps: 0, endedByBudget: true }),
  });
  const r = await train(cfg('late'), { ...quiet, log: (l) => lines.push(l), createModel: (args: UNetArgs) => tinyUNet(args, 16), budget, validationScore: (d, { epoch }) => (scored.push(epoch), d + epoch) });
  assert.deepEqual(scored, [1, 3]);
  assert.ok(
    lines.some((l) => l.startsWith('Epoch 3 was the last the budget allowed: validation Dice')),
    lines.join('\n'),
  );
  assert.equal(r.bestEpoch, 3);
  assert.equal((await loadCheckpoint(join(root, 'late', 'checkpoints', 'best_model.pth'))).epoch, 3);
  // One epoch record each; the late score is a validation record beside epoch 3's.
  const records = runRecords(r.runDir).all;
  assert.deepEqual(
    records.filter((e) => e.type === 'epoch').map((e) => [e.epoch, typeof e.valDice]),
    [
      [1, 'number'],
      [2, 'undefined'],
      [3, 'undefined'],
    ],
  );
  assert.deepEqual(
    records.filter((e) => e.type === 'validation').map((e) => e.epoch),
    [3],
  );
  // The learning rate and epoch scalars once per epoch, the late score's included.
  const { scalars } = runRecords(r.runDir);
  assert.deepEqual(
    scalarSeries(scalars, 'epoch').map(([, v]) => v),
    [1, 2, 3],
  );
  assert.equal(scalarSeries(scalars, 'learning rate').filter(([step]) => step === records.find((e) => e.type === 'validation')?.step).length, 1);
  // The epoch's checkpoint was written again with its score.
  const third = await loadCheckpoint(join(root, 'late', 'checkpoints', 'checkpoint_epoch3.pth'));
  assert.equal(third.valScore, r.bestScore);
});
