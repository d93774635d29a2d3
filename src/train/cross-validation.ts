/**
 * `unet train --folds K`: the K folds one after another in this process (each train() frees what
 * it allocates, and test hooks such as a narrow model reach every fold), each into
 * <checkpoint-dir>/fold<I>/ with its own run directory; then every image is predicted by the
 * best_model.pth of the fold that held it out and these out-of-fold predictions are scored together
 * (confusion counts summed), with and without --postprocess largest-component. nnU-Net's per-class
 * rule (determine_postprocessing) decides: a class is cleaned when that strictly raises its
 * out-of-fold Dice, so `auto` never scores below `none` there. The decision goes into every fold's
 * best_model.pth for `--postprocess auto`, the scores into cv-summary.json. A --time-budget is
 * shared: each fold gets an equal part of what is left when it starts.
 */
import { join, resolve } from 'node:path';
import { EXIT } from '../config/errors.js';
import { type Output, type TrainConfig, defaults, evaluateOptions } from '../config/options.js';
import { type Pair, listPairs } from '../data/index.js';
import { COMMAND_START_ENV } from '../distributed/index.js';
import { writeFileAtomic } from '../io/files.js';
import { metricsFromConfusion } from '../metrics/confusion.js';
import { readCheckpointInfo, recordPostprocess } from '../model/checkpoint.js';
import { type EvaluateResult, runEvaluate } from '../predict/evaluate-command.js';
import { foregroundClasses } from '../predict/postprocess.js';
import { foldDirName, kFolds } from './folds.js';

export interface FoldSummary {
  fold: number;
  bestModel: string;
  /** The best validation Dice training recorded (on this fold's files). */
  bestValDice: number | null;
  /** The held-out files (image paths). */
  files: string[];
}

export interface ClassDecision {
  class: number;
  dice: number;
  diceLargestComponent: number;
  /** --postprocess auto cleans this class. */
  largestComponent: boolean;
}

export interface CvSummary {
  folds: number;
  seed: number;
  perFold: FoldSummary[];
  outOfFold: { images: number; meanDice: number; meanIoU: number; perClassDice: number[]; perClassIoU: number[]; confusion: number[][] };
  postprocess: { rule: string; perClass: ClassDecision[]; classes: number[]; meanDice: number };
}

/** Runs every fold through `trainFold` (trainCommand with --fold I), stops at the first that does not finish, then the summary. */
export async function crossValidate(cfg: TrainConfig, out: Output, trainFold: (cfg: TrainConfig) => Promise<number>): Promise<number> {
  const say = out.json ? (l: string) => console.error(l) : (l: string) => console.log(l);
  const commandStart = Number(process.env[COMMAND_START_ENV]) || performance.timeOrigin;
  for (let fold = 0; fold < cfg.folds; fold++) {
    say(`\n=== Cross-validation: fold ${fold} of ${cfg.folds} (${join(cfg.checkpointDir, foldDirName(fold))}) ===`);
    const foldCfg = { ...cfg, fold, name: `${cfg.name ? `${cfg.name}-` : ''}${foldDirName(fold)}` };
    if (cfg.timeBudget > 0) foldCfg.timeBudget = shareBudget(cfg.timeBudget, commandStart, cfg.folds - fold, say);
    const code = await trainFold(foldCfg);
    if (code !== EXIT.ok) return code;
  }
  const summary = await summarizeFolds(cfg, (l) => console.error(l));
  const file = join(resolve(cfg.checkpointDir), 'cv-summary.json');
  await writeFileAtomic(file, [Buffer.from(`${JSON.stringify(summary, null, 2)}\n`)]);
  if (out.json) console.log(JSON.stringify({ status: 'finished', cvSummary: file, ...summary }));
  say(formatCvSummary(summary, file));
  return EXIT.ok;
}

/**
 * --time-budget over --folds: each fold gets an equal share of what is left (so a slow start-up or
 * fold does not starve the last ones), counted from its own start.
 */
export function shareBudget(total: number, commandStart: number, foldsLeft: number, say: (l: string) => void, now = performance.timeOrigin + performance.now()): number {
  const left = total - (now - commandStart) / 1000;
  const share = Math.max(1, Math.floor(left / foldsLeft));
  process.env[COMMAND_START_ENV] = String(now); // this fold's budget counts from here (its workers' too)
  say(`Time budget of this fold: ${share} s (${Math.max(0, Math.round(left))} s of ${total} s left for ${foldsLeft} fold${foldsLeft > 1 ? 's' : ''})`);
  return share;
}

/** Out-of-fold scores with and without the largest component, the decision recorded in every fold's best model. */
export async function summarizeFolds(cfg: TrainConfig, warn: (l: string) => void): Promise<CvSummary> {
  const { pairs } = await listPairs({ imgsDir: cfg.imgs, masksDir: cfg.masks, maskSuffix: cfg.maskSuffix, skipUnpaired: cfg.skipUnpaired });
  const folds = kFolds(pairs.length, cfg.folds, cfg.seed);
  const perFold: FoldSummary[] = [];
  const none: EvaluateResult[] = [];
  const cleaned: EvaluateResult[] = [];
  let fg: number[] = [];
  for (const [fold, idx] of folds.entries()) {
    const bestModel = join(resolve(cfg.checkpointDir), foldDirName(fold), 'best_model.pth');
    const held: Pair[] = idx.map((i) => pairs[i]);
    const info = await readCheckpointInfo(bestModel);
    fg = foregroundClasses(info.modelArgs?.nClasses ?? cfg.classes);
    const evalCfg = { ...defaults(evaluateOptions), model: bestModel, imgs: cfg.imgs, masks: cfg.masks, device: cfg.device, batchSize: cfg.batchSize, workers: cfg.workers, scale: undefined };
    none.push(await runEvaluate(evalCfg, { warn, pairs: held, postprocessClasses: [] }));
    cleaned.push(await runEvaluate(evalCfg, { warn, pairs: held, postprocessClasses: fg }));
    perFold.push({ fold, bestModel, bestValDice: info.valScore, files: held.map((p) => p.image) });
  }
  const base = pooled(none);
  const postprocess = decidePostprocess(fg, base.perClassDice, pooled(cleaned).perClassDice);
  for (const f of perFold) await recordPostprocess(f.bestModel, postprocess.classes);
  return { folds: cfg.folds, seed: cfg.seed, perFold, outOfFold: { images: none.reduce((a, r) => a + r.images, 0), ...pick(base) }, postprocess };
}

/**
 * nnU-Net's per-class rule: clean a class only when its out-of-fold Dice strictly improves (ties:
 * no change). A class's Dice depends only on its own predicted pixels (cleaning another class only
 * turns that class's pixels into background), so the chosen mix scores each class as measured.
 */
export function decidePostprocess(fg: readonly number[], dice: readonly number[], diceLargest: readonly number[]): CvSummary['postprocess'] {
  const perClass = fg.map((c) => ({ class: c, dice: dice[c], diceLargestComponent: diceLargest[c], largestComponent: diceLargest[c] > dice[c] }));
  const chosen = perClass.map((d) => Math.max(d.dice, d.diceLargestComponent));
  return {
    rule: 'nnU-Net: largest component for a class when it strictly raises its out-of-fold Dice',
    perClass,
    classes: perClass.filter((d) => d.largestComponent).map((d) => d.class),
    meanDice: chosen.reduce((a, b) => a + b, 0) / Math.max(1, chosen.length),
  };
}

/** The folds' confusion counts summed: every image scored once, by the model that did not train on it. */
function pooled(results: EvaluateResult[]) {
  const k = results[0].confusion.length;
  const cm = Array.from({ length: k }, (_, r) => Array.from({ length: k }, (_, c) => results.reduce((a, x) => a + x.confusion[r][c], 0)));
  return metricsFromConfusion(cm);
}

const pick = (m: ReturnType<typeof pooled>) => ({ meanDice: m.meanDice, meanIoU: m.meanIoU, perClassDice: m.perClassDice, perClassIoU: m.perClassIoU, confusion: m.confusion });

/** The end table: per fold, then the out-of-fold scores and the post-processing decision. */
export function formatCvSummary(s: CvSummary, file: string): string {
  const f = (x: number | null) => (x === null ? 'n/a' : x.toFixed(4));
  return [
    '',
    `Cross-validation: ${s.folds} folds (seed ${s.seed})`,
    `${'fold'.padEnd(6)}${'files'.padStart(6)}${'best val Dice'.padStart(15)}  best model`,
    ...s.perFold.map((p) => `${String(p.fold).padEnd(6)}${String(p.files.length).padStart(6)}${f(p.bestValDice).padStart(15)}  ${p.bestModel}`),
    `Out-of-fold (${s.outOfFold.images} images scored together): mean Dice ${f(s.outOfFold.meanDice)}, mean IoU ${f(s.outOfFold.meanIoU)}`,
    ...s.postprocess.perClass.map((d) => `  class ${d.class}: Dice ${f(d.dice)}, largest component ${f(d.diceLargestComponent)} -> ${d.largestComponent ? 'largest-component' : 'none'}`),
    `--postprocess auto: ${s.postprocess.classes.length ? `largest component of class ${s.postprocess.classes.join(', ')}` : 'none'} (mean Dice ${f(s.postprocess.meanDice)}), recorded in every fold's best_model.pth`,
    `Summary: ${file}`,
  ].join('\n');
}
