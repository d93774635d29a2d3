/**
 * Boundary metrics of `unet evaluate`: the 95th-percentile Hausdorff distance (HD95) and the
 * normalised surface Dice (NSD, Nikolov et al. 2021) per class, in plain TypeScript on the class
 * maps (no libtorch), defined as MONAI's `compute_hausdorff_distance(percentile=95)` and
 * `compute_surface_dice` (use_subvoxels=False) in 2D:
 *
 * - The boundary of a mask is `mask XOR binary_erosion(mask)` with the 4-connected cross and
 *   everything outside the image counted as background (scipy's defaults), so a mask touching the
 *   image border has its border pixels on the boundary.
 * - Distances are exact Euclidean (Felzenszwalb-Huttenlocher transform), from each boundary pixel
 *   of one mask to the nearest boundary pixel of the other, with a pixel spacing `[y, x]` (evaluate
 *   passes full size / scaled size, so distances are in pixels of the original image).
 * - HD95 = max over both directions of the 95th percentile (linear interpolation, as
 *   torch.quantile / numpy.percentile) of that direction's distances.
 * - NSD at tolerance tau = (pred boundary pixels within tau of the truth boundary + truth boundary
 *   pixels within tau of the pred boundary) / (all boundary pixels of both); `d <= tau` counts.
 *
 * Empty masks (per image and class; MONAI returns NaN for both-empty, we follow our Dice/IoU,
 * which score an absent class that is never predicted as 1):
 * - both empty: HD95 0, NSD 1;
 * - exactly one empty: HD95 NaN (undefined: no boundary to measure to; MONAI's NaN, printed
 *   "n/a"), NSD 0 (MONAI's value: no boundary pixel is matched);
 * Averages over images (SurfaceMeter) skip the images where MONAI's value is NaN, as MONAI's
 * nan-ignoring mean: HD95 over images where both masks are non-empty, NSD over images where at
 * least one is; with no such image the class reads null (n/a).
 *
 * Ignored pixels: truth labels outside 0..K-1 (an --ignore-index sentinel) take the predicted
 * class, so they add no disagreement, and boundary pixels there are not counted as sources.
 */

export type Labels = Uint8Array | Int8Array | Int16Array | Int32Array;

export interface SurfaceScore {
  /** NaN when exactly one of prediction and truth is empty. */
  hd95: number;
  nsd: number;
  predEmpty: boolean;
  truthEmpty: boolean;
}

/** Pixel spacing [y, x]: the length of one step down and one step right. */
export type Spacing = readonly [number, number];

/** Indices of the mask's boundary pixels: set, with a 4-neighbour unset or outside the image. */
export function boundaryPoints(mask: Uint8Array, width: number, height: number): Int32Array {
  const out: number[] = [];
  for (let y = 0; y < height; y++) {
    const row = y * width;
    for (let x = 0; x < width; x++) {
      const i = row + x;
      if (!mask[i]) continue;
      const inner = x > 0 && x < width - 1 && y > 0 && y < height - 1 && mask[i - 1] && mask[i + 1] && mask[i - width] && mask[i + width];
      if (!inner) out.push(i);
    }
  }
  return Int32Array.from(out);
}

/**
 * One 1-D pass of the squared distance transform (Felzenszwalb & Huttenlocher) over the `n` values
 * of f from `offset` (Infinity: no site), replaced in place by min_q f[q] + s2 (p-q)^2.
 * Infinite entries are left out of the lower envelope, so no large-number stand-in loses precision.
 */
function pass1d(f: Float64Array, offset: number, n: number, s2: number, v: Int32Array, z: Float64Array, g: Float64Array): void {
  let k = -1;
  for (let q = 0; q < n; q++) {
    const fq = f[offset + q];
    g[q] = fq;
    if (fq === Number.POSITIVE_INFINITY) continue;
    let s = Number.NEGATIVE_INFINITY;
    while (k >= 0) {
      const p = v[k];
      s = (fq + s2 * q * q - (g[p] + s2 * p * p)) / (2 * s2 * (q - p));
      if (s > z[k]) break;
      k--;
    }
    k++;
    v[k] = q;
    z[k] = k === 0 ? Number.NEGATIVE_INFINITY : s;
  }
  if (k < 0) return; // no site: all stay Infinity
  let j = 0;
  for (let q = 0; q < n; q++) {
    while (j < k && z[j + 1] < q) j++;
    const d = q - v[j];
    f[offset + q] = s2 * d * d + g[v[j]];
  }
}

/**
 * Squared Euclidean distance from every pixel to the nearest set pixel of `sites` (Infinity if none).
 * The column pass of a binary image is the distance to the nearest site above or below, found in
 * two row-major sweeps (cache-friendly); the row pass is Felzenszwalb-Huttenlocher's.
 */
function squaredDistances(sites: Uint8Array, width: number, height: number, spacing: Spacing): Float64Array {
  const f = new Float64Array(width * height);
  const sy = spacing[0] * spacing[0];
  const last = new Int32Array(width).fill(-1); // row of the nearest site above, per column
  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0; x < width; x++, i++) {
      if (sites[i]) last[x] = y;
      f[i] = last[x] < 0 ? Number.POSITIVE_INFINITY : sy * (y - last[x]) ** 2;
    }
  }
  last.fill(-1);
  for (let y = height - 1, i = width * height - 1; y >= 0; y--) {
    for (let x = width - 1; x >= 0; x--, i--) {
      if (sites[i]) last[x] = y;
      if (last[x] >= 0) f[i] = Math.min(f[i], sy * (last[x] - y) ** 2);
    }
  }
  const v = new Int32Array(width);
  const z = new Float64Array(width);
  const g = new Float64Array(width);
  const sx = spacing[1] * spacing[1];
  for (let y = 0; y < height; y++) pass1d(f, y * width, width, sx, v, z, g);
  return f;
}

/** Exact Euclidean distance from every pixel to the nearest set pixel of `sites` (Infinity if none). */
export function distanceTransform(sites: Uint8Array, width: number, height: number, spacing: Spacing = [1, 1]): Float64Array {
  const f = squaredDistances(sites, width, height, spacing);
  for (let i = 0; i < f.length; i++) f[i] = Math.sqrt(f[i]);
  return f;
}

/** The q-quantile with linear interpolation (numpy.percentile's default, torch.quantile's). */
export function quantile(values: Float64Array, q: number): number {
  if (values.length === 0) return Number.NaN;
  const s = Float64Array.from(values).sort();
  const pos = q * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, s.length - 1);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

/** Distances from each source point (that `count` allows) to the nearest `to` point. */
function directed(from: Int32Array, to: Int32Array, count: Uint8Array | null, w: number, h: number, spacing: Spacing): Float64Array {
  const sites = new Uint8Array(w * h);
  for (const i of to) sites[i] = 1;
  const d2 = squaredDistances(sites, w, h, spacing);
  const src = count === null ? from : from.filter((i) => count[i] !== 0);
  return Float64Array.from(src, (i) => Math.sqrt(d2[i]));
}

/**
 * HD95 and NSD of two binary masks (1 = in the class) of one image. `valid` (optional) marks the
 * pixels whose boundary points count; the masks must already agree outside it.
 */
export function binarySurface(pred: Uint8Array, truth: Uint8Array, width: number, height: number, tolerance: number, spacing: Spacing = [1, 1], valid: Uint8Array | null = null): SurfaceScore {
  const predEmpty = !pred.some((v) => v !== 0);
  const truthEmpty = !truth.some((v) => v !== 0);
  if (predEmpty && truthEmpty) return { hd95: 0, nsd: 1, predEmpty, truthEmpty };
  if (predEmpty || truthEmpty) return { hd95: Number.NaN, nsd: 0, predEmpty, truthEmpty };
  const bp = boundaryPoints(pred, width, height);
  const bt = boundaryPoints(truth, width, height);
  const dpt = directed(bp, bt, valid, width, height, spacing);
  const dtp = directed(bt, bp, valid, width, height, spacing);
  const total = dpt.length + dtp.length;
  let within = 0;
  for (const d of dpt) if (d <= tolerance) within++;
  for (const d of dtp) if (d <= tolerance) within++;
  const hd95 = Math.max(...[quantile(dpt, 0.95), quantile(dtp, 0.95)].filter((x) => !Number.isNaN(x)), 0);
  return { hd95, nsd: total === 0 ? 1 : within / total, predEmpty, truthEmpty };
}

/** Bounding box [x0, y0, x1, y1) of the pixels where pred or truth is class c; null if none. */
function classBox(pred: Labels, truth: Labels, c: number, w: number, h: number): [number, number, number, number] | null {
  let x0 = w;
  let y0 = h;
  let x1 = -1;
  let y1 = -1;
  for (let y = 0; y < h; y++) {
    for (let x = 0, i = y * w; x < w; x++, i++) {
      if (pred[i] !== c && truth[i] !== c) continue;
      if (x < x0) x0 = x;
      if (x > x1) x1 = x;
      if (y < y0) y0 = y;
      y1 = y;
    }
  }
  return x1 < 0 ? null : [x0, y0, x1 + 1, y1 + 1];
}

/**
 * Per-class HD95 and NSD of one image's class maps (row-major, `width` x `height`). Each class is
 * scored inside the bounding box of its pixels in either map: outside it both masks are 0, so the
 * boundaries and the nearest distances are the same as on the whole image, at a fraction of the cost.
 */
export function surfaceScores(pred: Labels, truth: Labels, width: number, height: number, nClasses: number, tolerance: number, spacing: Spacing = [1, 1]): SurfaceScore[] {
  const out: SurfaceScore[] = [];
  let ignored = false;
  for (let i = 0; i < truth.length; i++) if (truth[i] < 0 || truth[i] >= nClasses) ignored = true;
  for (let c = 0; c < nClasses; c++) {
    const box = classBox(pred, truth, c, width, height);
    if (box === null) {
      out.push({ hd95: 0, nsd: 1, predEmpty: true, truthEmpty: true });
      continue;
    }
    const [x0, y0, x1, y1] = box;
    const w = x1 - x0;
    const h = y1 - y0;
    const p = new Uint8Array(w * h);
    const t = new Uint8Array(w * h);
    const valid = ignored ? new Uint8Array(w * h) : null;
    for (let y = 0; y < h; y++) {
      for (let x = 0, i = (y0 + y) * width + x0, j = y * w; x < w; x++, i++, j++) {
        const tv = truth[i];
        const ok = tv >= 0 && tv < nClasses;
        p[j] = pred[i] === c ? 1 : 0;
        t[j] = ok ? (tv === c ? 1 : 0) : p[j];
        if (valid) valid[j] = ok ? 1 : 0;
      }
    }
    out.push(binarySurface(p, t, w, h, tolerance, spacing, valid));
  }
  return out;
}

export interface ClassSurface {
  /** Mean HD95 over images where both masks hold the class; null if there is none. */
  hd95: number | null;
  /** Mean NSD over images where either mask holds the class; null if there is none. */
  nsd: number | null;
  /** Images where exactly one of prediction and truth holds the class (HD95 undefined there). */
  oneEmpty: number;
}

/** Per-class means over images of HD95 and NSD, skipping MONAI's NaN cases (see the file comment). */
export class SurfaceMeter {
  private readonly hd: { sum: number; n: number }[];
  private readonly ns: { sum: number; n: number }[];
  private readonly oneEmpty: number[];

  constructor(readonly nClasses: number) {
    this.hd = Array.from({ length: nClasses }, () => ({ sum: 0, n: 0 }));
    this.ns = Array.from({ length: nClasses }, () => ({ sum: 0, n: 0 }));
    this.oneEmpty = new Array<number>(nClasses).fill(0);
  }

  add(scores: SurfaceScore[]): void {
    scores.forEach((s, c) => {
      if (s.predEmpty && s.truthEmpty) return;
      this.ns[c].sum += s.nsd;
      this.ns[c].n++;
      if (s.predEmpty || s.truthEmpty) this.oneEmpty[c]++;
      else {
        this.hd[c].sum += s.hd95;
        this.hd[c].n++;
      }
    });
  }

  read(): ClassSurface[] {
    return this.hd.map((h, c) => ({
      hd95: h.n ? h.sum / h.n : null,
      nsd: this.ns[c].n ? this.ns[c].sum / this.ns[c].n : null,
      oneEmpty: this.oneEmpty[c],
    }));
  }
}
