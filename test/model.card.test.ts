// The model card (src/model/card.ts): what predict, export, the web page, serve and the dashboard's
// "try it" read about a checkpoint's model, for our checkpoints, the reference's files (no
// model_args, no scale: inferred and defaulted) and encoder UNets (normalize in model_args).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as E from '../src/engine/index.js';
import { cardMetadata, modelCard, runnableMetadata } from '../src/model/card.js';
import { readCheckpointInfo, saveCheckpoint, saveReferenceStateDict } from '../src/model/checkpoint.js';
import { type UNetArgs, createModel } from '../src/model/index.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../src/model/encoders/index.js';
import { TinyUNet } from './helpers/tiny-unet.js';

async function withDir(f: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'card-'));
  try {
    await f(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("our checkpoint's card: its args, mask values, class names, training scale, min side and metadata", () =>
  withDir(async (dir) => {
    const args: UNetArgs = { nChannels: 3, nClasses: 3, bilinear: true, depth: 3, baseChannels: 4 };
    const m = createModel(args);
    await saveCheckpoint(join(dir, 'a.pth'), {
      model: m.stateDict(),
      epoch: 2,
      globalStep: 4,
      loss: 0,
      valScore: 0.5,
      maskValues: [0, 128, 255],
      classNames: ['bg', 'cell', 'edge'],
      modelArgs: args,
      config: { scale: 0.25 },
    });
    m.dispose();
    const card = modelCard(await readCheckpointInfo(join(dir, 'a.pth')));
    assert.deepEqual(card.args, args);
    assert.deepEqual(card.maskValues, [0, 128, 255]);
    assert.equal(card.maskValuesSource, 'checkpoint');
    assert.deepEqual(card.classNames, ['bg', 'cell', 'edge']);
    assert.equal(card.trainingScale, 0.25);
    assert.equal(card.minSide, 8);
    assert.deepEqual(card.notes, []);
    assert.deepEqual(card.modelArgs, { n_channels: 3, n_classes: 3, bilinear: true, depth: 3, base_channels: 4 });
    assert.deepEqual(cardMetadata(card), { model_args: JSON.stringify(card.modelArgs), mask_values: '[0,128,255]', class_names: '["bg","cell","edge"]' });
    assert.deepEqual(Object.keys(runnableMetadata(card, 0.5)), ['model_args', 'mask_values', 'scale', 'min_size', 'class_names']);
    assert.equal(runnableMetadata(card, 0.5, 32).min_size, '32');
  }));

test("a reference-format file's card: args inferred from the weights, mask values and scale left to the defaults", () =>
  withDir(async (dir) => {
    const m = new TinyUNet({ nChannels: 1, nClasses: 2, bilinear: false });
    await saveReferenceStateDict(join(dir, 'ref.pth'), m.stateDict(), []);
    m.dispose();
    const card = modelCard(await readCheckpointInfo(join(dir, 'ref.pth')));
    assert.deepEqual(card.args, { nChannels: 1, nClasses: 2, bilinear: false, depth: 4, baseChannels: 4 });
    assert.deepEqual(card.maskValues, [0, 1]);
    assert.equal(card.maskValuesSource, 'default');
    assert.match(card.notes.join('\n'), /no mask_values; classes are written as \[0,1\]/);
    assert.equal(card.classNames, null);
    assert.equal(card.trainingScale, null); // chooseScale then falls back to the reference's 0.5
    assert.equal(card.minSide, 16);
    assert.deepEqual(card.modelArgs, { n_channels: 1, n_classes: 2, bilinear: false, depth: 4, base_channels: 4 });
    assert.equal(cardMetadata(card).class_names, undefined);
  }));

test("an encoder checkpoint's card: encoder args with normalize, min side from the encoder depth, class names only one per value", () =>
  withDir(async (dir) => {
    const normalize = { mean: IMAGENET_MEAN, std: IMAGENET_STD };
    const args: UNetArgs = { nChannels: 3, nClasses: 1, bilinear: false, encoder: 'resnet18', encoderDepth: 3, decoderChannels: [16, 8, 8], headKernel: 1, normalize };
    E.manualSeed(0);
    const m = createModel(args);
    await saveCheckpoint(join(dir, 'enc.pth'), {
      model: m.stateDict(),
      epoch: 1,
      globalStep: 1,
      loss: 0,
      valScore: 0,
      maskValues: [0, 255, 7],
      classNames: ['bg', 'fg', 'extra'],
      modelArgs: args,
      config: {},
    });
    m.dispose();
    const card = modelCard(await readCheckpointInfo(join(dir, 'enc.pth')));
    assert.deepEqual(card.args.normalize, normalize);
    assert.deepEqual(card.maskValues, [0, 255]); // one output: binary, the extra value cut with a note
    assert.match(card.notes.join('\n'), /lists 3 mask values \[0,255,7\] for a 2-class model; only the first 2 are used/);
    assert.equal(card.classNames, null); // 3 names for 2 values: none
    assert.equal(card.minSide, 8);
    assert.deepEqual(card.modelArgs, {
      n_channels: 3,
      n_classes: 1,
      bilinear: false,
      encoder: 'resnet18',
      encoder_depth: 3,
      decoder_channels: [16, 8, 8],
      head_kernel: 1,
      normalize_mean: [...IMAGENET_MEAN],
      normalize_std: [...IMAGENET_STD],
    });
    assert.deepEqual(JSON.parse(runnableMetadata(card, 1).model_args), card.modelArgs);
  }));
