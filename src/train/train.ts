/**
 * unet train: the reference trainer's recipe (milesial/Pytorch-UNet train.py) with the guide's
 * features (early stopping, best model, full checkpoints, gradient accumulation) and its bugs fixed.
 */
import { readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { UserError } from '../config/errors.js';
import type { TrainConfig } from '../config/options.js';
import { DataLoader, MIN_SIDE, Rng, type RngStateDict, SegmentationDataset, checkClasses, listPairs, randomSplit } from '../data/index.js';
import type { DistContext } from '../distributed/index.js';
import type { Stateful } from '../io/stateful.js';
import * as E from '../engine/index.js';
import type { Device, Tensor } from '../engine/index.js';
import { confusionMatrix, metricsFromConfusion, predictClasses, validationDice } from '../metrics/evaluate.js';
import { UNet, type UNetArgs } from '../model/index.js';
import { GradScaler, type GradScalerOptions, type GradScalerStateDict, type LRScheduler, type LoadableOptimizerStateDict, clipGradNorm, createOptimizer, createScheduler } from '../optim/index.js';
import { Tracker } from '../tracking/index.js';
import { CheckpointError, type CheckpointData, type LoadedCheckpoint, type MaskValues, fromPy, loadCheckpoint, prepareCheckpointDir, saveCheckpoint, weightsToTensors } from '../model/checkpoint.js';
import { describeCadence, roundDue, validationCadence } from './cadence.js';
import { EarlyStopping } from './early-stopping.js';
import { segmentationLoss } from './loss.js';
import { recomputeBatchNorm } from './precise-bn.js';
import { epochProgress } from './progress.js';
import { torchRng } from './rng.js';
import { versions } from './versions.js';

export class TrainError extends UserError {}

export interface TrainHooks {
  log?: (line: string) => void;
  warn?: (line: string) => void;
  /** Set by the CLI on SIGINT/SIGTERM: the loop stops between steps and saves INTERRUPTED.pth. */
  signal?: AbortSignal;
  /** Called once the run directory exists (the dashboard uses it). */
  onRunDir?: (dir: string) => void;
  /** Builds the model instead of `new UNet(args)` (tests: a narrow UNet with the same layout, for long runs). */
  createModel?: (args: UNetArgs) => UNet;
  /** Data-parallel run: this process's rank, collectives and shards (src/distributed). */
  dist?: DistContext;
  /** Sees the split and every training batch, in order (tests: feed the same data to PyTorch). */
  onSplit?: (split: { train: string[]; val: string[] }) => void;
  onTrainBatch?: (epoch: number, ids: string[]) => void;
  /** Replaces each measured validation Dice (tests: score sequences that improve, drop and plateau). */
  validationScore?: (measured: number, at: { epoch: number; step: number }) => number;
  /** A GradScaler with these options whatever the device (tests: its skip and backoff logic on CPU, in fp32). */
  gradScaler?: GradScalerOptions;
}

export interface TrainResult {
  epochsRun: number;
  bestScore: number | null;
  bestEpoch: number;
  lastScore: number;
  stoppedEarly: boolean;
  interrupted: boolean;
  checkpointDir: string;
  runDir: string;
  bestModel: string | null;
  lastCheckpoint: string | null;
}

export const OOM_ADVICE = [
  'Out of memory. Remedies, in the order the guide gives them:',
  '  1. mixed precision:        --amp',
  '  2. a smaller batch:        -b 2 (or -b 1)',
  '  3. smaller images:         -s 0.25',
  '  4. bilinear upsampling:    --bilinear',
  '  5. gradient accumulation:  --accumulate-grad-batches 4 (keeps the effective batch)',
  'Saved checkpoints were not touched.',
].join('\n');

const isOom = (e: unknown) => (e as { code?: string })?.code === 'ERR_OUT_OF_MEMORY';

export async function train(cfg: TrainConfig, hooks: TrainHooks = {}): Promise<TrainResult> {
  const log = hooks.log ?? ((l: string) => console.log(l));
  const warn = hooks.warn ?? ((l: string) => console.warn(`warning: ${l}`));
  const device: Device = E.resolveDevice(cfg.device);
  const cuda = device.startsWith('cuda');
  E.manualSeed(cfg.seed);
  if (cuda) E.setBackendFlags({ cudnnBenchmark: true, allowTF32: true });

  // 0. A checkpoint to resume from (read first: its mask values and model args must agree).
  const ckpt: LoadedCheckpoint | null = cfg.load ? await loadCheckpoint(cfg.load, '-f/--load') : null;

  // 1. Create dataset
  const { pairs, maskSuffix, warnings } = await listPairs({ imgsDir: cfg.imgs, masksDir: cfg.masks, maskSuffix: cfg.maskSuffix, skipUnpaired: cfg.skipUnpaired });
  for (const w of warnings) warn(w);
  const dataset = new SegmentationDataset(pairs, {
    scale: cfg.scale,
    workers: cfg.workers,
    maxPixels: cfg.maxPixels,
    channels: cfg.channels === 'auto' ? undefined : cfg.channels,
    minSide: MIN_SIDE, // checked by scan(), before training starts
    onWarning: warn,
  });
  log(`Scanning ${pairs.length} masks to determine their values...`);
  const maskValues = (await dataset.scan()) as MaskValues;
  const classProblem = checkClasses(maskValues, cfg.classes, { maskFiles: pairs.map((p) => p.mask) });
  if (classProblem) throw new TrainError(classProblem);
  const dist = hooks.dist; // data-parallel: see src/distributed
  await dist?.checkSame('the data (image count and mask values)', JSON.stringify([pairs.length, maskValues]));
  if (ckpt?.maskValues && JSON.stringify(ckpt.maskValues) !== JSON.stringify(maskValues) && ckpt.kind === 'unet-ts') {
    warn(`the checkpoint was trained on mask values ${JSON.stringify(ckpt.maskValues)}, this data has ${JSON.stringify(maskValues)}`);
  }
  const first = await dataset.load(0);
  const nChannels = cfg.channels === 'auto' ? first.channels : cfg.channels;

  // 2. Split into train / validation partitions (seeded, fixed across runs with the same seed)
  const split = randomSplit(pairs.length, cfg.validation, cfg.seed);
  if (split.train.length === 0) throw new TrainError(`no training images left: ${pairs.length} pairs with -v ${cfg.validation}% held out; lower -v/--validation`);
  if (split.val.length === 0) warn(`validation set is empty (${pairs.length} pairs x ${cfg.validation}%): validation Dice, best model and early stopping use the training loss instead`);

  // 3. Model, optimizer, loss, scheduler, scaler, early stopping
  const modelArgs: UNetArgs = { nChannels, nClasses: cfg.classes, bilinear: cfg.bilinear };
  if (ckpt?.modelArgs) checkArgs(ckpt, modelArgs);
  const model = hooks.createModel ? hooks.createModel(modelArgs) : new UNet(modelArgs);
  const channelsLast = cuda; // NHWC convolutions are the fast path on GPUs (tensor cores)
  const ampDtype = cfg.amp ? E.ampDtypeFor(device) : null;
  if (cfg.amp && !ampDtype) warn(E.CPU_AMP_NOTE);
  const scaler = new GradScaler(hooks.gradScaler ? { device, ...hooks.gradScaler } : { enabled: ampDtype === 'float16', device });
  let startEpoch = 1;
  let globalStep = 0;
  const dataRng = new Rng(cfg.seed + 1 + 7919 * (dist?.rank ?? 0)); // per-rank augmentation draws
  const early = new EarlyStopping(cfg.patience, cfg.minDelta);
  const release: (() => void)[] = []; // optimizer state etc.: freed when train() ends, however it ends
  try {
    if (ckpt) loadWeights(model, ckpt);
    model.to({ device, memoryFormat: channelsLast ? 'channels_last' : undefined });
    await dist?.wrapModel(model, cfg.syncBn);
    const params = model.parameters();
    const optimizer = createOptimizer(cfg.optimizer, params, { lr: cfg.learningRate, weightDecay: cfg.weightDecay, momentum: cfg.momentum });
    release.push(() => optimizer.dispose());
    const scheduler = createScheduler(cfg.scheduler, optimizer, { epochs: cfg.epochs, mode: 'max', patience: cfg.lrPatience });
    if (ckpt?.kind === 'unet-ts') {
      restore(ckpt, { optimizer, scheduler, scaler, early, dataRng });
      startEpoch = ckpt.epoch + 1;
      globalStep = ckpt.globalStep;
      log(`Resuming from ${ckpt.path} (epoch ${ckpt.epoch} done, step ${globalStep}): weights, optimizer, scheduler, scaler, early stopping and RNG restored`);
    } else if (ckpt) {
      log(`Loaded weights only from ${ckpt.path} (${ckpt.kind === 'reference' ? 'reference trainer' : 'nested fork'} format); training starts at epoch 1`);
    }

    // 4. Tracking: run directory, metrics, TensorBoard, optional W&B
    const worldSize = dist?.worldSize ?? 1;
    const config = { ...cfg, device, maskSuffix, maskValues, nChannels, trainImages: split.train.length, valImages: split.val.length, worldSize, versions: versions() };
    const tracker = dist && !dist.isMain ? Tracker.disabled(resolve(cfg.logdir)) : await Tracker.create({
      logdir: cfg.logdir,
      name: cfg.name || undefined,
      config,
      tensorboard: cfg.tensorboard,
      wandb: cfg.wandb,
      onWarning: warn,
    });
    hooks.onRunDir?.(tracker.runDir);
    log(`Run directory: ${tracker.runDir}`);
    const ckptDir = resolve(cfg.checkpointDir);
    if (!dist || dist.isMain) await prepareCheckpointDir(ckptDir); // writable before any training; stale temp files of a killed run removed

    log(
      [
        'Starting training:',
        `  Epochs:          ${cfg.epochs}${startEpoch > 1 ? ` (resuming at ${startEpoch})` : ''}`,
        `  Batch size:      ${cfg.batchSize}${cfg.accumulateGradBatches > 1 ? ` x ${cfg.accumulateGradBatches} accumulated` : ''}${dist ? ` per process x ${worldSize} processes = ${cfg.batchSize * cfg.accumulateGradBatches * worldSize} per optimizer step (${dist.backend}${cfg.syncBn ? ', sync-BN' : ''})` : ''}`,
        `  Learning rate:   ${cfg.learningRate}`,
        `  Training size:   ${split.train.length}`,
        `  Validation size: ${split.val.length}`,
        `  Images scaling:  ${cfg.scale}`,
        `  Model:           UNet(${nChannels} channels, ${cfg.classes} classes, ${cfg.bilinear ? 'bilinear' : 'transposed conv'}) ${model.numParameters().toLocaleString('en')} parameters`,
        `  Device:          ${device}${ampDtype ? ` (AMP ${ampDtype})` : ''}, ${E.getNumThreads()} threads`,
      ].join('\n'),
    );

    const trainLoader = new DataLoader(dataset, split.train, { batchSize: cfg.batchSize, shuffle: true, rng: dataRng, augment: cfg.augment });
    const valLoader = new DataLoader(dataset, dist ? dist.shardValidation(split.val) : split.val, { batchSize: cfg.batchSize, shuffle: false });
    // Data-parallel: this rank's shard of a per-epoch permutation (DistributedSampler).
    const epochLoader = (epoch: number) => (dist ? new DataLoader(dataset, dist.shard(split.train, epoch, cfg.seed), { batchSize: cfg.batchSize, rng: dataRng, augment: cfg.augment }) : trainLoader);
    hooks.onSplit?.({ train: split.train.map((i) => pairs[i].id), val: split.val.map((i) => pairs[i].id) });
    // Per rank under data parallelism: every rank validates at the same batches (evaluation is collective).
    const cadence = validationCadence(cfg.valEvery, Math.ceil(split.train.length / worldSize), cfg.batchSize);
    log(`Validation: ${split.val.length > 0 ? describeCadence(cadence) : 'none (empty validation set)'}${cfg.preciseBn > 0 ? `; precise BatchNorm statistics over ${cfg.preciseBn} training batches before each` : ''}`);
    const toDevice = (images: Float32Array, masks: Uint8Array, n: number, c: number, h: number, w: number) => {
      let x = E.tensor(images, [n, c, h, w]);
      if (cuda) x = x.pinMemory().to({ device, nonBlocking: true });
      if (channelsLast) x = x.contiguous('channels_last');
      // Masks cross as uint8 (8x fewer bytes than int64) and widen on the device.
      const y = cuda ? E.tensor(masks, [n, h, w]).pinMemory().to({ device, nonBlocking: true }).to({ dtype: 'int64' }) : E.tensor(masks, [n, h, w]).to({ dtype: 'int64' });
      return { x, y };
    };
    const forward = (x: Tensor) => E.autocastOn(device, ampDtype, () => model.forward(x));

    // Precise BN: the first N training batches in split order, unshuffled and unaugmented (the
    // training RNG and data order are untouched, so resuming stays exact).
    const bnLoader = cfg.preciseBn > 0 ? new DataLoader(dataset, split.train, { batchSize: cfg.batchSize, shuffle: false }) : null;
    let bnFresh = false; // statistics recomputed since the last optimizer step
    const preciseBn = async () => {
      if (!bnLoader || bnFresh) return;
      await recomputeBatchNorm(model, bnLoader, cfg.preciseBn, (b) => forward(toDevice(b.images, b.masks, b.n, b.c, b.h, b.w).x));
      bnFresh = true;
    };

    // Validation: mean per-image Dice (the reference's evaluate(), binary shape bug fixed).
    const evaluate = async (withImages: boolean) => {
      await dist?.syncBuffers(model); // every shard scored with rank 0's statistics
      model.eval();
      let sum = 0;
      let count = 0;
      const cm = E.zeros([Math.max(cfg.classes, 2), Math.max(cfg.classes, 2)], { dtype: 'int64', device }).keep();
      let sample: { x: Tensor; y: Tensor; pred: Tensor } | null = null;
      for await (const b of valLoader) {
        E.tidy(() =>
          E.inferenceMode(() => {
            const { x, y } = toDevice(b.images, b.masks, b.n, b.c, b.h, b.w);
            const logits = forward(x);
            sum += validationDice(logits, y, cfg.classes).sum().item();
            count += b.n;
            const pred = predictClasses(logits, cfg.classes);
            cm.add_(confusionMatrix(pred, y, cfg.classes));
            if (withImages && !sample) sample = E.tidy(() => ({ x: x.select(0, 0).to({ device: 'cpu' }), y: y.select(0, 0).to({ device: 'cpu' }), pred: pred.select(0, 0).to({ device: 'cpu' }) }));
            return sample ? [sample.x, sample.y, sample.pred] : [];
          }),
        );
      }
      model.train();
      if (dist) {
        [sum, count] = await dist.reduce([sum, count]); // Dice sums over the ranks: the single-process score
        await dist.reduceTensor(cm);
      }
      const rows = Math.max(cfg.classes, 2);
      const flat = cm.toArray();
      cm.dispose();
      const matrix = Array.from({ length: rows }, (_, r) => flat.slice(r * rows, (r + 1) * rows));
      const dice = count ? sum / count : Number.NaN;
      return { dice: hooks.validationScore ? hooks.validationScore(dice, { epoch, step: globalStep }) : dice, metrics: metricsFromConfusion(matrix), sample: sample as { x: Tensor; y: Tensor; pred: Tensor } | null };
    };

    const logValidation = async (score: number, step: number, epoch: number, sample: { x: Tensor; y: Tensor; pred: Tensor } | null) => {
      tracker.scalar('validation Dice', score, step);
      tracker.scalar('learning rate', optimizer.lr, step);
      tracker.scalar('epoch', epoch, step);
      // Histograms and images only at validation: they copy every weight to the host.
      for (const [name, p] of model.namedParameters()) {
        const tag = name.replaceAll('/', '.');
        E.tidy(() => {
          tracker.histogram(`Weights/${tag}`, p.float().to({ device: 'cpu' }).data() as Float32Array, step);
          const g = p.grad;
          if (g) tracker.histogram(`Gradients/${tag}`, g.float().to({ device: 'cpu' }).data() as Float32Array, step);
        });
      }
      if (sample) {
        tracker.image('images', toImage8(sample.x), step);
        tracker.image('masks/true', maskImage(sample.y, cfg.classes), step);
        tracker.image('masks/pred', maskImage(sample.pred, cfg.classes), step);
        E.dispose(sample);
      }
    };

    // 5. Begin training
    const result: TrainResult = {
      epochsRun: 0,
      bestScore: early.state.best_score,
      bestEpoch: early.state.best_epoch,
      lastScore: Number.NaN,
      stoppedEarly: false,
      interrupted: false,
      checkpointDir: ckptDir,
      runDir: tracker.runDir,
      bestModel: null,
      lastCheckpoint: null,
    };
    let bestWeights: Map<string, Tensor> | null = null;
    release.push(() => bestWeights && E.dispose([...bestWeights.values()])); // also when an error ends the run
    const snapshotBest = () => {
      if (bestWeights) E.dispose([...bestWeights.values()]);
      bestWeights = new Map([...model.stateDict()].map(([k, t]) => [k, E.noGrad(() => t.clone()).keep()]));
    };
    const makeCheckpoint = (epoch: number, loss: number, valScore: number): CheckpointData => ({
      model: model.stateDict(),
      optimizer: optimizer.stateDict(),
      scheduler: scheduler.stateDict(),
      gradScaler: scaler.stateDict(),
      earlyStopping: early.stateDict(),
      epoch,
      globalStep,
      loss,
      valScore,
      maskValues,
      modelArgs,
      config: { ...cfg, worldSize },
      runDir: tracker.runDir,
      rng: { torch: torchRng.stateDict(), data: dataRng.stateDict() },
    });
    const save = async (path: string, data: CheckpointData) => {
      try {
        if (!dist || dist.isMain) await saveCheckpoint(path, data); // rank 0 alone writes
      } finally {
        data.rng?.torch.dispose();
      }
    };

    const accum = cfg.accumulateGradBatches;
    let consecutiveNonFinite = 0;
    let epoch = startEpoch;
    let lastLoss = Number.NaN;
    // When an error ends an epoch: stop the progress bar (its timer would keep the process alive
    // after the error is printed, with the cursor hidden) and free the loss accumulator.
    let openEpoch: { progress: { stop(): void }; epochLoss: Tensor } | null = null;
    release.push(() => {
      openEpoch?.progress.stop();
      openEpoch?.epochLoss.dispose();
    });
    try {
      for (; epoch <= cfg.epochs; epoch++) {
        model.train();
        const loader = epochLoader(epoch);
        const progress = dist && !dist.isMain ? { update() {}, stop() {} } : epochProgress(epoch, cfg.epochs, Math.ceil(split.train.length / worldSize)); // rank 0's shard
        const epochLoss = E.zeros([], { device }).keep();
        openEpoch = { progress, epochLoss };
        let seen = 0;
        let micro = 0;
        let batches = 0;
        const t0 = performance.now();
        // Batches over all epochs, for the reference's validation cadence (every epoch has the same count).
        let globalBatch = (epoch - 1) * loader.length;
        const stepOptimizer = () => {
          scaler.unscale_(optimizer);
          if (cfg.gradClip > 0) clipGradNorm(params, cfg.gradClip).dispose();
          scaler.step(optimizer);
          scaler.update();
          globalStep++;
          bnFresh = false;
        };
        for await (const b of loader) {
          await dist?.agreeOnStop(); // all ranks stop at the same step
          if (hooks.signal?.aborted) break;
          hooks.onTrainBatch?.(epoch, b.ids);
          // Cleared before a window's first backward (not after the step): the gradients stay
          // readable for the Gradients/* histograms at validation, as in the reference.
          if (micro % accum === 0) optimizer.zeroGrad();
          if (b.c !== nChannels) throw new TrainError(`Network has been defined with ${nChannels} input channels, but loaded images have ${b.c} channels (${b.ids[0]}). Check --channels and the image files.`);
          const { lossValue, pending } = E.tidy(() => {
            const { x, y } = toDevice(b.images, b.masks, b.n, b.c, b.h, b.w);
            const loss = E.autocastOn(device, ampDtype, () => segmentationLoss(model.forward(x), y, cfg.classes));
            const scaled = scaler.scale(accum > 1 ? loss.div(accum) : loss);
            if (!dist) scaled.backward();
            epochLoss.add_(loss.detach());
            // On CPU reading the loss costs nothing; on CUDA it syncs, so only every 10 batches.
            return { lossValue: !cuda || batches % 10 === 0 ? loss.item() : null, pending: dist ? scaled : null }; // null: not read (a NaN loss is a value)
          });
          if (dist && pending) {
            // Gradients are averaged over the ranks only on the micro-step that steps the optimizer
            // (DDP's no_sync), including the epoch-end flush.
            const steps = (micro + 1) % accum === 0 || batches + 1 === loader.length;
            await dist.backward(pending, steps).finally(() => pending.dispose());
          }
          micro++;
          batches++;
          globalBatch++;
          seen += b.n;
          const stepped = micro % accum === 0;
          if (stepped) stepOptimizer();
          if (lossValue !== null) {
            lastLoss = lossValue;
            if (!Number.isFinite(lossValue)) {
              consecutiveNonFinite++;
              // Under fp16 the GradScaler skips such steps and backs off; an overflow clears within a
              // few steps, a real NaN does not.
              const limit = scaler.enabled ? 20 : 5;
              if (consecutiveNonFinite >= limit) {
                throw new TrainError(`the loss was not finite (${lossValue}) for ${limit} batches in a row; stopping. Lower -l/--learning-rate, check the data for NaN values, or try without --amp. The last good checkpoint is kept.`);
              }
            } else consecutiveNonFinite = 0;
            tracker.scalar('train loss', lossValue, globalStep);
          }
          progress.update(seen, { loss: Number.isNaN(lastLoss) ? undefined : lastLoss, imgPerSec: (seen / (performance.now() - t0)) * 1000 });
          if (split.val.length > 0 && roundDue(cadence, globalBatch, globalStep, stepped)) {
            await preciseBn();
            const v = await evaluate(false);
            if (scheduler.interval === 'metric') scheduler.step(v.dice);
            tracker.scalar('validation Dice', v.dice, globalStep);
            tracker.scalar('learning rate', optimizer.lr, globalStep);
            tracker.record({ type: 'validation', epoch, step: globalStep, batch: globalBatch, valDice: v.dice, lr: optimizer.lr });
          }
        }
        // Flush the micro-batches that did not fill a whole accumulation window.
        if (micro % accum !== 0 && !hooks.signal?.aborted) stepOptimizer();
        progress.stop();
        if (hooks.signal?.aborted) break;
        const elapsed = (performance.now() - t0) / 1000;
        // Over all ranks: without a validation set it is the score early stopping sees on every rank.
        const [lossSum, lossBatches] = dist ? await dist.reduce([epochLoss.item(), batches]) : [epochLoss.item(), batches];
        const avgLoss = lossSum / Math.max(1, lossBatches);
        epochLoss.dispose();
        tracker.scalar('img/s', seen / elapsed, globalStep);

        // Validation, scheduler, early stopping, checkpoints.
        await preciseBn(); // also without a validation set: the checkpoint gets the recomputed statistics
        const v = split.val.length > 0 ? await evaluate(true) : { dice: -avgLoss, metrics: null, sample: null };
        const score = v.dice;
        // The plateau scheduler steps at the validation rounds; here only when the epoch's end is the round.
        if (scheduler.interval === 'metric') {
          if (cadence.unit === 'epoch' || split.val.length === 0) scheduler.step(score);
        } else scheduler.step();
        await logValidation(score, globalStep, epoch, v.sample);
        tracker.record({ type: 'epoch', epoch, step: globalStep, loss: avgLoss, valDice: score, lr: optimizer.lr, seconds: elapsed, imgPerSec: seen / elapsed, ...(v.metrics ? { perClassDice: v.metrics.perClassDice, perClassIoU: v.metrics.perClassIoU } : {}) });
        const { isBest, stop } = early.update(score, epoch);
        result.epochsRun++;
        result.lastScore = score;
        log(`Epoch ${epoch}/${cfg.epochs}: loss ${avgLoss.toFixed(4)}, validation Dice ${score.toFixed(4)}${isBest ? ' (best)' : ''}, lr ${optimizer.lr.toExponential(2)}, ${(seen / elapsed).toFixed(1)} img/s`);

        const epochPath = join(ckptDir, `checkpoint_epoch${epoch}.pth`);
        await save(epochPath, makeCheckpoint(epoch, avgLoss, score));
        result.lastCheckpoint = epochPath;
        if (isBest) {
          const bestPath = join(ckptDir, 'best_model.pth');
          await save(bestPath, makeCheckpoint(epoch, avgLoss, score));
          result.bestModel = bestPath;
          if (cfg.patience > 0) snapshotBest();
        }
        if (cfg.keepLast > 0 && (!dist || dist.isMain)) await pruneCheckpoints(ckptDir, cfg.keepLast);
        await tracker.flush();
        if (!cuda) E.mallocTrim(); // hand freed activation memory back to the OS between epochs
        if (stop) {
          log(`Early stopping: no Dice gain of ${cfg.minDelta} for ${cfg.patience} epochs; restoring the best weights (epoch ${early.state.best_epoch}).`);
          if (bestWeights) model.loadStateDict(bestWeights);
          result.stoppedEarly = true;
          break;
        }
      }
      if (hooks.signal?.aborted) {
        result.interrupted = true;
        const path = join(ckptDir, 'INTERRUPTED.pth');
        // The interrupted epoch is incomplete: resuming from this file repeats it.
        await save(path, makeCheckpoint(epoch - 1, lastLoss, result.lastScore));
        result.lastCheckpoint = path;
        log(`Interrupted: saved ${path}`);
      }
      if (bestWeights) E.dispose([...(bestWeights as Map<string, Tensor>).values()]);
      result.bestScore = early.state.best_score;
      result.bestEpoch = early.state.best_epoch;
      if (result.bestModel === null && early.state.best_score !== null) {
        const p = join(ckptDir, 'best_model.pth');
        result.bestModel = p;
      }
      tracker.record({ type: 'final', bestScore: result.bestScore, bestEpoch: result.bestEpoch, epochs: result.epochsRun, stoppedEarly: result.stoppedEarly });
    } finally {
      await tracker.close();
    }
    return result;
  } catch (e) {
    if (isOom(e)) throw new TrainError(`${(e as Error).message}\n\n${OOM_ADVICE}`, 3);
    throw e;
  } finally {
    for (const f of release) f();
    scaler.dispose();
    model.dispose();
  }
}

function checkArgs(ckpt: LoadedCheckpoint, want: UNetArgs): void {
  const got = ckpt.modelArgs as UNetArgs;
  const diffs: string[] = [];
  if (got.nChannels !== want.nChannels) diffs.push(`input channels: checkpoint ${got.nChannels}, data/--channels ${want.nChannels}`);
  if (got.nClasses !== want.nClasses) diffs.push(`classes: checkpoint ${got.nClasses}, -c/--classes ${want.nClasses}`);
  if (got.bilinear !== want.bilinear) diffs.push(`upsampling: checkpoint ${got.bilinear ? 'bilinear' : 'transposed conv'}, flags ${want.bilinear ? '--bilinear' : 'no --bilinear'}`);
  if (diffs.length) throw new TrainError(`${ckpt.path} was trained with another architecture:\n  ${diffs.join('\n  ')}\nPass matching flags (e.g. -c ${got.nClasses}${got.bilinear ? ' --bilinear' : ''}) or start without --load.`);
}

export interface Restorable {
  optimizer: Stateful<unknown, LoadableOptimizerStateDict>;
  scheduler: LRScheduler;
  scaler: Stateful<unknown, GradScalerStateDict>;
  early: EarlyStopping;
  dataRng: Rng;
}

/** Loads a checkpoint's weights into the model; a mismatch names the file (exported for the checkpoint fuzz test). */
export function loadWeights(model: UNet, ckpt: LoadedCheckpoint): void {
  const weights = weightsToTensors(ckpt.model);
  try {
    model.loadStateDict(weights);
  } catch (e) {
    throw new CheckpointError(`${ckpt.path}: ${(e as Error).message}`);
  } finally {
    E.dispose([...weights.values()]);
  }
}

/** Restores the training state of one of our checkpoints (exported for the checkpoint fuzz test). */
export function restore(ckpt: LoadedCheckpoint, r: Restorable): void {
  const made: unknown[] = [];
  // The file's values as read; each loadStateDict checks their shape and throws on a bad one.
  const load = <L>(target: Stateful<unknown, L>, saved: Parameters<typeof fromPy>[0]) => {
    const x = fromPy(saved);
    made.push(x);
    target.loadStateDict(x as L);
  };
  try {
    if (ckpt.optimizer) load(r.optimizer, ckpt.optimizer);
    if (ckpt.scheduler) load(r.scheduler, ckpt.scheduler);
    if (ckpt.gradScaler) load(r.scaler, ckpt.gradScaler);
    if (ckpt.earlyStopping) load(r.early, ckpt.earlyStopping);
    if (ckpt.rng) {
      const t = E.tensor(ckpt.rng.torch.data, ckpt.rng.torch.shape, { dtype: 'uint8' });
      made.push(t);
      torchRng.loadStateDict(t);
      if (ckpt.rng.data) r.dataRng.loadStateDict(ckpt.rng.data as RngStateDict);
    }
  } catch (e) {
    // A damaged training state: say which file, and that its weights alone may still be usable.
    throw new CheckpointError(`${ckpt.path}: cannot restore the training state (optimizer, scheduler, scaler, early stopping or RNG): ${(e as Error).message}. Use another checkpoint (e.g. an earlier epoch).`);
  } finally {
    E.dispose(made);
  }
}

async function pruneCheckpoints(dir: string, keep: number): Promise<void> {
  const files = (await readdir(dir))
    .map((f) => ({ f, n: Number(/^checkpoint_epoch(\d+)\.pth$/.exec(f)?.[1]) }))
    .filter((x) => Number.isInteger(x.n))
    .sort((a, b) => a.n - b.n);
  for (const x of files.slice(0, Math.max(0, files.length - keep))) await rm(join(dir, x.f), { force: true });
}

/** [C,H,W] float 0..1 -> HWC uint8 for the tracker. */
function toImage8(x: Tensor): { data: Uint8Array; width: number; height: number; channels: 1 | 3 } {
  const [c, h, w] = x.shape;
  const data = E.tidy(() => x.float().mul(255).clamp(0, 255).round().to({ dtype: 'uint8' }).permute([1, 2, 0]).contiguous()).disposeAfter((t) => t.bytes());
  return { data, width: w, height: h, channels: c === 3 ? 3 : 1 };
}

/** Class map [H,W] -> grey levels spread over 0..255. */
function maskImage(m: Tensor, nClasses: number): { data: Uint8Array; width: number; height: number; channels: 1 } {
  const [h, w] = m.shape;
  const k = Math.max(nClasses, 2) - 1;
  const data = E.tidy(() => m.float().mul(255 / k).round().to({ dtype: 'uint8' }).contiguous()).disposeAfter((t) => t.bytes());
  return { data, width: w, height: h, channels: 1 };
}
