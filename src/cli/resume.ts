/** `unet train --resume [PATH]`: which checkpoint to continue from. */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CliError, EXIT } from './errors.js';

const RESUMABLE = /^(INTERRUPTED|checkpoint_epoch(\d+))\.pth$/;

/**
 * The newest INTERRUPTED.pth or checkpoint_epoch<N>.pth in `dir`, by modification time (the
 * last state written; a later epoch wins a tie). best_model.pth is not a place to continue from.
 */
export function newestCheckpoint(dir: string): string {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    throw new CliError(`--resume: the checkpoint folder ${dir} does not exist; name the folder with --checkpoint-dir DIR or the file with --resume PATH`);
  }
  const found = names
    .map((n) => ({ n, m: RESUMABLE.exec(n) }))
    .filter((x) => x.m)
    .map(({ n, m }) => ({ path: join(dir, n), mtime: statSync(join(dir, n)).mtimeMs, epoch: m?.[2] === undefined ? Number.POSITIVE_INFINITY : Number(m[2]) }))
    .sort((a, b) => b.mtime - a.mtime || b.epoch - a.epoch);
  if (found.length === 0) {
    throw new CliError(`--resume: no INTERRUPTED.pth or checkpoint_epoch<N>.pth in ${dir}; train without --resume, or name a checkpoint with --resume PATH`);
  }
  return found[0].path;
}

/** --resume given: the checkpoint to load (also printed, on stderr, when it was looked up). */
export function resolveResume(resume: string | true, load: string, checkpointDir: string, say: (line: string) => void): string {
  if (load) throw new CliError('--resume and --load both name a checkpoint; give one of them', EXIT.usage);
  if (resume !== true) return resume;
  const path = newestCheckpoint(checkpointDir);
  say(`Resuming from ${path} (the newest INTERRUPTED.pth or epoch checkpoint in ${checkpointDir})`);
  return path;
}
