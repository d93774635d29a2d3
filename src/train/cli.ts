/** `unet train`: runs train() with signal handling, a dashboard if asked, and a summary. */
import { dirname } from 'node:path';
import { EXIT } from '../config/errors.js';
import type { Output, TrainConfig } from '../config/options.js';
import { DistConfigError, DistContext, LAUNCHED_ENV, exitWithLauncher, launch, workerFromEnv } from '../distributed/index.js';
import * as E from '../engine/index.js';
import { startDashboard, writeReport } from '../tracking/index.js';
import { checkCheckpointDir } from './run-folder.js';
import { type TrainHooks, type TrainResult, train } from './train.js';

/** `hooks` let tests train a narrow UNet through the whole command and see what each rank saw. */
export async function trainCommand(cfg: TrainConfig, out: Output = { json: false }, hooks: Pick<TrainHooks, 'createModel' | 'validationScore' | 'onSplit' | 'onTrainBatch'> = {}): Promise<number> {
  // Data-parallel: launch this machine's workers, or join as a worker (RANK/WORLD_SIZE set).
  const worker = workerFromEnv();
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
  let signalCode = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (ctrl.signal.aborted) return;
    signalCode = sig === 'SIGINT' ? EXIT.interrupted : EXIT.terminated;
    if (isMain) console.error(`\n${sig}: finishing the current step, then saving INTERRUPTED.pth (press again to wait)`);
    ctrl.abort();
    dist?.requestStop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let dashboard: { url: string; close(): Promise<void> } | null = null;
  if (cfg.dashboard && isMain) {
    dashboard = await startDashboard({ logdir: cfg.logdir, port: cfg.port });
    say(`Dashboard: ${dashboard.url}`);
  }
  try {
    // Ranks other than 0 print nothing but errors.
    const quiet = isMain ? { log: say } : { log: () => {}, warn: () => {} };
    const r = await train(cfg, { signal: dist ? dist.signal : ctrl.signal, dist: dist ?? undefined, ...quiet, ...hooks });
    await dist?.close();
    const code = r.interrupted ? signalCode || EXIT.interrupted : EXIT.ok;
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
      console.log(JSON.stringify({ status, bestScore, bestEpoch, bestModel, lastCheckpoint, runDir, report: report || null, exitCode: code }));
    }
    say(summary(r, report));
    return code;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await dashboard?.close();
  }
}

/** The end summary: the files this run wrote (or, continuing, the best model it started from) and what to run next. */
function summary(r: TrainResult, report: string): string {
  // predict reads the architecture and the training scale from the checkpoint: -m and -i are all it needs.
  const model = r.bestModel ?? r.lastCheckpoint;
  const next = model
    ? `unet predict -m ${model} -i IMAGE`
    : 'no checkpoint was written (stopped before the end of the first epoch); run the same `unet train` command again';
  return [
    '',
    r.interrupted ? 'Training interrupted.' : r.stoppedEarly ? 'Training stopped early.' : 'Training finished.',
    `  Best validation Dice: ${r.bestScore === null ? 'n/a' : r.bestScore.toFixed(4)} (epoch ${r.bestEpoch})`,
    `  Best model:           ${r.bestModel ? `${r.bestModel}${r.bestModelFromEarlier ? ' (written before this run continued)' : ''}` : 'none written'}`,
    `  Last checkpoint:      ${r.lastCheckpoint ?? 'none written'}`,
    `  Run directory:        ${r.runDir}`,
    report ? `  Report:               ${report}` : '',
    `  Next: ${next}`,
    r.interrupted && r.lastCheckpoint ? `  Continue: unet train --resume --checkpoint-dir ${dirname(r.lastCheckpoint)} (with this run's other flags)` : '',
  ]
    .filter(Boolean)
    .join('\n');
}
