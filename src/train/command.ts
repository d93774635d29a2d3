/** `unet train`: runs train() with signal handling, a dashboard if asked, and a summary. */
import { dirname } from 'node:path';
import { EXIT } from '../config/errors.js';
import { OptionError, type Output, type TrainConfig } from '../config/options.js';
import { DistConfigError, DistContext, LAUNCHED_ENV, exitWithLauncher, launch, workerFromEnv } from '../distributed/index.js';
import * as E from '../engine/index.js';
import { type Dashboard, listenProblem, startDashboardThread, writeReport } from '../tracking/index.js';
import { crossValidate } from './cross-validation.js';
import { foldConfig } from './folds.js';
import { checkCheckpointDir } from './run-folder.js';
import { type TrainHooks, type TrainResult, train } from './train.js';

const signalExit = (sig: NodeJS.Signals) => (sig === 'SIGINT' ? EXIT.interrupted : EXIT.terminated);

/**
 * Ctrl-C/SIGTERM: the first finishes the step and saves INTERRUPTED.pth; the second stops at once.
 * After the first, the handlers go (on the next turn, so that a second signal queued with the
 * first still reaches them): later signals get the system's default action, which ends the process
 * even inside a long libtorch step. Checkpoints are renamed into place only when complete, so those
 * written stay intact; a write cut short leaves only its temp file, which the next run removes.
 */
function onSignals(isMain: boolean, stop: () => void): { code: () => number; off: () => void } {
  let first: NodeJS.Signals | null = null;
  const off = () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
  function handler(sig: NodeJS.Signals) {
    if (first) {
      if (isMain) console.error(`${sig} again: stopping now`);
      process.exit(signalExit(sig));
    }
    first = sig;
    const again = sig === 'SIGINT' ? 'press Ctrl-C again' : 'signal again';
    if (isMain) console.error(`\n${sig}: finishing the current step, then saving INTERRUPTED.pth (${again} to stop at once)`);
    stop();
    setImmediate(off);
  }
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return { code: () => (first ? signalExit(first) : 0), off };
}

/** The dashboard in its own thread; a port in use (or any failure to listen) costs only the dashboard. */
async function startTrainDashboard(cfg: TrainConfig, say: (l: string) => void): Promise<Dashboard | null> {
  try {
    const d = await startDashboardThread({ logdir: cfg.logdir, port: cfg.port }, (l) => console.warn(`warning: ${l}`));
    say(`Dashboard: ${d.url}`);
    return d;
  } catch (e) {
    const why = listenProblem(e, '127.0.0.1', cfg.port) ?? (e as Error).message;
    console.warn(`warning: --dashboard: ${why}; training without it (pick a port with --port N, or --port 0 for any free one)`);
    return null;
  }
}

/**
 * After a run that ended by itself, on a terminal (stdin and stdout) and without --json, the
 * dashboard keeps serving the finished run until Ctrl-C; a script goes on at once.
 */
async function serveUntilCtrlC(d: Dashboard, say: (l: string) => void): Promise<void> {
  say(`Dashboard still serving at ${d.url}; press Ctrl-C to stop`);
  await new Promise<void>((res) => {
    const done = () => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      res();
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
}

/** `hooks` let tests train a narrow UNet through the whole command and see what each rank saw. */
export async function trainCommand(cfg: TrainConfig, out: Output = { json: false }, hooks: Pick<TrainHooks, 'createModel' | 'validationScore' | 'onSplit' | 'onTrainBatch'> = {}): Promise<number> {
  // Data-parallel: launch this machine's workers, or join as a worker (RANK/WORLD_SIZE set).
  const worker = workerFromEnv();
  if (cfg.folds > 0 && cfg.fold === undefined) {
    if (worker || cfg.nprocPerNode > 1 || cfg.nnodes > 1) throw new OptionError('--folds without --fold trains the folds one after another in one process; data-parallel, train each fold with --fold I');
    return crossValidate(cfg, out, (c) => trainCommand(c, out, hooks));
  }
  cfg = foldConfig(cfg);
  const launching = !worker && (cfg.nprocPerNode > 1 || cfg.nnodes > 1);
  if (launching && cfg.nodeRank >= cfg.nnodes) throw new DistConfigError(`--node-rank ${cfg.nodeRank} must be below --nnodes ${cfg.nnodes}`);
  // Before any training work, where rank 0 will write (its launcher checks for the workers it starts).
  const writer = worker ? worker.rank === 0 && process.env[LAUNCHED_ENV] !== '1' : cfg.nodeRank === 0;
  if (writer) await checkCheckpointDir(cfg, (l) => console.error(l));
  if (launching) return launch(cfg);
  let dist: DistContext | null = null;
  if (worker && worker.worldSize > 1) {
    exitWithLauncher();
    const device = E.resolveDevice(cfg.device);
    // One GPU per worker: cuda:LOCAL_RANK unless a device index was given.
    if (device === 'cuda') cfg = { ...cfg, device: `cuda:${worker.localRank}` };
    dist = await DistContext.join(worker, { backend: cfg.backend, timeoutSeconds: cfg.distTimeout, device: E.resolveDevice(cfg.device) });
  }
  if (cfg.syncBn && !dist) console.warn('warning: --sync-bn has no effect in a single process');
  const isMain = dist?.isMain ?? true;
  // With --json, stdout carries only the summary line.
  const say = out.json ? (l: string) => console.error(l) : (l: string) => console.log(l);
  const ctrl = new AbortController();
  const signals = onSignals(isMain, () => {
    ctrl.abort();
    dist?.requestStop();
  });
  const dashboard = cfg.dashboard && isMain ? await startTrainDashboard(cfg, say) : null;
  try {
    // Ranks other than 0 print nothing but errors.
    const quiet = isMain ? { log: say } : { log: () => {}, warn: () => {} };
    const r = await train(cfg, { signal: dist ? dist.signal : ctrl.signal, dist: dist ?? undefined, ...quiet, ...hooks });
    await dist?.close();
    const code = r.interrupted ? signals.code() || EXIT.interrupted : EXIT.ok;
    if (!isMain) return code;
    let report = '';
    try {
      report = await writeReport(r.runDir);
    } catch (e) {
      console.warn(`warning: could not write the report: ${(e as Error).message}`);
    }
    const status = r.interrupted ? 'interrupted' : r.stoppedEarly ? 'stopped early' : 'finished';
    if (out.json) {
      const { bestScore, bestEpoch, bestModel, lastCheckpoint, runDir } = r;
      console.log(JSON.stringify({ status, bestScore, bestEpoch, bestModel, lastCheckpoint, runDir, report: report || null, exitCode: code, ...(r.budget ? { budget: r.budget } : {}) }));
    }
    say(summary(r, report));
    signals.off();
    if (dashboard && !r.interrupted && !dist && !out.json && process.stdin.isTTY && process.stdout.isTTY) await serveUntilCtrlC(dashboard, say);
    return code;
  } finally {
    signals.off();
    await dashboard?.close();
  }
}

/** The end summary: the files this run wrote (or, continuing, the best model it started from) and what to run next. */
function summary(r: TrainResult, report: string): string {
  // predict reads the architecture and the training scale from the checkpoint: -m and -i are all it needs.
  const model = r.bestModel ?? r.lastCheckpoint;
  const next = model ? `unet predict -m ${model} -i IMAGE` : 'no checkpoint was written (stopped before the end of the first epoch); run the same `unet train` command again';
  return [
    '',
    r.interrupted ? 'Training interrupted.' : r.stoppedEarly ? 'Training stopped early.' : 'Training finished.',
    `  Best validation Dice: ${r.bestScore === null ? 'n/a' : r.bestScore.toFixed(4)} (epoch ${r.bestEpoch})`,
    `  Best model:           ${r.bestModel ? `${r.bestModel}${r.bestModelFromEarlier ? ' (written before this run continued)' : ''}` : 'none written'}`,
    `  Last checkpoint:      ${r.lastCheckpoint ?? 'none written'}`,
    r.budget ? `  Time budget:          ${r.budget.seconds} s, ${r.budget.used} s used (${Math.round((100 * r.budget.used) / r.budget.seconds)}%)${r.budget.endedByBudget ? ', ended by it' : ''}` : '',
    `  Run directory:        ${r.runDir}`,
    report ? `  Report:               ${report}` : '',
    `  Next: ${next}`,
    r.interrupted && r.lastCheckpoint ? `  Continue: unet train --resume --checkpoint-dir ${dirname(r.lastCheckpoint)} (with this run's other flags)` : '',
  ]
    .filter(Boolean)
    .join('\n');
}
