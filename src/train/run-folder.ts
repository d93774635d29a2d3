/**
 * The checkpoint folder of a run. The guide's layout (checkpoint_epoch<N>.pth, best_model.pth) is
 * shared by every run writing there, so another run's checkpoints are never overwritten silently:
 * a folder holding them is refused unless this run continues from one of them or --exist-ok
 * replaces them. One writer at a time, by a lock file (pid, host, start time).
 */
import { readdirSync, realpathSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { TrainConfig } from '../config/options.js';
import { type LockHolder, acquireLock, isLive, readLock } from '../io/lock.js';
import { type CheckpointInfo, fromPy, readCheckpointInfo } from '../model/checkpoint.js';
import { TrainError } from './context.js';

export const LOCK_FILE = '.train.lock';
const RUN_FILE = /^(?:checkpoint_epoch(\d+)|best_model|INTERRUPTED)\.pth$/;
const epochOf = (f: string): number | null => {
  const n = RUN_FILE.exec(f)?.[1];
  return n === undefined ? null : Number(n);
};

/** The checkpoints a run writes that are in `dir`: epochs in order, then best_model.pth, INTERRUPTED.pth. */
export function runFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const order = (f: string) => epochOf(f) ?? Number.POSITIVE_INFINITY;
  return names.filter((f) => RUN_FILE.test(f)).sort((a, b) => order(a) - order(b) || a.localeCompare(b));
}

/** "a, b, c" or, for many files, "a, b, ..., y, z (12 files)". */
const list = (files: string[]): string => (files.length <= 4 ? files.join(', ') : `${files.slice(0, 2).join(', ')}, ..., ${files.slice(-2).join(', ')} (${files.length} files)`);

const real = (p: string): string => {
  try {
    return realpathSync(p);
  } catch {
    return resolve(p);
  }
};

/** -f/--load (or --resume) names a checkpoint inside --checkpoint-dir: this run continues the one there. */
export const continuesInFolder = (cfg: Pick<TrainConfig, 'load' | 'checkpointDir'>): boolean => cfg.load !== '' && dirname(real(cfg.load)) === real(cfg.checkpointDir);

export interface OtherRun {
  /** The run directory's name (e.g. 20250101-120000-run), or the run's --name. */
  name: string;
  /** --name as the run was given it ('' when none). */
  configName: string;
  epoch: number;
  bestDice: number | null;
  files: string[];
}

/** Who wrote the checkpoints in `dir`, from their metadata (the newest state, and the best model's score); null when there are none. */
export async function describeOtherRun(dir: string): Promise<OtherRun | null> {
  const files = runFiles(dir);
  if (files.length === 0) return null;
  const epochs = files.filter((f) => epochOf(f) !== null);
  const candidates = [epochs.at(-1), 'INTERRUPTED.pth', 'best_model.pth'].filter((f): f is string => f !== undefined && files.includes(f));
  const infos: CheckpointInfo[] = [];
  for (const f of candidates) {
    const info = await readCheckpointInfo(join(dir, f)).catch(() => null); // a damaged file still counts as the other run's
    if (info) infos.push(info);
  }
  const latest = infos.reduce<CheckpointInfo | null>((a, b) => (!a || b.epoch > a.epoch || (b.epoch === a.epoch && b.globalStep > a.globalStep) ? b : a), null);
  const early = fromPy(latest?.earlyStopping ?? null) as { best_score?: number | null } | null;
  const best = infos.find((i) => basename(i.path) === 'best_model.pth');
  const configName = typeof latest?.config?.name === 'string' ? latest.config.name : '';
  return {
    name: latest?.runDir ? basename(latest.runDir) : configName || 'unnamed (no run metadata in its checkpoints)',
    configName,
    epoch: latest?.epoch ?? 0,
    bestDice: early?.best_score ?? best?.valScore ?? null,
    files,
  };
}

const dice = (d: number | null): string => (d === null ? 'no validation Dice' : d < 0 ? 'no validation set' : `best Dice ${d.toFixed(4)}`);

const inUse = (dir: string, h: LockHolder): string =>
  `${dir} is in use by another training: pid ${Number.isNaN(h.pid) ? '?' : h.pid} on ${h.host}, started ${h.started}${h.what ? ` (${h.what})` : ''}. ` +
  `Wait for it to finish, or train into another folder with --checkpoint-dir DIR. If that process is no longer running, delete ${join(dir, LOCK_FILE)}.`;

/**
 * Before any training work: refuses a folder in use by a live writer, or holding another run's
 * checkpoints (unless this run continues from one of them, or --exist-ok). Notes what will be replaced.
 */
export async function checkCheckpointDir(cfg: TrainConfig, note: (line: string) => void): Promise<void> {
  const dir = resolve(cfg.checkpointDir);
  const holder = await readLock(join(dir, LOCK_FILE)).catch(() => null);
  if (holder && isLive(holder)) throw new TrainError(inUse(dir, holder));
  const files = runFiles(dir);
  if (files.length === 0) return;
  // A missing or damaged --load file is the first thing to say.
  const load = cfg.load ? await readCheckpointInfo(cfg.load, '-f/--load') : null;
  if (load && continuesInFolder(cfg)) {
    const start = load.kind === 'unet-ts' ? load.epoch + 1 : 1;
    const replaced = files.filter((f) => {
      const n = epochOf(f);
      return n === null || (n >= start && n <= cfg.epochs);
    });
    note(`Continuing in ${dir} from ${basename(cfg.load)}: this run replaces ${replaced.length ? list(replaced) : 'none of its files'} (best_model.pth only if the validation Dice improves, INTERRUPTED.pth only if interrupted)`);
    return;
  }
  const other = (await describeOtherRun(dir)) as OtherRun;
  const what = `run '${other.name}' (epoch ${other.epoch}, ${dice(other.bestDice)}; ${list(files)})`;
  if (cfg.existOk) {
    note(`--exist-ok: this run replaces ${what} in ${dir}; those files are removed when this run writes its first checkpoint`);
    return;
  }
  throw new TrainError(`${dir} holds the checkpoints of another run: ${what}; this run would overwrite them. Pass --exist-ok to replace that run, --resume to continue it, or --checkpoint-dir DIR to train into another folder.`);
}

/**
 * Before the run directory (rank 0): takes the folder's writer lock. With --exist-ok the other
 * run's checkpoints are removed just before this run writes its first one (`replaceOtherRun`), so
 * a run that fails before saving anything leaves them as they were.
 */
export async function claimCheckpointDir(cfg: TrainConfig, dir: string, note: (line: string) => void): Promise<{ release: () => void; replaceOtherRun: () => Promise<void> }> {
  const r = await acquireLock(join(dir, LOCK_FILE), cfg.name ? `run '${cfg.name}'` : 'unet train');
  if (!r.lock) throw new TrainError(inUse(dir, r.holder));
  if (r.staleTakenOver) {
    const h = r.staleTakenOver;
    note(`took over the stale lock ${r.lock.path} of pid ${h.pid} (started ${h.started}), which is no longer running`);
  }
  let pending = cfg.existOk && !continuesInFolder(cfg) ? runFiles(dir) : [];
  const replaceOtherRun = async (): Promise<void> => {
    const files = pending;
    pending = [];
    for (const f of files) await rm(join(dir, f), { force: true });
    if (files.length) note(`--exist-ok: removed the other run's checkpoints from ${dir}: ${list(files)}`);
  };
  return { release: r.lock.release, replaceOtherRun };
}
