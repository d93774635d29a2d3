/**
 * `unet predict`: masks for images, files/folders/globs in, PNGs out.
 *
 * As the reference's predict.py: the model's arguments and mask values come from the checkpoint,
 * images are scaled like training, logits are resized to the input's full size (bilinear) before
 * the argmax / threshold, and masks are written as PNG (TIFF for a .tif -o name) with the original mask values
 * (`{stem}_OUT.png` next to the input unless -o/--output-dir say otherwise).
 *
 * Beyond it: folders and globs, same-size batching (-b), broken inputs reported and skipped
 * (exit code 2; 1 when nothing was written), overlays with a legend (-v), probability maps
 * (--probs), a progress line and a summary. Precedence of output names: -o (one per input) > --output-dir > next to the input.
 * Overlays and probability maps go beside the mask: `{base}_OVERLAY.png`, `{base}_PROB{k}.png`,
 * base = the -o name's stem, else the input's stem. A 1-output (sigmoid) model writes one
 * probability map, `{base}_PROB1.png` = P(class 1); softmax models one per class.
 * -n only suppresses the masks: --viz / --probs outputs are still written (as the reference's
 * -n with -v still plots).
 */
import { tmpdir } from 'node:os';
import { EXIT } from '../config/errors.js';
import { OptionError, type Output, type PredictConfig } from '../config/options.js';
import { scaledSize } from '../data/index.js';
import { chooseScale } from '../model/scale.js';
import { hasEncoder } from '../model/unet.js';
import { removeTempsOnSignals } from '../io/temp-files.js';
import { imageHeader } from '../data/image/regions.js';
import { decodeWindows, sameSizeBatches } from './batches.js';
import { expandInputs } from './inputs.js';
import { type Job, type PredictedFile, makeOutputDirs, planOutputs, probCount, probFiles, writeOutputs } from './outputs.js';
import { isBinary01 } from './overlay.js';
import { loadEnsemble, modelPaths } from './ensemble.js';
import { ttaViews } from './views.js';
import { type Prediction, type Predictor, type Preprocessed, PredictError, type Scaled, batchKey, checkGivenArgs, predictBatch, preprocess } from './predictor.js';
import { keepLargestComponent, postprocessClasses } from './postprocess.js';
import { PredictProgress } from './progress.js';
import { type RowOptions, type TilePlan, planTiles, predictTiledFile, predictTiledInMemory } from './tiled-image.js';

export interface PredictRunOptions {
  classesGiven?: boolean;
  bilinearGiven?: boolean;
  /** Normal output (per-file lines, summary). Default console.log. */
  log?: (line: string) => void;
  /** Warnings, failures and the progress line. Default console.error. */
  warn?: (line: string) => void;
  /** Show the progress line (default: when stderr is a terminal, or every 10% otherwise). */
  progress?: boolean;
  /** Called once per input, in completion order (`--json` prints these). */
  onFile?: (r: PredictedFile | { input: string; error: string }) => void;
}

export interface PredictResult {
  exitCode: number;
  predicted: PredictedFile[];
  failed: { input: string; reason: string }[];
  seconds: number;
  imagesPerSecond: number;
  device: string;
  notes: string[];
}

/** Runs predict and returns what happened (predictCommand prints it and returns the exit code). */
export async function runPredict(given: PredictConfig, opts: PredictRunOptions = {}): Promise<PredictResult> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const warn = opts.warn ?? ((l: string) => console.error(l));
  const inputs = given.input ?? [];
  // Usage errors (exit 64): the parser checks the flags' values, these are the checks across them.
  if (inputs.length === 0) throw new OptionError("no input images: pass files, folders or globs with -i/--input (e.g. -i data/test/*.png, or -i 'data/**/*.png')");
  if (!Number.isInteger(given.batchSize) || given.batchSize < 1) throw new OptionError(`--batch-size must be a positive integer, got ${given.batchSize}`);
  if (given.scale !== undefined && !(given.scale > 0 && given.scale <= 1)) throw new OptionError(`--scale must be in (0, 1], got ${given.scale}`);

  // 1. Inputs and output names (cheap checks before loading the model)
  const { entries, skippedOutputs, warnings } = expandInputs(inputs);
  for (const w of warnings) warn(`warning: ${w}`);
  if (skippedOutputs > 0) warn(`note: skipped ${skippedOutputs} earlier output file(s) (*_OUT, *_OVERLAY, *_PROB<k>) found in input folders/globs`);
  const failed: { input: string; reason: string }[] = [];
  const good = entries.filter((e) => !e.error);
  for (const e of entries) if (e.error) failed.push({ input: e.input, reason: e.error });
  if (given.output.length > 0 && given.outputDir) warn('note: -o/--output names are used as given; --output-dir is ignored');
  if (given.output.length > 0 && given.output.length !== entries.length)
    planOutputs(
      entries.map((e) => e.input),
      given,
      0,
    ); // throws the count error
  const outputsFor =
    given.output.length > 0
      ? entries
          .map((e, i) => ({ e, o: given.output[i] }))
          .filter((x) => !x.e.error)
          .map((x) => x.o)
      : [];
  // -o names, mask/overlay collisions: checked before the model is loaded (probability maps after).
  planOutputs(
    good.map((e) => e.input),
    { ...given, output: outputsFor, probs: false },
    0,
  );
  if (good.length === 0) {
    throw new PredictError(`no input images to predict:\n${failed.map((f) => `  ${f.input}: ${f.reason}`).join('\n')}`);
  }

  // 2. Model, output folders
  const predictor = await loadEnsemble(modelPaths(given.model), { device: given.device, amp: given.amp, tta: given.tta });
  try {
    checkGivenArgs(predictor, { classes: opts.classesGiven ? given.classes : undefined, bilinear: opts.bilinearGiven ? given.bilinear : undefined });
    for (const n of predictor.notes) warn(`note: ${n}`);
    const sc = chooseScale(predictor.trainingScale, given.scale);
    if (sc.warning) warn(`warning: ${sc.warning}`);
    const cfg: Scaled<PredictConfig> = { ...given, scale: sc.scale }; // the scale is known once the model is read
    const jobs = planOutputs(
      good.map((e) => e.input),
      { ...cfg, output: outputsFor },
      probCount(predictor),
    );
    await makeOutputDirs(jobs, cfg);
    const mv = predictor.maskValues;
    if (!cfg.noSave && !Array.isArray(mv[0]) && !isBinary01(mv) && Math.max(...(mv as number[])) < 32) {
      warn(`note: the mask values ${JSON.stringify(mv)} are small, so the mask PNGs look (almost) black in image viewers; they hold the class values. Use -v/--viz for a coloured overlay`);
    }
    const a = predictor.args;
    const views = cfg.tta === 'none' ? '' : `, --tta ${cfg.tta} (${ttaViews(cfg.tta).length} views)`;
    const pp = postprocessClasses(cfg.postprocess ?? 'none', predictor.postprocess, a.nClasses);
    if (cfg.postprocess === 'auto') log(`--postprocess auto: ${pp.length ? `largest component of class ${pp.join(', ')} (recorded in the checkpoint)` : 'none (the checkpoint records no post-processing)'}`);
    log(
      `${(predictor.models?.length ?? 1) > 1 ? `Ensemble of ${predictor.models?.length} models ` : 'Model '}${predictor.path} (${predictor.kind}; UNet channels=${a.nChannels} classes=${a.nClasses} ${hasEncoder(a) ? `encoder=${a.encoder}` : `bilinear=${a.bilinear}`}; mask values ${JSON.stringify(mv)}) on ${predictor.device}${predictor.ampDtype ? ' with AMP' : ''}, scale ${sc.scale} (${sc.source})${views}`,
    );
    for (const f of failed) opts.onFile?.({ input: f.input, error: f.reason });

    // 3. Predict: windowed images one by one, the others in same-size batches
    const run: Run = { p: predictor, cfg, pp, report: new PredictProgress(jobs.length, { log, warn, progress: opts.progress, onFile: opts.onFile }), predicted: [], t0: performance.now() };
    run.report.failed.push(...failed);
    const { whole, tiled } = await splitTiled(run, jobs);
    await predictTiled(run, tiled);
    await predictWhole(run, whole);
    return summary(run);
  } finally {
    predictor.dispose();
  }
}

/** One predict run's state. */
interface Run {
  p: Predictor;
  cfg: Scaled<PredictConfig>;
  /** --postprocess: the classes whose largest component alone is kept. */
  pp: number[];
  report: PredictProgress;
  /** In completion order; `index` restores the input order. */
  predicted: (PredictedFile & { index: number })[];
  t0: number;
}

type JobPlan = TilePlan & { width: number; height: number; channels: number };

/** --tile: the images to predict window by window (their header decides), and the others. */
async function splitTiled(run: Run, jobs: Job[]): Promise<{ whole: Job[]; tiled: { job: Job; plan: JobPlan }[] }> {
  if (run.cfg.tile === 'off') return { whole: jobs, tiled: [] };
  const whole: Job[] = [];
  const tiled: { job: Job; plan: JobPlan }[] = [];
  for (const job of jobs) {
    const plan = await planJob(run.p, job.input, run.cfg);
    if (plan.tile === null) whole.push(job);
    else tiled.push({ job, plan });
  }
  return { whole, tiled };
}

/**
 * --tile for one input (files libvips cannot read without decoding are planned in memory). An
 * image over --max-pixels goes to the normal path, whose decoder refuses it naming the flag.
 */
async function planJob(p: Predictor, input: string, cfg: Scaled<PredictConfig>): Promise<JobPlan> {
  const outputs = 1 + (cfg.probs ? Math.max(p.args.nClasses, 1) : 0);
  const inMemory = { tile: cfg.tile === 'auto' ? null : (cfg.tile as number), regions: false, width: 0, height: 0, channels: 0 };
  try {
    const head = await imageHeader(input);
    if (cfg.maxPixels > 0 && head.width * head.height > cfg.maxPixels) return { ...inMemory, tile: null };
    return { ...planTiles(p, cfg, head, scaledSize(head.width, head.height, cfg.scale), outputs), width: head.width, height: head.height, channels: head.channels };
  } catch {
    // Unreadable header (e.g. .npy, a broken file): the normal path decodes it or reports the error.
    return inMemory;
  }
}

/** Windowed images, one at a time: in memory, or region by region when the image would not fit. */
async function predictTiled(run: Run, tiled: { job: Job; plan: JobPlan }[]): Promise<void> {
  const { p, cfg, report } = run;
  for (const { job, plan } of tiled) {
    const o: RowOptions = {
      tile: plan.tile as number,
      overlap: cfg.overlap,
      blend: cfg.blend,
      batchSize: cfg.batchSize,
      threshold: cfg.maskThreshold,
      probs: cfg.probs,
      onRows: report.megapixels(job.input, plan.width, plan.height),
    };
    try {
      if (plan.regions) {
        if (cfg.viz) report.io.warn(`note: ${job.input}: no overlay (-v) for an image read region by region (an overlay needs the whole image in memory)`);
        if (run.pp.length) report.io.warn(`note: ${job.input}: not post-processed (--postprocess needs the whole mask in memory; this image is predicted region by region)`);
        const staged = (plan.width * plan.height * plan.channels) / 2 ** 20;
        report.io.warn(`note: ${job.input} is ${plan.width}x${plan.height}: staged as an uncompressed copy of about ${staged.toFixed(0)} MiB in ${tmpdir()} to be read in bands (removed at the end)`);
        const probs = cfg.probs ? probFiles(job, probCount(p)) : undefined;
        const mask = cfg.noSave ? undefined : job.mask;
        const r = await predictTiledFile(p, job.input, cfg.scale, { mask, probs }, o, report.io.warn);
        run.predicted.push({ input: job.input, width: r.width, height: r.height, mask, probs, index: job.index });
        report.wrote(`${job.input} -> ${[mask, ...(probs ?? [])].filter(Boolean).join(', ') || '(not saved: -n)'} (windows of ${plan.tile}, region by region)`);
      } else {
        const pre = await preprocess(job.input, cfg.scale, p.args.nChannels, cfg.maxPixels, p.args);
        for (const w of pre.warnings) report.io.warn(`warning: ${w}`);
        await write(run, job, await predictTiledInMemory(p, pre, o));
      }
    } catch (e) {
      report.fail(job.input, e);
    }
    report.tick(job.input);
  }
}

/** Whole images in same-size batches of -b, decoded a window ahead; outputs written while the next batch runs. */
async function predictWhole(run: Run, jobs: Job[]): Promise<void> {
  const { p, cfg, report } = run;
  const decode = async (job: Job): Promise<{ job: Job; pre?: Preprocessed; error?: unknown }> => {
    try {
      const pre = await preprocess(job.input, cfg.scale, p.args.nChannels, cfg.maxPixels, p.args);
      for (const w of pre.warnings) report.io.warn(`warning: ${w}`);
      return { job, pre };
    } catch (error) {
      return { job, error };
    }
  };
  for await (const decoded of decodeWindows(jobs, cfg, decode)) {
    const ok: { job: Job; pre: Preprocessed }[] = [];
    for (const d of decoded) {
      if (d.pre) ok.push({ job: d.job, pre: d.pre });
      else {
        report.fail(d.job.input, d.error);
        report.tick(d.job.input);
      }
    }
    const writes: Promise<void>[] = [];
    for (const batch of sameSizeBatches(ok, (d) => batchKey(d.pre), cfg.batchSize)) {
      for (const r of predictOrRetry(run, batch)) {
        if (r.pred) writes.push(write(run, r.job, r.pred));
        else report.fail(r.job.input, r.error);
        report.tick(r.job.input);
      }
      // Let finished writes and the prefetch make progress between forward passes.
      await new Promise<void>((res) => setImmediate(res));
    }
    await Promise.all(writes);
  }
}

/** One forward pass for the batch; if it fails (e.g. out of memory), one image at a time. */
function predictOrRetry(run: Run, batch: { job: Job; pre: Preprocessed }[]): { job: Job; pred?: Prediction; error?: unknown }[] {
  try {
    const preds = predictBatch(
      run.p,
      batch.map((d) => d.pre),
      { threshold: run.cfg.maskThreshold, probs: run.cfg.probs },
    );
    return batch.map((d, i) => ({ job: d.job, pred: preds[i] }));
  } catch (e) {
    if (batch.length === 1) return [{ job: batch[0].job, error: e }];
    return batch.flatMap((d) => predictOrRetry(run, [d]));
  }
}

async function write(run: Run, job: Job, pred: Prediction): Promise<void> {
  let rec: PredictedFile;
  keepLargestComponent(pred.classes, pred.width, pred.height, run.pp);
  try {
    rec = await writeOutputs(run.p, run.cfg, job, pred);
  } catch (e) {
    run.report.fail(job.input, e);
    return;
  }
  run.predicted.push({ ...rec, index: job.index });
  run.report.io.onFile?.(rec);
  const outs = [rec.mask, rec.overlay, ...(rec.probs ?? [])].filter(Boolean);
  run.report.wrote(`${job.input} -> ${outs.length ? outs.join(', ') : '(not saved: -n)'}`);
}

function summary(run: Run): PredictResult {
  const { cfg, p, report } = run;
  const failed = report.failed;
  const seconds = (performance.now() - run.t0) / 1000;
  const n = run.predicted.length;
  const rate = seconds > 0 ? n / seconds : 0;
  const where = cfg.noSave ? 'masks not saved (-n)' : cfg.output.length ? 'masks written to the -o names' : cfg.outputDir ? `masks in ${cfg.outputDir}` : 'masks next to the inputs (*_OUT.png)';
  report.io.log(`Predicted ${n} image(s) in ${seconds.toFixed(2)} s (${rate.toFixed(2)} images/s) on ${p.device}; ${where}`);
  if (failed.length > 0) {
    report.io.warn(`${failed.length} input(s) failed:`);
    for (const f of failed) report.io.warn(`  ${f.input}: ${f.reason.split('\n')[0]}`);
  }
  const inOrder = run.predicted.sort((a, b) => a.index - b.index).map(({ index: _, ...rec }) => rec);
  // 2 (partial failure) only when something was written; every input failed: 1, as any error.
  const exitCode = failed.length === 0 ? EXIT.ok : n > 0 ? EXIT.partial : EXIT.error;
  return { exitCode, predicted: inOrder, failed, seconds, imagesPerSecond: rate, device: p.device, notes: p.notes };
}

/** The CLI entry: exit code 0; 2 when some inputs failed and the others were written; 1 when all failed (errors before the run throw). */
export async function predictCommand(cfg: PredictConfig, classesGiven: boolean, bilinearGiven: boolean, out: Output = { json: false }): Promise<number> {
  // With --json, stdout carries only the per-file lines.
  removeTempsOnSignals();
  const json = out.json ? { log: (l: string) => console.error(l), onFile: (f: object) => console.log(JSON.stringify(f)) } : {};
  const r = await runPredict(cfg, { classesGiven, bilinearGiven, ...json });
  return r.exitCode;
}
