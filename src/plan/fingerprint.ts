/**
 * The dataset fingerprint (nnU-Net's `dataset_fingerprint.json`, for 2D images): sizes, channels,
 * intensity statistics, mask values, class frequencies and typical object sizes, read with the
 * trainer's own readers (listPairs, SegmentationDataset at scale 1), so the plan sees what
 * training will see.
 */
import { type MaskValues, SegmentationDataset, listPairs } from '../data/index.js';

export interface ClassStats {
  /** Share of all mask pixels. */
  frequency: number;
  /** Images where the class occurs. */
  images: number;
  /**
   * Area (pixels) of the connected region (4-connected) a random pixel of the class lies in, the
   * median over its pixels: specks of a few pixels (annotation noise) barely move it, unlike the
   * median over regions.
   */
  medianObjectArea: number;
  /** sqrt(medianObjectArea): a typical object's side. */
  typicalObjectSize: number;
  /**
   * 2 x pixels / boundary edges (4-neighbour edges to another class; the image border is no
   * boundary), over all sampled images: a strip's width, a disk's radius. A net of thin lines
   * (ISBI's membranes) is one big object but a thin one; null: the class has no boundary (or no pixels).
   */
  thickness: number | null;
}

export interface Fingerprint {
  count: number;
  /** Images read for the statistics below (all, or MAX_SAMPLED spread evenly over the sorted pairs). */
  sampled: number;
  maskSuffix: string;
  channels: number;
  /** [height, width] of every image (scale 1). */
  shapes: [number, number][];
  medianShape: [number, number];
  minShape: [number, number];
  maxShape: [number, number];
  /** Per channel, of the 0..1 values the network gets (the images are only divided by their range). */
  intensity: { mean: number[]; std: number[]; foregroundMean: number[]; foregroundStd: number[] };
  maskValues: MaskValues;
  classes: ClassStats[];
  foregroundFraction: number;
  /**
   * How much the classes of the masks' top half differ from those of the bottom half, and the left
   * half from the right (total variation distance of the two class distributions, 0..1): road
   * scenes and photos have an up (sky above, road below), micrographs do not.
   */
  halves: { topBottom: number; leftRight: number };
}

/** Class counts of the four half-images (rows above / below the middle, columns left / right of it; the middle row or column of an odd size in neither). */
export class HalfCounts {
  readonly top: Float64Array;
  readonly bottom: Float64Array;
  readonly left: Float64Array;
  readonly right: Float64Array;
  constructor(nClasses: number) {
    [this.top, this.bottom, this.left, this.right] = Array.from({ length: 4 }, () => new Float64Array(nClasses));
  }
  add(mask: Uint8Array, height: number, width: number): void {
    for (let y = 0; y < height; y++) {
      const vertical = 2 * y + 1 < height ? this.top : 2 * y + 1 > height ? this.bottom : null;
      for (let x = 0; x < width; x++) {
        const k = mask[y * width + x];
        if (vertical) vertical[k]++;
        if (2 * x + 1 < width) this.left[k]++;
        else if (2 * x + 1 > width) this.right[k]++;
      }
    }
  }
  /** Total variation distances between the halves' class distributions. */
  distances(): { topBottom: number; leftRight: number } {
    return { topBottom: totalVariation(this.top, this.bottom), leftRight: totalVariation(this.left, this.right) };
  }
}

/** Half the L1 distance between two histograms, each normalised to sum 1 (0 where either is empty). */
export function totalVariation(a: Float64Array, b: Float64Array): number {
  const sa = a.reduce((s, v) => s + v, 0);
  const sb = b.reduce((s, v) => s + v, 0);
  if (!sa || !sb) return 0;
  return a.reduce((s, v, k) => s + Math.abs(v / sa - b[k] / sb), 0) / 2;
}

/** The area-weighted median of region areas: half the class's pixels lie in regions at least this large. */
export function pixelMedianArea(areas: readonly number[]): number {
  const s = [...areas].sort((a, b) => a - b);
  const total = s.reduce((a, b) => a + b, 0);
  let acc = 0;
  for (const a of s) {
    acc += a;
    if (acc * 2 >= total) return a;
  }
  return 0;
}

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Per class, the 4-neighbour pixel edges between it and another class in one class map. */
export function boundaryEdges(mask: Uint8Array, width: number, nClasses: number): number[] {
  const edges = new Array<number>(nClasses).fill(0);
  for (let i = 0; i < mask.length; i++) {
    const k = mask[i];
    if (i % width > 0 && mask[i - 1] !== k) {
      edges[k]++;
      edges[mask[i - 1]]++;
    }
    if (i >= width && mask[i - width] !== k) {
      edges[k]++;
      edges[mask[i - width]]++;
    }
  }
  return edges;
}

/** Areas of the 4-connected regions of each class in one class map (union-find over the pixels). */
export function regionAreas(mask: Uint8Array, width: number, nClasses: number): number[][] {
  const parent = new Int32Array(mask.length);
  const find = (i: number): number => {
    while (parent[i] !== i) i = parent[i] = parent[parent[i]];
    return i;
  };
  for (let i = 0; i < mask.length; i++) {
    parent[i] = i;
    const x = i % width;
    if (x > 0 && mask[i - 1] === mask[i]) parent[i] = find(i - 1);
    if (i >= width && mask[i - width] === mask[i]) {
      const a = find(i);
      const b = find(i - width);
      if (a !== b) parent[Math.max(a, b)] = Math.min(a, b);
    }
  }
  const area = new Map<number, number>();
  for (let i = 0; i < mask.length; i++) {
    const r = find(i);
    area.set(r, (area.get(r) ?? 0) + 1);
  }
  const out: number[][] = Array.from({ length: nClasses }, () => []);
  for (const [root, a] of area) out[mask[root]].push(a);
  return out;
}

class Moments {
  n = 0;
  sum = 0;
  sq = 0;
  add(v: number): void {
    this.n++;
    this.sum += v;
    this.sq += v * v;
  }
  mean = () => (this.n ? this.sum / this.n : 0);
  std = () => (this.n ? Math.sqrt(Math.max(0, this.sq / this.n - this.mean() ** 2)) : 0);
}

/** Beyond this many pairs the statistics come from an even sample (decoding all of Carvana's 5,088 takes minutes). */
export const MAX_SAMPLED = 300;

export interface FingerprintOptions {
  imgs: string;
  masks: string;
  maskSuffix?: string;
  channels?: number;
  workers?: number;
  maxPixels?: number;
  onWarning?: (line: string) => void;
}

export async function computeFingerprint(o: FingerprintOptions): Promise<Fingerprint> {
  const { pairs, maskSuffix, warnings } = await listPairs({ imgsDir: o.imgs, masksDir: o.masks, maskSuffix: o.maskSuffix ?? 'auto' });
  for (const w of warnings) o.onWarning?.(w);
  const dataset = new SegmentationDataset(pairs, { scale: 1, cache: false, workers: o.workers, maxPixels: o.maxPixels, channels: o.channels, onWarning: o.onWarning });
  const maskValues = await dataset.scan();
  const nClasses = maskValues.length;
  const shapes: [number, number][] = [];
  let channels = 0;
  let all: Moments[] = [];
  let fg: Moments[] = [];
  const counts = new Float64Array(nClasses);
  const present = new Array<number>(nClasses).fill(0);
  const areas: number[][] = Array.from({ length: nClasses }, () => []);
  const edges = new Float64Array(nClasses);
  const halves = new HalfCounts(nClasses);
  const n = Math.min(pairs.length, MAX_SAMPLED);
  const sample = Array.from({ length: n }, (_, j) => Math.floor((j * pairs.length) / n));
  for (const i of sample) {
    const s = await dataset.load(i);
    if (i === 0) {
      channels = s.channels;
      all = Array.from({ length: channels }, () => new Moments());
      fg = Array.from({ length: channels }, () => new Moments());
    }
    shapes.push([s.height, s.width]);
    const seen = new Set<number>();
    for (let p = 0; p < s.mask.length; p++) {
      const k = s.mask[p];
      counts[k]++;
      seen.add(k);
      for (let c = 0; c < channels; c++) {
        const v = s.image[p * channels + c] / s.divisor;
        all[c].add(v);
        if (k !== 0) fg[c].add(v);
      }
    }
    for (const k of seen) present[k]++;
    regionAreas(s.mask, s.width, nClasses).forEach((a, k) => areas[k].push(...a));
    boundaryEdges(s.mask, s.width, nClasses).forEach((e, k) => {
      edges[k] += e;
    });
    halves.add(s.mask, s.height, s.width);
  }
  const total = counts.reduce((a, b) => a + b, 0);
  const classes = [...counts].map((n, k) => {
    const m = pixelMedianArea(areas[k]);
    return { frequency: n / total, images: present[k], medianObjectArea: m, typicalObjectSize: Math.sqrt(m), thickness: edges[k] > 0 ? (2 * n) / edges[k] : null };
  });
  const side = (f: (xs: number[]) => number, axis: 0 | 1) => f(shapes.map((s) => s[axis]));
  const min = (xs: number[]) => Math.min(...xs);
  const max = (xs: number[]) => Math.max(...xs);
  return {
    count: pairs.length,
    sampled: n,
    maskSuffix,
    channels,
    shapes,
    medianShape: [side(median, 0), side(median, 1)],
    minShape: [side(min, 0), side(min, 1)],
    maxShape: [side(max, 0), side(max, 1)],
    intensity: { mean: all.map((m) => m.mean()), std: all.map((m) => m.std()), foregroundMean: fg.map((m) => m.mean()), foregroundStd: fg.map((m) => m.std()) },
    maskValues,
    classes,
    foregroundFraction: total ? 1 - counts[0] / total : 0,
    halves: halves.distances(),
  };
}
