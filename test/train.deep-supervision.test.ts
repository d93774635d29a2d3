// train --depth 3 --base-channels 16 --deep-supervision end to end on tiny data: --resume is exact
// (the auxiliary heads included), the saved model is the plain UNet (no auxiliary keys), and
// predict and the ONNX export read its depth and width from the checkpoint.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { OptionError, type TrainConfig, defaults, predictOptions } from '../src/config/options.js';
import { makeDemoDataset } from '../src/data/index.js';
import { exportCommand } from '../src/export/command.js';
import { loadOnnxPredictor } from '../src/export/onnx-runtime.js';
import { loadPth } from '../src/io/pth.js';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { UNet } from '../src/model/index.js';
import { forwardLogits, loadPredictor, preprocess, runPredict } from '../src/predict/index.js';
import { train } from '../src/train/train.js';
import { assertClose } from './helpers/python.js';
import { quiet, runConfig } from './helpers/runs.js';
import { tempDir } from './helpers/workdir.js';

const root = tempDir('deep-sup');
const data = join(root, 'data');
before(() => makeDemoDataset(data, { count: 5, size: 32, classes: 3, seed: 4 }));

const cfg = (dir: string, over: Partial<TrainConfig> = {}): TrainConfig =>
  runConfig(data, join(root, dir), { depth: 3, baseChannels: 16, deepSupervision: true, classes: 3, scale: 1, epochs: 2, batchSize: 2, learningRate: 1e-3, validation: 20, ...over });

test('depth 3 / base 16 with --deep-supervision: resumed = uninterrupted, plain UNet saved, predict and ONNX export', async () => {
  await train(cfg('a'), quiet);
  await train(cfg('b', { epochs: 1 }), quiet);
  await train(cfg('b', { load: join(root, 'b', 'checkpoints', 'checkpoint_epoch1.pth') }), quiet);
  const last = (d: string) => loadCheckpoint(join(root, d, 'checkpoints', 'checkpoint_epoch2.pth'));
  const [ca, cb] = [await last('a'), await last('b')];
  assert.deepEqual([...(cb.auxHeads?.keys() ?? [])], ['aux1.weight', 'aux1.bias']); // 1/2 only: 1/4 is the lowest, weight 0
  for (const [part, a, b] of [
    ['model', ca.model, cb.model],
    ['heads', ca.auxHeads, cb.auxHeads],
  ] as const) {
    for (const [k, t] of a ?? []) assert.ok(Buffer.from(b?.get(k)?.data ?? []).equals(Buffer.from(t.data)), `${part} ${k} differs after --resume`);
  }

  // The inference model: exactly the plain UNet of that depth and width.
  const best = join(root, 'a', 'checkpoints', 'best_model.pth');
  const raw = (await loadPth(best)) as Record<string, Record<string, unknown>>;
  const plain = new UNet({ nChannels: 3, nClasses: 3, bilinear: false, depth: 3, baseChannels: 16 });
  assert.deepEqual(Object.keys(raw.model_state_dict), [...plain.stateDict().keys()]);
  plain.dispose();
  assert.deepEqual(raw.model_args, { n_channels: 3, n_classes: 3, bilinear: false, depth: 3, base_channels: 16 });
  assert.deepEqual(Object.keys(raw.deep_supervision_state_dict), ['aux1.weight', 'aux1.bias']);

  // predict and the ONNX export rebuild depth 3 / base 16 from the checkpoint alone.
  const image = join(data, 'imgs', readdirSync(join(data, 'imgs')).sort()[0]);
  const out = join(root, 'mask.png');
  const r = await runPredict({ ...defaults(predictOptions), device: 'cpu', model: best, input: [image], output: [out], scale: 1 }, { ...quiet, progress: false });
  assert.equal(r.exitCode, 0);
  assert.ok(existsSync(out));
  const onnx = join(root, 'model.onnx');
  assert.equal(await exportCommand({ model: best, format: 'onnx', output: onnx, log: () => {} }), 0);
  const bytes = readFileSync(onnx).toString('latin1');
  assert.ok(bytes.includes('up3.conv.double_conv') && !bytes.includes('up4.') && !bytes.includes('down4.') && !bytes.includes('aux'));
  const p = await loadPredictor(best, { device: 'cpu' });
  const o = await loadOnnxPredictor(onnx);
  try {
    assert.deepEqual([p.args.depth, p.args.baseChannels], [3, 16]);
    const pre = await preprocess(image, 1, 3);
    const ours = forwardLogits(p, [pre]).disposeAfter((t) => t.data() as Float32Array);
    const y = await o.run(pre.data, [1, 3, pre.height, pre.width]);
    assertClose(y.data, ours, 1e-4, 1e-4, 'ONNX logits');
  } finally {
    p.dispose();
    await o.release();
  }
});

test('usage errors: --deep-supervision below --depth 3, a bottleneck over 2048 channels; another depth in --load is refused', async () => {
  await assert.rejects(train(cfg('e1', { depth: 2 }), quiet), (e: Error) => e instanceof OptionError && /--deep-supervision needs --depth 3 or more/.test(e.message));
  await assert.rejects(train(cfg('e2', { depth: 6, baseChannels: 64 }), quiet), /--depth 6 --base-channels 64: .*4096 channels at the bottleneck, over the limit of 2048/);
  const ckpt = join(root, 'a', 'checkpoints', 'checkpoint_epoch1.pth');
  await assert.rejects(
    train(cfg('e3', { depth: 4, baseChannels: 4, load: ckpt }), quiet),
    (e: Error) => /was trained with another architecture/.test(e.message) && /depth: checkpoint 3, --depth 4/.test(e.message) && /--depth 3 --base-channels 16 --deep-supervision/.test(e.message),
  );
  await assert.rejects(train(cfg('e4', { deepSupervision: false, load: ckpt }), quiet), /deep supervision: checkpoint with, flags no --deep-supervision/);
});
