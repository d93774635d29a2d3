// Mixed precision inside train(): bf16 autocast on CPU (UNET_CPU_AMP=bf16 forces it on CPUs
// without native bf16) against PyTorch's bf16 autocast of the reference recipe; the fp16
// GradScaler's logic inside the loop (skipped steps, backoff, growth) with injected infs on CPU;
// and, without CUDA, that --amp on CPU never takes the fp16 path.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import * as E from '../src/engine/index.js';
import type { Tensor } from '../src/engine/index.js';
import type { RawTensor } from '../src/io/pth.js';
import type { UNetArgs } from '../src/model/index.js';
import { loadCheckpoint, saveReferenceStateDict } from '../src/model/checkpoint.js';
import { train } from '../src/train/train.js';
import { ROOT } from './helpers/cli.js';
import { NO_TORCH, PYTHON, hasTorch } from './helpers/python.js';
import { floats, quiet, runConfig, runRecords, scalarSeries } from './helpers/runs.js';
import { TinyUNet } from './helpers/tiny-unet.js';
import { demoDataDir } from './helpers/workdir.js';

// 2 images of 16x16, all for training: one full batch, so both sides see the same batch per step
const { root, data } = demoDataDir('amp', { count: 2, size: 16, classes: 2, seed: 41 });

const LR = 1e-3;
const ARGS: UNetArgs = { nChannels: 3, nClasses: 2, bilinear: true };
const oneBatch = (dir: string, over = {}) => runConfig(data, dir, { batchSize: 2, learningRate: LR, scale: 1, validation: 0, bilinear: true, classes: 2, patience: 0, scheduler: 'none' as const, valEvery: 0, ...over });

interface Golden {
  losses: number[];
  weights: Record<string, number[]>;
}

test('UNET_CPU_AMP=bf16: 2 train() steps equal the reference recipe under PyTorch bf16 autocast', { skip: !hasTorch() && NO_TORCH, timeout: 600_000 }, async () => {
  const dir = join(root, 'bf16');
  let init: Map<string, Tensor> | null = null;
  const before = process.env.UNET_CPU_AMP;
  process.env.UNET_CPU_AMP = 'bf16';
  const notes: string[] = [];
  try {
    await train(oneBatch(dir, { epochs: 2, amp: true }), {
      ...quiet,
      warn: (l) => notes.push(l),
      createModel: (args) => {
        const m = new TinyUNet(args);
        init = new Map([...m.stateDict()].map(([k, t]) => [k, E.noGrad(() => t.clone()).keep()]));
        return m;
      },
    });
  } finally {
    if (before === undefined) delete process.env.UNET_CPU_AMP;
    else process.env.UNET_CPU_AMP = before;
  }
  assert.ok(!notes.includes(E.CPU_AMP_NOTE), 'bf16 is used, not the fp32 fallback');
  assert.ok(init);
  const weights = join(root, 'init.pth');
  await saveReferenceStateDict(weights, init, [0, 255]);
  E.dispose([...(init as Map<string, Tensor>).values()]);
  const py = spawnSync(PYTHON, [join(ROOT, 'test', 'reference', 'amp_step.py')], {
    input: JSON.stringify({ weights, imgs: join(data, 'imgs'), masks: join(data, 'masks'), n_channels: 3, n_classes: 2, bilinear: true, width_divisor: 16, lr: LR, steps: 2 }),
    encoding: 'utf8',
    maxBuffer: 1 << 28,
    timeout: 600_000,
  });
  assert.equal(py.status, 0, py.stderr);
  const golden = JSON.parse(py.stdout.trim().split('\n').pop() as string) as { bf16: Golden; fp32: Golden };

  const { scalars } = runRecords((await loadCheckpoint(join(dir, 'checkpoints', 'checkpoint_epoch2.pth'))).runDir as string);
  const losses = scalarSeries(scalars, 'train loss').map(([, v]) => v);
  assert.equal(losses.length, 2);
  for (let i = 0; i < 2; i++) {
    const [ours, bf, fp] = [losses[i], golden.bf16.losses[i], golden.fp32.losses[i]];
    // bf16 and fp32 differ visibly; ours is bf16's (up to the order of the 2 images in the batch)
    assert.ok(Math.abs(ours - bf) <= Math.max(1e-5, Math.abs(bf - fp) / 10), `step ${i + 1}: ours ${ours}, PyTorch bf16 ${bf}, fp32 ${fp}`);
  }
  // weights after 2 steps: each tensor's change agrees with PyTorch bf16's
  const ck = await loadCheckpoint(join(dir, 'checkpoints', 'checkpoint_epoch2.pth'));
  const start = await loadCheckpoint(weights);
  for (const [k, want] of Object.entries(golden.bf16.weights)) {
    if (k.endsWith('num_batches_tracked')) continue;
    const got = floats(ck.model.get(k) as never);
    const w0 = floats(start.model.get(k) as never);
    let diff = 0;
    let change = 0;
    for (let i = 0; i < got.length; i++) {
      diff = Math.max(diff, Math.abs(got[i] - want[i]));
      change = Math.max(change, Math.abs(want[i] - w0[i]));
    }
    assert.ok(diff <= 0.05 * change + 1e-6, `${k}: max difference ${diff} against a change of ${change}`);
  }
});

/** A narrow UNet whose training forward passes listed by number give non-finite logits. */
class InfAt extends TinyUNet {
  calls = 0;
  constructor(
    args: UNetArgs,
    private readonly bad: Set<number>,
  ) {
    super(args);
  }
  override forward(x: Tensor): Tensor {
    const y = super.forward(x);
    if (!this.training) return y;
    this.calls++;
    return this.bad.has(this.calls) ? y.mul(Number.POSITIVE_INFINITY) : y;
  }
}

test('fp16 GradScaler logic inside train() on CPU: an overflow skips the step and backs off, clean steps grow the scale', async () => {
  const dir = join(root, 'scaler');
  const r = await train(oneBatch(dir, { epochs: 5 }), { ...quiet, createModel: (a) => new InfAt(a, new Set([2])), gradScaler: { initScale: 1024, growthInterval: 2 } });
  assert.equal(r.epochsRun, 5, 'one overflow does not stop the run');
  const ck = await Promise.all([1, 2, 3, 4, 5].map((e) => loadCheckpoint(join(dir, 'checkpoints', `checkpoint_epoch${e}.pth`))));
  // torch.cuda.amp.GradScaler's rules: backoff 0.5 on inf, growth 2 after growth_interval clean steps
  assert.deepEqual(
    ck.map((c) => {
      const s = c.gradScaler as unknown as { scale: number; _growth_tracker: number };
      return [c.globalStep, s.scale, s._growth_tracker];
    }),
    [
      [1, 1024, 1],
      [2, 512, 0],
      [3, 512, 1],
      [4, 1024, 0],
      [5, 1024, 1],
    ],
  );
  const probe = new TinyUNet(ARGS);
  const params = [...probe.namedParameters()].map(([n]) => n);
  probe.dispose();
  const same = (a: number, b: number) => params.every((n) => Buffer.from(ck[a].model.get(n)?.data ?? []).equals(Buffer.from(ck[b].model.get(n)?.data ?? [])));
  assert.ok(same(1, 0), 'the overflowing step 2 left every weight as it was');
  assert.ok(!same(2, 1), 'step 3 stepped');
  const stepCount = (c: (typeof ck)[number]) => {
    const step = (c.optimizer as unknown as { state: Map<number, { step: number | RawTensor }> }).state.get(0)?.step;
    return typeof step === 'number' ? step : floats(step as RawTensor)[0]; // PyTorch keeps it as a tensor
  };
  assert.deepEqual(ck.map(stepCount), [1, 1, 2, 3, 4], 'the optimizer did not count the skipped step');
  const losses = scalarSeries(runRecords(r.runDir).scalars, 'train loss').map(([, v]) => v);
  assert.ok(Number.isNaN(losses[1]) || !Number.isFinite(losses[1]), `the overflowing step's loss was logged as ${losses[1]}`);
});

// Registered only without CUDA (so nothing is skipped either way): the fp16 path needs a CUDA
// device, and this proves the CPU never takes it.
if (!E.cudaIsAvailable())
  test('without a CUDA device, --amp never selects fp16 or the GradScaler (CPU: bf16 or fp32)', async () => {
    assert.notEqual(E.ampDtypeFor('cpu'), 'float16');
    const r = await train(oneBatch(join(root, 'cpu-amp'), { epochs: 1, amp: true }), { ...quiet, createModel: (a) => new TinyUNet(a) });
    const ck = await loadCheckpoint(r.lastCheckpoint as string);
    assert.deepEqual(ck.gradScaler, {}, 'a disabled scaler saves an empty state, as PyTorch');
  });
