/** The training state in checkpoints: what is saved each epoch, restored on --resume, pruned with --keep-last, kept as the best. */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Rng, RngStateDict } from '../data/index.js';
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import { type CheckpointData, CheckpointError, type LoadedCheckpoint, checkpointWriteError, fromPy, saveCheckpoint, weightsToTensors } from '../model/checkpoint.js';
import type { UNet } from '../model/index.js';
import type { GradScalerStateDict, LRScheduler, LoadableOptimizerStateDict } from '../optim/index.js';
import type { Stateful } from '../io/stateful.js';
import { type TrainRun, isMain } from './context.js';
import type { EarlyStopping } from './early-stopping.js';
import { torchRng } from './rng.js';

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

/** Writes the full training state after `epoch` (rank 0 alone writes; every rank frees its RNG copy). */
export async function saveTrainingState(run: TrainRun, path: string, epoch: number, loss: number, valScore: number): Promise<void> {
  const data: CheckpointData = {
    model: run.model.stateDict(),
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
    modelArgs: run.modelArgs,
    config: { ...run.cfg, worldSize: run.worldSize },
    runDir: run.tracker.runDir,
    rng: { torch: torchRng.stateDict(), data: run.dataRng.stateDict() },
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

  snapshot(model: UNet): void {
    this.dispose();
    this.weights = new Map([...model.stateDict()].map(([k, t]) => [k, E.noGrad(() => t.clone()).keep()]));
  }

  /** Loads the copy into the model; false when there is none. */
  restoreInto(model: UNet): boolean {
    if (this.weights) model.loadStateDict(this.weights);
    return this.weights !== null;
  }

  dispose(): void {
    if (this.weights) E.dispose([...this.weights.values()]);
    this.weights = null;
  }
}
