// Binary segmentation (-c 1, one sigmoid output) end to end through the real command line: train
// with validation, `predict --model checkpoints/best_model.pth` (the guide's own line, long flag)
// with -t, and evaluate, all on one small dataset of 0/255 masks.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { decode } from 'fast-png';
import { randomSplit } from '../src/data/index.js';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { assertCleanFailure, assertNoCrashText, runCli } from './helpers/cli.js';
import { runRecords } from './helpers/runs.js';
import { demoDataDir } from './helpers/workdir.js';

const COUNT = 7;
const { root: work, ready } = demoDataDir('binary', { count: COUNT, size: 32, classes: 2, seed: 21 });
let trainOut = '';

before(async () => {
  await ready();
  // The guide's layout: data/imgs, data/masks and checkpoints/ under the working directory.
  const r = await runCli(['train', '-c', '1', '-e', '2', '-b', '2', '-l', '1e-3', '-s', '1', '-v', '30', '--bilinear', '--device', 'cpu', '--workers', '2', '--name', 'binary'], {
    cwd: work,
    timeoutMs: 600_000,
  });
  assert.equal(r.code, 0, r.stderr);
  assertNoCrashText(r, 'train -c 1');
  trainOut = r.stdout;
});

test('-c 1 trains and validates: a Dice per epoch, checkpoints of a 1-output model', async () => {
  const best = await loadCheckpoint(join(work, 'checkpoints', 'best_model.pth'));
  assert.deepEqual(best.modelArgs, { nChannels: 3, nClasses: 1, bilinear: true, depth: 4, baseChannels: 64 });
  assert.deepEqual(best.maskValues, [0, 255]);
  const runDir = best.runDir as string;
  const { epochs } = runRecords(runDir);
  assert.deepEqual(
    epochs.map((e) => e.epoch),
    [1, 2],
  );
  for (const e of epochs) assert.ok(e.valDice >= 0 && e.valDice <= 1, `epoch ${e.epoch}: validation Dice ${e.valDice}`);
  assert.equal(best.valScore, Math.max(...epochs.map((e) => e.valDice)));
  assert.match(trainOut, new RegExp(`Best validation Dice: ${(best.valScore as number).toFixed(4)}`));
  assert.ok(existsSync(join(runDir, 'report.html')), 'the command writes the report');
});

test("the guide's `predict --model checkpoints/best_model.pth` (long flag), with -t", async () => {
  // The guide's line names no input: a clear message says how to give one.
  assertCleanFailure(await runCli(['predict', '--model', 'checkpoints/best_model.pth'], { cwd: work }), /-i\/--input/, 'predict without input');
  // -t is the probability threshold: each mask pixel is foreground exactly where the written
  // probability map (--probs, 16-bit) is above t (pixels within its rounding of t are not judged).
  for (const t of [0.5, 0.2]) {
    const out = join(work, `out-${t}`);
    const r = await runCli(['predict', '--model', 'checkpoints/best_model.pth', '-i', 'data/imgs/000.png', 'data/imgs/001.png', '-t', String(t), '-s', '1', '--probs', '--output-dir', out, '--device', 'cpu'], { cwd: work });
    assert.equal(r.code, 0, r.stderr);
    for (const id of ['000', '001']) {
      const mask = decode(readFileSync(join(out, `${id}_OUT.png`)));
      const prob = decode(readFileSync(join(out, `${id}_PROB1.png`)));
      assert.deepEqual([mask.width, mask.height, mask.channels, prob.depth], [32, 32, 1, 16]);
      let judged = 0;
      for (let i = 0; i < 32 * 32; i++) {
        const p = (prob.data[i] as number) / 65535;
        if (Math.abs(p - t) < 2e-5) continue;
        judged++;
        assert.equal(mask.data[i], p > t ? 255 : 0, `-t ${t}, ${id} pixel ${i}: probability ${p}`);
      }
      assert.ok(judged > 900, `${judged} pixels judged`);
    }
  }
});

test("evaluate scores the binary model: its reference Dice is the checkpoint's validation Dice", async () => {
  const split = randomSplit(COUNT, 30, 0);
  const val = join(work, 'val');
  for (const sub of ['imgs', 'masks']) {
    mkdirSync(join(val, sub), { recursive: true });
    for (const i of split.val) copyFileSync(join(work, 'data', sub, `00${i}.png`), join(val, sub, `00${i}.png`));
  }
  const json = join(work, 'eval.json');
  const r = await runCli(['evaluate', '-m', 'checkpoints/best_model.pth', '--imgs', 'val/imgs', '--masks', 'val/masks', '-s', '1', '--json', json, '--device', 'cpu'], { cwd: work });
  assert.equal(r.code, 0, r.stderr);
  const m = JSON.parse(readFileSync(json, 'utf8')) as { nClasses: number; images: number; referenceDice: number; pixelAccuracy: number };
  assert.deepEqual([m.nClasses, m.images], [1, split.val.length]);
  const best = await loadCheckpoint(join(work, 'checkpoints', 'best_model.pth'));
  assert.ok(Math.abs(m.referenceDice - (best.valScore as number)) < 1e-6, `evaluate ${m.referenceDice}, checkpoint ${best.valScore}`);
  assert.ok(m.pixelAccuracy >= 0 && m.pixelAccuracy <= 1);
});
