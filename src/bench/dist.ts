/**
 * `unet bench --nproc-per-node N`: the data-parallel training step on CPU/GPU. N workers (1 thread
 * each by default) each run batch/N images with DDP's gradient averaging; then one process with N
 * threads runs the whole batch. Prints one JSON line per side and their images/s ratio. The
 * communication share is the part of a synchronised step that a step without allreduce (no_sync)
 * does not spend: what overlapping with backward did not hide.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DistContext, launch, workerFromEnv } from '../distributed/index.js';
import * as E from '../engine/index.js';
import { createModel } from '../model/index.js';
import { clipGradNorm, createOptimizer } from '../optim/index.js';
import { BenchError, type BenchOpts, benchArgs, benchTrain } from './steps.js';
import { segmentationLoss } from '../train/loss.js';

const OUT_ENV = 'UNET_BENCH_OUT';
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;

/** One worker: times synchronised and local-only steps; rank 0 writes the result. */
async function worker(o: BenchOpts, worldSize: number): Promise<void> {
  const w = workerFromEnv();
  if (!w) throw new BenchError('bench: a worker needs RANK and WORLD_SIZE');
  const device = E.resolveDevice(o.device === 'auto' || o.device === 'cuda' ? (E.cudaIsAvailable() ? `cuda:${w.localRank}` : 'cpu') : o.device);
  const dist = await DistContext.join(w, { backend: 'auto', timeoutSeconds: 300, device });
  E.manualSeed(0);
  const model = createModel({ ...benchArgs(o), depth: undefined, baseChannels: undefined }, o.divisor);
  model.to({ device });
  await dist.wrapModel(model, false);
  const params = model.parameters();
  const opt = createOptimizer('rmsprop', params, { lr: 1e-5, weightDecay: 1e-8, momentum: 0.999 });
  const per = o.batch / worldSize;
  const x = E.rand([per, o.channels, o.height, o.width], { device }).keep();
  const y = E.randint(0, Math.max(o.classes, 2), [per, o.height, o.width], { device }).keep();
  const step = async (sync: boolean) => {
    const loss = E.tidy(() => segmentationLoss(model.forward(x), y, o.classes));
    await dist.backward(loss, sync);
    loss.dispose();
    clipGradNorm(params, 1.0).dispose();
    opt.step();
    opt.zeroGrad();
  };
  const time = async (sync: boolean) => {
    const ts: number[] = [];
    for (let i = 0; i < o.steps; i++) {
      const t = performance.now();
      await step(sync);
      ts.push(performance.now() - t);
    }
    return median(ts);
  };
  for (let i = 0; i < o.warmup; i++) await step(true);
  const synced = await time(true);
  const local = await time(false);
  // The slowest rank sets the pace: report the maxima.
  const [msSync, msLocal] = await dist.reduce([synced, local], 'max');
  if (dist.isMain && process.env[OUT_ENV]) {
    writeFileSync(
      process.env[OUT_ENV],
      JSON.stringify({
        impl: 'unet-ts',
        mode: 'train-ddp',
        torch: E.buildInfo().torch,
        device,
        backend: dist.backend,
        processes: worldSize,
        threads_per_process: E.getNumThreads(),
        batch: o.batch,
        batch_per_process: per,
        height: o.height,
        width: o.width,
        ...(o.divisor > 1 ? { width_divisor: o.divisor } : {}),
        ms_per_step: round(msSync),
        img_per_s: round((o.batch / msSync) * 1000),
        ms_per_step_without_allreduce: round(msLocal),
        communication_share: round(Math.max(0, msSync - msLocal) / msSync, 3),
      }),
    );
  }
  E.dispose([x, y]);
  opt.dispose();
  await dist.close();
  model.dispose();
}

export async function benchDistributed(o: BenchOpts, nproc: number, masterPort: number): Promise<number> {
  if (o.batch % nproc !== 0) throw new BenchError(`bench: --batch-size ${o.batch} must be a multiple of --nproc-per-node ${nproc} (the same global batch on both sides)`);
  if (workerFromEnv()) {
    await worker(o, nproc);
    return 0;
  }
  const dir = mkdtempSync(join(tmpdir(), 'unet-bench-'));
  try {
    const out = join(dir, 'ddp.json');
    process.env[OUT_ENV] = out;
    const code = await launch({ nprocPerNode: nproc, nnodes: 1, nodeRank: 0, masterAddr: '127.0.0.1', masterPort });
    if (code !== 0) throw new BenchError(`bench: the ${nproc} workers failed (exit code ${code})`);
    const ddp = JSON.parse(readFileSync(out, 'utf8'));
    console.log(JSON.stringify(ddp));
    // The same global batch in one process with as many threads as the workers had together.
    const threads = E.getNumThreads();
    E.setNumThreads(nproc * ddp.threads_per_process);
    const single = benchTrain(o);
    E.setNumThreads(threads);
    console.log(JSON.stringify(single));
    console.log(JSON.stringify({ img_per_s_ratio_ddp_over_single: round(ddp.img_per_s / (single.img_per_s as number), 3) }));
    return 0;
  } finally {
    delete process.env[OUT_ENV];
    rmSync(dir, { recursive: true, force: true });
  }
}
