// Monitoring from a real run: train() for 2 epochs with validation (a narrow UNet on 32x32 demo
// images), then its TensorBoard event file decoded in Python (helpers/tfevents-reader.ts), its
// metrics.jsonl, its report.html and its checkpoints, checked against each other.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { train, type TrainResult } from '../src/train/train.js';
import { writeReport } from '../src/tracking/index.js';
import { type PyEvent, decodeEvents, pythonProtobufMissing } from './helpers/tfevents-reader.js';
import { type EpochRecord, eventFileOf, floats, quiet, runConfig, runRecords, scalarSeries } from './helpers/runs.js';
import { TinyUNet, tinyUNet } from './helpers/tiny-unet.js';
import { demoDataDir } from './helpers/workdir.js';

const { root, data, ready } = demoDataDir('monitor', { count: 6, size: 32, classes: 3, seed: 4 });
const ARGS = { nChannels: 3, nClasses: 3, bilinear: true };
let run: TrainResult;
let epochs: EpochRecord[];

before(async () => {
  await ready();
  // 4 training images in batches of 2, 2 validation images; the validation steps are read from
  // the run's own epoch records, not assumed.
  run = await train(runConfig(data, join(root, 'work'), { epochs: 2, batchSize: 2, learningRate: 1e-3, scale: 1, validation: 34, classes: 3, bilinear: true, valEvery: 0 }), {
    ...quiet,
    createModel: tinyUNet,
  });
  epochs = runRecords(run.runDir).epochs;
});

const f32 = Math.fround;
/** Parameter names of the model the run trained (the narrow UNet has the real UNet's names). */
function parameterNames(): string[] {
  const m = new TinyUNet(ARGS);
  try {
    return [...m.namedParameters()].map(([n]) => n);
  } finally {
    m.dispose();
  }
}

test('the event file holds every guide tag at the right steps; histograms match the saved weights', { skip: pythonProtobufMissing() }, async () => {
  const decoded = decodeEvents(eventFileOf(run.runDir));
  assert.deepEqual(decoded.crc_errors, []);
  const at = new Map<string, Map<number, NonNullable<PyEvent['values']>[number][]>>();
  for (const e of decoded.events) {
    for (const v of e.values ?? []) {
      const byStep = at.get(v.tag) ?? new Map();
      byStep.set(e.step, [...(byStep.get(e.step) ?? []), v]);
      at.set(v.tag, byStep);
    }
  }
  const one = (tag: string, step: number) => {
    const vs = at.get(tag)?.get(step) ?? [];
    assert.equal(vs.length, 1, `${tag} at step ${step}: ${vs.length} values (steps: ${[...(at.get(tag)?.keys() ?? [])].join(', ')})`);
    return vs[0];
  };

  assert.deepEqual(
    epochs.map((r) => [r.epoch, r.step]),
    [
      [1, 2],
      [2, 4],
    ],
    '4 images in batches of 2: 2 optimizer steps per epoch',
  );
  // train loss: one value per optimizer step, equal to metrics.jsonl's
  const { scalars } = runRecords(run.runDir);
  const losses = scalarSeries(scalars, 'train loss');
  assert.deepEqual(
    losses.map(([s]) => s),
    [1, 2, 3, 4],
  );
  for (const [s, v] of losses) assert.equal(one('train loss', s).simple_value, f32(v), `train loss at ${s}`);
  assert.deepEqual([...(at.get('train loss')?.keys() ?? [])], [1, 2, 3, 4]);

  const names = parameterNames();
  assert.equal(names.length, 56, 'the UNet has 56 parameter tensors (9 DoubleConvs x 2 x conv, BN weight, BN bias; outc weight and bias)');
  for (const r of epochs) {
    assert.equal(one('validation Dice', r.step).simple_value, f32(r.valDice));
    assert.equal(one('learning rate', r.step).simple_value, f32(r.lr));
    assert.equal(one('epoch', r.step).simple_value, r.epoch);
    const images = one('images', r.step).image;
    assert.deepEqual([images?.width, images?.height, images?.colorspace, images?.png_signature], [32, 32, 3, true], 'input image');
    for (const tag of ['masks/true', 'masks/pred']) {
      const im = one(tag, r.step).image;
      // 3 classes: RGB in the overlays' palette (src/data/palette.ts); two classes would be black/white.
      assert.deepEqual([im?.width, im?.height, im?.colorspace, im?.png_signature], [32, 32, 3, true], tag);
    }
    // The weights histograms were taken from the weights this epoch's checkpoint saved.
    const ck = await loadCheckpoint(join(run.checkpointDir, `checkpoint_epoch${r.epoch}.pth`));
    assert.equal(ck.globalStep, r.step);
    for (const name of names) {
      const w = floats(ck.model.get(name) as never);
      const h = one(`Weights/${name}`, r.step).histo;
      assert.ok(h, `Weights/${name} at ${r.step}`);
      let min = Infinity;
      let max = -Infinity;
      for (const x of w) {
        min = Math.min(min, x);
        max = Math.max(max, x);
      }
      assert.deepEqual([h.min, h.max, h.num], [min, max, w.length], `Weights/${name} at step ${r.step}: min, max, count`);
      const g = one(`Gradients/${name}`, r.step).histo;
      assert.ok(g, `Gradients/${name} at ${r.step}`);
      assert.equal(g.num, w.length, `Gradients/${name}: one value per weight`);
      assert.ok(g.max > g.min, `Gradients/${name} at ${r.step} is not constant (a real gradient)`);
    }
  }
  // histograms, images and validation scalars only at validations
  for (const tag of ['Weights/inc.double_conv.0.weight', 'Gradients/outc.conv.bias', 'images', 'masks/pred', 'learning rate']) {
    assert.deepEqual(
      [...(at.get(tag)?.keys() ?? [])],
      epochs.map((r) => r.step),
      tag,
    );
  }
});

test('metrics.jsonl agrees with the checkpoints: epoch, global_step, loss, val_score', async () => {
  const { scalars } = runRecords(run.runDir);
  const losses = scalarSeries(scalars, 'train loss');
  let prev = 0;
  for (const r of epochs) {
    const ck = await loadCheckpoint(join(run.checkpointDir, `checkpoint_epoch${r.epoch}.pth`));
    assert.deepEqual([ck.epoch, ck.globalStep, ck.loss, ck.valScore, ck.runDir], [r.epoch, r.step, r.loss, r.valDice, run.runDir]);
    // the epoch loss is the mean of that epoch's logged batch losses
    const mine = losses.filter(([s]) => s > prev && s <= r.step).map(([, v]) => v);
    assert.equal(mine.length, 2);
    assert.ok(Math.abs(r.loss - (mine[0] + mine[1]) / 2) < 1e-6 * Math.abs(r.loss), `epoch ${r.epoch}: ${r.loss} vs ${mine}`);
    prev = r.step;
  }
  const final = runRecords(run.runDir).all.find((x) => x.type === 'final') as { bestScore: number; bestEpoch: number };
  const best = await loadCheckpoint(join(run.checkpointDir, 'best_model.pth'));
  assert.deepEqual([best.epoch, best.valScore], [final.bestEpoch, final.bestScore]);
});

test("report.html holds this run's curves and sample predictions", async () => {
  const html = readFileSync(await writeReport(run.runDir), 'utf8');
  const m = /window\.__UNET_BOOT__ = (.*?);<\/script>/s.exec(html);
  assert.ok(m, 'boot data');
  const boot = JSON.parse(m[1]) as { runs: { metrics: unknown[]; media: { step: number; tag: string; file: string; src: string }[]; histograms: { tag: string; step: number }[] }[] };
  const page = boot.runs[0];
  assert.deepEqual(page.metrics, runRecords(run.runDir).all, 'every metrics.jsonl record, as written');
  const steps = epochs.map((r) => r.step);
  // sample predictions of the first and last validation, byte for byte the run's media files
  assert.deepEqual(page.media.map((x) => `${x.step} ${x.tag}`).sort(), steps.flatMap((s) => ['images', 'masks/pred', 'masks/true'].map((t) => `${s} ${t}`)).sort());
  for (const x of page.media) {
    const b64 = x.src.replace(/^data:image\/png;base64,/, '');
    assert.ok(Buffer.from(b64, 'base64').equals(readFileSync(join(run.runDir, x.file))), x.file);
  }
  assert.ok(page.histograms.some((h) => h.tag === 'Gradients/outc.conv.weight' && h.step === steps[1]));
});
