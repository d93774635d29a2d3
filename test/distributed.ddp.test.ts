// Data-parallel training against PyTorch: 2 processes of a narrow UNet under our DDP (c10d
// Reducer, Gloo) end with the weights PyTorch's DistributedDataParallel gives on the same shards
// (Debian's torch 1.13), accumulation micro-steps under no_sync included; with sync-BN they end
// with the weights of one process on the full batch.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import test from 'node:test';
import * as E from '../src/engine/index.js';
import { freePort, runTs } from './helpers/dist.js';
import { PY_EXCHANGE, dumpTensors, loadTensors } from './helpers/exchange.js';
import { NO_TORCH, hasTorch, maxDiff, runPython } from './helpers/python.js';
import { createModel } from '../src/model/index.js';
import { TinyUNet, tinyEncoderArgs } from './helpers/tiny-unet.js';

const WORKER = resolve(import.meta.dirname, 'helpers', 'ddp-worker.ts');
const STEPS = 3;
const MICRO = 2;
const PER = 2;

// The same narrow UNet (widths 64..1024 / 16) and steps in PyTorch.
const PY = `${PY_EXCHANGE}
import contextlib, sys, torch.nn as nn, torch.nn.functional as F, torch.distributed as dist, torch.multiprocessing as mp
def dc(i, o):
    return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True), nn.Conv2d(o, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(inplace=True))
class DoubleConv(nn.Module):
    def __init__(s, i, o): super().__init__(); s.double_conv = dc(i, o)
    def forward(s, x): return s.double_conv(x)
class Down(nn.Module):
    def __init__(s, i, o): super().__init__(); s.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(i, o))
    def forward(s, x): return s.maxpool_conv(x)
class Up(nn.Module):
    def __init__(s, i, o): super().__init__(); s.up = nn.ConvTranspose2d(i, i // 2, 2, stride=2); s.conv = DoubleConv(i, o)
    def forward(s, x1, x2): return s.conv(torch.cat([x2, s.up(x1)], dim=1))
class OutConv(nn.Module):
    def __init__(s, i, o): super().__init__(); s.conv = nn.Conv2d(i, o, 1)
    def forward(s, x): return s.conv(x)
class Net(nn.Module):
    def __init__(s):
        super().__init__(); w = [4, 8, 16, 32, 64]
        s.inc = DoubleConv(1, w[0]); s.down1 = Down(w[0], w[1]); s.down2 = Down(w[1], w[2]); s.down3 = Down(w[2], w[3]); s.down4 = Down(w[3], w[4])
        s.up1 = Up(w[4], w[3]); s.up2 = Up(w[3], w[2]); s.up3 = Up(w[2], w[1]); s.up4 = Up(w[1], w[0]); s.outc = OutConv(w[0], 2)
    def forward(s, x):
        x1 = s.inc(x); x2 = s.down1(x1); x3 = s.down2(x2); x4 = s.down3(x3); x5 = s.down4(x4)
        return s.outc(s.up4(s.up3(s.up2(s.up1(x5, x4), x3), x2), x1))
def net(d):
    m = Net(); m.load_state_dict(load(d, 'init.json')); m.train(); return m
def ddp(rank, d, port):
    torch.set_num_threads(1)
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=2)
    m = net(d); model = torch.nn.parallel.DistributedDataParallel(m)
    data = load(d, 'data.json'); opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for s in range(${STEPS}):
        for k in range(${MICRO}):
            st = (s * ${MICRO} + k) * 2 * ${PER} + rank * ${PER}
            # The forward too: DDP's forward arms the gradient allreduce unless inside no_sync().
            with contextlib.nullcontext() if k == ${MICRO} - 1 else model.no_sync():
                (F.cross_entropy(model(data['x'][st:st + ${PER}]), data['y'][st:st + ${PER}]) / ${MICRO}).backward()
        opt.step(); opt.zero_grad()
    if rank == 0: dump(d, m.state_dict(), 'out-py.json')
    dist.destroy_process_group()
def single(d):
    torch.set_num_threads(1)
    m = net(d); data = load(d, 'data.json'); opt = torch.optim.SGD(m.parameters(), lr=0.1)
    for s in range(${STEPS}):
        for k in range(${MICRO}):
            st = (s * ${MICRO} + k) * 2 * ${PER}
            (F.cross_entropy(m(data['x'][st:st + 2 * ${PER}]), data['y'][st:st + 2 * ${PER}]) / ${MICRO}).backward()
        opt.step(); opt.zero_grad()
    dump(d, m.state_dict(), 'out-pysingle.json')
a = json.load(sys.stdin)
mp.start_processes(ddp, args=(a['dir'], a['port']), nprocs=2, start_method='fork')
single(a['dir'])
print(json.dumps({'ok': True}))
`;

/** The weights and the data of a run in `dir`: `model`'s initial state, STEPS x MICRO x 2 x PER images of `side` px. */
function prepare(dir: string, model: { stateDict(): Map<string, E.Tensor>; dispose(): void }, side: number): void {
  dumpTensors(dir, model.stateDict(), 'init.json');
  model.dispose();
  const n = STEPS * MICRO * 2 * PER;
  E.tidy(() =>
    dumpTensors(
      dir,
      [
        ['x', E.rand([n, 1, side, side])],
        ['y', E.randint(0, 2, [n, side, side])],
      ],
      'data.json',
    ),
  );
}

function compare(dir: string, a: string, b: string): { max: number; keys: number } {
  const x = loadTensors(dir, a);
  const y = loadTensors(dir, b);
  let max = 0;
  try {
    assert.deepEqual([...x.keys()], [...y.keys()]);
    for (const [k, t] of x) {
      const u = y.get(k) as E.Tensor;
      const d = maxDiff(t.float().toArray(), u.float().toArray());
      const tol = 2e-5 + 1e-4 * E.tidy(() => u.float().abs().amax().item());
      assert.ok(d <= tol, `${a} vs ${b}: ${k} differs by ${d}`);
      max = Math.max(max, d);
    }
  } finally {
    E.dispose([...x.values(), ...y.values()]);
  }
  return { max, keys: x.size };
}

async function runOurs(dir: string, mode: 'ddp' | 'syncbn' | 'single', encoder?: string): Promise<void> {
  const port = String(await freePort());
  const ranks = mode === 'single' ? [0] : [0, 1];
  const results = await Promise.all(ranks.map((r) => runTs(WORKER, [dir, mode, String(r), String(ranks.length), port, ...(encoder ? [encoder] : [])])));
  for (const r of results) assert.equal(r.code, 0, r.out);
}

test('data-parallel training matches PyTorch DDP, and sync-BN matches one process on the full batch', { skip: !hasTorch() && NO_TORCH, timeout: 600_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'unet-ddp-'));
  try {
    E.manualSeed(3);
    prepare(dir, new TinyUNet({ nChannels: 1, nClasses: 2, bilinear: false }), 32);
    runPython(PY, { dir, port: await freePort() });
    await runOurs(dir, 'ddp');
    await runOurs(dir, 'syncbn');
    await runOurs(dir, 'single');

    const ddp = compare(dir, 'out-ddp.json', 'out-py.json');
    console.log(`max weight difference, ours vs PyTorch DDP: ${ddp.max.toExponential(2)}`);
    assert.equal(ddp.keys, 118); // every parameter and buffer (running stats: rank 0's)
    const syncBn = compare(dir, 'out-syncbn.json', 'out-pysingle.json');
    console.log(`max weight difference, ours with sync-BN vs PyTorch on the full batch: ${syncBn.max.toExponential(2)}`);
    compare(dir, 'out-single.json', 'out-pysingle.json');
    // The comparisons can fail: per-process BatchNorm statistics (plain DDP) give other weights.
    assert.throws(() => compare(dir, 'out-ddp.json', 'out-pysingle.json'), /differs by/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// The encoders' own BatchNorm layers (nested in residual, inverted-residual and squeeze-excitation
// blocks) take part in sync-BN and in the gradient allreduce like the plain UNet's: 2 processes with
// sync-BN end with the weights of one process on the full batch, and without it they do not.
// ResNet and MobileNet (EfficientNet and ConvNeXt drop blocks at random while training, so their
// runs on other batch splits differ by design).
for (const encoder of ['resnet18', 'mobilenet_v3_large'])
  test(`--encoder ${encoder}: data-parallel training with sync-BN equals one process on the full batch`, { timeout: 600_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'unet-ddp-enc-'));
    try {
      E.manualSeed(4);
      prepare(dir, createModel(tinyEncoderArgs(encoder)), 64); // at 32 px the 4x4 maps of the deepest stage amplify float rounding over the 3 steps past the tolerance
      await runOurs(dir, 'syncbn', encoder);
      await runOurs(dir, 'single', encoder);
      await runOurs(dir, 'ddp', encoder);
      const syncBn = compare(dir, 'out-syncbn.json', 'out-single.json');
      console.log(`${encoder}: ${syncBn.keys} tensors, max weight difference with sync-BN vs one process on the full batch: ${syncBn.max.toExponential(2)}`);
      assert.throws(() => compare(dir, 'out-ddp.json', 'out-single.json'), /differs by/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
