/**
 * `unet train --nproc-per-node N`: torchrun's job for this machine. Spawns N workers (this same
 * command line, with RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set), forwards
 * Ctrl-C/SIGTERM to them, and when one fails names it and ends the others. Workers hold an IPC
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
  /** Seconds rank 0 gets, once another worker failed, to save INTERRUPTED.pth and exit before it is killed. */
  graceSeconds?: number;
  /** Command line to run per worker (default: this process's). */
  argv?: string[];
  log?: (line: string) => void;
}

/** Marks a worker spawned by our launcher: it exits when the launcher's IPC channel closes. */
export const LAUNCHED_ENV = 'UNET_LAUNCHED';
/** When the `unet train` command started (ms since the epoch), for its workers. */
export const COMMAND_START_ENV = 'UNET_COMMAND_START';

const SIGNAL_CODES: Partial<Record<NodeJS.Signals, number>> = { SIGINT: EXIT.interrupted, SIGTERM: EXIT.terminated };

/** Seconds a worker gets to exit on its own once another failed: it saves nothing (rank 0 alone writes). */
const PEER_EXIT_SECONDS = 3;
/** Seconds rank 0 gets to answer the launcher once another failed; one that does not is hung. */
const MAIN_ANSWER_SECONDS = 10;

/** Runs the workers of this node; resolves with the exit code for the launcher. */
export function launch(o: LaunchOptions): Promise<number> {
  const log = o.log ?? ((l: string) => console.error(l));
  const worldSize = o.nprocPerNode * o.nnodes;
  const argv = o.argv ?? [...process.execArgv, process.argv[1], ...process.argv.slice(2)];
  // One intra-op thread per worker unless the user chose (torchrun sets OMP_NUM_THREADS=1 too).
  const threads = process.env.UNET_THREADS ?? '1';
  const children: Worker[] = [];
  return new Promise((resolvePromise) => {
    let failed: { rank: number; code: number } | null = null;
    let signalled: NodeJS.Signals | null = null;
    const running = () => children.filter((c) => !c.done);
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
        // --time-budget counts from the command's start, not the worker's.
        [COMMAND_START_ENV]: process.env[COMMAND_START_ENV] ?? String(performance.timeOrigin),
      };
      const proc = spawn(process.execPath, argv, { env, stdio: ['inherit', 'inherit', 'inherit', 'ipc'] });
      const child: Worker = { rank, proc, done: false, killTimer: null };
      children.push(child);
      // Rank 0 answers once another worker failed: it is alive (saving INTERRUPTED.pth, or about to
      // fail its next collective), so it gets the whole grace period.
      proc.on('message', (m) => {
        if ((m as { unet?: string })?.unet === 'pong' && failed) killAfter(child, o.graceSeconds ?? 30, log);
      });
      proc.on('exit', (code, sig) => {
        child.done = true;
        if (child.killTimer) clearTimeout(child.killTimer);
        if ((code ?? 1) !== 0 && !failed && !signalled) {
          // A signal's death has no message of its own: one line here. An exit code follows the worker's own error line.
          failed = { rank, code: sig ? EXIT.error : (code ?? EXIT.error) };
          log(`launcher: ${sig ? `worker ${rank} died (pid ${proc.pid}, killed by ${sig})` : `worker ${rank} exited with code ${code}`}; stopping the other workers`);
          stopOthers(running(), log);
        }
        if (running().length === 0) {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
          const worst = children.map((c) => c.proc.exitCode ?? 1).find((c) => c !== 0) ?? 0;
          resolvePromise(signalled ? (SIGNAL_CODES[signalled] ?? 1) : failed ? failed.code : worst);
        }
      });
    }
  });
}

interface Worker {
  rank: number;
  proc: ChildProcess;
  done: boolean;
  killTimer: NodeJS.Timeout | null;
}

/**
 * After a worker failed: the others fail their next collective and exit by themselves (a dead peer
 * within moments, a hung one within --dist-timeout). Those still there after a few seconds are hung
 * (or stopped) and are killed, so the run ends within --dist-timeout plus a few seconds; rank 0,
 * which may be saving INTERRUPTED.pth, is asked first and killed only if it does not answer.
 */
function stopOthers(workers: Worker[], log: (line: string) => void): void {
  for (const c of workers) {
    const main = c.rank === 0 && c.proc.connected;
    if (main) c.proc.send({ unet: 'ping' }, () => {}); // a send error: it is exiting anyway
    killAfter(c, main ? MAIN_ANSWER_SECONDS : PEER_EXIT_SECONDS, log);
  }
}

function killAfter(c: Worker, seconds: number, log: (line: string) => void): void {
  if (c.killTimer) clearTimeout(c.killTimer);
  c.killTimer = setTimeout(() => {
    if (c.done) return;
    log(`launcher: worker ${c.rank} did not exit within ${seconds}s (hung?); killing it`);
    c.proc.kill('SIGKILL');
  }, seconds * 1000);
  c.killTimer.unref();
}

/** In a worker our launcher started: exit when the launcher is gone (its IPC channel closes). */
export function exitWithLauncher(): void {
  if (process.env[LAUNCHED_ENV] !== '1' || !process.connected) return;
  process.channel?.unref(); // the channel alone does not keep the worker alive
  process.on('disconnect', () => {
    console.error(`rank ${process.env.RANK}: the launcher is gone; exiting`);
    process.exit(1);
  });
  // The launcher asks once another worker failed: an answer shows this one is not hung.
  process.on('message', (m) => {
    if ((m as { unet?: string })?.unet === 'ping') process.send?.({ unet: 'pong' });
  });
}
