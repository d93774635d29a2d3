// Long runs keep resident memory flat: 2,000 training steps through train() and 10,000
// predictions through the predictor API, with the resident set size sampled along the way; the
// fitted slope over the second half and the live tensor count at the end are asserted. (No GPU
// here: device memory is not measured.)
//
// Scaled setting: a full-size UNet step takes ~0.5 s on two cores, so these runs use a UNet with
// the same parts, layout and state_dict keys but 1/16 of the channels (test/helpers/tiny-unet.ts,
// through train()'s createModel hook), on 32x32 images with batch 1. Everything else is the real
// code path: data loading and caching, loss, backward, RMSprop, gradient clipping, scheduler,
// validation, checkpoints every epoch, TensorBoard and metrics files; and for prediction:
// forward, resize, argmax, probabilities and their PNG encoding, with the image file decoded and the
// mask PNG encoded every 5th prediction. UNET_LONG_TESTS=1 runs 10,000 training steps and 50,000 predictions.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { type TrainConfig, defaults, trainOptions } from '../src/config/options.js';
import * as E from '../src/engine/index.js';
import type { UNet } from '../src/model/index.js';
import { type Predictor, encodeMaskPng, encodeProbPng, predictBatch, preprocess } from '../src/predict/index.js';
import { train } from '../src/train/train.js';
import { type Sample, describeTrend, gc, rssMB, trend } from './helpers/memory.js';
import { TinyUNet, tinyUNet } from './helpers/tiny-unet.js';
import { demoDataDir } from './helpers/workdir.js';

// One intra-op thread: small ops on two threads slow down badly when another process competes for
// the cores (OpenMP barriers spin), and this test is about memory, not speed.
E.setNumThreads(1);

const LONG = process.env.UNET_LONG_TESTS === '1';
const TRAIN_STEPS = LONG ? 10_000 : 2_000;
const PREDICTIONS = LONG ? 50_000 : 10_000;
/** MB of resident memory per 1000 steps (or predictions) that counts as a leak. */
const MAX_SLOPE = 5;

const { root } = demoDataDir('rel-memory', { count: 20, size: 32, classes: 2, seed: 8 });

test(`${TRAIN_STEPS} training steps through train(): flat resident memory, every tensor freed at the end`, { timeout: 900_000 }, async (t) => {
  // 20 images, -v 10: 18 training steps per epoch.
  const epochs = Math.ceil(TRAIN_STEPS / 18);
  const cfg: TrainConfig = {
    ...defaults(trainOptions),
    imgs: join(root, 'data', 'imgs'),
    masks: join(root, 'data', 'masks'),
    checkpointDir: join(root, 'checkpoints'),
    logdir: join(root, 'runs'),
    device: 'cpu',
    workers: 2,
    bilinear: true,
    scale: 1,
    epochs,
    validation: 10,
    patience: 0,
    keepLast: 2,
  };
  gc();
  const live0 = E.memoryStats().liveTensors;
  const samples: Sample[] = [];
  let epoch = 0;
  const t0 = performance.now();
  const r = await train(cfg, {
    log: (line) => {
      if (/^Epoch \d+\/\d+: loss/.test(line)) {
        epoch++;
        gc();
        samples.push({ i: epoch * 18, rss: rssMB() });
      }
    },
    warn: () => {},
    createModel: (args) => tinyUNet(args),
  });
  const seconds = (performance.now() - t0) / 1000;
  gc();
  const tr = trend(samples);
  t.diagnostic(describeTrend('train()', tr, 'steps'));
  t.diagnostic(
    `train(): ${epochs * 18} steps in ${epochs} epochs, ${seconds.toFixed(1)} s (${((seconds / (epochs * 18)) * 1000).toFixed(1)} ms per step incl. validation and checkpoints), live tensors ${live0} -> ${E.memoryStats().liveTensors}`,
  );
  assert.equal(r.epochsRun, epochs);
  assert.equal(E.memoryStats().liveTensors, live0, 'model, optimizer state, scaler and best-weights copies freed when train() returns');
  assert.ok(tr.slopePer1000 < MAX_SLOPE, `resident memory grows ${tr.slopePer1000.toFixed(2)} MB per 1000 steps`);
  assert.ok(tr.lateGrowth < 20, `resident memory grew ${tr.lateGrowth.toFixed(1)} MB between the second and the last quarter`);
});

test(`${PREDICTIONS} predictions through the predictor API: flat resident memory, no live tensors left`, { timeout: 900_000 }, async (t) => {
  gc();
  const live0 = E.memoryStats().liveTensors;
  const args = { nChannels: 3, nClasses: 2, bilinear: true };
  const model = new TinyUNet(args);
  model.eval();
  const p: Predictor = {
    path: 'tiny',
    kind: 'unet-ts',
    args,
    maskValues: [0, 255],
    maskValuesSource: 'checkpoint',
    notes: [],
    device: 'cpu',
    ampDtype: null,
    model: model as unknown as UNet,
    epoch: 1,
    valScore: null,
    trainingScale: null,
    dispose: () => model.dispose(),
  };
  const files = ['000', '001', '002', '003'].map((id) => join(root, 'data', 'imgs', `${id}.png`));
  const samples: Sample[] = [];
  const every = PREDICTIONS / 100;
  const t0 = performance.now();
  let foreground = 0;
  let item = await preprocess(files[0], 0.75, 3);
  for (let i = 1; i <= PREDICTIONS; i++) {
    // Every 5th prediction also decodes its image file and encodes the mask PNG (libvips, ~3 ms
    // together); scale 0.75 makes the logits go through the resize back to the full 32x32.
    if (i % 5 === 0) item = await preprocess(files[i % files.length], 0.75, 3);
    const [pred] = predictBatch(p, [item], { probs: i % 10 === 0 });
    if (i % 5 === 0) assert.ok((await encodeMaskPng(pred.classes, pred.width, pred.height, p.maskValues)).length > 0);
    if (pred.probs) for (const pr of pred.probs) encodeProbPng(pr, pred.width, pred.height);
    foreground += pred.classes.reduce((a, b) => a + b, 0) > 0 ? 1 : 0;
    if (i % 100 === 0) await new Promise((r) => setImmediate(r));
    if (i % every === 0) {
      gc();
      samples.push({ i, rss: rssMB() });
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  p.dispose();
  const tr = trend(samples);
  t.diagnostic(describeTrend('predict', tr, 'predictions'));
  t.diagnostic(`predict: ${PREDICTIONS} predictions in ${seconds.toFixed(1)} s (${((seconds / PREDICTIONS) * 1000).toFixed(2)} ms each), ${foreground} with foreground`);
  assert.equal(E.memoryStats().liveTensors, live0);
  assert.ok(tr.slopePer1000 < MAX_SLOPE, `resident memory grows ${tr.slopePer1000.toFixed(2)} MB per 1000 predictions`);
  assert.ok(tr.lateGrowth < 20, `resident memory grew ${tr.lateGrowth.toFixed(1)} MB between the second and the last quarter`);
});
