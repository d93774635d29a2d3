/**
 * `unet train --plan FILE` and `--auto`: a plan's `train` values become the defaults (the --config
 * file and flags override them); the resolved values and the plan's path go to the run's
 * config.json, so `--config runs/<run>/config.json` replays the run.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { OptionError, type PlanConfig, type TrainConfig, planOptions, trainOptions } from '../config/options.js';
import { configValues, readMapping } from './config-file.js';

/** The plan file's `train` values, checked by the options table's parsers; an unknown key or bad value names the key. */
export function readPlanValues(file: string): Record<string, unknown> {
  const data = readMapping(file, '--plan');
  const train = data.train;
  if (data.version !== 1 || train === null || typeof train !== 'object' || Array.isArray(train)) {
    throw new OptionError(`--plan ${file}: not a plan written by \`unet plan\` (expected {"version": 1, "train": {...}}); write one with unet plan --imgs DIR --masks DIR`);
  }
  return configValues(`--plan ${file}`, { ...(train as Record<string, unknown>) }, trainOptions);
}

/** The options `unet plan` needs, from train's. */
export const planConfigOf = (cfg: TrainConfig, output: string): PlanConfig => ({
  imgs: cfg.imgs,
  masks: cfg.masks,
  maskSuffix: cfg.maskSuffix,
  timeBudget: cfg.timeBudget || planOptions.timeBudget.default,
  ignoreIndex: cfg.ignoreIndex,
  device: cfg.device,
  assumeMemory: 0,
  validation: cfg.folds > 0 ? 100 / cfg.folds : cfg.validation,
  // --fold I runs one fold on the whole budget; without it the K folds share it.
  folds: cfg.fold === undefined ? cfg.folds : 0,
  workers: cfg.workers,
  encoder: cfg.encoder ?? 'plain',
  encoderDepth: cfg.encoderDepth,
  output,
});

/**
 * Defaults < plan < --config < flags. `explicit`: the keys the --config file or the command line set;
 * `planOnCli`: --plan given as a flag (a missing file is then an error, not a replay's leftover).
 * With --auto the plan is made first (its table printed), written to <logdir>/plan-<time>.json: a
 * file of its own per run (a run's config.json names it), beside the run folders, never listed as one.
 */
export async function applyPlan(cfg: TrainConfig, explicit: ReadonlySet<string>, planOnCli: boolean, say: (l: string) => void): Promise<{ cfg: TrainConfig; planned: Set<string> }> {
  let file = cfg.plan;
  if (cfg.auto) {
    const { planFor, planTable } = await import('../plan/command.js');
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
    const o = await planFor(planConfigOf(cfg, resolve(cfg.logdir, `plan-${stamp}.json`)), say);
    say(planTable(o, cfg));
    file = o.file;
  }
  if (!file) return { cfg, planned: new Set() };
  // Replaying a run's config.json: every value is in it; a plan file gone since costs nothing.
  if (!cfg.auto && !planOnCli && !existsSync(file)) return { cfg, planned: new Set() };
  const values = readPlanValues(file);
  const out = { ...cfg } as Record<string, unknown>;
  const planned = new Set(Object.keys(values).filter((k) => !explicit.has(k)));
  for (const k of planned) out[k] = values[k];
  // Recorded resolved: a replay reads this plan again (its values all overridden), it does not plan anew.
  return { cfg: { ...(out as TrainConfig), plan: resolve(file), auto: false }, planned };
}

/** --nesterov before anything runs: SGD only, and it needs a momentum (PyTorch's rule). */
export function checkNesterov(cfg: TrainConfig, warn: (l: string) => void): void {
  if (!cfg.nesterov) return;
  if (cfg.optimizer !== 'sgd') warn(`warning: --nesterov applies to --optimizer sgd only; ignored with ${cfg.optimizer}`);
  else if (cfg.momentum === 0) throw new OptionError('--nesterov needs --momentum above 0 (Nesterov momentum with none is plain SGD); e.g. --momentum 0.99');
}
