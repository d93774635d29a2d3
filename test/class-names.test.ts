// train --class-names: checked against -c, stored in the checkpoint (older files have none and keep
// working; resuming keeps the names), and shown where "class k" was: predict --viz legends, evaluate's table and JSON, the
// epoch records the dashboard and report read, and the exported metadata (safetensors, ONNX, web).
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import sharp from 'sharp';
import { loadSafetensors } from '../src/io/safetensors.js';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { legendEntries, legendLayout } from '../src/predict/overlay.js';
import { classLabel } from '../src/tracking/palette.js';
import { OptionError, type TrainConfig, defaults, evaluateOptions, predictOptions, trainOptions } from '../src/config/options.js';
import { exportCommand } from '../src/export/command.js';
import { formatEvaluation, runEvaluate, runPredict } from '../src/predict/index.js';
import { writeReport } from '../src/tracking/index.js';
import { train } from '../src/train/train.js';
import type { UNetArgs } from '../src/model/index.js';
import { tinyUNet } from './helpers/tiny-unet.js';
import { demoDataDir } from './helpers/workdir.js';

const { root, data, ready } = demoDataDir('class-names', { count: 6, size: 32, classes: 3 });
const NAMES = ['background', 'a rather long circle name', 'square'];
const ckdir = join(root, 'checkpoints');

test('legend lines and labels: the name first, else the class index', () => {
  assert.equal(classLabel(2, '255', NAMES), 'square (class 2, value 255)');
  assert.equal(classLabel(2, '255', null), 'class 2: value 255');
  assert.deepEqual(legendEntries([0, 255], ['sky', 'building']), ['sky (class 0, value 0) · background (not coloured)', 'building (class 1, value 255) · #e6194b']);
  assert.deepEqual(legendEntries([0, 255]), ['class 0: value 0 · background (not coloured)', 'class 1: value 255 · #e6194b']);
});

describe('a run with --class-names', { concurrency: 1 }, () => {
  let ck = '';
  let runDir = '';
  const quiet = { log: () => {}, warn: () => {} };
  // A narrow UNet (widths / 16): the names, not the model, are under test.
  const hooks = { ...quiet, createModel: (a: UNetArgs) => tinyUNet(a) };
  const cfg = (extra: Partial<TrainConfig>): TrainConfig => ({
    ...defaults(trainOptions),
    imgs: join(data, 'imgs'),
    masks: join(data, 'masks'),
    checkpointDir: ckdir,
    logdir: join(root, 'runs'),
    device: 'cpu',
    bilinear: true,
    scale: 1,
    epochs: 1,
    validation: 34,
    workers: 1,
    tensorboard: false,
    classes: 3,
    ...extra,
  });
  before(async () => {
    await ready();
    const r = await train(cfg({ classNames: NAMES }), hooks);
    ck = r.lastCheckpoint as string;
    runDir = r.runDir;
    await writeReport(runDir);
  });

  test('a name count that does not match -c is a usage error naming the flag', async () => {
    await assert.rejects(
      train(cfg({ classNames: ['sky', 'building'] }), quiet),
      (e: Error) => e instanceof OptionError && e.exitCode === 64 && /^--class-names gives 2 name\(s\) \(sky, building\) but -c 3 needs 3: one per class incl\. the background$/.test(e.message),
    );
  });

  test('stored in the checkpoint and in the epoch records the dashboard and report read', async () => {
    assert.deepEqual((await loadCheckpoint(ck)).classNames, NAMES);
    const epochs = readFileSync(join(runDir, 'metrics.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l))
      .filter((r) => r.type === 'epoch');
    assert.ok(epochs.length > 0);
    for (const e of epochs) assert.deepEqual(e.classNames, NAMES);
    assert.ok(readFileSync(join(runDir, 'report.html'), 'utf8').includes(NAMES[1]), 'the report carries the names');
  });

  test('evaluate shows the names in its table and JSON', async () => {
    const r = await runEvaluate({ ...defaults(evaluateOptions), model: ck, imgs: join(data, 'imgs'), masks: join(data, 'masks'), scale: 1, device: 'cpu', workers: 1 }, { warn: () => {} });
    assert.deepEqual(
      r.perClass.map((c) => c.name),
      NAMES,
    );
    const lines = formatEvaluation(r).split('\n');
    const head = lines.findIndex((l) => l.startsWith('class '));
    assert.match(lines[head], /^class +name +value +Dice/);
    assert.match(lines[head + 3], new RegExp(`^2 +${NAMES[2]} +255 `));
  });

  test('predict --viz draws the names in the legend', async () => {
    const img = join(data, 'imgs', readdirSync(join(data, 'imgs')).sort()[0]);
    const r = await runPredict({ ...defaults(predictOptions), model: ck, input: [img], output: [join(root, 'pred.png')], scale: 1, device: 'cpu', viz: true, workers: 1 }, quiet);
    const overlay = r.predicted[0].overlay as string;
    const { width } = await sharp(overlay).metadata();
    const values = (await loadCheckpoint(ck)).maskValues as number[];
    // A 32 px image: the overlay is as wide as the legend's longest line, so the names set its width.
    assert.equal(width, legendLayout(32, values, NAMES).width);
    assert.notEqual(width, legendLayout(32, values).width);
  });

  test('export carries the names: safetensors and ONNX metadata, the web page model.json', async () => {
    const st = join(root, 'm.safetensors');
    assert.equal(await exportCommand({ model: ck, format: 'safetensors', output: st, ...quiet }), 0);
    assert.deepEqual(JSON.parse((await loadSafetensors(st)).metadata.class_names), NAMES);
    const site = join(root, 'site');
    assert.equal(await exportCommand({ model: ck, format: 'web', output: site, ...quiet }), 0);
    assert.deepEqual(JSON.parse(readFileSync(join(site, 'model.json'), 'utf8')).class_names, NAMES);
    assert.ok(readFileSync(join(site, 'model.onnx')).includes('class_names'), 'ONNX metadata_props');
  });

  test("resuming without --class-names keeps the checkpoint's names", async () => {
    const r = await train(cfg({ load: ck, epochs: 2, checkpointDir: join(root, 'resumed'), validation: 0 }), hooks);
    assert.deepEqual((await loadCheckpoint(r.lastCheckpoint as string)).classNames, NAMES);
  });
});
