// Histogram summary of a tensor: one O(n) pass for stats, one for bucketing.
// Used both for TensorBoard's HistogramProto and for histograms.jsonl.

export interface HistogramSummary {
  min: number;
  max: number;
  /** number of finite values counted */
  num: number;
  sum: number;
  sumSquares: number;
  /** bins + 1 increasing edges; bucket i covers [edges[i], edges[i+1]) (last one closed) */
  edges: number[];
  counts: number[];
  /** NaN/±Inf values skipped (the reference skips whole tensors with them; we keep the finite part and count the rest) */
  nonFinite: number;
}

export const DEFAULT_BINS = 30;

/** Returns null when there is no finite value to summarise. */
export function computeHistogram(values: ArrayLike<number>, bins = DEFAULT_BINS): HistogramSummary | null {
  let min = Infinity;
  let max = -Infinity;
  let num = 0;
  let sum = 0;
  let sumSquares = 0;
  let nonFinite = 0;
  const n = values.length;
  for (let i = 0; i < n; i++) {
    const v = values[i] as number;
    if (!Number.isFinite(v)) {
      nonFinite++;
      continue;
    }
    if (v < min) min = v;
    if (v > max) max = v;
    num++;
    sum += v;
    sumSquares += v * v;
  }
  if (num === 0) return null;

  const nb = Math.max(1, Math.floor(bins));
  // A constant tensor (e.g. zero-initialised biases) still needs a non-empty range.
  let lo = min;
  let hi = max;
  if (hi <= lo) {
    const pad = Math.abs(lo) > 0 ? Math.abs(lo) * 0.05 : 0.5;
    lo -= pad;
    hi += pad;
  }
  const width = (hi - lo) / nb;
  const edges = new Array<number>(nb + 1);
  for (let b = 0; b <= nb; b++) edges[b] = lo + b * width;
  edges[nb] = hi;
  const counts = new Array<number>(nb).fill(0);
  const scale = nb / (hi - lo);
  for (let i = 0; i < n; i++) {
    const v = values[i] as number;
    if (!Number.isFinite(v)) continue;
    let b = Math.floor((v - lo) * scale);
    if (b >= nb) b = nb - 1;
    else if (b < 0) b = 0;
    counts[b] = (counts[b] as number) + 1;
  }
  return { min, max, num, sum, sumSquares, edges, counts, nonFinite };
}
