/**
 * --folds K: k-fold cross-validation splits by file. One seeded permutation of the pairs (sorted by
 * name, as listPairs returns them) is cut into K contiguous folds, the first n % K one pair larger
 * (sklearn's KFold sizes); fold I is the validation set, the other folds train. Same seed, same folds.
 */
import { join } from 'node:path';
import { OptionError } from '../config/options.js';
import { Rng, shuffle } from '../data/split.js';

/** The K folds of `0..n-1`: disjoint, covering, each sorted. */
export function kFolds(n: number, k: number, seed = 0): number[][] {
  if (!Number.isInteger(k) || k < 2) throw new RangeError(`kFolds: k must be an integer >= 2, got ${k}`);
  const perm = shuffle(
    Array.from({ length: n }, (_, i) => i),
    new Rng(seed),
  );
  const folds: number[][] = [];
  let at = 0;
  for (let i = 0; i < k; i++) {
    const size = Math.floor(n / k) + (i < n % k ? 1 : 0);
    folds.push(perm.slice(at, at + size).sort((a, b) => a - b));
    at += size;
  }
  return folds;
}

/** Fold `fold` of K as the validation set, the rest as the training set. */
export function foldSplit(n: number, k: number, fold: number, seed = 0): { train: number[]; val: number[] } {
  if (n < k) throw new OptionError(`--folds ${k} needs at least ${k} image/mask pairs, found ${n}; lower --folds`);
  const folds = kFolds(n, k, seed);
  return { train: folds.flatMap((f, i) => (i === fold ? [] : f)).sort((a, b) => a - b), val: folds[fold] };
}

/** --fold I's checkpoint folder: <--checkpoint-dir>/fold<I>. */
export const foldDirName = (fold: number): string => `fold${fold}`;

/**
 * --folds/--fold checked together; with --fold I the checkpoint folder becomes <dir>/fold<I> (the
 * all-folds run passes each fold through here too, so both write the same layout).
 */
export function foldConfig<T extends { folds: number; fold?: number; checkpointDir: string }>(cfg: T): T {
  if (cfg.fold !== undefined && cfg.folds === 0) throw new OptionError(`--fold ${cfg.fold} needs --folds K (the number of folds)`);
  if (cfg.fold === undefined) return cfg;
  if (cfg.fold >= cfg.folds) throw new OptionError(`--fold ${cfg.fold} must be below --folds ${cfg.folds} (folds are numbered 0 .. ${cfg.folds - 1})`);
  return { ...cfg, checkpointDir: join(cfg.checkpointDir, foldDirName(cfg.fold)) };
}
