/**
 * A collective failed mid-training (a worker died, or hung past --dist-timeout): no rank can
 * train on, and the failed one cannot be asked to agree on anything. Rank 0 saves INTERRUPTED.pth
 * on its own, from the last completed optimizer step: weights, optimizer, scheduler and scaler
 * change only inside the synchronous step, so at any collective they are that step's, and the
 * BatchNorm statistics of the forwards since are put back (DistContext keeps that step's copy).
 * A half-reduced gradient is never applied: the failed backward throws before the step.
 */
import { join } from 'node:path';
import { DistError } from '../distributed/index.js';
import { type TrainRun, isMain } from './context.js';
import { saveTrainingState } from './state.js';

/**
 * The error to end the run with: `e` itself when it is not a collective's failure, else one line
 * saying what failed and what rank 0 saved (or that it saved nothing, and why).
 */
export async function saveAfterDistFailure(run: TrainRun, e: unknown, epoch: number, lastScore: number): Promise<unknown> {
  const failure = run.dist?.asFailure(e);
  if (!run.dist || !failure) return e;
  if (!isMain(run)) return failure;
  if (run.globalStep === run.startStep) return new DistError(`${failure.message}; no optimizer step was completed in this run, so no INTERRUPTED.pth was written (checkpoints already written are intact)`);
  run.dist.restoreStepBuffers();
  const path = join(run.ckptDir, 'INTERRUPTED.pth');
  try {
    // No epoch position: the failed worker's part of it cannot be gathered, so resuming repeats the epoch.
    await saveTrainingState(run, path, epoch - 1, run.lastLoss, lastScore);
  } catch (err) {
    return new DistError(`${failure.message}; INTERRUPTED.pth was not written (${(err as Error).message}); checkpoints already written are intact`);
  }
  return new DistError(`${failure.message}; saved ${path} (weights and training state after optimizer step ${run.globalStep}; resuming from it repeats epoch ${epoch})`);
}
