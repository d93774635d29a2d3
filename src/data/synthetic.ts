/**
 * Synthetic datasets, deterministic for a seed: a small multi-class demo (shapes on texture)
 * that trains in minutes, and Carvana-like JPEG/GIF pairs for loader benchmarks.
 */

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { encodeGifIndices } from './image/gif.js';
import { mapPool } from './pool.js';
import { Rng } from './split.js';

export interface DemoOptions {
  /** Number of image/mask pairs. Default 60. */
  count?: number;
  /** Square side in pixels. Default 256. */
  size?: number;
  /** Classes including background (class 0). Default 3. */
  classes?: number;
  /** Default 0. */
  seed?: number;
}

export interface WrittenDataset {
  imgsDir: string;
  masksDir: string;
  ids: string[];
}

/** Grey level written for class k: `floor(k * 255 / (classes - 1))`, e.g. 0, 127, 255 for 3 classes. */
export function demoMaskLevel(k: number, classes: number): number {
  return Math.floor((k * 255) / (classes - 1));
}

/**
 * Writes `dir/imgs/NNN.png` (RGB: smooth background texture + noise, with circles, rectangles and
 * triangles) and `dir/masks/NNN.png` (8-bit greyscale, class k stored as `demoMaskLevel(k)`, so the
 * scanned maskValues are e.g. [0, 127, 255] and map back to classes 0..classes-1).
 * Class k >= 1 has its own shape (circle, rectangle, triangle, repeating) and hue.
 */
export async function makeDemoDataset(dir: string, opts: DemoOptions = {}): Promise<WrittenDataset> {
  const count = opts.count ?? 60;
  const size = opts.size ?? 256;
  const classes = opts.classes ?? 3;
  const seed = opts.seed ?? 0;
  if (!(classes >= 2 && classes <= 256)) throw new RangeError(`classes must be in 2..256, got ${classes}`);
  const imgsDir = join(dir, 'imgs');
  const masksDir = join(dir, 'masks');
  await mkdir(imgsDir, { recursive: true });
  await mkdir(masksDir, { recursive: true });
  const digits = Math.max(3, String(count - 1).length);
  const ids = Array.from({ length: count }, (_, i) => String(i).padStart(digits, '0'));
  await mapPool(ids, 4, async (id, i) => {
    const { rgb, labels } = renderDemo(size, classes, new Rng(mix(seed, i)));
    const levels = Uint8Array.from({ length: classes }, (_, k) => demoMaskLevel(k, classes));
    const grey = labels.map((k) => levels[k]);
    await sharp(rgb, { raw: { width: size, height: size, channels: 3 } })
      .png()
      .toFile(join(imgsDir, `${id}.png`));
    await sharp(grey, { raw: { width: size, height: size, channels: 1 } })
      .toColourspace('b-w')
      .png()
      .toFile(join(masksDir, `${id}.png`));
  });
  return { imgsDir, masksDir, ids };
}

/** A per-sample seed from (seed, index), so samples do not depend on generation order. */
function mix(seed: number, i: number): number {
  let h = Math.imul((seed >>> 0) ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(i + 1, 0xc2b2ae35);
  h ^= h >>> 16;
  return Math.imul(h, 0x27d4eb2f) >>> 0;
}

function hsvToRgb(h: number, s: number, v: number): [number, number, number] {
  const f = (n: number) => {
    const k = (n + h / 60) % 6;
    return Math.round(255 * (v - v * s * Math.max(0, Math.min(k, 4 - k, 1))));
  };
  return [f(5), f(3), f(1)];
}

/** [H, W, 3] RGB and [H, W] class labels for one demo sample. */
function renderDemo(size: number, classes: number, rng: Rng): { rgb: Uint8Array; labels: Uint8Array } {
  const n = size * size;
  const rgb = new Uint8Array(n * 3);
  const labels = new Uint8Array(n);
  // Background: a dim colour modulated by two random sinusoids (a texture the net must ignore).
  const base = hsvToRgb(rng.uniform(0, 360), rng.uniform(0.05, 0.3), rng.uniform(0.25, 0.55));
  const waves = Array.from({ length: 2 }, () => ({ fx: rng.uniform(0.02, 0.15), fy: rng.uniform(0.02, 0.15), ph: rng.uniform(0, 6.28), amp: rng.uniform(10, 30) }));
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      let t = 0;
      for (const w of waves) t += w.amp * Math.sin(w.fx * x + w.fy * y + w.ph);
      const o = 3 * (y * size + x);
      rgb[o] = clamp255(base[0] + t);
      rgb[o + 1] = clamp255(base[1] + t);
      rgb[o + 2] = clamp255(base[2] + t);
    }
  }
  // Shapes: class k has shape (k-1) % 3 and a hue of its own; later shapes cover earlier ones.
  const shapes = 3 + rng.int(6);
  for (let s = 0; s < shapes; s++) {
    const k = 1 + rng.int(classes - 1);
    const kind = (k - 1) % 3;
    const hue = ((k - 1) * 360) / (classes - 1) + rng.uniform(-12, 12);
    const colour = hsvToRgb((hue + 360) % 360, rng.uniform(0.6, 1), rng.uniform(0.7, 1));
    const cx = rng.uniform(0.1, 0.9) * size;
    const cy = rng.uniform(0.1, 0.9) * size;
    const r = rng.uniform(0.06, 0.16) * size;
    const hw = r * rng.uniform(0.6, 1.4);
    const hh = r * rng.uniform(0.6, 1.4);
    const inside = (x: number, y: number): boolean => {
      if (kind === 0) return (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
      if (kind === 1) return Math.abs(x - cx) <= hw && Math.abs(y - cy) <= hh;
      // Upward triangle: apex (cx, cy - r), base at y = cy + r/2.
      const top = cy - r,
        bottom = cy + r / 2;
      if (y < top || y > bottom) return false;
      const half = (((y - top) / (bottom - top)) * r * Math.sqrt(3)) / 2;
      return Math.abs(x - cx) <= half;
    };
    const x0 = Math.max(0, Math.floor(cx - 1.5 * r)),
      x1 = Math.min(size - 1, Math.ceil(cx + 1.5 * r));
    const y0 = Math.max(0, Math.floor(cy - 1.5 * r)),
      y1 = Math.min(size - 1, Math.ceil(cy + 1.5 * r));
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        if (!inside(x + 0.5, y + 0.5)) continue;
        const i = y * size + x;
        labels[i] = k;
        rgb[3 * i] = colour[0];
        rgb[3 * i + 1] = colour[1];
        rgb[3 * i + 2] = colour[2];
      }
    }
  }
  // Sensor-like noise over everything.
  for (let i = 0; i < rgb.length; i++) rgb[i] = clamp255(rgb[i] + (rng.next() - 0.5) * 24);
  return { rgb, labels };
}

const clamp255 = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : Math.round(v));

export interface JpegDatasetOptions {
  /** Default 8. */
  count?: number;
  /** Default 1918 (Carvana). */
  width?: number;
  /** Default 1280 (Carvana). */
  height?: number;
  /** Default 0. */
  seed?: number;
  /** JPEG quality. Default 90. */
  quality?: number;
}

/**
 * Carvana-like pairs for loader benchmarks: `dir/imgs/<id>.jpg` (RGB) and
 * `dir/masks/<id>_mask.gif` (2-colour palette, indices 0 = background, 1 = car).
 */
export async function makeJpegDataset(dir: string, opts: JpegDatasetOptions = {}): Promise<WrittenDataset> {
  const count = opts.count ?? 8;
  const width = opts.width ?? 1918;
  const height = opts.height ?? 1280;
  const rng = new Rng(opts.seed ?? 0);
  const imgsDir = join(dir, 'imgs');
  const masksDir = join(dir, 'masks');
  await mkdir(imgsDir, { recursive: true });
  await mkdir(masksDir, { recursive: true });
  const ids = Array.from({ length: count }, () => {
    let hex = '';
    for (let k = 0; k < 12; k++) hex += rng.int(16).toString(16);
    return `${hex}_01`;
  });
  const seeds = ids.map(() => rng.nextUint32());
  await mapPool(ids, 2, async (id, i) => {
    const r = new Rng(seeds[i]);
    const rgb = new Uint8Array(width * height * 3);
    const mask = new Uint8Array(width * height);
    const car = hsvToRgb(r.uniform(0, 360), r.uniform(0.3, 1), r.uniform(0.3, 0.9));
    const cx = width * r.uniform(0.45, 0.55),
      cy = height * r.uniform(0.5, 0.6);
    const ax = width * r.uniform(0.3, 0.38),
      ay = height * r.uniform(0.18, 0.24);
    for (let y = 0; y < height; y++) {
      const bg = 200 + (40 * y) / height; // studio backdrop gradient
      for (let x = 0; x < width; x++) {
        const i3 = 3 * (y * width + x);
        const dx = (x - cx) / ax,
          dy = (y - cy) / ay;
        const body = dx * dx + dy * dy <= 1;
        const cabin = Math.abs(x - cx) < ax * 0.45 && y < cy && y > cy - ay * 1.9 && ((x - cx) / (ax * 0.45)) ** 2 + ((y - cy) / (ay * 1.9)) ** 2 <= 1;
        const noise = (r.next() - 0.5) * 10;
        if (body || cabin) {
          mask[y * width + x] = 1;
          const shade = cabin && !body ? 0.55 : 1 - 0.3 * dy * dy;
          rgb[i3] = clamp255(car[0] * shade + noise);
          rgb[i3 + 1] = clamp255(car[1] * shade + noise);
          rgb[i3 + 2] = clamp255(car[2] * shade + noise);
        } else {
          rgb[i3] = rgb[i3 + 1] = rgb[i3 + 2] = clamp255(bg + noise);
        }
      }
    }
    await sharp(rgb, { raw: { width, height, channels: 3 } })
      .jpeg({ quality: opts.quality ?? 90 })
      .toFile(join(imgsDir, `${id}.jpg`));
    await writeFile(
      join(masksDir, `${id}_mask.gif`),
      encodeGifIndices(mask, width, height, [
        [0, 0, 0],
        [255, 255, 255],
      ]),
    );
  });
  return { imgsDir, masksDir, ids };
}
