/**
 * --class-weights: the CE term's per-class weights, given or `auto`. `auto` is median-frequency
 * balancing (Eigen & Fergus 2015; SegNet's weighting on CamVid): w_c = median(f) / f_c, f_c being
 * class c's share of the counted pixels of the training masks (ignored pixels left out), the
 * median over the classes present. The median class gets 1, rarer classes more and common ones
 * less, whatever the class count. Clipped to [0.1, 10], so that a class of a handful of pixels
 * cannot dominate the gradient and the background does not vanish; a class absent from the
 * training masks gets 1 (no target pixel uses its weight).
 */
import { DataError, type SegmentationDataset } from '../data/index.js';
import type { ClassWeights } from '../config/options.js';

export const AUTO_WEIGHT_RANGE: readonly [number, number] = [0.1, 10];

/** Median-frequency weights from per-class pixel counts (4 significant digits: config.json replays them exactly). */
export function medianFrequencyWeights(counts: readonly number[]): number[] {
  const total = counts.reduce((a, b) => a + b, 0);
  const freqs = counts.map((c) => c / Math.max(total, 1));
  const present = freqs.filter((f) => f > 0).sort((a, b) => a - b);
  if (present.length === 0) return counts.map(() => 1);
  const mid = present.length >> 1;
  const median = present.length % 2 ? present[mid] : (present[mid - 1] + present[mid]) / 2;
  const [lo, hi] = AUTO_WEIGHT_RANGE;
  return freqs.map((f) => (f > 0 ? Number(Math.min(hi, Math.max(lo, median / f)).toPrecision(4)) : 1));
}

/** Pixels per class (0 .. k-1) of the given samples' class maps; the ignored-pixel marker (>= k) is not counted. */
export async function classPixelCounts(dataset: SegmentationDataset, indices: readonly number[], k: number, skipBad = false): Promise<number[]> {
  const counts = new Float64Array(k);
  await Promise.all(
    indices.map(async (i) => {
      let mask: Uint8Array;
      try {
        mask = (await dataset.load(i)).mask;
      } catch (e) {
        if (skipBad && e instanceof DataError) return; // --skip-bad: reported when the epoch reaches it
        throw e;
      }
      for (let j = 0; j < mask.length; j++) if (mask[j] < k) counts[mask[j]]++;
    }),
  );
  return [...counts];
}

/** The weights to train with: 'none', the given list, or `auto` computed once from the training split's masks (and logged). */
export async function resolveClassWeights(weights: ClassWeights, classes: number, data: { dataset: SegmentationDataset; split: { train: number[] } }, log: (line: string) => void, skipBad = false): Promise<'none' | number[]> {
  if (weights !== 'auto') return weights;
  const counts = await classPixelCounts(data.dataset, data.split.train, Math.max(classes, 2), skipBad);
  const w = medianFrequencyWeights(counts);
  log(`Class weights (--class-weights auto: median-frequency balancing over the ${data.split.train.length} training masks, clipped to [${AUTO_WEIGHT_RANGE.join(', ')}]): ${w.join(', ')}`);
  return w;
}
