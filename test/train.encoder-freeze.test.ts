// --freeze-encoder, --encoder-lr and the optimizers' parameter groups behind it, on a tiny model with
// an `encoder` child; the flags' parsing and their usage error without --encoder.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EXIT } from '../src/config/errors.js';
import * as E from '../src/engine/index.js';
import type { Tensor } from '../src/engine/index.js';
import { BatchNorm2d, Conv2d, Module } from '../src/nn/index.js';
import { Adam, CosineWarmupLR, ReduceLROnPlateau, SGD } from '../src/optim/index.js';
import { EncoderFreeze, checkEncoderFlags, encoderParameters, optimizerParams, weightsArgs } from '../src/train/freeze.js';
import { parseTrain } from './helpers/parse.js';
import { join } from 'node:path';
import { before } from 'node:test';
import type { TrainConfig } from '../src/config/options.js';
import { makeDemoDataset } from '../src/data/index.js';
import { type RawTensor, loadPth, savePth } from '../src/io/pth.js';
import { type LoadedCheckpoint, loadCheckpoint, saveCheckpoint, toRaw } from '../src/model/checkpoint.js';
import { createModel } from '../src/model/index.js';
import { tinyEncoderArgs } from './helpers/tiny-unet.js';
import { ENCODERS } from '../src/model/encoders/index.js';
import { train } from '../src/train/train.js';
import { floats, runConfig, sameWeights } from './helpers/runs.js';
import { tempDir } from './helpers/workdir.js';

class Tiny extends Module {
  readonly encoder: Conv2d;
  readonly bn: BatchNorm2d;
  readonly head: Conv2d;
  constructor() {
    super();
    this.encoder = this.child('encoder', new Conv2d(2, 3, 3, { padding: 1 }));
    this.bn = this.child('bn', new BatchNorm2d(3));
    this.head = this.child('head', new Conv2d(3, 1, 1));
  }
  forward(x: Tensor): Tensor {
    return this.head.forward(this.bn.forward(this.encoder.forward(x)).relu());
  }
}

/** One forward/backward of a fixed loss. */
function backward(m: Tiny, x: Tensor): void {
  E.tidy(() => m.forward(x).square().mean().backward());
}
const snapshot = (ps: Tensor[]) => ps.map((p) => E.noGrad(() => p.clone()).keep());
const maxAbs = (a: Tensor, b: Tensor) => E.tidy(() => a.sub(b).abs().amax().item());

test('--encoder-lr F: an SGD step moves the encoder by F x the rate of the rest; both groups in the state dict', () => {
  E.manualSeed(1);
  const m = new Tiny();
  const x = E.randn([2, 2, 6, 6]);
  const enc = encoderParameters(m);
  assert.deepEqual(enc, [m.encoder.weight, m.encoder.bias]);
  const lr = 0.1;
  const f = 0.25;
  const opt = new SGD(optimizerParams(m.parameters(), enc, lr, f), { lr });
  const before = snapshot(m.parameters());
  backward(m, x);
  const grads = m.parameters().map((p) => E.noGrad(() => (p.grad as Tensor).clone()).keep());
  opt.step();
  m.parameters().forEach((p, i) => {
    const rate = enc.includes(p) ? lr * f : lr;
    const moved = E.tidy(() => before[i].sub(p).sub(grads[i].mul(rate)).abs().amax().item());
    assert.ok(moved < 1e-7, `parameter ${i}: moved by other than ${rate} x grad (${moved})`);
  });
  const sd = opt.stateDict();
  assert.equal(sd.param_groups.length, 2);
  assert.deepEqual(
    sd.param_groups.map((g) => g.params),
    [
      [0, 1, 2, 3],
      [4, 5],
    ],
  ); // numbered across the groups: bn, head, then encoder
  assert.deepEqual(
    sd.param_groups.map((g) => g.lr),
    [lr, lr * f],
  );
  assert.deepEqual(optimizerParams(m.parameters(), enc, lr, 1), m.parameters()); // F = 1: one group, as before
  E.dispose([x, ...before, ...grads]);
  m.dispose();
});

test('two groups: the state dict round-trips (per-group lr and initial_lr); a one-group optimizer refuses it', () => {
  E.manualSeed(2);
  const m = new Tiny();
  const x = E.randn([2, 2, 6, 6]);
  const groups = () => optimizerParams(m.parameters(), encoderParameters(m), 1e-2, 0.1);
  const a = new Adam(groups(), { lr: 1e-2 });
  const sched = new CosineWarmupLR(a, { total: 10, warmup: 2 });
  const enc = 1e-2 * 0.1;
  assert.deepEqual(a.lrs, [1e-2 * 0.5, enc * 0.5]); // warmup from each group's own base
  backward(m, x);
  a.step();
  sched.step();
  const sd = a.stateDict();
  assert.deepEqual(
    sd.param_groups.map((g) => g.initial_lr),
    [1e-2, enc],
  );
  assert.deepEqual(sched.stateDict().base_lrs, [1e-2, enc]);
  const b = new Adam(groups(), { lr: 5 });
  b.loadStateDict(sd);
  assert.deepEqual(b.lrs, a.lrs);
  assert.deepEqual(b.stateDict().param_groups, sd.param_groups);
  for (const [i, s] of sd.state) assert.equal(maxAbs(b.stateDict().state.get(i)?.exp_avg as Tensor, s.exp_avg as Tensor), 0);
  const one = new Adam(m.parameters(), { lr: 1e-2 });
  assert.throws(() => one.loadStateDict(sd), /2 parameter groups; this optimizer has 1/);
  // ReduceLROnPlateau reduces every group.
  const plateau = new ReduceLROnPlateau(b, { patience: 0, factor: 0.5 });
  const lrs = b.lrs;
  plateau.step(1);
  plateau.step(2);
  assert.deepEqual(
    b.lrs,
    lrs.map((v) => v * 0.5),
  );
  assert.deepEqual(plateau.stateDict().min_lrs, [0, 0]);
  for (const o of [a, b, one]) o.dispose();
  x.dispose();
  m.dispose();
});

test('--freeze-encoder 1: no update and no optimizer state for the encoder in epoch 1, BatchNorm statistics still move; it trains from epoch 2', () => {
  E.manualSeed(3);
  const m = new Tiny();
  const x = E.randn([2, 2, 6, 6]);
  const enc = encoderParameters(m);
  const opt = new Adam(m.parameters(), { lr: 1e-2, weightDecay: 0.1 });
  const freeze = new EncoderFreeze(enc, 1);
  assert.equal(freeze.startEpoch(1), true);
  const encBefore = snapshot(enc);
  const headBefore = snapshot([m.head.weight]);
  const mean0 = snapshot([m.bn.stateDict().get('running_mean') as Tensor]);
  for (let i = 0; i < 3; i++) {
    opt.zeroGrad();
    backward(m, x);
    freeze.beforeStep();
    opt.step();
  }
  enc.forEach((p, i) => assert.equal(maxAbs(p, encBefore[i]), 0, 'frozen encoder parameter changed'));
  assert.ok(maxAbs(m.head.weight, headBefore[0]) > 0, 'the head trains');
  assert.ok(maxAbs(m.bn.stateDict().get('running_mean') as Tensor, mean0[0]) > 0, 'BatchNorm running statistics adapt');
  assert.deepEqual([...opt.stateDict().state.keys()], [2, 3, 4, 5]); // none for parameters 0, 1 (the encoder's)
  assert.equal(freeze.startEpoch(2), false);
  opt.zeroGrad();
  backward(m, x);
  freeze.beforeStep();
  opt.step();
  assert.ok(maxAbs(enc[0], encBefore[0]) > 0, 'the encoder trains once thawed');
  assert.equal(new EncoderFreeze(enc, 'all').startEpoch(1_000), true);
  E.dispose([x, ...encBefore, ...headBefore, ...mean0]);
  opt.dispose();
  m.dispose();
});

test('the flags parse (--freeze-encoder alone: all epochs) and need an encoder (usage error)', async () => {
  const base = ['train', '--imgs', 'i', '--masks', 'm'];
  const { cfg } = await parseTrain([...base, '--encoder-weights', 'imagenet', '--freeze-encoder', '--encoder-lr', '0.1']);
  assert.ok(cfg);
  assert.deepEqual([cfg.encoderWeights, cfg.freezeEncoder, cfg.encoderLr], ['imagenet', 'all', 0.1]);
  assert.equal((await parseTrain([...base, '--freeze-encoder', '3'])).cfg?.freezeEncoder, 3);
  const defaults = (await parseTrain(base)).cfg;
  assert.deepEqual([defaults?.encoderWeights, defaults?.freezeEncoder, defaults?.encoderLr], ['', 0, 1]);
  assert.throws(
    () => checkEncoderFlags(cfg),
    (e: Error & { exitCode?: number }) => {
      assert.equal(e.exitCode, EXIT.usage);
      assert.match(e.message, /^--encoder-weights imagenet, --freeze-encoder, --encoder-lr needs --encoder NAME/);
      return true;
    },
  );
  assert.doesNotThrow(() => checkEncoderFlags({ ...cfg, encoder: 'resnet34' }));
  assert.doesNotThrow(() => checkEncoderFlags(defaults as NonNullable<typeof defaults>));
});

test("normalize in the model args: ImageNet's with --encoder-weights, a unet-ts checkpoint's own, a checkpoint's kept on resume, none otherwise", async () => {
  const dir = tempDir('enc-normalize');
  const flags = { encoder: 'resnet18', encoderWeights: join(dir, 'resnet18.pth'), freezeEncoder: 0 as const, encoderLr: 1 };
  await savePth(flags.encoderWeights, { 'conv1.weight': toRaw(E.zeros([64, 3, 7, 7]).keep()) });
  assert.deepEqual(await weightsArgs(flags, 3), { normalize: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } });
  // An encoder trained here (e.g. on other data) keeps its own normalisation: none, or what it had
  const [grey1, rgb] = [1, 3].map((nChannels) => createModel({ ...tinyEncoderArgs('resnet18'), nChannels }));
  const ours = join(dir, 'trained-here.pth');
  const save = (normalize?: { mean: number[]; std: number[] }) => {
    const m = normalize?.mean.length === 3 ? rgb : grey1;
    return saveCheckpoint(ours, { model: m.stateDict(), epoch: 1, globalStep: 1, loss: 0, valScore: 0, maskValues: [0, 1], modelArgs: { ...m.args, ...(normalize ? { normalize } : {}) }, config: {} });
  };
  await save();
  assert.deepEqual(await weightsArgs({ ...flags, encoderWeights: ours }, 3), {});
  await save({ mean: [0.449], std: [0.226] });
  assert.deepEqual(await weightsArgs({ ...flags, encoderWeights: ours }, 1), { normalize: { mean: [0.449], std: [0.226] } });
  assert.deepEqual(await weightsArgs({ ...flags, encoderWeights: ours }, 3), { normalize: { mean: [0.449, 0.449, 0.449], std: [0.226, 0.226, 0.226] } }, 'cycled to 3 channels');
  await save({ mean: [0.2, 0.4, 0.6], std: [0.1, 0.2, 0.3] });
  const grey = (await weightsArgs({ ...flags, encoderWeights: ours }, 1)).normalize;
  assert.ok(grey && Math.abs(grey.mean[0] - 0.4) < 1e-12 && Math.abs(grey.std[0] - 0.2) < 1e-12, 'averaged to 1 channel');
  grey1.dispose();
  rgb.dispose();
  const saved = { nChannels: 1, normalize: { mean: [0.5], std: [0.25] } };
  assert.deepEqual(await weightsArgs({ ...flags, encoderWeights: '' }, 1, saved), { normalize: saved.normalize });
  assert.deepEqual(await weightsArgs({ ...flags, encoderWeights: '' }, 3, { nChannels: 3 }), {});
});

// The hook-up in train(), on the encoder UNet (resnet18 at encoder depth 3, a narrow decoder).
const root = tempDir('enc-freeze');
const data = join(root, 'data');
const weights = join(root, 'resnet18.pth');
before(async () => {
  await makeDemoDataset(data, { count: 10, size: 32, classes: 2, seed: 5 });
  E.manualSeed(9);
  const enc = ENCODERS.resnet18.build(3, 5);
  const sd = Object.fromEntries([...enc.stateDict()].map(([k, t]) => [k, toRaw(t)]));
  await savePth(weights, { ...sd, 'fc.weight': toRaw(E.zeros([1000, 512]).keep()), 'fc.bias': toRaw(E.zeros([1000]).keep()) });
  enc.dispose();
});

test('train: --encoder-weights loads the file, --freeze-encoder 1 keeps the encoder in epoch 1 only, --encoder-lr 0.5 gives a second group', async () => {
  const logs: string[] = [];
  const cfgIn = (dir: string, load = '') =>
    ({
      ...runConfig(data, join(root, dir), { load, epochs: 2, batchSize: 2, learningRate: 1e-2, scale: 1, validation: 20, classes: 2, valEvery: 0, patience: 0, optimizer: 'adam' }),
      encoder: 'resnet18',
      encoderDepth: 3,
      decoderChannels: [16, 8, 8],
      encoderWeights: weights,
      freezeEncoder: 1,
      encoderLr: 0.5,
    }) as TrainConfig;
  const hooks = { log: (l: string) => logs.push(l), warn: () => {} };
  await train(cfgIn('run'), hooks);
  assert.ok(logs.includes(`Encoder weights: ${weights}`), logs.join('\n'));
  const file = (await loadPth(weights)) as Record<string, RawTensor>;
  const ck = (n: number): Promise<LoadedCheckpoint> => loadCheckpoint(join(root, 'run', 'checkpoints', `checkpoint_epoch${n}.pth`));
  const [one, two] = [await ck(1), await ck(2)];
  const w = (c: LoadedCheckpoint, k: string) => Array.from(floats(c.model.get(k) as never));
  const fromFile = Array.from(floats(file['conv1.weight']));
  assert.deepEqual(w(one, 'encoder.conv1.weight'), fromFile, "epoch 1: the encoder is the file's");
  assert.notDeepEqual(w(one, 'encoder.bn1.running_mean'), Array.from(floats(file['bn1.running_mean'])), 'BatchNorm statistics adapt while frozen');
  assert.notDeepEqual(w(two, 'encoder.conv1.weight'), fromFile, 'epoch 2: the encoder trains');
  const opt = (c: LoadedCheckpoint) => c.optimizer as unknown as { param_groups: { lr: number; params: number[] }[]; state: Map<unknown, unknown> | Record<string, unknown> };
  const ids = (c: LoadedCheckpoint) => new Set((opt(c).state instanceof Map ? [...(opt(c).state as Map<unknown, unknown>).keys()] : Object.keys(opt(c).state)).map(Number));
  const [g1, g2] = opt(two).param_groups;
  assert.equal(g2.lr, g1.lr * 0.5);
  const encoder = ENCODERS.resnet18.build(3, 3);
  const encoderParams = encoder.parameters().length;
  encoder.dispose();
  assert.ok(g2.params.length === encoderParams && g2.params.every((i) => !ids(one).has(i)), 'the encoder group: no optimizer state for the frozen encoder after epoch 1');
  assert.ok(
    g2.params.every((i) => ids(two).has(i)),
    'the encoder has optimizer state after epoch 2',
  );
  // Resumed after epoch 1 (frozen), the encoder thaws in epoch 2 with both groups restored: the same run.
  await train(cfgIn('resumed', join(root, 'run', 'checkpoints', 'checkpoint_epoch1.pth')), hooks);
  assert.ok(logs.includes(`--encoder-weights not read: the weights come from ${join(root, 'run', 'checkpoints', 'checkpoint_epoch1.pth')}`));
  const resumed = await loadCheckpoint(join(root, 'resumed', 'checkpoints', 'checkpoint_epoch2.pth'));
  assert.ok(sameWeights(resumed.model, two.model), 'resumed run = uninterrupted run');
  assert.deepEqual(opt(resumed).param_groups, opt(two).param_groups);
});
