// Engine memory over long runs: 10,000 training-sized iterations (conv, BatchNorm, pooling,
// upsampling, cross-entropy, backward, an optimizer-like in-place update) keep resident memory
// flat and end with as many live tensors as they started with. A deliberate leak of 64 KB per
// iteration shows that the measurement would catch one.
//
// Figures are printed as test diagnostics (`# ...` lines in the TAP output).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { totalmem } from 'node:os';
import { test } from 'node:test';
import * as E from '../src/engine/index.js';
import type { Tensor } from '../src/engine/index.js';
import { type Sample, describeTrend, gc, rssMB, trend } from './helpers/memory.js';

// One intra-op thread: this test measures memory, and small ops on two threads slow down badly when
// another process competes for the cores (OpenMP barriers spin).
E.setNumThreads(1);

const LONG = process.env.UNET_LONG_TESTS === '1';
const ITERS = LONG ? 50_000 : 10_000;
/** MB of resident memory per 1000 iterations that counts as a leak (64 KB/iteration leaks 64). */
const MAX_SLOPE = 4;

function makeNet() {
  const p = (shape: number[], std: number) =>
    E.tidy(() => E.randn(shape).mul(std))
      .keep()
      .requiresGrad_(true);
  const params = {
    w1: p([16, 3, 3, 3], 0.2),
    g1: E.ones([16]).keep().requiresGrad_(true),
    b1: E.zeros([16]).keep().requiresGrad_(true),
    w2: p([16, 16, 3, 3], 0.1),
    w3: p([2, 32, 1, 1], 0.1),
    bias3: E.zeros([2]).keep().requiresGrad_(true),
  };
  const stats = { mean: E.zeros([16]).keep(), var: E.ones([16]).keep() };
  const momentum = Object.values(params).map((t) => E.zeros(t.shape).keep());
  return { params, stats, momentum };
}

/** One training step on a 64x64 image, 16 channels inside (256 KB activations); returns the loss. */
function step(net: ReturnType<typeof makeNet>, x: Tensor, y: Tensor): number {
  const { params: P, stats, momentum } = net;
  const loss = E.tidy(() => {
    let h = E.conv2d(x, P.w1, null, { padding: 1 });
    h = E.batchNorm(h, stats.mean, stats.var, P.g1, P.b1, true).relu();
    const skip = h;
    h = E.maxPool2d(h, 2);
    h = E.conv2d(h, P.w2, null, { padding: 1 }).relu();
    h = E.interpolate(h, [64, 64], 'bilinear', false);
    const logits = E.conv2d(E.cat([skip, h], 1), P.w3, P.bias3);
    const l = E.crossEntropy(logits, y);
    l.backward();
    return l.item();
  });
  E.tidy(() => {
    const ps = Object.values(P);
    const gs = E.grads(ps).map((g) => g as Tensor);
    E.noGrad(() => {
      E.foreach.mul_(momentum, 0.9);
      E.foreach.add_(momentum, gs);
      E.foreach.add_(ps, momentum, -1e-3);
    });
    E.clearGrads(ps);
  });
  return loss;
}

/**
 * Note: the loop yields to the event loop every 100 iterations, as any real loop does (the trainer
 * awaits every batch). Node-API runs the finalizers of garbage-collected handle objects from the
 * event loop, so a loop that never yields keeps ~0.5 KB per created handle (the tensor memory
 * itself is freed by dispose()) until it does.
 */
async function run(iters: number, leak: Tensor[] | null): Promise<{ samples: Sample[]; seconds: number; lastLoss: number }> {
  const net = makeNet();
  const x = E.rand([1, 3, 64, 64]).keep();
  const y = E.randint(0, 2, [1, 64, 64]).keep();
  const samples: Sample[] = [];
  const every = Math.max(1, Math.floor(iters / 100));
  const t0 = performance.now();
  let lastLoss = Number.NaN;
  for (let i = 1; i <= iters; i++) {
    lastLoss = step(net, x, y);
    if (i % 100 === 0) await new Promise((r) => setImmediate(r));
    if (leak) leak.push(E.zeros([16, 32, 32])); // 64 KB not disposed
    if (i % every === 0) {
      gc();
      samples.push({ i, rss: rssMB() });
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  E.dispose([net.params, net.stats, net.momentum, x, y]);
  return { samples, seconds, lastLoss };
}

test(`${ITERS} training-sized engine iterations: flat resident memory, no live tensors left`, { timeout: 600_000 }, async (t) => {
  gc();
  const live0 = E.memoryStats().liveTensors;
  const { samples, seconds, lastLoss } = await run(ITERS, null);
  const tr = trend(samples);
  t.diagnostic(describeTrend('engine', tr));
  t.diagnostic(`engine: ${ITERS} iterations in ${seconds.toFixed(1)} s (${((seconds / ITERS) * 1000).toFixed(2)} ms each), last loss ${lastLoss.toFixed(4)}`);
  assert.ok(Number.isFinite(lastLoss));
  assert.equal(E.memoryStats().liveTensors, live0, 'live tensors back to the start');
  assert.ok(tr.slopePer1000 < MAX_SLOPE, `resident memory grows ${tr.slopePer1000.toFixed(2)} MB per 1000 iterations`);
  assert.ok(tr.lateGrowth < 16, `resident memory grew ${tr.lateGrowth.toFixed(1)} MB in the second half`);
});

test('the measurement catches a leak of 64 KB per iteration', { timeout: 120_000 }, async (t) => {
  const leak: Tensor[] = [];
  const live0 = E.memoryStats().liveTensors;
  const { samples } = await run(1000, leak);
  const tr = trend(samples);
  t.diagnostic(describeTrend('deliberate leak', tr));
  assert.ok(tr.slopePer1000 > MAX_SLOPE * 4, `the leak shows as ${tr.slopePer1000.toFixed(2)} MB per 1000 iterations`);
  assert.equal(E.memoryStats().liveTensors, live0 + 1000);
  E.dispose(leak);
  assert.equal(E.memoryStats().liveTensors, live0);
});

// Large CPU buffers (>= 4 MB) are kept for reuse by the addon's allocator: glibc would map each one
// fresh and every page would fault again on first touch (see native/allocator.cpp).
test('large CPU buffers are reused without page faults; the cache is bounded and emptied by mallocTrim', { timeout: 120_000 }, () => {
  const faults = () => process.resourceUsage().minorPageFault;
  const fill = (n: number) => E.tidy(() => E.zeros([n]).add_(1).sum().item()); // 4n bytes, every page written
  const big = 12 << 20; // 48 MB: above glibc's 32 MB mmap limit, 12,288 pages
  fill(big);
  const f0 = faults();
  for (let i = 0; i < 10; i++) assert.equal(fill(big), big);
  const perIteration = (faults() - f0) / 10;
  assert.ok(perIteration < 1000, `${perIteration} page faults per 48 MB buffer (12,288 without reuse)`);
  assert.ok(E.memoryStats().cachedBytes >= big * 4, 'the freed block is cached');
  // Many sizes: the cache never holds more than its limit (25% of RAM by default).
  for (let i = 0; i < 40; i++) fill((1 + (i % 13)) << 20);
  const limit = Math.floor(totalmem() / 4);
  assert.ok(E.memoryStats().cachedBytes <= limit);
  E.mallocTrim();
  assert.equal(E.memoryStats().cachedBytes, 0);
});

test('UNET_CPU_CACHE_MB bounds the cache (0 turns it off)', { timeout: 120_000 }, () => {
  const script = `
    import * as E from './src/engine/index.js';
    const out = [];
    for (let i = 0; i < 12; i++) { E.tidy(() => E.zeros([(2 + i) << 20]).sum().item()); out.push(E.memoryStats().cachedBytes); }
    console.log(JSON.stringify(out));`;
  const run = (mb: string) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, UNET_CPU_CACHE_MB: mb } });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout.trim().split('\n').pop() as string) as number[];
  };
  const capped = run('40');
  assert.ok(Math.max(...capped) <= 40 << 20, `cached ${Math.max(...capped)} bytes with a 40 MB limit`);
  assert.ok(Math.max(...capped) > 0);
  assert.deepEqual([...new Set(run('0'))], [0]);
});
