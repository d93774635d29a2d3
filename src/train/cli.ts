/** `unet train`: runs train() with signal handling, a dashboard if asked, and a summary. */
import type { TrainConfig } from '../cli/options.js';
import type { Output } from '../cli/program.js';
import { startDashboard, writeReport } from '../tracking/index.js';
import { train } from './train.js';

export async function trainCommand(cfg: TrainConfig, out: Output = { json: false }): Promise<number> {
  // With --json, stdout carries only the summary line.
  const say = out.json ? (l: string) => console.error(l) : (l: string) => console.log(l);
  const ctrl = new AbortController();
  let signalCode = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    if (ctrl.signal.aborted) return;
    signalCode = sig === 'SIGINT' ? 130 : 143;
    console.error(`\n${sig}: finishing the current step, then saving INTERRUPTED.pth (press again to wait)`);
    ctrl.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let dashboard: { url: string; close(): Promise<void> } | null = null;
  if (cfg.dashboard) {
    dashboard = await startDashboard({ logdir: cfg.logdir, port: cfg.port });
    say(`Dashboard: ${dashboard.url}`);
  }
  try {
    const r = await train(cfg, { signal: ctrl.signal, log: say });
    let report = '';
    try {
      report = await writeReport(r.runDir);
    } catch (e) {
      console.warn(`warning: could not write the report: ${(e as Error).message}`);
    }
    const status = r.interrupted ? 'interrupted' : r.stoppedEarly ? 'stopped early' : 'finished';
    const code = r.interrupted ? signalCode || 130 : 0;
    if (out.json) {
      const { bestScore, bestEpoch, bestModel, lastCheckpoint, runDir } = r;
      console.log(JSON.stringify({ status, bestScore, bestEpoch, bestModel, lastCheckpoint, runDir, report: report || null, exitCode: code }));
    }
    say(
      [
        '',
        r.interrupted ? 'Training interrupted.' : r.stoppedEarly ? 'Training stopped early.' : 'Training finished.',
        `  Best validation Dice: ${r.bestScore === null ? 'n/a' : r.bestScore.toFixed(4)} (epoch ${r.bestEpoch})`,
        `  Best model:           ${r.bestModel ?? 'none'}`,
        `  Last checkpoint:      ${r.lastCheckpoint ?? 'none'}`,
        `  Run directory:        ${r.runDir}`,
        report ? `  Report:               ${report}` : '',
        `  Next: unet predict -m ${r.bestModel ?? 'checkpoints/best_model.pth'} -i IMAGE`,
      ]
        .filter(Boolean)
        .join('\n'),
    );
    return code;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await dashboard?.close();
  }
}
