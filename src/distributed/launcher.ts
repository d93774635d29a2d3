/**
 * `unet train --nproc-per-node N`: torchrun's job for this machine. Spawns N workers (this same
 * command line, with RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set), forwards
 * Ctrl-C/SIGTERM to them, and when one fails stops the others and names it. Workers hold an IPC
 * channel to the launcher and exit when it closes, so none outlives the launcher.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { EXIT } from '../config/errors.js';

export interface LaunchOptions {
  nprocPerNode: number;
  nnodes: number;
  nodeRank: number;
  masterAddr: string;
  masterPort: number;
  /** Seconds a failed run's remaining workers get to exit before they are killed. */
  graceSeconds?: number;
  /** Command line to run per worker (default: this process's). */
  argv?: string[];
  log?: (line: string) => void;
}

/** Marks a worker spawned by our launcher: it exits when the launcher's IPC channel closes. */
export const LAUNCHED_ENV = 'UNET_LAUNCHED';

const SIGNAL_CODES: Partial<Record<NodeJS.Signals, number>> = { SIGINT: EXIT.interrupted, SIGTERM: EXIT.terminated };

/** Runs the workers of this node; resolves with the exit code for the launcher. */
export function launch(o: LaunchOptions): Promise<number> {
  const log = o.log ?? ((l: string) => console.error(l));
  const worldSize = o.nprocPerNode * o.nnodes;
  const argv = o.argv ?? [...process.execArgv, process.argv[1], ...process.argv.slice(2)];
  // One intra-op thread per worker unless the user chose (torchrun sets OMP_NUM_THREADS=1 too).
  const threads = process.env.UNET_THREADS ?? '1';
  const children: { rank: number; proc: ChildProcess; done: boolean }[] = [];
  return new Promise((resolvePromise) => {
    let failed: { rank: number; code: number } | null = null;
    let signalled: NodeJS.Signals | null = null;
    let killTimer: NodeJS.Timeout | null = null;
    const running = () => children.filter((c) => !c.done);
    const stopAll = (sig: NodeJS.Signals) => {
      for (const c of running()) c.proc.kill(sig);
      if (!killTimer) {
        killTimer = setTimeout(() => {
          for (const c of running()) c.proc.kill('SIGKILL');
        }, (o.graceSeconds ?? 30) * 1000);
        killTimer.unref();
      }
    };
    const onSignal = (sig: NodeJS.Signals) => {
      if (signalled) return;
      signalled = sig;
      for (const c of running()) c.proc.kill(sig); // rank 0 saves INTERRUPTED.pth, all stop together
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    for (let local = 0; local < o.nprocPerNode; local++) {
      const rank = o.nodeRank * o.nprocPerNode + local;
      const env = {
        ...process.env,
        RANK: String(rank),
        LOCAL_RANK: String(local),
        WORLD_SIZE: String(worldSize),
        LOCAL_WORLD_SIZE: String(o.nprocPerNode),
        GROUP_RANK: String(o.nodeRank),
        MASTER_ADDR: o.masterAddr,
        MASTER_PORT: String(o.masterPort),
        UNET_THREADS: threads,
        OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? threads,
        // c10d logs its socket retries through glog; our errors say what failed in one line.
        GLOG_minloglevel: process.env.GLOG_minloglevel ?? '3',
        [LAUNCHED_ENV]: '1',
      };
      const proc = spawn(process.execPath, argv, { env, stdio: ['inherit', 'inherit', 'inherit', 'ipc'] });
      const child = { rank, proc, done: false };
      children.push(child);
      proc.on('exit', (code, sig) => {
        child.done = true;
        const exitCode = code ?? (sig ? 128 + (sig === 'SIGKILL' ? 9 : sig === 'SIGTERM' ? 15 : sig === 'SIGINT' ? 2 : 1) : 1);
        if (exitCode !== 0 && !failed && !signalled) {
          failed = { rank, code: exitCode };
          log(`launcher: rank ${rank} (pid ${proc.pid}) ${sig ? `was killed by ${sig}` : `exited with code ${code}`}; stopping the other workers`);
          stopAll('SIGTERM');
        }
        if (running().length === 0) {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
          if (killTimer) clearTimeout(killTimer);
          const worst = children.map((c) => c.proc.exitCode ?? 1).find((c) => c !== 0) ?? 0;
          resolvePromise(signalled ? (SIGNAL_CODES[signalled] ?? 1) : failed ? failed.code || 1 : worst);
        }
      });
    }
  });
}

/** In a worker our launcher started: exit when the launcher is gone (its IPC channel closes). */
export function exitWithLauncher(): void {
  if (process.env[LAUNCHED_ENV] !== '1' || !process.connected) return;
  process.channel?.unref(); // the channel alone does not keep the worker alive
  process.on('disconnect', () => {
    console.error(`rank ${process.env.RANK}: the launcher is gone; exiting`);
    process.exit(1);
  });
}
