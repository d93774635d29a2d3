/** `unet train --resume [PATH]`: which checkpoint to continue from. */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { LOSSES, type LossName } from '../config/options.js';
import { CliError, EXIT } from './errors.js';

const RESUMABLE = /^(INTERRUPTED|checkpoint_epoch(\d+))\.pth$/;

/** How far a checkpoint's training got: optimizer steps, then epochs, as recorded in the file (null: unreadable). */
async function progress(path: string): Promise<[number, number] | null> {
  try {
    // Imported here: model/ loads the libtorch addon, which `unet --version` and `unet env` must not need.
    const { readCheckpointInfo } = await import('../model/checkpoint.js');
    const c = await readCheckpointInfo(path, '--resume'); // no tensor data: only the recorded progress
    return c.kind === 'unet-ts' ? [c.globalStep, c.epoch + ((c.position?.batch ?? 0) > 0 ? 0.5 : 0)] : null;
  } catch {
    return null;
  }
}

/**
 * The INTERRUPTED.pth or checkpoint_epoch<N>.pth in `dir` that got furthest, by the training
 * progress the files record (optimizer steps, then epochs), not by file time: an INTERRUPTED.pth
 * older in progress than the last epoch checkpoint loses. Epoch checkpoints rank by N among
 * themselves; best_model.pth is not a place to continue from.
 */
export async function newestCheckpoint(dir: string, say: (line: string) => void = () => {}): Promise<string> {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    throw new CliError(`--resume: the checkpoint folder ${dir} does not exist; name the folder with --checkpoint-dir DIR or the file with --resume PATH`);
  }
  const epochs = names
    .map((n) => RESUMABLE.exec(n))
    .filter((m) => m?.[2] !== undefined)
    .map((m) => ({ path: join(dir, m?.[0] ?? ''), epoch: Number(m?.[2]) }))
    .sort((a, b) => b.epoch - a.epoch);
  const interrupted = names.includes('INTERRUPTED.pth') ? join(dir, 'INTERRUPTED.pth') : null;
  if (!interrupted && epochs.length === 0) {
    throw new CliError(`--resume: no INTERRUPTED.pth or checkpoint_epoch<N>.pth in ${dir}; train without --resume, or name a checkpoint with --resume PATH`);
  }
  if (!interrupted) return epochs[0].path;
  if (epochs.length === 0) return interrupted;
  const [i, e] = await Promise.all([progress(interrupted), progress(epochs[0].path)]);
  if (!i) {
    say(`--resume: ${interrupted} cannot be read as one of our checkpoints; passing it over`);
    return epochs[0].path;
  }
  // A tie (nothing trained after the epoch checkpoint) goes to the epoch checkpoint.
  const ahead = !e || i[0] > e[0] || (i[0] === e[0] && i[1] > e[1]);
  return ahead ? interrupted : epochs[0].path;
}

/** --resume given: the checkpoint to load (also printed, on stderr, when it was looked up). */
export async function resolveResume(resume: string | true, load: string, checkpointDir: string, say: (line: string) => void): Promise<string> {
  if (load) throw new CliError('--resume and --load both name a checkpoint; give one of them', EXIT.usage);
  if (resume !== true) return resume;
  const path = await newestCheckpoint(checkpointDir, say);
  say(`Resuming from ${path} (the INTERRUPTED.pth or epoch checkpoint in ${checkpointDir} that trained furthest)`);
  return path;
}

/**
 * Continuing one of our checkpoints (--resume, --load) without --loss: the loss it was trained with,
 * not the default, so a resumed run keeps its objective (a note says so). Anything unreadable here
 * is left to the checkpoint's real load to report.
 */
export async function keptLoss(path: string, loss: LossName, say: (line: string) => void): Promise<LossName> {
  let saved: unknown;
  try {
    const { readCheckpointInfo } = await import('../model/checkpoint.js');
    saved = (await readCheckpointInfo(path, '--resume')).config?.loss;
  } catch {
    return loss;
  }
  if (saved === loss || !LOSSES.includes(saved as LossName)) return loss;
  say(`Continuing with --loss ${saved as string}, the loss ${path} was trained with (pass --loss to change it)`);
  return saved as LossName;
}
