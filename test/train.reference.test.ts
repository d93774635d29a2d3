// train() against the project's PyTorch reference trainer (test/reference/trainer.py): the same
// narrow UNet, the same images, split and batch order on both sides, 3 epochs with gradient
// accumulation over an odd number of batches, clipping, validation rounds on the reference's
// cadence and a plateau scheduler that really reduces the lr. And the validation Dice against
// the reference's evaluate.py formula on models that predict several classes.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { type TrainConfig, defaults, trainOptions } from '../src/config/options.js';
import { makeDemoDataset } from '../src/data/index.js';
import * as E from '../src/engine/index.js';
import { validationDice } from '../src/metrics/confusion.js';
import { UNet, type UNetArgs } from '../src/model/index.js';
import { loadCheckpoint, weightsToTensors } from '../src/model/checkpoint.js';
import { train } from '../src/train/train.js';
import { PY_EXCHANGE, assertMovedAsReference, dumpTensors, loadTensors } from './helpers/exchange.js';
import { NO_TORCH, assertClose, hasTorch, runPython } from './helpers/python.js';
import { PY_IMPORT_REFERENCE, REFERENCE_ROOT } from './helpers/reference.js';
import { tempDir } from './helpers/workdir.js';

const SKIP = hasTorch() ? false : NO_TORCH;
const root = tempDir('refloop');

const FIT_PY = `${PY_IMPORT_REFERENCE}${PY_EXCHANGE}
torch.set_num_threads(2)
from reference.data import Dataset
from reference.model import UNet
from reference.trainer import fit
r = _REQ; d = r['dir']
ds = Dataset(r['imgs'], r['masks'], 1.0, values=r['maskValues'])
index = {i: k for k, i in enumerate(ds.ids())}
model = UNet(r['nChannels'], r['classes'], r['bilinear'], width_divisor=r['div'])
model.load_state_dict(load(d, 'init.json'), strict=True)
val = ds.batches([index[i] for i in r['val']], r['batchSize'])
epoch_batches = lambda e: ds.batches([index[i] for i in r['order'][e - 1]], r['batchSize'])
h = fit(model, epoch_batches, val, len(r['train']), r['batchSize'], r['classes'], r['epochs'], r['lr'],
        accumulate=r['accumulate'], grad_clip=1.0, lr_patience=r['lrPatience'])
dump(d, model.state_dict(), 'final.json')
print(json.dumps(h))
`;

interface History {
  epoch_loss: number[];
  epoch_dice: number[];
  epoch_lr: number[];
  rounds: { epoch: number; batch: number; step: number; dice: number; lr: number }[];
}

test('3 epochs of train() equal the reference loop: weights, lr, losses, validation rounds (accumulation 2 over 11 batches, clipping, plateau)', { skip: SKIP, timeout: 300_000 }, async () => {
  const data = join(root, 'data');
  await makeDemoDataset(data, { count: 14, size: 32, classes: 3, seed: 7 });
  const dir = join(root, 'run');
  mkdirSync(dir);
  const div = 16;
  const cfg: TrainConfig = {
    ...defaults(trainOptions),
    imgs: join(data, 'imgs'),
    masks: join(data, 'masks'),
    checkpointDir: join(dir, 'checkpoints'),
    logdir: join(dir, 'runs'),
    device: 'cpu',
    workers: 2,
    epochs: 3,
    batchSize: 1,
    learningRate: 3e-3,
    scale: 1,
    validation: 25,
    classes: 3,
    accumulateGradBatches: 2,
    lrPatience: 1,
    seed: 3,
    tensorboard: false,
  };
  let split = { train: [] as string[], val: [] as string[] };
  const order: string[][] = [[], [], []];
  const r = await train(cfg, {
    log: () => {},
    warn: () => {},
    createModel: (args: UNetArgs) => {
      const m = new UNet(args, div);
      dumpTensors(dir, m.stateDict(), 'init.json');
      return m;
    },
    onSplit: (s) => (split = s),
    onTrainBatch: (epoch, ids) => order[epoch - 1].push(...ids),
  });
  assert.equal(r.epochsRun, 3);
  assert.equal(split.train.length, 11); // odd: 5 optimizer steps + the flushed remainder per epoch
  assert.deepEqual(
    order.map((o) => o.length),
    [11, 11, 11],
  );
  const ck = await loadCheckpoint(join(cfg.checkpointDir, 'checkpoint_epoch3.pth'));
  const py = runPython<History>(FIT_PY, {
    root: REFERENCE_ROOT,
    dir,
    imgs: cfg.imgs,
    masks: cfg.masks,
    maskValues: ck.maskValues,
    nChannels: 3,
    classes: 3,
    bilinear: false,
    div,
    batchSize: 1,
    epochs: 3,
    lr: cfg.learningRate,
    accumulate: 2,
    lrPatience: 1,
    train: split.train,
    val: split.val,
    order,
  });

  const metrics = readFileSync(join(r.runDir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number | string>);
  const rounds = metrics.filter((m) => m.type === 'validation');
  const epochs = metrics.filter((m) => m.type === 'epoch');
  // The reference's cadence: 11 // (5 * 1) = every 2 batches over all epochs: batches 2, 4, ..., 32.
  assert.deepEqual(
    rounds.map((m) => m.batch),
    py.rounds.map((x) => x.batch),
  );
  assert.deepEqual(
    rounds.map((m) => m.batch),
    [2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32],
  );
  assert.deepEqual(
    rounds.map((m) => m.step),
    py.rounds.map((x) => x.step),
  );
  assertClose(
    rounds.map((m) => m.valDice as number),
    py.rounds.map((x) => x.dice),
    1e-5,
    1e-4,
    'validation Dice at each round',
  );
  assert.deepEqual(
    rounds.map((m) => m.lr),
    py.rounds.map((x) => x.lr),
    'lr after each round',
  );
  assert.ok(new Set(py.rounds.map((x) => x.lr)).size >= 2, `the plateau scheduler never reduced the lr: ${py.rounds.map((x) => x.lr)}`);
  assertClose(
    epochs.map((m) => m.loss as number),
    py.epoch_loss,
    1e-5,
    1e-4,
    'epoch losses (undivided)',
  );
  assert.ok(Math.min(...py.epoch_loss) > 0.3, 'the logged loss is not divided by the accumulation count');
  assertClose(
    epochs.map((m) => m.valDice as number),
    py.epoch_dice,
    1e-5,
    1e-4,
    'end-of-epoch Dice',
  );
  assert.deepEqual(
    epochs.map((m) => m.lr),
    py.epoch_lr,
  );
  assert.equal(ck.globalStep, 18); // 3 x (5 + 1 flushed)

  const init = loadTensors(dir, 'init.json');
  const final = loadTensors(dir, 'final.json');
  const ours = weightsToTensors(ck.model);
  assertMovedAsReference(ours, init, final, { rel: 1e-3, abs: 1e-6, what: 'the reference loop' });
  E.dispose([...init.values(), ...final.values(), ...ours.values()]);
});

const DICE_PY = `${PY_IMPORT_REFERENCE}${PY_EXCHANGE}
from reference.evaluate import batch_dice
r = _REQ; t = load(r['dir'], 'logits.json')
x, y = t['logits'], t['masks']
out = {}
for b in (1, 2):
    scores = [float(batch_dice(x[i:i + b], y[i:i + b], r['classes'])) for i in range(0, x.shape[0], b)]
    out[str(b)] = sum(scores) / len(scores)
print(json.dumps(out))
`;

for (const classes of [4, 1]) {
  test(`validation Dice equals evaluate.py's formula, -c ${classes}, a model that predicts several classes`, { skip: SKIP }, () => {
    const dir = mkdtempSync(join(root, 'dice-'));
    E.manualSeed(11);
    const m = new UNet({ nChannels: 1, nClasses: classes, bilinear: true }, 16);
    const { logits, masks, ours, predicted } = E.tidy(() => {
      // Scale the output layer so that the argmax / threshold varies over the image.
      E.noGrad(() => {
        m.outc.conv.weight.normal_(0, 3);
        m.outc.conv.bias?.zero_();
      });
      const x = E.rand([4, 1, 24, 20]);
      const logits = E.noGrad(() => m.eval().forward(x));
      const k = Math.max(classes, 2);
      const masks = E.randint(0, k, [4, 24, 20]);
      const pred = classes === 1 ? logits.squeeze(1).sigmoid().gt(0.5).long() : logits.argmax(1);
      const predicted = new Set(Array.from(pred.toArray())).size;
      return { logits: logits.keep(), masks: masks.keep(), ours: validationDice(logits, masks, classes).mean().item(), predicted };
    });
    assert.ok(predicted >= Math.min(3, Math.max(classes, 2)), `the model predicts only ${predicted} classes`);
    dumpTensors(
      dir,
      [
        ['logits', logits],
        ['masks', masks],
      ],
      'logits.json',
    );
    const py = runPython<Record<string, number>>(DICE_PY, { root: REFERENCE_ROOT, dir, classes });
    // Ours: mean over images; evaluate.py: mean over batches of per-batch means (equal with full batches).
    assert.ok(Math.abs(ours - py['1']) < 1e-6, `ours ${ours}, evaluate.py ${py['1']}`);
    assert.ok(Math.abs(ours - py['2']) < 1e-6, `ours ${ours}, evaluate.py with batches of 2: ${py['2']}`);
    assert.ok(ours > 0.05 && ours < 0.95, `a degenerate Dice ${ours}`);
    E.dispose([logits, masks]);
    m.dispose();
  });
}
