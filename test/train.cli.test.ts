// unet train: flags and defaults, the guide's command lines, and input errors.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type Handlers, buildProgram } from '../src/cli/program.js';
import { type TrainConfig, defaults, trainOptions } from '../src/config/options.js';
import { GUIDE_LINES } from './helpers/guide.js';

/** Parses a command line with handlers that only record the config. */
async function parse(argv: string[]): Promise<{ cfg?: TrainConfig; error?: string }> {
  let cfg: TrainConfig | undefined;
  let err = '';
  const handlers: Handlers = {
    train: async (c) => {
      cfg = c;
      return 0;
    },
    predict: async () => 0,
    evaluate: async () => 0,
  };
  const program = buildProgram(handlers, { exitOverride: true, writeErr: (s) => (err += s) });
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    return { error: err || (e as Error).message };
  }
  return { cfg };
}

test("defaults are the guide's", async () => {
  const { cfg } = await parse(['train']);
  assert.ok(cfg);
  assert.equal(cfg.epochs, 5);
  assert.equal(cfg.batchSize, 1);
  assert.equal(cfg.learningRate, 1e-5);
  assert.equal(cfg.scale, 0.5);
  assert.equal(cfg.validation, 10);
  assert.equal(cfg.classes, 2);
  assert.equal(cfg.load, '');
  assert.equal(cfg.bilinear, false);
  assert.equal(cfg.amp, false);
  assert.equal(cfg.accumulateGradBatches, 1);
  assert.equal(cfg.imgs, 'data/imgs');
  assert.equal(cfg.masks, 'data/masks');
  assert.equal(cfg.checkpointDir, 'checkpoints');
  assert.equal(cfg.patience, 10);
  assert.equal(cfg.minDelta, 1e-3);
  assert.equal(cfg.optimizer, 'rmsprop');
  assert.equal(cfg.scheduler, 'plateau');
  assert.equal(cfg.tensorboard, true);
  assert.deepEqual(Object.keys(cfg).sort(), Object.keys(defaults(trainOptions)).sort());
});

test('short and long flags', async () => {
  const { cfg } = await parse(['train', '-e', '7', '-b', '3', '-l', '0.0001', '-s', '0.25', '-v', '15', '-c', '5', '-f', 'x.pth', '--bilinear', '--amp', '--accumulate-grad-batches', '4']);
  assert.ok(cfg);
  assert.deepEqual([cfg.epochs, cfg.batchSize, cfg.learningRate, cfg.scale, cfg.validation, cfg.classes, cfg.load, cfg.bilinear, cfg.amp, cfg.accumulateGradBatches], [7, 3, 1e-4, 0.25, 15, 5, 'x.pth', true, true, 4]);
  const long = await parse(['train', '--epochs', '2', '--batch-size', '2', '--learning-rate', '1e-3', '--scale', '1', '--validation', '0', '--classes', '1', '--load', 'y.pth']);
  assert.deepEqual([long.cfg?.epochs, long.cfg?.batchSize, long.cfg?.learningRate, long.cfg?.scale, long.cfg?.validation, long.cfg?.classes, long.cfg?.load], [2, 2, 1e-3, 1, 0, 1, 'y.pth']);
  const more = await parse([
    'train',
    '--imgs',
    'a',
    '--masks',
    'b',
    '--mask-suffix',
    '_mask',
    '--checkpoint-dir',
    'c',
    '--device',
    'cpu',
    '--seed',
    '3',
    '--patience',
    '4',
    '--min-delta',
    '0.01',
    '--optimizer',
    'adamw',
    '--scheduler',
    'cosine',
    '--augment',
    '--workers',
    '2',
    '--channels',
    '1',
    '--val-every',
    '50',
    '--keep-last',
    '2',
    '--skip-unpaired',
    '--no-tensorboard',
    '--dashboard',
    '--port',
    '0',
    '--wandb',
    '--name',
    'x',
  ]);
  const c = more.cfg as TrainConfig;
  assert.deepEqual(
    [
      c.imgs,
      c.masks,
      c.maskSuffix,
      c.checkpointDir,
      c.device,
      c.seed,
      c.patience,
      c.minDelta,
      c.optimizer,
      c.scheduler,
      c.augment,
      c.workers,
      c.channels,
      c.valEvery,
      c.keepLast,
      c.skipUnpaired,
      c.tensorboard,
      c.dashboard,
      c.port,
      c.wandb,
      c.name,
    ],
    ['a', 'b', '_mask', 'c', 'cpu', 3, 4, 0.01, 'adamw', 'cosine', true, 2, 1, 50, 2, true, false, true, 0, true, 'x'],
  );
});

for (const [argv, pattern] of [
  [['train', '-e', '0'], /--epochs.*positive integer.*'0'/],
  [['train', '-e', 'many'], /positive integer.*'many'/],
  [['train', '-s', '0'], /\(0, 1\].*'0'/],
  [['train', '-s', '1.5'], /\(0, 1\].*'1\.5'/],
  [['train', '-v', '100'], /\[0, 100\).*'100'/],
  [['train', '-v', '-5'], /\[0, 100\)/],
  [['train', '-b', '0'], /positive integer/],
  [['train', '-l', '-1'], /> 0/],
  [['train', '--optimizer', 'lbfgs'], /rmsprop, adam, adamw, sgd/],
  [['train', '--device', 'gpu'], /auto, cpu, cuda/],
  [['train', '--epoch', '3'], /unknown option '--epoch'[\s\S]*Did you mean --epochs/],
  [['trian'], /unknown command 'trian'[\s\S]*Did you mean train/],
] as [string[], RegExp][]) {
  test(`rejects ${argv.join(' ')} with a clear message`, async () => {
    const r = await parse(argv);
    assert.equal(r.cfg, undefined);
    assert.match(r.error ?? '', pattern);
  });
}

test('every command line of the guide parses', async () => {
  for (const line of GUIDE_LINES) {
    const r = await parse(line.split(' '));
    assert.ok(r.cfg, `${line}: ${r.error}`);
  }
});

test('--help lists every option with its default', async () => {
  let out = '';
  const program = buildProgram(undefined, { exitOverride: true });
  const train = program.commands.find((c) => c.name() === 'train');
  assert.ok(train);
  train.configureOutput({ writeOut: (s) => (out += s) });
  assert.throws(() => train.parse(['--help'], { from: 'user' }));
  for (const spec of Object.values(trainOptions)) assert.ok(out.includes(spec.flags.split(' <')[0].split(', ').pop() as string), spec.flags);
  assert.match(out, /--epochs <n>\s+number of epochs \(default: 5\)/);
  assert.match(out, /--learning-rate <lr>\s+learning rate \(default: 0\.00001\)|--learning-rate <lr>\s+learning rate \(default: 1e-5\)/);
});
