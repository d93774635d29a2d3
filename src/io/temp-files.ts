/**
 * Temporary files and folders of a running command (an image staged for region-by-region reading,
 * outputs being written): removed when predict, evaluate or export is stopped by Ctrl-C or
 * SIGTERM, and those a killed process left behind removed by the next run.
 */
import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { EXIT } from '../config/errors.js';
import { processAlive } from './lock.js';

const live = new Set<string>();

/** Tracks `path` until the returned function is called (after the rename or removal). */
export function trackTemp(path: string): () => void {
  live.add(path);
  return () => {
    live.delete(path);
  };
}

let installed = false;

/**
 * On the first SIGINT / SIGTERM: removes every tracked path and exits 130 / 143. A second signal
 * gets the default action (the listener is gone). Not for `train`, which saves a checkpoint first.
 */
export function removeTempsOnSignals(): void {
  if (installed) return;
  installed = true;
  for (const [signal, code] of [
    ['SIGINT', EXIT.interrupted],
    ['SIGTERM', EXIT.terminated],
  ] as const) {
    process.once(signal, () => {
      for (const p of live) rmSync(p, { recursive: true, force: true });
      process.stderr.write(`\ninterrupted (${signal})${live.size ? `: removed ${live.size} temporary file(s)` : ''}; files already written are complete\n`);
      process.exit(code);
    });
  }
}

/**
 * Removes the entries of `dir` named `<prefix><pid>-...` whose process is gone (left by a kill -9
 * or a crash); returns their names.
 */
export function removeStaleTemps(dir: string, prefix: string): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const pid = Number(/^(\d+)-/.exec(name.slice(prefix.length))?.[1]);
    if (!pid || pid === process.pid || processAlive(pid)) continue;
    rmSync(join(dir, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}
