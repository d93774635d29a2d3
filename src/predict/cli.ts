/**
 * `unet predict`: masks for images, files/folders/globs in, PNGs out.
 *
 * As the reference's predict.py: the model's arguments and mask values come from the checkpoint,
 * images are scaled like training, logits are resized to the input's full size (bilinear) before
 * the argmax / threshold, and masks are written as PNG (TIFF for a .tif -o name) with the original mask values
 * (`{stem}_OUT.png` next to the input unless -o/--output-dir say otherwise).
 *
 * Beyond it: folders and globs, same-size batching (-b), broken inputs reported and skipped
 * (exit code 2), overlays with a legend (-v), probability maps (--probs), a progress line and a
 * summary. Precedence of output names: -o (one per input) > --output-dir > next to the input.
 * Overlays and probability maps go beside the mask: `{base}_OVERLAY.png`, `{base}_PROB{k}.png`,
 * base = the -o name's stem, else the input's stem. A 1-output (sigmoid) model writes one
 * probability map, `{base}_PROB1.png` = P(class 1); softmax models one per class.
 * -n only suppresses the masks: --viz / --probs outputs are still written (as the reference's
 * -n with -v still plots).
 */
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import * as fs from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve } from 'node:path';
import type { Output, PredictConfig } from '../config/options.js';
import { IMAGE_EXTENSIONS, mapPool, scaledSize } from '../data/index.js';
import { imageHeader, isTiffName } from '../data/regions.js';
import { encodeMaskPng, encodeProbPng, isBinary01, renderOverlay, writeMaskTiff } from './overlay.js';
import {
  type Prediction,
  type Predictor,
  type Preprocessed,
  PredictError,
  batchKey,
  checkGivenArgs,
  loadPredictor,
  predictBatch,
  preprocess,
} from './predictor.js';
import { type RowOptions, type TilePlan, megapixelProgress, planTiles, predictTiledFile, predictTiledInMemory } from './tiled.js';

// ------------------------------------------------------------------------------------------------
// Inputs

export interface InputEntry {
  /** The file to predict (or the argument that produced nothing). */
  input: string;
  /** Set when the argument could not give an image (missing file, empty folder, no glob match). */
  error?: string;
}

/** Stems of files this command writes; folders and globs skip them so a rerun does not predict its own outputs. */
export const OUTPUT_STEM = /_(OUT|OVERLAY|PROB\d+)$/;

const collator = new Intl.Collator('en', { numeric: true });
const byName = (a: string, b: string) => collator.compare(a, b);
const isImageName = (name: string) => (IMAGE_EXTENSIONS as readonly string[]).includes(extname(name).toLowerCase());
const stemOf = (p: string) => basename(p, extname(p));
const MAGIC = /[*?[]/;

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

const escapeRe = (c: string) => c.replace(/[.+^${}()|\\\]]/g, '\\$&');

/** A glob in the last path segment only (`*`, `?`, `[abc]`, `[!abc]`), for Node versions without fs.globSync. */
export function globLastSegment(pattern: string): string[] {
  const dir = dirname(pattern);
  const base = basename(pattern);
  if (MAGIC.test(dir)) {
    throw new PredictError(`input pattern ${pattern}: wildcards are only supported in the last part of the path (e.g. data/imgs/*.png)`);
  }
  let re = '^';
  for (let i = 0; i < base.length; i++) {
    const ch = base[i];
    if (ch === '*') re += '.*';
    else if (ch === '?') re += '.';
    else if (ch === '[') {
      const end = base.indexOf(']', i + 2);
      if (end < 0) re += '\\[';
      else {
        let body = base.slice(i + 1, end);
        if (body.startsWith('!')) body = `^${body.slice(1)}`;
        re += `[${body.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += escapeRe(ch);
  }
  const rx = new RegExp(`${re}$`);
  let names: string[];
  try {
    names = readdirSync(dir === '' ? '.' : dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => rx.test(n) && (!n.startsWith('.') || base.startsWith('.')))
    .map((n) => (dir === '.' && !pattern.startsWith('./') ? n : join(dir, n)))
    .filter(isFile);
}

function globFiles(pattern: string): string[] {
  const g = (fs as unknown as { globSync?: (p: string) => string[] }).globSync;
  return typeof g === 'function' ? g(pattern).filter(isFile) : globLastSegment(pattern);
}

/**
 * Expands -i arguments: files as given; folders -> their image files (sorted, not recursive);
 * globs -> the matching image files (sorted). Folders and globs skip earlier outputs
 * (`*_OUT`, `*_OVERLAY`, `*_PROB<k>`). Duplicates are removed.
 */
export function expandInputs(args: readonly string[]): { entries: InputEntry[]; skippedOutputs: number } {
  const entries: InputEntry[] = [];
  const seen = new Set<string>();
  let skippedOutputs = 0;
  const add = (p: string) => {
    const key = resolve(p);
    if (seen.has(key)) return;
    seen.add(key);
    entries.push({ input: p });
  };
  const addListed = (files: string[]) => {
    for (const f of files.sort(byName)) {
      if (OUTPUT_STEM.test(stemOf(f))) skippedOutputs++;
      else add(f);
    }
  };
  for (const arg of args) {
    let st: fs.Stats | null = null;
    try {
      st = statSync(arg);
    } catch {
      st = null;
    }
    if (st?.isDirectory()) {
      const files = readdirSync(arg)
        .filter((n) => !n.startsWith('.') && isImageName(n))
        .map((n) => join(arg, n))
        .filter(isFile);
      if (files.length === 0) entries.push({ input: arg, error: `folder has no image files (${IMAGE_EXTENSIONS.join(', ')})` });
      addListed(files);
    } else if (st) {
      add(arg);
    } else if (MAGIC.test(arg)) {
      const files = globFiles(arg).filter((f) => isImageName(f));
      if (files.length === 0) entries.push({ input: arg, error: 'no image files match this pattern' });
      addListed(files);
    } else {
      entries.push({ input: arg, error: 'file not found; check the path' });
    }
  }
  return { entries, skippedOutputs };
}

// ------------------------------------------------------------------------------------------------
// Outputs

export interface Job {
  index: number;
  input: string;
  /** Where the mask goes (also when -n: the other outputs go beside it). */
  mask: string;
  overlay: string;
  /** `{base}_PROB` + k + `.png` */
  probPrefix: string;
}

/** Plans output names for each input; checks -o count and refuses collisions before any work. */
export function planOutputs(inputs: readonly string[], cfg: Pick<PredictConfig, 'output' | 'outputDir' | 'noSave' | 'viz' | 'probs'>, probCount: number): Job[] {
  const outs = cfg.output ?? [];
  if (outs.length > 0 && outs.length !== inputs.length) {
    throw new PredictError(
      `${inputs.length} input image(s) but ${outs.length} output name(s) with -o/--output: give exactly one output per input ` +
        `(inputs: ${inputs.slice(0, 5).join(', ')}${inputs.length > 5 ? ', ...' : ''}), or use --output-dir DIR`,
    );
  }
  const jobs = inputs.map((input, index): Job => {
    let mask: string;
    let base: string;
    if (outs.length > 0) {
      mask = outs[index];
      const ext = extname(mask).toLowerCase();
      if (ext === '') mask = `${mask}.png`;
      else if (ext !== '.png' && !isTiffName(mask)) {
        throw new PredictError(`-o ${outs[index]}: masks are written as PNG or TIFF (JPEG and other lossy formats change label values); use a .png or .tif name`);
      }
      base = stemOf(mask);
    } else {
      base = stemOf(input);
      mask = join(cfg.outputDir ? cfg.outputDir : dirname(input), `${base}_OUT.png`);
    }
    const dir = dirname(mask);
    return { index, input, mask, overlay: join(dir, `${base}_OVERLAY.png`), probPrefix: join(dir, `${base}_PROB`) };
  });
  // Collisions: two inputs writing one file (e.g. a.png and a.jpg), or an output over an input.
  const owner = new Map<string, string>();
  for (const input of inputs) owner.set(resolve(input), `input ${input}`);
  for (const j of jobs) {
    const written = [
      ...(cfg.noSave ? [] : [j.mask]),
      ...(cfg.viz ? [j.overlay] : []),
      ...(cfg.probs ? Array.from({ length: probCount }, (_, k) => `${j.probPrefix}${probIndex(k, probCount)}.png`) : []),
    ];
    for (const w of written) {
      const key = resolve(w);
      const prev = owner.get(key);
      if (prev !== undefined) {
        throw new PredictError(
          `${j.input} would write ${w}, which is also ${prev.startsWith('input') ? 'an input' : `written for ${prev}`}; ` +
            'rename the inputs or give explicit names with -o (one per input)',
        );
      }
      owner.set(key, j.input);
    }
  }
  return jobs;
}

/** Probability map k's class index: 1-output (binary) models write one map, for class 1. */
const probIndex = (k: number, count: number) => (count === 1 ? 1 : k);

// ------------------------------------------------------------------------------------------------
// Running

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

export interface PredictedFile {
  input: string;
  mask?: string;
  overlay?: string;
  probs?: string[];
  width: number;
  height: number;
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

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));

function reasonFor(input: string, e: unknown): string {
  const m = message(e);
  return m.startsWith(`${input}: `) ? m.slice(input.length + 2) : m;
}

/** Runs predict and returns what happened (predictCommand prints it and returns the exit code). */
export async function runPredict(cfg: PredictConfig, opts: PredictRunOptions = {}): Promise<PredictResult> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const warn = opts.warn ?? ((l: string) => console.error(l));
  const inputs = cfg.input ?? [];
  if (inputs.length === 0) throw new PredictError('no input images: pass files, folders or globs with -i/--input (e.g. -i data/test/*.png)');
  if (!Number.isInteger(cfg.batchSize) || cfg.batchSize < 1) throw new PredictError(`--batch-size must be a positive integer, got ${cfg.batchSize}`);
  if (!(cfg.scale > 0 && cfg.scale <= 1)) throw new PredictError(`--scale must be in (0, 1], got ${cfg.scale}`);

  // 1. Inputs and output names (cheap checks before loading the model)
  const { entries, skippedOutputs } = expandInputs(inputs);
  if (skippedOutputs > 0) warn(`note: skipped ${skippedOutputs} earlier output file(s) (*_OUT, *_OVERLAY, *_PROB<k>) found in input folders/globs`);
  const failed: { input: string; reason: string }[] = [];
  const good = entries.filter((e) => !e.error);
  for (const e of entries) if (e.error) failed.push({ input: e.input, reason: e.error });
  if (cfg.output.length > 0 && cfg.outputDir) warn('note: -o/--output names are used as given; --output-dir is ignored');
  if (cfg.output.length > 0 && cfg.output.length !== entries.length) planOutputs(entries.map((e) => e.input), cfg, 0); // throws the count error
  const outputsFor = cfg.output.length > 0 ? entries.map((e, i) => ({ e, o: cfg.output[i] })).filter((x) => !x.e.error).map((x) => x.o) : [];
  // -o names, mask/overlay collisions: checked before the model is loaded (probability maps after).
  planOutputs(good.map((e) => e.input), { ...cfg, output: outputsFor, probs: false }, 0);
  if (good.length === 0) {
    throw new PredictError(`no input images to predict:\n${failed.map((f) => `  ${f.input}: ${f.reason}`).join('\n')}`);
  }

  // 2. Model
  const predictor = await loadPredictor(cfg.model, { device: cfg.device, amp: cfg.amp });
  try {
    checkGivenArgs(predictor, { classes: opts.classesGiven ? cfg.classes : undefined, bilinear: opts.bilinearGiven ? cfg.bilinear : undefined });
    for (const n of predictor.notes) warn(`note: ${n}`);
    const probCount = predictor.args.nClasses === 1 ? 1 : predictor.args.nClasses;
    const jobs = planOutputs(good.map((e) => e.input), { ...cfg, output: outputsFor }, probCount);
    const dirs = new Set<string>();
    for (const j of jobs) {
      if (!cfg.noSave) dirs.add(dirname(j.mask));
      if (cfg.viz || cfg.probs) dirs.add(dirname(j.overlay));
    }
    for (const d of dirs) {
      try {
        mkdirSync(d, { recursive: true });
      } catch (e) {
        // Node's recursive mkdir reports ENOENT for a read-only parent; a plain mkdir tells the truth.
        let err = e;
        try {
          mkdirSync(d);
        } catch (e2) {
          if ((e2 as NodeJS.ErrnoException).code !== 'ENOENT') err = e2;
        }
        throw new PredictError(`cannot create the output folder ${d}: ${message(err)}. Choose a folder you can write to (--output-dir DIR or -o FILE).`);
      }
    }
    const mv = predictor.maskValues;
    if (!cfg.noSave && !Array.isArray(mv[0]) && !isBinary01(mv) && Math.max(...(mv as number[])) < 32) {
      warn(`note: the mask values ${JSON.stringify(mv)} are small, so the mask PNGs look (almost) black in image viewers; they hold the class values. Use -v/--viz for a coloured overlay`);
    }
    const a = predictor.args;
    log(`Model ${cfg.model} (${predictor.kind}; UNet channels=${a.nChannels} classes=${a.nClasses} bilinear=${a.bilinear}; mask values ${JSON.stringify(mv)}) on ${predictor.device}${predictor.ampDtype ? ' with AMP' : ''}`);
    for (const f of failed) opts.onFile?.({ input: f.input, error: f.reason });
    return await stream(predictor, jobs, cfg, failed, { log, warn, progress: opts.progress, onFile: opts.onFile });
  } finally {
    predictor.dispose();
  }
}

type JobPlan = TilePlan & { width: number; height: number };

/** --tile for one input: its header decides (files libvips cannot read without decoding are planned in memory). */
async function planJob(p: Predictor, input: string, cfg: PredictConfig): Promise<JobPlan> {
  const outputs = 1 + (cfg.probs ? Math.max(p.args.nClasses, 1) : 0);
  try {
    const head = await imageHeader(input);
    return { ...planTiles(p, cfg, head, scaledSize(head.width, head.height, cfg.scale), outputs), width: head.width, height: head.height };
  } catch {
    // Unreadable header (e.g. .npy, a broken file): the normal path decodes it or reports the error.
    return { tile: cfg.tile === 'auto' ? null : (cfg.tile as number), regions: false, width: 0, height: 0 };
  }
}

async function stream(
  p: Predictor,
  jobs: Job[],
  cfg: PredictConfig,
  failed: { input: string; reason: string }[],
  io: { log: (l: string) => void; warn: (l: string) => void; progress?: boolean; onFile?: PredictRunOptions['onFile'] },
): Promise<PredictResult> {
  const t0 = performance.now();
  const total = jobs.length;
  const verbose = total <= 20;
  const tty = process.stderr.isTTY === true;
  const showProgress = io.progress ?? true;
  const workers = Math.max(1, cfg.workers ?? 4);
  const windowSize = Math.max(8, cfg.batchSize * 2, workers * 2);
  const predicted: (PredictedFile & { index: number })[] = [];
  let done = 0;
  let lastShown = -1;
  const progress = (name: string) => {
    if (!showProgress) return;
    const secs = (performance.now() - t0) / 1000;
    const rate = secs > 0 ? done / secs : 0;
    const line = `[${String(done).padStart(String(total).length)}/${total}] ${((100 * done) / total).toFixed(0).padStart(3)}%  ${rate.toFixed(2)} images/s  ${name}`;
    if (tty) process.stderr.write(`\r\x1b[2K${line}${done === total ? '\n' : ''}`);
    else {
      const step = Math.max(1, Math.floor(total / 10));
      if (!verbose && (done % step === 0 || done === total) && done !== lastShown) {
        lastShown = done;
        io.warn(line);
      }
    }
  };
  const fail = (input: string, e: unknown) => {
    const reason = reasonFor(input, e);
    failed.push({ input, reason });
    io.onFile?.({ input, error: reason });
    if (tty && showProgress) process.stderr.write('\r\x1b[2K');
    io.warn(`error: ${input}: ${reason} (skipped)`);
  };

  type Decoded = { job: Job; pre?: Preprocessed; error?: unknown };
  const decode = (slice: Job[]): Promise<Decoded[]> =>
    mapPool(slice, workers, async (job) => {
      try {
        const pre = await preprocess(job.input, cfg.scale, p.args.nChannels);
        for (const w of pre.warnings) io.warn(`warning: ${w}`);
        return { job, pre };
      } catch (error) {
        return { job, error };
      }
    });

  const writeOutputs = async (job: Job, pred: Prediction): Promise<void> => {
    const rec: PredictedFile = { input: job.input, width: pred.width, height: pred.height };
    try {
      if (!cfg.noSave) {
        if (isTiffName(job.mask)) await writeMaskTiff(pred.classes, pred.width, pred.height, p.maskValues, job.mask);
        else await writeFile(job.mask, await encodeMaskPng(pred.classes, pred.width, pred.height, p.maskValues));
        rec.mask = job.mask;
      }
      if (cfg.probs && pred.probs) {
        rec.probs = [];
        for (let k = 0; k < pred.probs.length; k++) {
          const file = `${job.probPrefix}${probIndex(k, pred.probs.length)}.png`;
          await writeFile(file, encodeProbPng(pred.probs[k], pred.width, pred.height));
          rec.probs.push(file);
        }
      }
      if (cfg.viz) {
        await writeFile(job.overlay, await renderOverlay(job.input, pred.classes, pred.width, pred.height, p.maskValues));
        rec.overlay = job.overlay;
      }
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? '';
      const fix = ['EROFS', 'EACCES', 'EPERM', 'ENOSPC', 'EDQUOT'].includes(code) ? ' (choose a writable folder with --output-dir DIR, or free space)' : '';
      fail(job.input, new Error(`cannot write the outputs: ${message(e)}${fix}`));
      return;
    }
    predicted.push({ ...rec, index: job.index });
    io.onFile?.(rec);
    if (verbose) {
      const outs = [rec.mask, rec.overlay, ...(rec.probs ?? [])].filter(Boolean);
      if (tty && showProgress) process.stderr.write('\r\x1b[2K');
      io.log(`${job.input} -> ${outs.length ? outs.join(', ') : '(not saved: -n)'}`);
    }
  };

  const runBatch = (batch: Decoded[]): { job: Job; pred?: Prediction; error?: unknown }[] => {
    const items = batch.map((d) => d.pre as Preprocessed);
    try {
      const preds = predictBatch(p, items, { threshold: cfg.maskThreshold, probs: cfg.probs });
      return batch.map((d, i) => ({ job: d.job, pred: preds[i] }));
    } catch (e) {
      if (batch.length === 1) return [{ job: batch[0].job, error: e }];
      // e.g. out of memory: retry one image at a time
      return batch.flatMap((d) => runBatch([d]));
    }
  };

  // --tile: images to predict window by window (one at a time), the others in batches as before.
  const tiled: { job: Job; plan: JobPlan }[] = [];
  if (cfg.tile !== 'off') {
    const whole: Job[] = [];
    for (const job of jobs) {
      const plan = await planJob(p, job.input, cfg);
      if (plan.tile === null) whole.push(job);
      else tiled.push({ job, plan });
    }
    jobs = whole;
  }
  // Megapixel progress for a single image, or one of 10 MP and more (not for every window row of many small ones).
  const megapixels = (input: string, width: number, height: number) =>
    showProgress && (total === 1 || width * height >= 1e7) ? megapixelProgress(input, width, height, (line, final) => (tty ? process.stderr.write(`\r\x1b[2K${line}${final ? '\n' : ''}`) : io.warn(line))) : undefined;
  for (const { job, plan } of tiled) {
    const o: RowOptions = {
      tile: plan.tile as number, overlap: cfg.overlap, blend: cfg.blend, batchSize: cfg.batchSize, threshold: cfg.maskThreshold, probs: cfg.probs,
      onRows: megapixels(job.input, plan.width, plan.height),
    };
    try {
      if (plan.regions) {
        if (cfg.viz) io.warn(`note: ${job.input}: no overlay (-v) for an image read region by region (an overlay needs the whole image in memory)`);
        const probCount = p.args.nClasses === 1 ? 1 : p.args.nClasses;
        const probs = cfg.probs ? Array.from({ length: probCount }, (_, k) => `${job.probPrefix}${probIndex(k, probCount)}.png`) : undefined;
        const mask = cfg.noSave ? undefined : job.mask;
        const r = await predictTiledFile(p, job.input, cfg.scale, { mask, probs }, o, io.warn);
        predicted.push({ input: job.input, width: r.width, height: r.height, mask, probs, index: job.index });
        if (verbose) io.log(`${job.input} -> ${[mask, ...(probs ?? [])].filter(Boolean).join(', ') || '(not saved: -n)'} (windows of ${plan.tile}, region by region)`);
      } else {
        const pre = await preprocess(job.input, cfg.scale, p.args.nChannels);
        for (const w of pre.warnings) io.warn(`warning: ${w}`);
        await writeOutputs(job, await predictTiledInMemory(p, pre, o));
      }
    } catch (e) {
      fail(job.input, e);
    }
    done++;
    progress(job.input);
  }

  let next: Promise<Decoded[]> | null = decode(jobs.slice(0, windowSize));
  for (let start = 0; start < jobs.length; start += windowSize) {
    const decoded: Decoded[] = await (next as Promise<Decoded[]>);
    // Prefetch the next window while this one runs (sharp decodes on libuv threads).
    next = start + windowSize < jobs.length ? decode(jobs.slice(start + windowSize, start + 2 * windowSize)) : null;
    const groups = new Map<string, Decoded[]>();
    for (const d of decoded) {
      if (d.error !== undefined || !d.pre) {
        done++;
        fail(d.job.input, d.error);
        progress(d.job.input);
        continue;
      }
      const key = batchKey(d.pre);
      const g = groups.get(key) ?? [];
      g.push(d);
      groups.set(key, g);
    }
    const writes: Promise<void>[] = [];
    for (const group of groups.values()) {
      for (let i = 0; i < group.length; i += cfg.batchSize) {
        const results = runBatch(group.slice(i, i + cfg.batchSize));
        for (const r of results) {
          if (r.pred) writes.push(writeOutputs(r.job, r.pred));
          else fail(r.job.input, r.error);
          done++;
          progress(r.job.input);
        }
        // Let finished writes and the prefetch make progress between forward passes.
        await new Promise<void>((res) => setImmediate(res));
      }
    }
    await Promise.all(writes);
  }

  const seconds = (performance.now() - t0) / 1000;
  const n = predicted.length;
  const rate = seconds > 0 ? n / seconds : 0;
  const where = cfg.noSave ? 'masks not saved (-n)' : cfg.output.length ? 'masks written to the -o names' : cfg.outputDir ? `masks in ${cfg.outputDir}` : 'masks next to the inputs (*_OUT.png)';
  io.log(`Predicted ${n} image(s) in ${seconds.toFixed(2)} s (${rate.toFixed(2)} images/s) on ${p.device}; ${where}`);
  if (failed.length > 0) {
    io.warn(`${failed.length} input(s) failed:`);
    for (const f of failed) io.warn(`  ${f.input}: ${f.reason.split('\n')[0]}`);
  }
  const inOrder = predicted.sort((a, b) => a.index - b.index).map(({ index: _, ...rec }) => rec);
  return { exitCode: failed.length > 0 ? 2 : 0, predicted: inOrder, failed, seconds, imagesPerSecond: rate, device: p.device, notes: p.notes };
}

/** The CLI entry: exit code 0, or 2 when some inputs failed (errors before the run throw PredictError). */
export async function predictCommand(cfg: PredictConfig, classesGiven: boolean, bilinearGiven: boolean, out: Output = { json: false }): Promise<number> {
  // With --json, stdout carries only the per-file lines.
  const json = out.json ? { log: (l: string) => console.error(l), onFile: (f: object) => console.log(JSON.stringify(f)) } : {};
  const r = await runPredict(cfg, { classesGiven, bilinearGiven, ...json });
  return r.exitCode;
}

