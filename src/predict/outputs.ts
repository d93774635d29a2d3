/**
 * `unet predict` outputs: the names (-o > --output-dir > next to the input; collisions refused
 * before any work), their folders, and the files written for one prediction.
 */
import { dirname, extname, join, resolve } from 'node:path';
import type { PredictConfig } from '../config/options.js';
import { isTiffName } from '../data/image/regions.js';
import { makeDirs } from '../io/dirs.js';
import { writeFailure, writeFileAtomic } from '../io/files.js';
import { stemOf } from './inputs.js';
import { encodeMaskPng, encodeProbPng, renderOverlay, writeMaskTiff } from './overlay.js';
import { type Prediction, type Predictor, PredictError } from './predictor.js';

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
      `${inputs.length} input image(s) but ${outs.length} output name(s) with -o/--output: give exactly one output per input ` + `(inputs: ${inputs.slice(0, 5).join(', ')}${inputs.length > 5 ? ', ...' : ''}), or use --output-dir DIR`,
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
    const written = [...(cfg.noSave ? [] : [j.mask]), ...(cfg.viz ? [j.overlay] : []), ...(cfg.probs ? probFiles(j, probCount) : [])];
    for (const w of written) {
      const key = resolve(w);
      const prev = owner.get(key);
      if (prev !== undefined) {
        throw new PredictError(`${j.input} would write ${w}, which is also ${prev.startsWith('input') ? 'an input' : `written for ${prev}`}; rename the inputs or give explicit names with -o (one per input)`);
      }
      owner.set(key, j.input);
    }
  }
  return jobs;
}

/** Probability map files: `{base}_PROB<k>.png`; a 1-output (binary) model writes one map, for class 1. */
export const probFiles = (job: Pick<Job, 'probPrefix'>, count: number): string[] => Array.from({ length: count }, (_, k) => `${job.probPrefix}${count === 1 ? 1 : k}.png`);

/** The probability maps a model writes: one for a 1-output (sigmoid) model, else one per class. */
export const probCount = (p: Predictor): number => (p.args.nClasses === 1 ? 1 : p.args.nClasses);

/** Creates the folders the jobs write into, before any prediction. */
export async function makeOutputDirs(jobs: readonly Job[], cfg: Pick<PredictConfig, 'noSave' | 'viz' | 'probs'>): Promise<void> {
  const dirs = new Set<string>();
  for (const j of jobs) {
    if (!cfg.noSave) dirs.add(dirname(j.mask));
    if (cfg.viz || cfg.probs) dirs.add(dirname(j.overlay));
  }
  for (const d of dirs) {
    await makeDirs(d).catch((e: Error) => {
      throw new PredictError(`cannot create the output folder ${d}: ${e.message}. Choose a folder you can write to (--output-dir DIR or -o FILE).`);
    });
  }
}

export interface PredictedFile {
  input: string;
  mask?: string;
  overlay?: string;
  probs?: string[];
  width: number;
  height: number;
}

/**
 * Writes one prediction's mask, probability maps and overlay, each atomically (temp file, then
 * rename: a failed write keeps the earlier file); an error says how to fix a write failure.
 */
export async function writeOutputs(p: Predictor, cfg: PredictConfig, job: Job, pred: Prediction): Promise<PredictedFile> {
  const rec: PredictedFile = { input: job.input, width: pred.width, height: pred.height };
  let file = job.mask;
  try {
    if (!cfg.noSave) {
      if (isTiffName(job.mask)) await writeMaskTiff(pred.classes, pred.width, pred.height, p.maskValues, job.mask);
      else await writeFileAtomic(job.mask, [await encodeMaskPng(pred.classes, pred.width, pred.height, p.maskValues)]);
      rec.mask = job.mask;
    }
    if (cfg.probs && pred.probs) {
      const files = probFiles(job, pred.probs.length);
      for (let k = 0; k < files.length; k++) {
        file = files[k];
        await writeFileAtomic(file, [encodeProbPng(pred.probs[k], pred.width, pred.height)]);
      }
      rec.probs = files;
    }
    if (cfg.viz) {
      file = job.overlay;
      await writeFileAtomic(job.overlay, [await renderOverlay(job.input, pred.classes, pred.width, pred.height, p.maskValues, p.classNames)]);
      rec.overlay = job.overlay;
    }
  } catch (e) {
    const why = writeFailure(e, file);
    const fix = `${why && /full/.test(why) ? 'free space, or ' : ''}choose another folder with --output-dir DIR; a file written before is kept as it was`;
    throw new Error(why ? `${why}; ${fix}` : `cannot write the outputs: ${(e as Error).message}`);
  }
  return rec;
}
