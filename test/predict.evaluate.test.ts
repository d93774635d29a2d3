// `unet evaluate` on cases with known answers: models whose output is forced to one class
// everywhere (zero 1x1 output conv, large bias), so Dice / IoU / accuracy follow by hand.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { defaults, evaluateOptions, type EvaluateConfig } from '../src/config/options.js';
import type { MaskValues } from '../src/data/index.js';
import * as E from '../src/engine/index.js';
import { UNet, type UNetArgs } from '../src/model/index.js';
import { evaluateCommand, formatEvaluation, runEvaluate, unknownMaskValues } from '../src/predict/index.js';
import { saveCheckpoint, saveReferenceStateDict } from '../src/model/checkpoint.js';

const W = 48;
const H = 32;
let dir: string;
let imgs: string;
let masks: string;

async function forcedCheckpoint(name: string, args: UNetArgs, maskValues: MaskValues, cls: number, reference = false): Promise<string> {
  const file = join(dir, name);
  E.manualSeed(0);
  const m = new UNet(args);
  const sd = m.stateDict();
  E.noGrad(() => {
    (sd.get('outc.conv.weight') as E.Tensor).zero_();
    const b = new Float32Array(args.nClasses);
    if (args.nClasses === 1) b[0] = cls ? 50 : -50;
    else b[cls] = 50;
    E.tensor(b).disposeAfter((t) => (sd.get('outc.conv.bias') as E.Tensor).copy_(t));
  });
  if (reference) await saveReferenceStateDict(file, sd, maskValues);
  else await saveCheckpoint(file, { model: sd, epoch: 1, globalStep: 1, loss: 0, valScore: 0, maskValues, modelArgs: args, config: {} });
  m.dispose();
  return file;
}

async function grey(file: string, px: Uint8Array, w = W, h = H) {
  await sharp(px, { raw: { width: w, height: h, channels: 1 } }).toColourspace('b-w').png().toFile(file);
}

const cfg = (over: Partial<EvaluateConfig>): EvaluateConfig => ({ ...defaults(evaluateOptions), device: 'cpu', workers: 2, imgs, masks, ...over });
const quiet = { log: () => {}, warn: () => {} };

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'unet-evaluate-'));
  imgs = join(dir, 'imgs');
  masks = join(dir, 'masks');
  mkdirSync(imgs);
  mkdirSync(masks);
  const img = Uint8Array.from({ length: W * H }, (_, i) => (i * 13) & 255);
  await grey(join(imgs, 'a.png'), img);
  await grey(join(imgs, 'b.png'), img);
  // a: left half (x < 24) is 255, the rest 0; b: all 0.
  await grey(join(masks, 'a_mask.png'), Uint8Array.from({ length: W * H }, (_, i) => (i % W < 24 ? 255 : 0)));
  await grey(join(masks, 'b_mask.png'), new Uint8Array(W * H));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/*
 * At scale 0.5 the masks are resized (nearest) to 24x16 = 384 pixels: source column 2x+1, so
 * columns 0..11 of a are class 1 (192 px) and 192 px class 0; b is 384 px class 0.
 * Predicting class 1 everywhere (768 px):
 *   confusion [[0, 576], [0, 192]]
 *   class 1: Dice 2*192/(2*192+576) = 0.4, IoU 192/768 = 0.25; class 0: Dice 0, IoU 0
 *   pixel accuracy 192/768 = 0.25
 *   per-image Dice (reference): a 384/576 = 2/3, b eps/(384+eps) ~ 0 -> mean 1/3
 */
function checkForcedOne(r: Awaited<ReturnType<typeof runEvaluate>>) {
  assert.equal(r.images, 2);
  assert.deepEqual(r.confusion, [[0, 576], [0, 192]]);
  assert.ok(Math.abs(r.perClass[1].dice - 0.4) < 1e-12);
  assert.ok(Math.abs(r.perClass[1].iou - 0.25) < 1e-12);
  assert.equal(r.perClass[0].dice, 0);
  assert.equal(r.perClass[0].iou, 0);
  assert.ok(Math.abs(r.meanDice - 0.4) < 1e-12);
  assert.ok(Math.abs(r.meanIoU - 0.25) < 1e-12);
  assert.ok(Math.abs(r.meanDiceAll - 0.2) < 1e-12);
  assert.ok(Math.abs(r.pixelAccuracy - 0.25) < 1e-12);
  assert.ok(Math.abs(r.referenceDice - 1 / 3) < 1e-6, `referenceDice ${r.referenceDice}`);
  assert.deepEqual(r.perClass.map((c) => [c.value, c.support, c.predicted]), [[0, 576, 0], [255, 192, 768]]);
}

describe('evaluate', () => {
  test('2-class model forced to class 1: Dice, IoU, accuracy and confusion by hand (batch 1 and 2)', async () => {
    const ck = await forcedCheckpoint('two.pth', { nChannels: 1, nClasses: 2, bilinear: true }, [0, 255], 1);
    checkForcedOne(await runEvaluate(cfg({ model: ck }), quiet));
    const r2 = await runEvaluate(cfg({ model: ck, batchSize: 2 }), quiet);
    checkForcedOne(r2);
    const table = formatEvaluation(r2);
    assert.match(table, /^1\s+255\s+0\.4000\s+0\.2500\s+192\s+768$/m);
    assert.match(table, /Pixel accuracy:\s+0\.2500/);
    assert.match(table, /true 0\s+0\s+576/);
  });

  test('1-output (sigmoid) model with a reference-format file: same numbers; --json', async () => {
    const ck = await forcedCheckpoint('one.pth', { nChannels: 1, nClasses: 1, bilinear: true }, [0, 255], 1, true);
    const json = join(dir, 'out', 'metrics.json');
    const log = console.log;
    console.log = () => {};
    let code: number;
    try {
      code = await evaluateCommand(cfg({ model: ck, json }));
    } finally {
      console.log = log;
    }
    assert.equal(code, 0);
    const j = JSON.parse(readFileSync(json, 'utf8'));
    checkForcedOne(j);
    assert.equal(j.nClasses, 1);
    assert.deepEqual(j.maskValues, [0, 255]);
    assert.equal(j.scale, 0.5);
  });

  test('scale 1 and a model forced to the background', async () => {
    const ck = await forcedCheckpoint('bg.pth', { nChannels: 1, nClasses: 2, bilinear: true }, [0, 255], 0);
    const r = await runEvaluate(cfg({ model: ck, scale: 1 }), quiet);
    // 1536 px per image; a has 24 columns of class 1 (768 px)
    assert.deepEqual(r.confusion, [[2304, 0], [768, 0]]);
    assert.equal(r.perClass[1].dice, 0);
    assert.ok(Math.abs(r.perClass[0].dice - (2 * 2304) / (2 * 2304 + 768)) < 1e-12);
    assert.ok(Math.abs(r.pixelAccuracy - 0.75) < 1e-12);
    // per-image: a: 0 (prediction empty, truth not), b: empty vs empty = 1 -> 0.5
    assert.ok(Math.abs(r.referenceDice - 0.5) < 1e-6);
  });

  test('a broken pair is reported and skipped (exit code 2); the rest is scored', async () => {
    const i2 = join(dir, 'imgs2');
    const m2 = join(dir, 'masks2');
    mkdirSync(i2);
    mkdirSync(m2);
    await grey(join(i2, 'a.png'), Uint8Array.from({ length: W * H }, (_, i) => i & 255));
    await grey(join(m2, 'a.png'), Uint8Array.from({ length: W * H }, (_, i) => (i % W < 24 ? 255 : 0)));
    writeFileSync(join(i2, 'c.png'), 'broken');
    await grey(join(m2, 'c.png'), new Uint8Array(W * H));
    await grey(join(i2, 'd.png'), new Uint8Array(40 * 40), 40, 40); // size differs from its mask
    await grey(join(m2, 'd.png'), new Uint8Array(W * H));
    const ck = await forcedCheckpoint('two_b.pth', { nChannels: 1, nClasses: 2, bilinear: true }, [0, 255], 1);
    const warnings: string[] = [];
    const r = await runEvaluate(cfg({ model: ck, imgs: i2, masks: m2 }), { log: () => {}, warn: (l) => warnings.push(l) });
    assert.equal(r.images, 1);
    assert.deepEqual(r.confusion, [[0, 192], [0, 192]]);
    assert.deepEqual(r.failed.map((f) => f.image), [join(i2, 'c.png'), join(i2, 'd.png')]);
    assert.match(r.failed[0].reason, /not an image file/);
    assert.match(r.failed[1].reason, /is 48x32 but the image is 40x40/);
    assert.match(warnings.join('\n'), /c\.png/);
    const log = console.log;
    console.log = () => {};
    try {
      assert.equal(await evaluateCommand(cfg({ model: ck, imgs: i2, masks: m2 })), 2);
    } finally {
      console.log = log;
    }
  });

  test('mask values the checkpoint does not know: an error listing them', async () => {
    const ck = await forcedCheckpoint('weird.pth', { nChannels: 1, nClasses: 2, bilinear: true }, [0, 1], 1);
    await assert.rejects(runEvaluate(cfg({ model: ck }), quiet), (e: Error) => {
      assert.equal(e.name, 'PredictError');
      assert.match(e.message, /holds value\(s\) 255 that are not among the checkpoint's mask values \[0,1\]/);
      return true;
    });
    assert.deepEqual(unknownMaskValues([0, 7, [9, 9, 9], [1, 2, 3]], [0, 9]), [7, [1, 2, 3]]);
  });
});
