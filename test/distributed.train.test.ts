// `unet train --nproc-per-node 2` at the loop level (narrow UNet, 1 thread per worker, Gloo on
// 127.0.0.1), on what each rank saw (test/helpers/dist-train.ts records it): 5 training images
// padded to 3 micro-batches per rank with --accumulate-grad-batches 2, so every epoch ends with a
// flushed optimizer step; 3 validation images, an uneven split over the ranks; early stopping with
// patience 1. Against PyTorch 1.13's DistributedDataParallel (Gloo, no_sync) on the same batches,
// and against one process scoring the same weights on the whole validation set.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { makeDemoDataset } from '../src/data/index.js';
import * as E from '../src/engine/index.js';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { freePort, startTs } from './helpers/dist.js';
import { PY_EXCHANGE, assertMovedAsReference, loadTensors } from './helpers/exchange.js';
import { NO_TORCH, hasTorch, runPython } from './helpers/python.js';
import { PY_IMPORT_REFERENCE, REFERENCE_ROOT } from './helpers/reference.js';

const HELPER = resolve(import.meta.dirname, 'helpers', 'dist-train.ts');
const SKIP = hasTorch() ? false : NO_TORCH;
const EPOCHS_ASKED = 4;

type Rec = { type: 'split'; train: string[]; val: string[] } | { type: 'batch'; epoch: number; ids: string[] } | { type: 'backward'; sync: boolean } | { type: 'score'; dice: number; epoch: number; step: number };
let root = '';
let data = '';
let run = { code: null as number | null, out: '', ms: 0 };
const ranks: Rec[][] = [];
const ofType = <T extends Rec['type']>(recs: Rec[], type: T) => recs.filter((r): r is Extract<Rec, { type: T }> => r.type === type);

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'unet-distloop-'));
  data = join(root, 'data');
  await makeDemoDataset(data, { count: 8, size: 32, classes: 3, seed: 7 });
  const out = join(root, 'out');
  mkdirSync(out);
  const port = String(await freePort());
  // -v 37.5 of 8: 3 validation, 5 training images. --min-delta 1: no epoch after the first counts
  // as a gain, so patience 1 stops both ranks after epoch 2 of 4.
  const args = [
    'train',
    '-s',
    '1',
    '-v',
    '37.5',
    '-b',
    '1',
    '-c',
    '3',
    '--accumulate-grad-batches',
    '2',
    '-e',
    String(EPOCHS_ASKED),
    '-l',
    '3e-3',
    '--seed',
    '3',
    '--patience',
    '1',
    '--min-delta',
    '1',
    '--imgs',
    join(data, 'imgs'),
    '--masks',
    join(data, 'masks'),
    '--checkpoint-dir',
    join(root, 'ckpt'),
    '--logdir',
    join(root, 'runs'),
    '--no-tensorboard',
    '--workers',
    '1',
    '--nproc-per-node',
    '2',
    '--master-port',
    port,
    '--dist-timeout',
    '60',
  ];
  run = await startTs(HELPER, args, { env: { UNET_TEST_OUT: out } }).done;
  for (const r of [0, 1]) {
    const file = join(out, `rank${r}.jsonl`);
    ranks.push(
      existsSync(file)
        ? readFileSync(file, 'utf8')
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l) as Rec)
        : [],
    );
  }
});
after(() => rmSync(root, { recursive: true, force: true }));

test('early stopping and the plateau scheduler see the same score on every rank; both ranks stop after the same epoch and the launcher exits 0', { timeout: 300_000 }, () => {
  assert.equal(run.code, 0, run.out);
  assert.equal(run.out.match(/Early stopping: no Dice gain/g)?.length, 1, run.out); // rank 0 alone prints
  assert.match(run.out, /Training stopped early\./);
  const scores = ranks.map((recs) => ofType(recs, 'score'));
  // One score per epoch (5 / 2 ranks / batch 1 < 5 batches: no mid-epoch rounds), the same bits on both ranks.
  assert.deepEqual(
    scores[0].map((s) => s.epoch),
    [1, 2],
  );
  assert.deepEqual(scores[1], scores[0]);
  assert.ok(
    scores[0].every((s) => s.dice > 0 && s.dice < 1),
    JSON.stringify(scores[0]),
  );
  for (const recs of ranks) assert.deepEqual([...new Set(ofType(recs, 'batch').map((b) => b.epoch))], [1, 2], 'no rank trains a 3rd epoch');
  assert.ok(!existsSync(join(root, 'ckpt', 'checkpoint_epoch3.pth')));
});

const pyInput = async () => {
  const ck = await loadCheckpoint(join(root, 'ckpt', 'checkpoint_epoch2.pth'));
  const [split] = ofType(ranks[0], 'split');
  const steps = ofType(ranks[0], 'score').map((s) => s.step);
  const nChannels = (ck.modelArgs as { nChannels: number }).nChannels;
  return {
    root: REFERENCE_ROOT,
    dir: join(root, 'out'),
    imgs: join(data, 'imgs'),
    masks: join(data, 'masks'),
    maskValues: ck.maskValues,
    nChannels,
    classes: 3,
    div: 16,
    val: split.val,
    evals: steps.map((s) => `rank0-step${s}.json`),
  };
};

test('sharded validation over 2 processes (2 + 1 images, nothing padded) scores what one process scores with the same weights on all 3', { skip: SKIP, timeout: 300_000 }, async () => {
  assert.equal(run.code, 0, run.out);
  const [split] = ofType(ranks[0], 'split');
  assert.equal(split.val.length, 3);
  const single = runPython<Record<string, number>>(EVAL_PY, await pyInput());
  for (const s of ofType(ranks[0], 'score')) {
    const one = single[`rank0-step${s.step}.json`];
    console.log(`epoch ${s.epoch}: Dice over 2 processes ${s.dice}, one process on the same weights ${one}`);
    // The same libtorch on both sides and exact per-image counts: equal up to the order of the sum.
    // (Scoring rank 1's shard with rank 1's own BatchNorm statistics is off by 6e-7 here.)
    assert.ok(Math.abs(s.dice - one) < 1e-9, `epoch ${s.epoch}: 2 processes ${s.dice}, one process ${one}`);
  }
});

test('accumulation over an odd number of micro-batches per rank: no allreduce on no_sync micro-steps, the epoch-end flush synchronises, weights equal across ranks and equal to PyTorch DDP', {
  skip: SKIP,
  timeout: 300_000,
}, async () => {
  assert.equal(run.code, 0, run.out);
  const [split] = ofType(ranks[0], 'split');
  assert.equal(split.train.length, 5);
  const batches = ranks.map((recs) =>
    [1, 2].map((e) =>
      ofType(recs, 'batch')
        .filter((b) => b.epoch === e)
        .map((b) => b.ids),
    ),
  );
  for (const e of [0, 1]) {
    // DistributedSampler: 5 padded to 6, 3 micro-batches per rank, the union is the whole split.
    assert.deepEqual(
      batches.map((b) => b[e].length),
      [3, 3],
    );
    assert.deepEqual(new Set([...batches[0][e], ...batches[1][e]].flat()), new Set(split.train));
  }
  // Micro-steps 1 (no_sync), 2 (steps), 3 (the flush: steps) of each epoch, on both ranks.
  for (const recs of ranks)
    assert.deepEqual(
      ofType(recs, 'backward').map((b) => b.sync),
      [false, true, true, false, true, true],
    );
  const steps = ofType(ranks[0], 'score').map((s) => s.step);
  assert.deepEqual(steps, [2, 4], '2 optimizer steps per epoch, the second one the flush');

  const out = join(root, 'out');
  runPython(DDP_PY, { ...(await pyInput()), lr: 3e-3, accumulate: 2, batches: batches.map((r) => r.map((e) => e.flat())), port: await freePort() });
  const init = loadTensors(out, 'init.json');
  const ours = steps.map((s) => [0, 1].map((r) => loadTensors(out, `rank${r}-step${s}.json`)));
  const final = loadTensors(out, 'py-final.json');
  try {
    // After each epoch (at its validation) both ranks hold the same bits: weights, and BatchNorm statistics broadcast from rank 0.
    for (const [a, b] of ours)
      for (const [k, t] of a)
        assert.equal(
          E.tidy(() =>
            t
              .sub(b.get(k) as E.Tensor)
              .abs()
              .amax()
              .item(),
          ),
          0,
          `${k} differs between the ranks`,
        );
    const worst = assertMovedAsReference(ours[1][0], init, final, { rel: 1e-3, abs: 1e-6, what: 'PyTorch DDP' });
    console.log(`ours vs PyTorch DDP after 2 epochs: max error / change ${worst.toExponential(2)} over ${final.size} tensors`);
  } finally {
    E.dispose([...init.values(), ...final.values(), ...ours.flat().flatMap((m) => [...m.values()])]);
  }
});

const PY_PRELUDE = `${PY_IMPORT_REFERENCE}${PY_EXCHANGE}
from reference.data import Dataset
from reference.evaluate import evaluate
from reference.model import UNet
r = _REQ; d = r['dir']
def data():
    ds = Dataset(r['imgs'], r['masks'], 1.0, values=r['maskValues'])
    return ds, {i: k for k, i in enumerate(ds.ids())}
def net(name):
    m = UNet(r['nChannels'], r['classes'], False, width_divisor=r['div'])
    m.load_state_dict(load(d, name), strict=True); return m
`;

// PyTorch's DDP on the batches each of our ranks trained on: the reference trainer's recipe
// (RMSprop, clipping 1.0, CE + Dice divided by the accumulation count), the forward and backward of
// micro-steps that do not step inside no_sync(), the epoch's remainder flushed.
const DDP_PY = `${PY_PRELUDE}
import contextlib, torch.distributed as dist, torch.multiprocessing as mp
from reference.loss import criterion
def ddp(rank):
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f"tcp://127.0.0.1:{r['port']}", rank=rank, world_size=2)
    ds, index = data(); m = net('init.json'); model = torch.nn.parallel.DistributedDataParallel(m)
    opt = torch.optim.RMSprop(model.parameters(), lr=r['lr'], weight_decay=1e-8, momentum=0.999, foreach=True)
    acc = r['accumulate']
    for ids in r['batches'][rank]:
        model.train(); batches = ds.batches([index[i] for i in ids], 1)
        for k, (x, y) in enumerate(batches):
            if k % acc == 0: opt.zero_grad(set_to_none=True)
            steps = (k + 1) % acc == 0 or k + 1 == len(batches)
            with contextlib.nullcontext() if steps else model.no_sync():
                (criterion(model(x), y, r['classes']) / acc).backward()
            if steps:
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0); opt.step()
    if rank == 0: dump(d, m.state_dict(), 'py-final.json')
    dist.destroy_process_group()
mp.start_processes(ddp, nprocs=2, start_method='fork')
print(json.dumps({'ok': True}))
`;

// One process scores each of our rank 0's weights on the whole validation set (batch 1: the mean over images).
const EVAL_PY = `${PY_PRELUDE}
torch.set_num_threads(1)
ds, index = data(); val = ds.batches([index[i] for i in r['val']], 1)
print(json.dumps({e: evaluate(net(e), val, r['classes']) for e in r['evals']}))
`;
