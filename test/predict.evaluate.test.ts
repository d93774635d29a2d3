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
  await sharp(px, { raw: { width: w, height: h, channels: 1 } })
    .toColourspace('b-w')
    .png()
    .toFile(file);
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
  await grey(
    join(masks, 'a_mask.png'),
    Uint8Array.from({ length: W * H }, (_, i) => (i % W < 24 ? 255 : 0)),
  );
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
 * Surface metrics, distances x2 (spacing full / scaled size = 2): class 1 of a: prediction boundary
 * = the 76 border pixels of 24x16, truth's = the 52 of columns 0..11. Border -> truth: 38 zeros,
 * 1..11 twice, 16 twelves: 95th percentile (index 71.25) 12; truth -> border: 38 zeros, 1..7 twice
 * (column 11: min(y, 15-y)): (index 48.45) 6. HD95 = 2*12 = 24. Within --surface-tol 2 (1 scaled
 * px): 40 + 40 of 128 -> NSD 0.625. b (class 1 only predicted) and class 0 everywhere: one side
 * empty -> no HD95, NSD 0. Means: class 1 HD95 24 (a only), NSD (0.625 + 0) / 2.
 */
function checkForcedOne(r: Awaited<ReturnType<typeof runEvaluate>>) {
  assert.equal(r.images, 2);
  assert.deepEqual(r.confusion, [
    [0, 576],
    [0, 192],
  ]);
  assert.ok(Math.abs(r.perClass[1].dice - 0.4) < 1e-12);
  assert.ok(Math.abs(r.perClass[1].iou - 0.25) < 1e-12);
  assert.equal(r.perClass[0].dice, 0);
  assert.equal(r.perClass[0].iou, 0);
  assert.ok(Math.abs(r.meanDice - 0.4) < 1e-12);
  assert.ok(Math.abs(r.meanIoU - 0.25) < 1e-12);
  assert.ok(Math.abs(r.meanDiceAll - 0.2) < 1e-12);
  assert.ok(Math.abs(r.pixelAccuracy - 0.25) < 1e-12);
  assert.ok(Math.abs(r.referenceDice - 1 / 3) < 1e-6, `referenceDice ${r.referenceDice}`);
  assert.deepEqual(
    r.perClass.map((c) => [c.value, c.support, c.predicted]),
    [
      [0, 576, 0],
      [255, 192, 768],
    ],
  );
  assert.deepEqual(
    r.perClass.map((c) => [c.hd95, c.nsd, c.hd95Undefined]),
    [
      [null, 0, 2],
      [24, 0.3125, 1],
    ],
  );
  assert.deepEqual([r.surfaceTol, r.meanHD95, r.meanNSD], [2, 24, 0.3125]);
}

describe('evaluate', () => {
  test('2-class model forced to class 1: Dice, IoU, accuracy and confusion by hand (batch 1 and 2)', async () => {
    const ck = await forcedCheckpoint('two.pth', { nChannels: 1, nClasses: 2, bilinear: true }, [0, 255], 1);
    checkForcedOne(await runEvaluate(cfg({ model: ck }), quiet));
    const r2 = await runEvaluate(cfg({ model: ck, batchSize: 2 }), quiet);
    checkForcedOne(r2);
    const table = formatEvaluation(r2);
    assert.match(table, /^1\s+255\s+0\.4000\s+0\.2500\s+24\.00\s+0\.3125\s+192\s+768$/m);
    assert.match(table, /^0\s+0\s+0\.0000\s+0\.0000\s+n\/a\s+0\.0000\s+576\s+0$/m);
    assert.match(table, /Mean HD95 \(px of the original image\) \/ NSD at 2 px:\s+24\.00 \/ 0\.3125/);
    assert.match(table, /HD95 leaves out .*: class 0: 2, class 1: 1\./);
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
    const r = await runEvaluate(cfg({ model: ck, scale: 1, surfaceTol: 1 }), quiet);
    // 1536 px per image; a has 24 columns of class 1 (768 px)
    assert.deepEqual(r.confusion, [
      [2304, 0],
      [768, 0],
    ]);
    assert.equal(r.perClass[1].dice, 0);
    assert.ok(Math.abs(r.perClass[0].dice - (2 * 2304) / (2 * 2304 + 768)) < 1e-12);
    assert.ok(Math.abs(r.pixelAccuracy - 0.75) < 1e-12);
    // per-image: a: 0 (prediction empty, truth not), b: empty vs empty = 1 -> 0.5
    assert.ok(Math.abs(r.referenceDice - 0.5) < 1e-6);
    // Class 0 of a at spacing 1: border (156 px) -> columns 24..47 (108 px): 78 zeros, 1..23 twice,
    // 32 of 24: 95th percentile 24; back: 78 zeros, 1..15 twice: 12.65. Within 1 px: 80 + 80 of 264.
    // b: both whole images: HD95 0, NSD 1. Class 1: a has no prediction (NSD 0), b neither (skipped).
    assert.deepEqual(
      r.perClass.map((c) => [c.hd95, c.hd95Undefined]),
      [
        [12, 0],
        [null, 1],
      ],
    );
    assert.ok(Math.abs((r.perClass[0].nsd as number) - (160 / 264 + 1) / 2) < 1e-12);
    assert.equal(r.perClass[1].nsd, 0);
  });

  test('a broken pair is reported and skipped (exit code 2); the rest is scored', async () => {
    const i2 = join(dir, 'imgs2');
    const m2 = join(dir, 'masks2');
    mkdirSync(i2);
    mkdirSync(m2);
    await grey(
      join(i2, 'a.png'),
      Uint8Array.from({ length: W * H }, (_, i) => i & 255),
    );
    await grey(
      join(m2, 'a.png'),
      Uint8Array.from({ length: W * H }, (_, i) => (i % W < 24 ? 255 : 0)),
    );
    writeFileSync(join(i2, 'c.png'), 'broken');
    await grey(join(m2, 'c.png'), new Uint8Array(W * H));
    await grey(join(i2, 'd.png'), new Uint8Array(40 * 40), 40, 40); // size differs from its mask
    await grey(join(m2, 'd.png'), new Uint8Array(W * H));
    const ck = await forcedCheckpoint('two_b.pth', { nChannels: 1, nClasses: 2, bilinear: true }, [0, 255], 1);
    const warnings: string[] = [];
    const r = await runEvaluate(cfg({ model: ck, imgs: i2, masks: m2 }), { log: () => {}, warn: (l) => warnings.push(l) });
    assert.equal(r.images, 1);
    assert.deepEqual(r.confusion, [
      [0, 192],
      [0, 192],
    ]);
    assert.deepEqual(
      r.failed.map((f) => f.image),
      [join(i2, 'c.png'), join(i2, 'd.png')],
    );
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
