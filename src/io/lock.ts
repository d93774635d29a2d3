/**
 * A lock file for one writer of a folder: created exclusively, holding the writer's pid, host and
 * start time, removed on every exit. A lock whose process is gone (same host, pid not alive) is
 * stale and may be taken over.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, unlinkSync } from 'node:fs';
import { open, readFile, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';

export interface LockHolder {
  pid: number;
  host: string;
  /** ISO time the holder took the lock. */
  started: string;
  /** What the holder is (e.g. the run's name). */
  what: string;
  token: string;
}

/** Whether a process of this host is alive (EPERM: it is, but not ours). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The holder of the lock at `path`, or null when there is none (an unreadable lock counts as held). */
export async function readLock(path: string): Promise<LockHolder | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  try {
    const o = JSON.parse(text) as Partial<LockHolder>;
    return { pid: Number(o.pid), host: String(o.host), started: String(o.started), what: String(o.what ?? ''), token: String(o.token ?? '') };
  } catch {
    // Being written right now, or damaged: held by someone unknown.
    return { pid: Number.NaN, host: 'unknown', started: 'unknown', what: '', token: '' };
  }
}

/** Held by a live process (or by one on another host, which cannot be checked). */
export const isLive = (h: LockHolder): boolean => h.host !== hostname() || !Number.isInteger(h.pid) || h.pid <= 0 || processAlive(h.pid);

export interface Lock {
  path: string;
  /** Removes the lock if it is still ours; safe to call more than once. */
  release(): void;
}

export type LockResult = { lock: Lock; staleTakenOver: LockHolder | null } | { lock: null; holder: LockHolder };

/** Takes the lock at `path`, taking over a stale one; `{ lock: null, holder }` when a live process holds it. */
export async function acquireLock(path: string, what: string): Promise<LockResult> {
  const me: LockHolder = { pid: process.pid, host: hostname(), started: new Date().toISOString(), what, token: randomBytes(8).toString('hex') };
  let stale: LockHolder | null = null;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(path, 'wx');
      try {
        await fh.writeFile(`${JSON.stringify(me)}\n`);
      } finally {
        await fh.close();
      }
      return { lock: ownLock(path, me.token), staleTakenOver: stale };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = await readLock(path);
    if (holder && isLive(holder)) return { lock: null, holder };
    stale = holder;
    await unlink(path).catch(() => {}); // a stale lock: its process is gone
  }
  // Someone else took it over between our attempts.
  return { lock: null, holder: (await readLock(path)) ?? (stale as LockHolder) };
}

function ownLock(path: string, token: string): Lock {
  let held = true;
  const release = (): void => {
    if (!held) return;
    held = false;
    process.off('exit', release);
    try {
      // Only our own lock: a later writer may have taken over a lock we left.
      if ((JSON.parse(readFileSync(path, 'utf8')) as LockHolder).token === token) unlinkSync(path);
    } catch {
      // already gone
    }
  };
  // Also on process.exit() (a second Ctrl-C, a fatal error): 'exit' listeners run synchronously.
  process.on('exit', release);
  return { path, release };
}
