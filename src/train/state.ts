/** The training state in checkpoints: what is saved each epoch, restored on --resume, pruned with --keep-last, kept as the best. */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Rng, RngStateDict } from '../data/index.js';
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import { type CheckpointData, CheckpointError, type EpochPosition, type LoadedCheckpoint, checkpointWriteError, fromPy, saveCheckpoint, weightsToTensors } from '../model/checkpoint.js';
import type { SegmentationModel } from '../model/index.js';
import type { Module } from '../nn/index.js';
import type { RawTensor } from '../io/pth.js';
import type { GradScalerStateDict, LRScheduler, LoadableOptimizerStateDict } from '../optim/index.js';
import type { Stateful } from '../io/stateful.js';
import { type EpochMark, type TrainRun, isMain } from './context.js';
import type { EarlyStopping } from './early-stopping.js';
import { torchRng } from './rng.js';

export interface Restorable {
  optimizer: Stateful<unknown, LoadableOptimizerStateDict>;
  scheduler: LRScheduler;
  scaler: Stateful<unknown, GradScalerStateDict>;
  early: EarlyStopping;
  dataRng: Rng;
}

/**
 * Loads one state dict of a checkpoint (default: the model's weights; else `key`'s, e.g. the
 * deep-supervision heads) into a module; a mismatch names the file and the key (exported for the
 * checkpoint fuzz test).
 */
export function loadWeights(model: Module, ckpt: LoadedCheckpoint, saved: Map<string, RawTensor> = ckpt.model, key = ''): void {
  const weights = weightsToTensors(saved);
  try {
    model.loadStateDict(weights);
  } catch (e) {
    throw new CheckpointError(`${ckpt.path}: ${key ? `${key}: ` : ''}${(e as Error).message}`);
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

/**
 * INTERRUPTED.pth: the state at the last optimizer step. Inside an epoch (`mark`) it holds the
 * epoch's position too (order, next batch, every rank's data generator, the loss sum over all
 * ranks), so --resume continues with the next batch; `epoch` is the last completed epoch.
 * Collective under data parallelism: every rank calls it.
 */
export async function saveInterrupted(run: TrainRun, path: string, epoch: number, mark: EpochMark | null, valScore: number): Promise<void> {
  if (!mark) return saveTrainingState(run, path, epoch, run.lastLoss, valScore);
  // Back to the step: a data error can stop inside an accumulation window, whose micro-batches
  // (BatchNorm statistics) and validation rounds (scheduler, lr) the resumed run repeats.
  run.model.loadStateDict(mark.buffers, false);
  run.scheduler.loadStateDict(structuredClone(mark.scheduler) as never);
  run.optimizer.lrs = mark.lrs;
  run.bnFresh = mark.bnFresh;
  const { dist, worldSize } = run;
  let reduced: number[];
  try {
    reduced = await gather(run, mark.loss.item(), mark.rng);
  } catch (e) {
    // A worker is gone: rank 0 still saves what it has; resuming then repeats the epoch.
    run.warn(`the epoch's position could not be gathered from every process (${(e as Error).message}); ${path} restarts epoch ${mark.epoch}`);
    return saveTrainingState(run, path, epoch, run.lastLoss, valScore);
  }
  const [lossSum, ...states] = reduced;
  const position: EpochPosition = {
    epoch: mark.epoch,
    batch: mark.batch,
    order: dist || !mark.order ? [] : [...mark.order],
    batchSize: run.cfg.batchSize,
    accumulate: run.cfg.accumulateGradBatches,
    worldSize,
    dataRng: states.map((state) => ({ state })),
    lossSum,
    seen: mark.seen,
    seconds: mark.seconds,
    bnFresh: mark.bnFresh,
  };
  await saveTrainingState(run, path, mark.epoch - 1, run.lastLoss, valScore, { position, dataRng: mark.rng });
}

/** The loss sum over the ranks, then each rank's generator state (each rank fills its own slot of a sum). */
async function gather(run: TrainRun, loss: number, rng: RngStateDict): Promise<number[]> {
  const { dist, worldSize } = run;
  const slots = Array.from({ length: worldSize }, (_, r) => (r === (dist?.rank ?? 0) ? rng.state : 0));
  return dist ? dist.reduce([loss, ...slots]) : [loss, ...slots];
}

/**
 * Data-parallel epoch checkpoints: the next epoch's start with every rank's data generator (rank
 * 0's alone is in `rng_state`), so resuming on as many processes draws what this run goes on to
 * draw. Collective: every rank calls it.
 */
export async function nextEpochStart(run: TrainRun, epoch: number): Promise<{ position: EpochPosition; dataRng: RngStateDict }> {
  const dataRng = run.dataRng.stateDict();
  const [, ...states] = await gather(run, 0, dataRng);
  const { batchSize, accumulateGradBatches: accumulate } = run.cfg;
  const position = {
    epoch: epoch + 1,
    batch: 0,
    order: [],
    batchSize,
    accumulate,
    worldSize: run.worldSize,
    dataRng: states.map((state) => ({ state })),
    lossSum: 0,
    seen: 0,
    seconds: 0,
    bnFresh: run.bnFresh,
  };
  return { position, dataRng };
}

/**
 * The position of a mid-epoch INTERRUPTED.pth, if this run can continue it exactly; otherwise a
 * refusal naming what differs. Null when the checkpoint has none (or its epoch will not run).
 */
export function resumePosition(ckpt: LoadedCheckpoint, run: Pick<TrainRun, 'cfg' | 'worldSize' | 'data' | 'dist'>): EpochPosition | null {
  const p = ckpt.position;
  if (!p || ckpt.kind !== 'unet-ts' || p.epoch > run.cfg.epochs) return null;
  const instead = ckpt.epoch > 0 ? `continue from checkpoint_epoch${ckpt.epoch}.pth` : 'start again without --resume/--load';
  const ints = [p.epoch, p.batch, p.batchSize, p.accumulate, p.worldSize, p.seen];
  const rngs = Array.isArray(p.dataRng) ? p.dataRng : [];
  const order = Array.isArray(p.order) ? p.order : [];
  const rngOk = rngs.every((r) => Number.isInteger((r as RngStateDict)?.state) && (r as RngStateDict).state >= 0 && (r as RngStateDict).state < 2 ** 32);
  if (!ints.every((n) => Number.isInteger(n) && n >= 0) || p.epoch !== ckpt.epoch + 1 || typeof p.lossSum !== 'number' || typeof p.seconds !== 'number' || rngs.length !== p.worldSize || !rngOk) {
    throw new CheckpointError(`${ckpt.path}: its mid-epoch position is damaged; ${instead}`);
  }
  const { cfg, worldSize, data } = run;
  // An epoch's start: only the generators, for as many processes (any other number draws anew).
  if (p.batch === 0) return p.worldSize === worldSize ? p : null;
  const differs: string[] = [];
  if (p.batchSize !== cfg.batchSize) differs.push(`-b ${p.batchSize} (now ${cfg.batchSize})`);
  if (p.accumulate !== cfg.accumulateGradBatches) differs.push(`--accumulate-grad-batches ${p.accumulate} (now ${cfg.accumulateGradBatches})`);
  if (p.worldSize !== worldSize) differs.push(`${p.worldSize} process(es) (now ${worldSize})`);
  const patches = (c: { patchSize?: unknown; oversampleFg?: unknown } | null | undefined) => (c?.patchSize ? `--patch-size ${(c.patchSize as number[]).join('x')} --oversample-fg ${c.oversampleFg}` : 'whole images');
  if (patches(ckpt.config) !== patches(cfg)) differs.push(`${patches(ckpt.config)} (now ${patches(cfg)})`);
  const sorted = (a: readonly number[]) => JSON.stringify([...a].sort((x, y) => x - y));
  if (differs.length === 0 && worldSize === 1 && sorted(order) !== sorted(data.split.train)) differs.push('another training split (data, -v/--validation or --seed)');
  if (differs.length > 0) {
    throw new CheckpointError(`${ckpt.path} was saved in the middle of epoch ${p.epoch} by a run with ${differs.join(', ')}; resume it with the same flags and data to continue exactly, or ${instead}`);
  }
  return p;
}

/** Writes the full training state after `epoch` (rank 0 alone writes; every rank frees its RNG copy). */
export async function saveTrainingState(run: TrainRun, path: string, epoch: number, loss: number, valScore: number, mid?: { position: EpochPosition; dataRng: RngStateDict }): Promise<void> {
  const data: CheckpointData = {
    // --ema: the average is the model (what predict, export and best_model.pth read); the training weights go beside it.
    model: (run.ema?.model ?? run.model).stateDict(),
    rawModel: run.ema ? run.model.stateDict() : null,
    emaUpdates: run.ema?.updates,
    optimizer: run.optimizer.stateDict(),
    scheduler: run.scheduler.stateDict(),
    gradScaler: run.scaler.stateDict(),
    earlyStopping: run.early.stateDict(),
    epoch,
    globalStep: run.globalStep,
    loss,
    valScore,
    maskValues: run.data.maskValues,
    classNames: run.cfg.classNames,
    ignoreValue: run.cfg.ignoreIndex ?? null,
    modelArgs: run.modelArgs,
    auxHeads: run.auxHeads?.stateDict() ?? null,
    config: { ...run.cfg, worldSize: run.worldSize },
    runDir: run.tracker.runDir,
    rng: { torch: torchRng.stateDict(), data: mid?.dataRng ?? run.dataRng.stateDict() },
    position: mid?.position ?? null,
  };
  try {
    if (isMain(run)) {
      await run.replaceOtherRun();
      await saveCheckpoint(path, data).catch((e: unknown) => Promise.reject(checkpointWriteError(path, e)));
    }
  } finally {
    data.rng?.torch.dispose();
  }
}

/** Keeps the newest `keep` checkpoint_epoch*.pth files. */
export async function pruneCheckpoints(dir: string, keep: number): Promise<void> {
  const files = (await readdir(dir))
    .map((f) => ({ f, n: Number(/^checkpoint_epoch(\d+)\.pth$/.exec(f)?.[1]) }))
    .filter((x) => Number.isInteger(x.n))
    .sort((a, b) => a.n - b.n);
  for (const x of files.slice(0, Math.max(0, files.length - keep))) await rm(join(dir, x.f), { force: true });
}

/** A copy of the best epoch's weights, for early stopping to restore. */
export class BestWeights {
  private weights: Map<string, Tensor> | null = null;

  snapshot(model: SegmentationModel): void {
    this.dispose();
    this.weights = new Map([...model.stateDict()].map(([k, t]) => [k, E.noGrad(() => t.clone()).keep()]));
  }

  /** Loads the copy into the model; false when there is none. */
  restoreInto(model: SegmentationModel): boolean {
    if (this.weights) model.loadStateDict(this.weights);
    return this.weights !== null;
  }

  dispose(): void {
    if (this.weights) E.dispose([...this.weights.values()]);
    this.weights = null;
  }
}
