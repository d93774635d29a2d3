/**
 * One training epoch (the reference train.py's inner loop): micro-batches forward and backward,
 * an optimizer step every --accumulate-grad-batches of them, the non-finite loss guard, and the
 * validation rounds that fall inside the epoch.
 */
import { type Batch, DataLoader } from '../data/index.js';
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import { clipGradNorm } from '../optim/index.js';
import { roundDue } from './cadence.js';
import { TrainError, type TrainRun, isMain } from './context.js';
import { toDevice } from './device.js';
import { segmentationLoss } from './loss.js';
import { epochProgress } from './progress.js';
import { validationRound } from './validation.js';

export interface EpochStats {
  /** Mean training loss over the epoch's batches. */
  loss: number;
  images: number;
  seconds: number;
  /** Stopped by the signal: the epoch is incomplete and its loss was not read. */
  aborted: boolean;
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
  // Data-parallel: this rank's shard of a per-epoch permutation (DistributedSampler).
  const loader = dist ? new DataLoader(run.data.dataset, dist.shard(run.data.split.train, epoch, cfg.seed), { batchSize: cfg.batchSize, rng: run.dataRng, augment: cfg.augment }) : run.loaders.train;
  const progress = isMain(run) ? epochProgress(epoch, cfg.epochs, Math.ceil(run.data.split.train.length / run.worldSize)) : { update() {}, stop() {} }; // rank 0's shard
  const epochLoss = E.zeros([], { device: run.device }).keep();
  const at: Position = { seen: 0, micro: 0, batches: 0, globalBatch: (epoch - 1) * loader.length };
  const t0 = performance.now();
  try {
    for await (const b of loader) {
      await dist?.agreeOnStop(); // all ranks stop at the same step
      if (hooks.signal?.aborted) break;
      hooks.onTrainBatch?.(epoch, b.ids);
      const stepped = await microStep(run, b, at, loader.length, epochLoss);
      progress.update(at.seen, { loss: Number.isNaN(run.lastLoss) ? undefined : run.lastLoss, imgPerSec: (at.seen / (performance.now() - t0)) * 1000 });
      if (run.data.split.val.length > 0 && roundDue(run.cadence, at.globalBatch, run.globalStep, stepped)) await validationRound(run, epoch, at.globalBatch);
    }
    const aborted = hooks.signal?.aborted === true;
    // Flush the micro-batches that did not fill a whole accumulation window.
    if (at.micro % cfg.accumulateGradBatches !== 0 && !aborted) stepOptimizer(run);
    progress.stop();
    if (aborted) return { loss: Number.NaN, images: at.seen, seconds: 0, aborted };
    const seconds = (performance.now() - t0) / 1000;
    // Over all ranks: without a validation set it is the score early stopping sees on every rank.
    const [lossSum, lossBatches] = dist ? await dist.reduce([epochLoss.item(), at.batches]) : [epochLoss.item(), at.batches];
    return { loss: lossSum / Math.max(1, lossBatches), images: at.seen, seconds, aborted };
  } finally {
    // Also when an error ends the epoch: a running progress timer would keep the process alive.
    progress.stop();
    epochLoss.dispose();
  }
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
    const loss = E.autocastOn(run.device, run.ampDtype, () => segmentationLoss(run.model.forward(x), y, cfg.classes));
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
  scaler.unscale_(optimizer);
  if (run.cfg.gradClip > 0) clipGradNorm(run.params, run.cfg.gradClip).dispose();
  scaler.step(optimizer);
  scaler.update();
  run.globalStep++;
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
