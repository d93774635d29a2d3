// Early stopping and the best model on real (narrow-UNet) runs whose validation scores are injected
// (train()'s validationScore hook): they improve, drop, improve by less than --min-delta and
// plateau. best_model.pth is written only on a strict improvement and holds that epoch's weights,
// the patience counter resets on an improvement of at least min-delta, the best weights are back
// in the model when it stops, the last epoch's checkpoint is still written, and a resumed run
// stops where an uninterrupted one does.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { TrainConfig } from '../src/config/options.js';
import type { UNetArgs } from '../src/model/index.js';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { train } from '../src/train/train.js';
import { sha256 } from './helpers/fixtures.js';
import { quiet, runConfig, sameWeights } from './helpers/runs.js';
import { TinyUNet } from './helpers/tiny-unet.js';
import { demoDataDir } from './helpers/workdir.js';

const { root, data } = demoDataDir('early', { count: 5, size: 32, classes: 2, seed: 7 });

// epoch:           1     2     3     4     5
// best?            yes   no    yes   yes   no (equal)
// counter          0     1     0     1     2  -> stop (patience 2, min-delta 0.05)
const SCORES = [0.5, 0.4, 0.7, 0.72, 0.72, 0.9, 0.9, 0.9];
const cfg = (dir: string, over: Partial<TrainConfig> = {}): TrainConfig => runConfig(data, dir, { epochs: 8, batchSize: 2, learningRate: 1e-3, scale: 1, validation: 20, bilinear: true, patience: 2, minDelta: 0.05, valEvery: 0, ...over });

/** A narrow UNet that keeps a copy of its weights as they are when train() disposes it. */
class Probe extends TinyUNet {
  static last: Map<string, Buffer> | null = null;
  override dispose(): void {
    Probe.last = new Map([...this.stateDict()].map(([k, t]) => [k, Buffer.from(t.bytes())]));
    super.dispose();
  }
}
const probe = (args: UNetArgs) => new Probe(args);

test("best_model.pth only on strict improvement, with that epoch's weights; counter resets; best weights restored; last checkpoint written", async () => {
  const dir = join(root, 'run');
  const ckdir = join(dir, 'checkpoints');
  const best = join(ckdir, 'best_model.pth');
  // best_model.pth as each epoch's validation finds it (before that epoch's files are written)
  const seen = new Map<number, string>();
  const r = await train(cfg(dir), {
    ...quiet,
    createModel: probe,
    validationScore: (_measured, { epoch }) => {
      seen.set(epoch, existsSync(best) ? sha256(best) : 'absent');
      return SCORES[epoch - 1];
    },
  });
  assert.deepEqual([r.stoppedEarly, r.epochsRun, r.bestEpoch, r.bestScore, r.lastScore], [true, 5, 4, 0.72, 0.72]);
  assert.deepEqual(readdirSync(ckdir).sort(), ['best_model.pth', ...[1, 2, 3, 4, 5].map((e) => `checkpoint_epoch${e}.pth`)]);
  const final = sha256(best);
  assert.equal(seen.get(1), 'absent');
  assert.equal(seen.get(3), seen.get(2), 'epoch 2 (a drop) did not write best_model.pth');
  assert.notEqual(seen.get(4), seen.get(3), 'epoch 3 (better) wrote it');
  assert.notEqual(seen.get(5), seen.get(4), 'epoch 4 (better by less than min-delta, still strictly better) wrote it');
  assert.equal(final, seen.get(5), 'epoch 5 (equal to the best) did not write it');

  const ck = await Promise.all([1, 2, 3, 4, 5].map((e) => loadCheckpoint(join(ckdir, `checkpoint_epoch${e}.pth`))));
  const bm = await loadCheckpoint(best);
  assert.deepEqual([bm.epoch, bm.valScore], [4, 0.72]);
  assert.ok(sameWeights(bm.model, ck[3].model), "best_model.pth holds epoch 4's weights");
  assert.ok(!sameWeights(ck[4].model, ck[3].model), 'epoch 5 trained on (its checkpoint differs)');
  assert.deepEqual(
    ck.map((c) => {
      const s = c.earlyStopping as unknown as { counter: number; best_epoch: number };
      return [c.epoch, c.valScore, s.counter, s.best_epoch];
    }),
    [
      [1, 0.5, 0, 1],
      [2, 0.4, 1, 1],
      [3, 0.7, 0, 3],
      [4, 0.72, 1, 4],
      [5, 0.72, 2, 4],
    ],
    'the counter resets only on a gain of at least min-delta',
  );
  // when it stopped, the model held epoch 4's weights again (every tensor, buffers included)
  assert.ok(Probe.last);
  for (const [k, t] of bm.model) assert.ok(Buffer.from(t.data).equals(Probe.last.get(k) as Buffer), `restored ${k}`);
});

test('early stopping round-trips: resumed at epoch 3, the run stops at epoch 5 with the same best model', async () => {
  const dir = join(root, 'resume');
  const scores = { ...quiet, createModel: probe, validationScore: (_m: number, { epoch }: { epoch: number }) => SCORES[epoch - 1] };
  const a = await train(cfg(dir, { epochs: 3 }), scores);
  assert.equal(a.stoppedEarly, false);
  const b = await train(cfg(dir, { load: join(dir, 'checkpoints', 'checkpoint_epoch3.pth') }), scores);
  assert.deepEqual([b.stoppedEarly, b.epochsRun, b.bestEpoch, b.bestScore], [true, 2, 4, 0.72]);
  const s = (await loadCheckpoint(join(dir, 'checkpoints', 'checkpoint_epoch5.pth'))).earlyStopping as unknown as Record<string, number>;
  assert.deepEqual([s.counter, s.best_epoch, s.best_score, s.patience_best], [2, 4, 0.72, 0.7]);
});
