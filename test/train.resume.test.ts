// Mid-epoch resume is exact: a run stopped inside an epoch (by a signal or an unreadable image) and
// resumed from its INTERRUPTED.pth ends with the uninterrupted run's weights, bit for bit, and
// continues its run directory with one continuous set of curves. Also: no INTERRUPTED.pth before
// the first optimizer step, --resume picks by training progress, and --skip-bad.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { newestCheckpoint } from '../src/cli/resume.js';
import type { TrainConfig } from '../src/config/options.js';
import { DataError, makeDemoDataset } from '../src/data/index.js';
import { type PyValue, loadPth, savePth } from '../src/io/pth.js';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import type { UNetArgs } from '../src/model/index.js';
import { type TrainHooks, train } from '../src/train/train.js';
import { quiet, runConfig, runRecords, sameWeights, scalarSeries } from './helpers/runs.js';
import { tinyUNet } from './helpers/tiny-unet.js';
import { tempDir } from './helpers/workdir.js';

const root = tempDir('resume');
const data = join(root, 'data');
before(async () => {
  await makeDemoDataset(data, { count: 10, size: 32, classes: 2, seed: 4 });
});

// 8 training images, batch 1, 2 micro-batches per optimizer step: 8 batches (4 steps) per epoch,
// augmentation drawn per batch, validation rounds after every batch (the reference's cadence), with
// precise BatchNorm statistics (recomputed only when a step came since the last round).
const cfg = (dir: string, over: Partial<TrainConfig> = {}): TrainConfig =>
  runConfig(data, dir, { epochs: 2, batchSize: 1, learningRate: 1e-3, scale: 1, validation: 20, classes: 2, augment: true, accumulateGradBatches: 2, preciseBn: 2, patience: 0, ...over });
const hooks = (h: TrainHooks = {}): TrainHooks => ({ ...quiet, createModel: (args: UNetArgs) => tinyUNet(args, 16), ...h });
const ckptOf = (dir: string, name: string) => join(dir, 'checkpoints', name);

/** Every logged value of a run, by tag (timings left out), and its other records without their times. */
function curves(runDir: string): { series: Record<string, [number, number][]>; records: unknown[] } {
  const { all, scalars } = runRecords(runDir);
  const tags = [...new Set(scalars.flatMap((r) => Object.keys(r.values)))].filter((t) => t !== 'img/s').sort();
  const series = Object.fromEntries(tags.map((t) => [t, scalarSeries(scalars, t)]));
  const records = all.filter((r) => r.type !== 'scalars' && r.type !== 'resume').map(({ time, seconds, imgPerSec, ...r }) => r);
  return { series, records };
}

let uninterrupted: { runDir: string; batches: string[][]; dir: string };

test('a run stopped mid-epoch and resumed ends with the same weights, bit for bit, and one continuous run directory', { timeout: 300_000 }, async () => {
  const a = join(root, 'a');
  const batches: string[][] = [];
  const ra = await train(cfg(a), hooks({ onTrainBatch: (_e, ids) => batches.push(ids) }));
  uninterrupted = { runDir: ra.runDir, batches, dir: a };

  // The signal comes during batch 3 of epoch 1, inside an accumulation window: batch 4 completes
  // the optimizer step, then the run stops.
  const b = join(root, 'b');
  const ctrl = new AbortController();
  let n = 0;
  const rb = await train(cfg(b), hooks({ signal: ctrl.signal, onTrainBatch: () => ++n === 3 && ctrl.abort() }));
  assert.equal(rb.interrupted, true);
  assert.equal(n, 4, 'the accumulation window was finished');
  const saved = await loadCheckpoint(ckptOf(b, 'INTERRUPTED.pth'));
  assert.equal(saved.epoch, 0);
  assert.equal(saved.globalStep, 2);
  assert.equal(saved.position?.epoch, 1);
  assert.equal(saved.position?.batch, 4);

  const logs: string[] = [];
  const seen: string[][] = [];
  const rc = await train({ ...cfg(b), load: ckptOf(b, 'INTERRUPTED.pth') }, hooks({ log: (l) => logs.push(l), onTrainBatch: (_e, ids) => seen.push(ids) }));
  assert.match(logs.join('\n'), /Resuming from .*INTERRUPTED\.pth \(epoch 0 done, step 2; epoch 1 continues at batch 5\)/);
  assert.deepEqual(seen, batches.slice(4), 'the resumed run continues with batch 5 of epoch 1, in the same order');
  assert.equal(rc.epochsRun, 2);

  const wa = await loadCheckpoint(ckptOf(a, 'checkpoint_epoch2.pth'));
  const wb = await loadCheckpoint(ckptOf(b, 'checkpoint_epoch2.pth'));
  assert.equal(wb.globalStep, wa.globalStep);
  assert.ok(sameWeights(wa.model, wb.model), 'the weights differ from the uninterrupted run');
  assert.equal(wb.valScore, wa.valScore);
  assert.equal(wb.loss, wa.loss, 'the epoch loss counts the batches before the stop');

  // One run directory, continued: the same curves as the uninterrupted run (no step twice, none missing).
  assert.equal(rc.runDir, rb.runDir);
  assert.deepEqual(readdirSync(join(b, 'runs')), [rb.runDir.split(/[/\\]/).pop()]);
  assert.deepEqual(curves(rc.runDir), curves(ra.runDir));
  assert.equal(readdirSync(rc.runDir).filter((f) => f.startsWith('events.out.tfevents.')).length, 2, 'TensorBoard: a second event file in the same folder');
  assert.equal(runRecords(rc.runDir).all.filter((r) => r.type === 'resume').length, 1);

  // Continuing from an earlier epoch of a finished run branches off: a new run directory, the old one untouched.
  const metricsA = readFileSync(join(ra.runDir, 'metrics.jsonl'), 'utf8');
  const warns: string[] = [];
  const branch = await train({ ...cfg(join(root, 'branch')), load: ckptOf(a, 'checkpoint_epoch1.pth') }, hooks({ warn: (w) => warns.push(w) }));
  assert.notEqual(branch.runDir, ra.runDir);
  assert.equal(readFileSync(join(ra.runDir, 'metrics.jsonl'), 'utf8'), metricsA);
  assert.match(warns.join('\n'), /cannot continue .* \(it holds epochs after epoch 1, kept as they are\); writing a new run directory/);

  // A damaged position (here: a data generator state out of range) is refused naming the file.
  const raw = (await loadPth(ckptOf(b, 'INTERRUPTED.pth'))) as Record<string, PyValue>;
  (raw.epoch_position as Record<string, PyValue>).dataRng = [{ state: -1 }];
  await savePth(ckptOf(b, 'damaged.pth'), raw);
  await assert.rejects(train({ ...cfg(b), load: ckptOf(b, 'damaged.pth') }, hooks()), /damaged\.pth: its mid-epoch position is damaged; start again without --resume\/--load/);
  // Another batch size cannot continue that position: refused, naming the difference and the way out.
  await assert.rejects(
    train({ ...cfg(b), batchSize: 2, load: ckptOf(b, 'INTERRUPTED.pth') }, hooks()),
    /INTERRUPTED\.pth was saved in the middle of epoch 1 by a run with -b 1 \(now 2\); resume it with the same flags and data to continue exactly, or start again without --resume\/--load/,
  );
});

test('--resume picks the checkpoint that trained furthest, not the newest file', async () => {
  // b/checkpoints: INTERRUPTED.pth (step 2) and checkpoint_epoch1/2.pth of the resumed run.
  const dir = join(root, 'b', 'checkpoints');
  const t = Date.now() / 1000;
  utimesSync(join(dir, 'INTERRUPTED.pth'), t + 60, t + 60);
  assert.equal(await newestCheckpoint(dir), join(dir, 'checkpoint_epoch2.pth'));
  // An INTERRUPTED.pth further along (here: 8 steps) wins over a newer epoch checkpoint (4 steps).
  const other = join(root, 'pick');
  mkdirSync(other);
  cpSync(join(dir, 'checkpoint_epoch2.pth'), join(other, 'INTERRUPTED.pth'));
  cpSync(join(dir, 'checkpoint_epoch1.pth'), join(other, 'checkpoint_epoch1.pth'));
  utimesSync(join(other, 'INTERRUPTED.pth'), t - 60, t - 60);
  assert.equal(await newestCheckpoint(other), join(other, 'INTERRUPTED.pth'));
});

test('no INTERRUPTED.pth before the first optimizer step', async () => {
  const dir = join(root, 'early');
  const ctrl = new AbortController();
  ctrl.abort();
  const logs: string[] = [];
  const r = await train(cfg(dir), hooks({ signal: ctrl.signal, log: (l) => logs.push(l) }));
  assert.equal(r.interrupted, true);
  assert.equal(existsSync(ckptOf(dir, 'INTERRUPTED.pth')), false);
  assert.match(logs.join('\n'), /no INTERRUPTED\.pth written/);
});

/** A copy of the data with one training image's IDAT CRC broken (its header still reads); returns the file. */
function damagedCopy(dir: string, id: string): string {
  cpSync(data, dir, { recursive: true });
  const file = join(dir, 'imgs', readdirSync(join(dir, 'imgs')).find((f) => f.startsWith(`${id}.`)) ?? '');
  const bytes = readFileSync(file);
  const at = bytes.indexOf('IDAT');
  const crc = at + 4 + bytes.readUInt32BE(at - 4);
  bytes[crc] ^= 0xff;
  writeFileSync(file, bytes);
  return file;
}

test('an unreadable image mid-epoch: INTERRUPTED.pth at the last step and a one-line error naming the file; --resume then continues exactly', { timeout: 300_000 }, async () => {
  // Batch 6 of epoch 1 (after 5 batches: the last step was after batch 4).
  const id = uninterrupted.batches[5][0];
  const dir = join(root, 'bad');
  const good = join(root, 'good.png');
  const file = damagedCopy(join(dir, 'data'), id);
  cpSync(join(data, 'imgs', file.split(/[/\\]/).pop() ?? ''), good);
  const c = (over: Partial<TrainConfig> = {}) => ({ ...cfg(dir), imgs: join(dir, 'data', 'imgs'), masks: join(dir, 'data', 'masks'), ...over });
  const err = await train(c(), hooks()).then(
    () => assert.fail('the damaged image was not noticed'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof DataError, String(err));
  assert.match(err.message, new RegExp(`${id}\\.png`));
  assert.match(err.message, /Saved .*INTERRUPTED\.pth: fix or remove the file, then continue with --resume, or pass --skip-bad/);
  assert.equal(err.message.split('\n').length, 1, err.message);
  const saved = await loadCheckpoint(ckptOf(dir, 'INTERRUPTED.pth'));
  assert.equal(saved.position?.batch, 4);

  cpSync(good, file); // fixed: the resumed run matches the uninterrupted one
  await train(c({ load: ckptOf(dir, 'INTERRUPTED.pth') }), hooks());
  const wa = await loadCheckpoint(ckptOf(uninterrupted.dir, 'checkpoint_epoch2.pth'));
  const wb = await loadCheckpoint(ckptOf(dir, 'checkpoint_epoch2.pth'));
  assert.ok(sameWeights(wa.model, wb.model), 'the weights differ from the uninterrupted run');
});

test('--skip-bad skips an unreadable pair with a warning naming it, and counts it', { timeout: 300_000 }, async () => {
  const id = uninterrupted.batches[5][0];
  const dir = join(root, 'skip');
  damagedCopy(join(dir, 'data'), id);
  const warnings: string[] = [];
  const logs: string[] = [];
  const r = await train({ ...cfg(dir), imgs: join(dir, 'data', 'imgs'), masks: join(dir, 'data', 'masks'), skipBad: true }, hooks({ warn: (l) => warnings.push(l), log: (l) => logs.push(l) }));
  assert.equal(r.epochsRun, 2);
  const named = warnings.filter((w) => w.includes(`${id}.png`));
  assert.equal(named.length, 1, warnings.join('\n'));
  assert.match(named[0], /^--skip-bad: skipping /);
  assert.match(logs.join('\n'), /Skipped 1 unreadable file\(s\) \(--skip-bad\)/);
  const final = runRecords(r.runDir).all.find((x) => x.type === 'final');
  assert.equal((final?.skippedFiles as string[] | undefined)?.length, 1);
});
