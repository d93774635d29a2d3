/**
 * The decoding and batching that `unet predict` and `unet evaluate` share: inputs decoded
 * --workers at a time, a window ahead of the model, then cut into same-size batches of -b.
 */
import { defaultWorkers } from '../config/options.js';
import { mapPool } from '../data/index.js';

export interface DecodeOptions {
  batchSize: number;
  workers?: number;
}

/**
 * Decodes `items` window by window, in input order, and yields each window's results; the next
 * window decodes while the caller runs this one (sharp decodes on libuv threads).
 */
export async function* decodeWindows<T, R>(items: readonly T[], o: DecodeOptions, decode: (item: T) => Promise<R>): AsyncGenerator<R[]> {
  const workers = Math.max(1, o.workers ?? defaultWorkers);
  const windowSize = Math.max(8, o.batchSize * 2, workers * 2);
  const start = (from: number) => {
    const window = mapPool(items.slice(from, from + windowSize), workers, decode);
    window.catch(() => {}); // a failure surfaces when the window is awaited, not as an unhandled rejection
    return window;
  };
  let next = start(0);
  for (let from = 0; from < items.length; from += windowSize) {
    const results = await next;
    if (from + windowSize < items.length) next = start(from + windowSize);
    yield results;
  }
}

/** Groups of the same `key` (same size: one tensor), in first-seen order, cut into batches of at most `batchSize`. */
export function sameSizeBatches<T>(items: readonly T[], key: (item: T) => string, batchSize: number): T[][] {
  const groups = new Map<string, T[]>();
  for (const it of items) {
    const k = key(it);
    const g = groups.get(k);
    if (g) g.push(it);
    else groups.set(k, [it]);
  }
  const batches: T[][] = [];
  for (const g of groups.values()) for (let i = 0; i < g.length; i += batchSize) batches.push(g.slice(i, i + batchSize));
  return batches;
}
