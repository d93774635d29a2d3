/**
 * One training epoch (the reference train.py's inner loop): micro-batches forward and backward,
 * an optimizer step every --accumulate-grad-batches of them, the non-finite loss guard, and the
 * validation rounds that fall inside the epoch.
 */
import { type Batch, DataError, DataLoader } from '../data/index.js';
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import type { UNet } from '../model/index.js';
import { clipGradNorm } from '../optim/index.js';
import { roundDue } from './cadence.js';
import { type EpochMark, TrainError, type TrainRun, isMain } from './context.js';
import { toDevice } from './device.js';
import { segmentationLoss } from './loss.js';
import { augmentOptions, patchOptions } from './setup.js';
import { epochProgress } from './progress.js';
import { validationRound } from './validation.js';

export interface EpochStats {
  /** Mean training loss over the epoch's batches. */
  loss: number;
  images: number;
  seconds: number;
  /** Stopped by the signal or a data error: the epoch is incomplete (run.mark says where) and its loss was not read. */
  aborted: boolean;
  /** The unreadable file that stopped the epoch (single process; without --skip-bad). */
  dataError?: DataError;
}

/** Counters of the epoch in progress. */
interface Position {
  seen: number;
  micro: number;
  batches: number;
  /** Batches over all epochs, for the reference's validation cadence (every epoch has the same count). */
  globalBatch: number;
}

export async function trainEpoch(run: TrainRun, epoch: number): Promise<EpochStats> {
  const { cfg, hooks, dist } = run;
  run.model.train();
  run.freeze?.startEpoch(epoch);
  const from = run.resumeAt?.epoch === epoch ? run.resumeAt : null;
  run.resumeAt = null;
  // Data-parallel: this rank's shard of a per-epoch permutation (DistributedSampler).
  const shard = dist ? dist.shard(run.data.split.train, epoch, cfg.seed) : null;
  const loader = shard
    ? new DataLoader(run.data.dataset, shard, { batchSize: cfg.batchSize, rng: run.dataRng, augment: augmentOptions(cfg), patch: patchOptions(cfg), onBadSample: run.onBadSample, keepEveryBatch: true })
    : run.loaders.train;
  const progress = isMain(run) ? epochProgress(epoch, cfg.epochs, Math.ceil(run.data.split.train.length / run.worldSize)) : { update() {}, stop() {} }; // rank 0's shard
  // Resumed mid-epoch: rank 0 carries the loss summed over all ranks before the stop.
  const epochLoss = E.full([], from && isMain(run) ? from.lossSum : 0, { device: run.device }).keep();
  const done = from?.batch ?? 0;
  const at: Position = { seen: from?.seen ?? 0, micro: done, batches: done, globalBatch: (epoch - 1) * loader.length + done };
  setMark(run, { epoch, batch: done, order: from ? (shard ?? from.order) : null, rng: run.dataRng.stateDict(), seen: at.seen, seconds: from?.seconds ?? 0 }, epochLoss);
  const t0 = performance.now() - (from?.seconds ?? 0) * 1000;
  // Mid-epoch: the saved order from the next batch (a data-parallel shard follows from seed and epoch).
  const batches = loader.epoch(from && done > 0 ? { order: shard ?? from.order, batch: done } : undefined);
  let dataError: DataError | undefined;
  // An unreadable file (single process): stop at the last optimizer step, which train.ts saves; ranks cannot agree on a local error.
  const dataStop = (e: unknown): null => {
    if (!(e instanceof DataError) || dist) throw e;
    dataError = e;
    return null;
  };
  let stopped = false;
  try {
    for (;;) {
      const next = await batches.next().catch(dataStop);
      if (!next || next.done) break;
      const b = next.value;
      // A prefetched batch resolves at once, so without this turn of the event loop a signal (Ctrl-C)
      // would wait for the epoch's end: the handlers run here, between steps.
      await new Promise<void>((resolve) => setImmediate(resolve));
      await dist?.agreeOnStop(); // all ranks stop at the same step
      // A signal stops at an optimizer step, never inside an accumulation window: the saved state is exact.
      if (hooks.signal?.aborted && at.micro % cfg.accumulateGradBatches === 0) {
        stopped = true;
        // one more turn: the signal handlers go on it (train/command.ts), so that a second signal
        // during the long synchronous save gets the default action and stops the process at once
        await new Promise<void>((resolve) => setImmediate(resolve));
        break;
      }
      hooks.onTrainBatch?.(epoch, b.ids);
      const stepped = await microStep(run, b, at, loader.length, epochLoss);
      if (stepped) setMark(run, { epoch, batch: at.batches, order: b.order, rng: b.rngAfter, seen: at.seen, seconds: (performance.now() - t0) / 1000 }, epochLoss);
      if (stepped && (await run.budget?.afterStep(run))) break; // --time-budget: the epoch ends here
      progress.update(at.seen, { loss: Number.isNaN(run.lastLoss) ? undefined : run.lastLoss, imgPerSec: (at.seen / (performance.now() - t0)) * 1000 });
      if (run.data.split.val.length > 0 && roundDue(run.cadence, at.globalBatch, run.globalStep, stepped)) {
        const roundStart = performance.now();
        if ((await validationRound(run, epoch, at.globalBatch).then(() => true, dataStop)) === null) break;
        await run.budget?.roundDone(run, roundStart);
        if (stepped) setMark(run, { ...(run.mark as EpochMark) }, epochLoss); // with the round's scheduler step
      }
    }
    progress.stop();
    if (stopped || dataError) return { loss: Number.NaN, images: at.seen, seconds: 0, aborted: true, dataError };
    // Flush the micro-batches that did not fill a whole accumulation window.
    if (at.micro % cfg.accumulateGradBatches !== 0) stepOptimizer(run);
    const seconds = (performance.now() - t0) / 1000;
    // Over all ranks: without a validation set it is the score early stopping sees on every rank.
    const [lossSum, lossBatches] = dist ? await dist.reduce([epochLoss.item(), at.batches]) : [epochLoss.item(), at.batches];
    return { loss: lossSum / Math.max(1, lossBatches), images: at.seen, seconds, aborted: false };
  } finally {
    // Also when an error ends the epoch: a running progress timer would keep the process alive.
    progress.stop();
    epochLoss.dispose();
    await batches.return(undefined).catch(() => {});
  }
}

/** Remembers an optimizer-step boundary of the epoch (copies of its loss sum and BatchNorm statistics: they go on changing). */
function setMark(run: TrainRun, m: Pick<EpochMark, 'epoch' | 'batch' | 'order' | 'rng' | 'seen' | 'seconds'>, epochLoss: Tensor): void {
  disposeMark(run);
  const copy = (t: Tensor) => E.noGrad(() => t.clone()).keep();
  const buffers = new Map(run.model.namedBuffers().map(([k, t]) => [k, copy(t)]));
  run.mark = { ...m, loss: copy(epochLoss), buffers, scheduler: structuredClone(run.scheduler.stateDict()), lrs: run.optimizer.lrs, bnFresh: run.bnFresh };
}

export function disposeMark(run: TrainRun): void {
  if (run.mark) E.dispose([run.mark.loss, ...run.mark.buffers.values()]);
  run.mark = null;
}

/** Forward and backward of one micro-batch; steps the optimizer at the end of an accumulation window. Returns whether it stepped. */
async function microStep(run: TrainRun, b: Batch, at: Position, epochLength: number, epochLoss: Tensor): Promise<boolean> {
  const { cfg, dist, scaler } = run;
  const accum = cfg.accumulateGradBatches;
  // Cleared before a window's first backward (not after the step): the gradients stay readable
  // for the Gradients/* histograms at validation, as in the reference.
  if (at.micro % accum === 0) run.optimizer.zeroGrad();
  const nChannels = run.data.nChannels;
  if (b.c !== nChannels) throw new TrainError(`Network has been defined with ${nChannels} input channels, but loaded images have ${b.c} channels (${b.ids[0]}). Check --channels and the image files.`);
  const { lossValue, pending } = E.tidy(() => {
    const { x, y } = toDevice(run, b);
    const criterion = (logits: Tensor, target: Tensor) => segmentationLoss(logits, target, cfg.classes, cfg.loss, { weight: run.classWeights ?? undefined });
    const loss = E.autocastOn(run.device, run.ampDtype, () => (run.auxHeads ? run.auxHeads.loss(run.model as UNet, x, y, criterion) : criterion(run.model.forward(x), y)));
    const scaled = scaler.scale(accum > 1 ? loss.div(accum) : loss);
    if (!dist) scaled.backward();
    epochLoss.add_(loss.detach());
    // On CPU reading the loss costs nothing; on CUDA it syncs, so only every 10 batches.
    return { lossValue: !run.cuda || at.batches % 10 === 0 ? loss.item() : null, pending: dist ? scaled : null }; // null: not read (a NaN loss is a value)
  });
  if (dist && pending) {
    // Gradients are averaged over the ranks only on the micro-step that steps the optimizer
    // (DDP's no_sync), including the epoch-end flush.
    const steps = (at.micro + 1) % accum === 0 || at.batches + 1 === epochLength;
    await dist.backward(pending, steps).finally(() => pending.dispose());
  }
  at.micro++;
  at.batches++;
  at.globalBatch++;
  at.seen += b.n;
  const stepped = at.micro % accum === 0;
  if (stepped) stepOptimizer(run);
  if (lossValue !== null) {
    run.lastLoss = lossValue;
    guardFinite(run, lossValue);
    run.tracker.scalar('train loss', lossValue, run.globalStep);
  }
  return stepped;
}

function stepOptimizer(run: TrainRun): void {
  const { scaler, optimizer } = run;
  run.freeze?.beforeStep();
  scaler.unscale_(optimizer);
  if (run.cfg.gradClip > 0) clipGradNorm(run.params, run.cfg.gradClip).dispose();
  scaler.step(optimizer);
  scaler.update();
  run.ema?.update(); // every rank alike: the weights are synchronised
  run.globalStep++;
  if (run.scheduler.interval === 'step') run.scheduler.step(); // --time-budget's per-step poly/cosine
  run.bnFresh = false;
}

/** Stops the run after too many non-finite losses in a row. */
function guardFinite(run: TrainRun, loss: number): void {
  if (Number.isFinite(loss)) {
    run.nonFinite = 0;
    return;
  }
  run.nonFinite++;
  // Under fp16 the GradScaler skips such steps and backs off; an overflow clears within a few
  // steps, a real NaN does not.
  const limit = run.scaler.enabled ? 20 : 5;
  if (run.nonFinite >= limit) {
    throw new TrainError(`the loss was not finite (${loss}) for ${limit} batches in a row; stopping. Lower -l/--learning-rate, check the data for NaN values, or try without --amp. The last good checkpoint is kept.`);
  }
}
