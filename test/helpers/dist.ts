/** Helpers for the data-parallel tests: free ports and worker processes. */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { pathToFileURL } from 'node:url';
import { TSX } from './cli.js';

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolvePort(port));
    });
  });
}

export interface Started {
  child: ChildProcess;
  out: () => string;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; ms: number }>;
}

/** Starts a TypeScript file with node + tsx (1 thread), collecting stdout and stderr together. */
export function startTs(file: string, args: string[], o: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {}): Started {
  const t0 = performance.now();
  const child = spawn(process.execPath, ['--import', pathToFileURL(TSX).href, file, ...args], {
    cwd: o.cwd,
    env: { ...process.env, NODE_OPTIONS: '', UNET_DEBUG: '', FORCE_COLOR: '0', UNET_THREADS: '1', OMP_NUM_THREADS: '1', ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (out += s));
  const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 180_000);
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string; ms: number }>((res) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      res({ code, signal, out, ms: performance.now() - t0 });
    });
  });
  return { child, out: () => out, done };
}

export const runTs = (file: string, args: string[], env: Record<string, string> = {}) => startTs(file, args, { env }).done;

/** Live processes whose parent is `pid` (Linux /proc), with their RANK. */
export function childrenOf(pid: number): { pid: number; rank: string | null }[] {
  const out: { pid: number; rank: string | null }[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== pid) continue;
      const env = readFileSync(`/proc/${d}/environ`, 'utf8').split('\0');
      out.push({ pid: Number(d), rank: env.find((e) => e.startsWith('RANK='))?.slice(5) ?? null });
    } catch {
      // the process ended meanwhile
    }
  }
  return out;
}

/** The state letter of `pid` in /proc (R, S, T for stopped, Z for zombie...), or null when it is gone. */
function procState(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return null;
  }
}

/** True while `pid` runs (a zombie, ended but not yet reaped by its new parent, counts as ended). */
export const alive = (pid: number): boolean => !['Z', null].includes(procState(pid));

/** True while `pid` is stopped (SIGSTOP). */
export const stopped = (pid: number): boolean => procState(pid) === 'T';
