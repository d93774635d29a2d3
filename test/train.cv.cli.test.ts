// `unet train --folds 2` end to end on tiny data (narrow UNet): both folds written into their own
// folders, cv-summary.json with the out-of-fold scores, and the --postprocess auto decision recorded
// in both best models, which never scores below none on the out-of-fold predictions it was decided on.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { before, test } from 'node:test';
import { type EvaluateConfig, type PostprocessMode, defaults, evaluateOptions } from '../src/config/options.js';
import { readMaskRaw } from '../src/data/index.js';
import { metricsFromConfusion } from '../src/metrics/confusion.js';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { runEvaluate } from '../src/predict/evaluate-command.js';
import { keepLargestComponent } from '../src/predict/postprocess.js';
import type { CvSummary } from '../src/train/cross-validation.js';
import { quickTrainArgs, runCli } from './helpers/cli.js';
import { startTs } from './helpers/dist.js';
import { rgbPattern, writePairs } from './helpers/fixtures.js';
import { tempDir } from './helpers/workdir.js';

const CLI = resolve(import.meta.dirname, 'helpers', 'tiny-cli.ts');
const S = 32;
const IMAGES = 5; // folds of 3 and 2 files
const root = tempDir('cv');
const data = join(root, 'data');
const ckptDir = join(root, 'checkpoints');
/** A square of class 1; the images also show a bright decoy patch that is background (what the largest component removes). */
const inSquare = (i: number, k: number) => {
  const [y, x] = [Math.floor(i / S), i % S];
  return y >= 4 + k && y < 20 + k && x >= 6 && x < 22;
};
const inDecoy = (i: number, k: number) => {
  const [y, x] = [Math.floor(i / S), i % S];
  return y >= 25 && y < 29 && x >= 24 - k && x < 28 - k;
};
const maskValue = (i: number, k: number) => (inSquare(i, k) ? 255 : 0);
const pixel = (i: number, k: number, px: Uint8Array) => (inSquare(Math.floor(i / 3), k) || inDecoy(Math.floor(i / 3), k) ? 255 - (px[i] >> 2) : px[i] >> 2);

let out = '';
let code: number | null = null;
before(async () => {
  const px = Array.from({ length: IMAGES }, (_, k) => rgbPattern(S, S, k + 1));
  await writePairs(data, IMAGES, { width: S, height: S, channels: 3, name: (k) => `p${k}.png` }, (i, k) => pixel(i, k, px[k]), maskValue);
  ({ code, out } = await startTs(CLI, quickTrainArgs(data, root, ['--folds', '2', '--seed', '3', '-b', '2', '-e', '4', '--optimizer', 'adam', '-l', '0.003', '--workers', '1', '--name', 'cv']), {
    cwd: root,
    timeoutMs: 240_000,
  }).done);
});

const summary = (): CvSummary => JSON.parse(readFileSync(join(ckptDir, 'cv-summary.json'), 'utf8')) as CvSummary;

test('--folds 2 trains both folds into fold0/ and fold1/ and writes cv-summary.json with out-of-fold scores', async () => {
  assert.equal(code, 0, out);
  for (const f of [0, 1]) assert.ok(existsSync(join(ckptDir, `fold${f}`, 'best_model.pth')), `fold${f}/best_model.pth`);
  const s = summary();
  assert.equal(s.folds, 2);
  assert.deepEqual(s.perFold.map((f) => f.files.length).sort(), [2, 3]);
  const files = s.perFold.flatMap((f) => f.files).sort();
  assert.deepEqual(
    files,
    Array.from({ length: IMAGES }, (_, k) => join(data, 'imgs', `p${k}.png`)),
    'the folds hold out every file once',
  );
  assert.equal(s.outOfFold.images, IMAGES);
  assert.equal(
    s.outOfFold.confusion.flat().reduce((a, b) => a + b, 0),
    IMAGES * S * S,
    'every pixel of every image scored once',
  );
  for (const f of s.perFold) assert.equal(f.bestValDice, (await loadCheckpoint(f.bestModel)).valScore);
  assert.match(out, /Out-of-fold \(5 images scored together\): mean Dice \d\.\d{4}/);
  assert.match(out, /--postprocess auto: .* recorded in every fold's best_model\.pth/);
  // Each fold's checkpoint records its fold and folder.
  const fold1 = await loadCheckpoint(s.perFold[1].bestModel);
  assert.equal(fold1.config?.fold, 1);
  assert.equal(fold1.config?.checkpointDir, join(ckptDir, 'fold1'));
});

/** The out-of-fold predictions under one --postprocess mode, every fold's files scored by its own best model, pooled. */
async function outOfFold(s: CvSummary, postprocess: PostprocessMode) {
  const cm: number[][] = [];
  for (const f of s.perFold) {
    const cfg: EvaluateConfig = { ...defaults(evaluateOptions), model: f.bestModel, device: 'cpu', workers: 1, scale: undefined, postprocess };
    const r = await runEvaluate(cfg, { warn: () => {}, pairs: f.files.map((image) => ({ image, mask: image.replace('/imgs/', '/masks/') })) });
    r.confusion.forEach((row, i) => row.forEach((v, j) => ((cm[i] ??= [])[j] = (cm[i][j] ?? 0) + v)));
  }
  return metricsFromConfusion(cm);
}

test('--postprocess auto applies the recorded decision and never lowers the out-of-fold Dice it was decided on', async () => {
  assert.equal(code, 0, out);
  const s = summary();
  for (const f of s.perFold) assert.deepEqual((await loadCheckpoint(f.bestModel)).postprocess, s.postprocess.classes, `${f.bestModel} records the decision`);
  const none = await outOfFold(s, 'none');
  const lcc = await outOfFold(s, 'largest-component');
  const auto = await outOfFold(s, 'auto');
  assert.ok(Math.abs(none.meanDice - s.outOfFold.meanDice) < 1e-9, "none = the summary's out-of-fold score");
  for (const d of s.postprocess.perClass) {
    assert.ok(Math.abs(lcc.perClassDice[d.class] - d.diceLargestComponent) < 1e-9, `class ${d.class}: largest-component as in the summary`);
    assert.equal(d.largestComponent, d.diceLargestComponent > d.dice, `class ${d.class}: nnU-Net's rule`);
  }
  assert.ok(Math.abs(auto.meanDice - s.postprocess.meanDice) < 1e-9, `auto ${auto.meanDice} = the summary's ${s.postprocess.meanDice}`);
  assert.ok(auto.meanDice >= none.meanDice, `auto ${auto.meanDice} >= none ${none.meanDice}`);
  // The decoy patches make the model predict stray blobs, so here cleaning pays off and auto really cleans.
  assert.deepEqual(s.postprocess.classes, [1], JSON.stringify(s.postprocess));
  assert.ok(auto.meanDice > none.meanDice);
});

test('unet predict --postprocess auto says what it applies', async () => {
  assert.equal(code, 0, out);
  const s = summary();
  const r = await runCli(['predict', '-m', s.perFold[0].bestModel, '-i', join(data, 'imgs', 'p0.png'), '-o', join(root, 'p0_mask.png'), '--postprocess', 'auto', '--device', 'cpu', '--workers', '1'], {
    cwd: root,
  });
  assert.equal(r.code, 0, r.stderr);
  const said = s.postprocess.classes.length ? `largest component of class ${s.postprocess.classes.join(', ')}` : 'none (the checkpoint records no post-processing)';
  assert.ok(r.stdout.includes(`--postprocess auto: ${said}`), r.stdout);
  // The written mask holds a single component of the recorded class (its mask value 255).
  const m = await readMaskRaw(join(root, 'p0_mask.png'));
  const fgMask = Uint8Array.from(m.data, (v) => (v === 255 ? 1 : 0));
  assert.deepEqual(keepLargestComponent(Uint8Array.from(fgMask), m.width, m.height, [1]), fgMask);
});

test('--fold I trains only that fold, into <checkpoint-dir>/fold<I>/, on the same split', async () => {
  assert.equal(code, 0, out);
  const s = summary();
  const work = join(root, 'single');
  const r = await startTs(CLI, quickTrainArgs(data, work, ['--folds', '2', '--fold', '1', '--seed', '3', '-b', '2', '--workers', '1']), { cwd: root, timeoutMs: 120_000 }).done;
  assert.equal(r.code, 0, r.out);
  assert.ok(existsSync(join(work, 'checkpoints', 'fold1', 'best_model.pth')));
  assert.ok(!existsSync(join(work, 'checkpoints', 'fold0')), 'fold 0 not trained');
  assert.ok(!existsSync(join(work, 'checkpoints', 'cv-summary.json')), 'no summary for one fold');
  assert.match(r.out, new RegExp(`Validation size: ${s.perFold[1].files.length}\\n`));
  assert.match(r.out, new RegExp(`Training size:   ${IMAGES - s.perFold[1].files.length}\\n`));
});
