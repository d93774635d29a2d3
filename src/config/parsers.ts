/**
 * The option values' parsers (each names the flag and what it expected), the option spec type and
 * the checks between flags that the tables in options.ts share.
 */
import os from 'node:os';
import { EXIT, UserError } from './errors.js';

/** A bad flag or option value: a usage error, nothing ran. */
export class OptionError extends UserError {
  constructor(message: string) {
    super(message, EXIT.usage);
  }
}

export type Parser<T> = (raw: string, flag: string) => T;

export interface OptionSpec<T> {
  flags: string; // commander syntax, e.g. '-e, --epochs <n>'
  help: string; // one line; the CLI appends a non-empty default unless the help names its own '(default: ...)'
  default: T;
  parse?: Parser<T>; // absent for boolean switches
  /** Options that are accepted several times or take several values (`-i a b c`). */
  variadic?: boolean;
  /** A former spelling still accepted, hidden from --help (e.g. bench's '--batch <n>'). */
  alias?: string;
  /** The value of an optional-value flag (`--ema [decay]`) given alone, as if typed. */
  preset?: string;
}

// ------------------------------------------------------------------------------------------------
// Parsers: each names the flag and what it expected.

export const num = (raw: string, flag: string): number => {
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v)) throw new OptionError(`${flag} expects a number, got '${raw}'`);
  return v;
};
export const posInt: Parser<number> = (raw, flag) => {
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(v) || v < 1) throw new OptionError(`${flag} expects a positive integer, got '${raw}'`);
  return v;
};
export const nonNegInt: Parser<number> = (raw, flag) => {
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(v) || v < 0) throw new OptionError(`${flag} expects an integer >= 0, got '${raw}'`);
  return v;
};
/** --folds: 0 (off) or K >= 2. */
export const foldsParser: Parser<number> = (raw, flag) => {
  const v = nonNegInt(raw, flag);
  if (v === 1) throw new OptionError(`${flag} must be 0 (off) or at least 2, got '${raw}'`);
  return v;
};
export const posFloat: Parser<number> = (raw, flag) => {
  const v = num(raw, flag);
  if (!(v > 0)) throw new OptionError(`${flag} expects a number > 0, got '${raw}'`);
  return v;
};
export const nonNegFloat: Parser<number> = (raw, flag) => {
  const v = num(raw, flag);
  if (!(v >= 0)) throw new OptionError(`${flag} expects a number >= 0, got '${raw}'`);
  return v;
};
export const scaleParser: Parser<number> = (raw, flag) => {
  const v = num(raw, flag);
  if (!(v > 0 && v <= 1)) throw new OptionError(`${flag} must be in (0, 1] (the fraction images are resized by; 0.5 halves them), got '${raw}'`);
  return v;
};
export const percent: Parser<number> = (raw, flag) => {
  const v = num(raw, flag);
  if (!(v >= 0 && v < 100)) throw new OptionError(`${flag} is a percentage of the data held out for validation, in [0, 100), got '${raw}'`);
  return v;
};
export const unit: Parser<number> = (raw, flag) => {
  const v = num(raw, flag);
  if (!(v >= 0 && v <= 1)) throw new OptionError(`${flag} must be in [0, 1], got '${raw}'`);
  return v;
};
/** --ema: 0 (off) or a decay in (0, 1). */
export const emaDecayParser: Parser<number> = (raw, flag) => {
  const v = num(raw, flag);
  if (!(v === 0 || (v > 0 && v < 1))) throw new OptionError(`${flag} expects a decay between 0 and 1 such as 0.9999 (0 = off), got '${raw}'`);
  return v;
};
export const str: Parser<string> = (raw, flag) => {
  if (raw === '') throw new OptionError(`${flag} needs a value`);
  return raw;
};
/** --loss values (src/train/losses.ts). */
export const LOSSES = ['ce+dice', 'focal+dice', 'tversky', 'lovasz'] as const;
export type LossName = (typeof LOSSES)[number];
export const choice =
  <T extends string>(...values: T[]): Parser<T> =>
  (raw, flag) => {
    if (!values.includes(raw as T)) throw new OptionError(`${flag} must be one of ${values.join(', ')}; got '${raw}'`);
    return raw as T;
  };
export const device: Parser<string> = (raw, flag) => {
  if (!/^(auto|cpu|cuda(:\d+)?)$/.test(raw)) throw new OptionError(`${flag} must be auto, cpu, cuda or cuda:N; got '${raw}'`);
  return raw;
};
export const channels: Parser<'auto' | number> = (raw, flag) => (raw === 'auto' ? 'auto' : posInt(raw, flag));
export const depthParser: Parser<number> = (raw, flag) => {
  const v = posInt(raw, flag);
  if (v > 10) throw new OptionError(`${flag} is the number of down-sampling stages, from 1 to 10 (the reference: 4); got '${raw}'`);
  return v;
};
/** --encoder: a registry name (model/encoders/); checked against the registry by train's setup, which may import it. */
export const encoderName: Parser<string> = (raw, flag) => {
  if (!/^[a-z][a-z0-9_]*$/.test(raw)) throw new OptionError(`${flag} expects an encoder name such as plain, resnet18, resnet34 or resnet50; got '${raw}'`);
  return raw;
};
export const encoderDepthParser: Parser<number> = (raw, flag) => {
  const v = posInt(raw, flag);
  if (v < 3 || v > 5) throw new OptionError(`${flag} is the number of encoder stages the decoder uses, from 3 to 5; got '${raw}'`);
  return v;
};
/** --decoder-channels a,b,...: positive widths, deepest stage first. */
export const decoderChannelsParser: Parser<number[]> = (raw, flag) => {
  const v = raw.split(',').map((x) => Number(x.trim()));
  if (!v.every((x) => Number.isInteger(x) && x >= 1 && x <= 2048)) throw new OptionError(`${flag} expects comma-separated widths from 1 to 2048, one per encoder stage (e.g. 256,128,64,32,16); got '${raw}'`);
  return v;
};
export const autoOrNonNegInt: Parser<'auto' | number> = (raw, flag) => (raw === 'auto' ? 'auto' : nonNegInt(raw, flag));
export const autoOrPosInt: Parser<'auto' | number> = (raw, flag) => (raw === 'auto' ? 'auto' : posInt(raw, flag));
export const port: Parser<number> = (raw, flag) => {
  const v = nonNegInt(raw, flag);
  if (v > 65535) throw new OptionError(`${flag} must be a TCP port (0-65535), got '${raw}'`);
  return v;
};

/**
 * --time-budget: `90s`, `15m`, `1h`, `1h30m` (units h, m, s, largest first) or bare seconds, as
 * seconds; 0 = no budget.
 */
export const durationParser: Parser<number> = (raw, flag) => {
  const t = raw.trim();
  const bare = Number(t);
  if (t !== '' && Number.isFinite(bare) && bare >= 0) return bare;
  const m = /^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$/.exec(t);
  if (!m || t === '') throw new OptionError(`${flag} expects a duration such as 90s, 15m, 1h, 1h30m or a number of seconds; got '${raw}'`);
  return Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
};

/** -e under --time-budget when not given: the budget alone decides how many epochs run. */
export const NO_EPOCH_CAP = 1_000_000;

/** --tile: a window size in scaled pixels, 'auto' (only images over the memory budget) or 'off'. */
export type TileSetting = number | 'auto' | 'off';
export const tileParser: Parser<TileSetting> = (raw, flag) => {
  if (raw === 'auto' || raw === 'off') return raw;
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(v) || v < 16 || v % 16 !== 0) {
    throw new OptionError(`${flag} expects a window size in pixels that is a multiple of 16 and at least 16 (e.g. 512), 'auto' or 'off'; got '${raw}'`);
  }
  return v;
};
export const overlapParser: Parser<number> = (raw, flag) => {
  const v = num(raw, flag);
  if (!(v >= 0 && v < 1)) throw new OptionError(`${flag} is the fraction of a window shared with its neighbour, in [0, 1) (e.g. 0.25); got '${raw}'`);
  return v;
};

/**
 * --patch-size: `HxW` or `N` (NxN). Multiples of 16: the UNet halves the size 4 times, so a patch
 * whose sides divide by 16 needs no padding inside the network and every skip connection lines up.
 */
export const patchSizeParser: Parser<[number, number] | null> = (raw, flag) => {
  const m = /^\s*(\d+)\s*(?:[x×,]\s*(\d+))?\s*$/i.exec(raw);
  const [h, w] = m ? [Number(m[1]), Number(m[2] ?? m[1])] : [Number.NaN, Number.NaN];
  if (!(h >= 16 && w >= 16 && h % 16 === 0 && w % 16 === 0)) {
    throw new OptionError(`${flag} expects HxW or N (NxN) in scaled pixels, each a multiple of 16 and at least 16 (the UNet halves the size 4 times), e.g. 256 or 192x320; got '${raw}'`);
  }
  return [h, w];
};

/** --class-names: comma-separated, one per class incl. the background (checked against -c in checkClassNames). */
export const classNamesParser: Parser<string[]> = (raw, flag) => {
  const names = raw.split(',').map((n) => n.trim());
  if (names.some((n) => n === '')) throw new OptionError(`${flag} expects names separated by commas, one per class incl. background (e.g. background,sky,building); got '${raw}'`);
  return names;
};

/** How many names --class-names needs: one per predicted value, so 2 for a binary (-c 1) model. */
export const classNameCount = (classes: number): number => Math.max(classes, 2);

/** --class-names against -c: one name per class (incl. background), or none. */
export function checkClassNames(names: readonly string[], classes: number): void {
  const n = classNameCount(classes);
  if (names.length === 0 || names.length === n) return;
  throw new OptionError(`--class-names gives ${names.length} name(s) (${names.join(', ')}) but -c ${classes} needs ${n}: one per class incl. the background${classes === 1 ? ' (a binary model has 2: background and foreground)' : ''}`);
}

/** --ignore-index: a value as stored in the masks (16-bit masks reach 65535). */
export const ignoreValueParser: Parser<number | null> = (raw, flag) => {
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(v) || v < 0 || v > 65535) {
    throw new OptionError(`${flag} expects a mask value as stored in the mask files, an integer 0-65535 (e.g. 11 for CamVid's void); got '${raw}'`);
  }
  return v;
};

/** --class-weights: 'none', 'auto' (resolved from the training masks by src/train/class-weights.ts) or the weights. */
export type ClassWeights = 'none' | 'auto' | number[];
export const classWeightsParser: Parser<ClassWeights> = (raw, flag) => {
  if (raw === 'none' || raw === 'auto') return raw;
  const ws = raw.split(',').map((w) => (w.trim() === '' ? Number.NaN : Number(w)));
  if (ws.some((w) => !(Number.isFinite(w) && w >= 0)) || !ws.some((w) => w > 0)) {
    throw new OptionError(`${flag} expects 'auto', 'none' or one weight >= 0 per class incl. the background, comma-separated (e.g. 0.5,2,1), not all 0; got '${raw}'`);
  }
  return ws;
};

/** --class-weights against -c: one weight per class incl. the background, two (background, foreground) for -c 1. */
export function checkClassWeights(weights: ClassWeights, classes: number): void {
  if (!Array.isArray(weights) || weights.length === classNameCount(classes)) return;
  throw new OptionError(
    `--class-weights gives ${weights.length} weight(s) (${weights.join(', ')}) but -c ${classes} needs ${classNameCount(classes)}: one per class incl. the background${classes === 1 ? ' (a binary model has 2: background and foreground)' : ''}`,
  );
}

/** Parallel image decoders unless --workers says otherwise (train, predict, evaluate and the dataset API). */
export const defaultWorkers = Math.max(1, Math.min(8, os.availableParallelism()));

/** `-e, --epochs <n>` -> `--epochs` */
export const longFlag = (spec: OptionSpec<unknown>): string => /--[a-z0-9-]+/.exec(spec.flags)?.[0] ?? spec.flags;

/** The decoder's pixel limit (PIL's decompression-bomb error threshold), for train and predict. */
export const MAX_PIXELS = 178_956_970;
