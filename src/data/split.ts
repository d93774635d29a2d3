/**
 * Seeded randomness for data handling: a small PRNG whose state can be saved in a checkpoint,
 * the train/validation split, and shuffling.
 */
import type { Stateful } from '../io/stateful.js';

export interface RngStateDict {
  state: number;
}

/**
 * mulberry32 (Tommy Ettinger's 32-bit generator): one uint32 of state, period 2^32, fast and
 * good enough for shuffles and augmentation. `stateDict()`/`loadStateDict()` let a run resume exactly.
 */
export class Rng implements Stateful<RngStateDict> {
  private state: number;

  constructor(seed = 0) {
    this.state = seed >>> 0;
  }

  /** Next uint32. */
  nextUint32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform float in [0, 1). */
  next(): number {
    return this.nextUint32() / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Uniform float in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** The whole state, for checkpoints. */
  stateDict(): RngStateDict {
    return { state: this.state };
  }

  loadStateDict(sd: RngStateDict): void {
    const s = sd?.state;
    if (!Number.isInteger(s) || s < 0 || s > 0xffffffff) throw new Error(`Rng.loadStateDict: 'state' must be an integer in [0, 2^32), got ${String(s)}`);
    this.state = s;
  }
}

/** The classic mulberry32 function form: returns a `() => [0, 1)` generator. */
export function mulberry32(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.next();
}

/** Fisher-Yates shuffle in place; returns `indices`. */
export function shuffle<T>(indices: T[], rng: Rng): T[] {
  for (let i = indices.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = indices[i];
    indices[i] = indices[j];
    indices[j] = t;
  }
  return indices;
}

/**
 * Train/validation split of `0..n-1` like Pytorch-UNet's `random_split` with a fixed generator:
 * `nVal = floor(n * valPercent / 100)`, `nTrain = n - nVal`, from one seeded permutation
 * (train = first nTrain, val = the rest). Same seed, same split. (It does not reproduce
 * torch's own permutation, only the sizes and the determinism.)
 */
export function randomSplit(n: number, valPercent: number, seed = 0): { train: number[]; val: number[] } {
  if (!(valPercent >= 0 && valPercent <= 100)) throw new RangeError(`valPercent must be in [0, 100], got ${valPercent}`);
  const nVal = Math.floor((n * valPercent) / 100);
  const perm = shuffle(
    Array.from({ length: n }, (_, i) => i),
    new Rng(seed),
  );
  return { train: perm.slice(0, n - nVal), val: perm.slice(n - nVal) };
}
