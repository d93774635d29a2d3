/** Small image, mask and checkpoint files for the reliability tests. */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encode as encodePng } from 'fast-png';
import sharp from 'sharp';

/** An exact PNG: 1 (grey), 2 (grey+alpha), 3 (RGB) or 4 (RGBA) channels, 8 or 16 bit. */
export function png(width: number, height: number, channels: 1 | 2 | 3 | 4, value: (i: number) => number, depth: 8 | 16 = 8): Uint8Array {
  const n = width * height * channels;
  const data = depth === 16 ? new Uint16Array(n) : new Uint8Array(n);
  for (let i = 0; i < n; i++) data[i] = value(i);
  return encodePng({ width, height, channels, depth, data });
}

/** A smooth RGB pattern (a plausible photo) as interleaved bytes. */
export function rgbPattern(width: number, height: number, seed = 1): Uint8Array {
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      out[i] = (x * 7 + seed * 13) & 255;
      out[i + 1] = (y * 5 + seed * 29) & 255;
      out[i + 2] = ((x + y) * 3 + seed * 41) & 255;
    }
  }
  return out;
}

export async function writePng(path: string, width: number, height: number, channels: 1 | 2 | 3 | 4, value: (i: number) => number, depth: 8 | 16 = 8): Promise<void> {
  await writeFile(path, png(width, height, channels, value, depth));
}

/**
 * A data folder: `dir`/imgs and `dir`/masks with one PNG pair per name (`name(k)` for k < count);
 * the image's and the grey mask's values come from (pixel index, pair index).
 */
export async function writePairs(
  dir: string,
  count: number,
  o: { width: number; height: number; channels: 1 | 3; name: (k: number) => string },
  image: (i: number, k: number) => number,
  mask: (i: number, k: number) => number,
): Promise<void> {
  await mkdir(join(dir, 'imgs'), { recursive: true });
  await mkdir(join(dir, 'masks'), { recursive: true });
  for (let k = 0; k < count; k++) {
    await writePng(join(dir, 'imgs', o.name(k)), o.width, o.height, o.channels, (i) => image(i, k));
    await writePng(join(dir, 'masks', o.name(k)), o.width, o.height, 1, (i) => mask(i, k));
  }
}

/** A CMYK JPEG of the pattern. */
export async function cmykJpeg(width: number, height: number): Promise<Buffer> {
  return sharp(rgbPattern(width, height), { raw: { width, height, channels: 3 } })
    .toColourspace('cmyk')
    .jpeg()
    .toBuffer();
}

/** A PNG with an alpha channel (RGBA). */
export function rgbaPng(width: number, height: number): Uint8Array {
  const rgb = rgbPattern(width, height, 3);
  return png(width, height, 4, (i) => (i % 4 === 3 ? 200 : rgb[Math.floor(i / 4) * 3 + (i % 4)]));
}

/** A binary 0/255 mask (a filled square in the middle). */
export function squareMask(width: number, height: number, hi = 255): Uint8Array {
  return png(width, height, 1, (i) => {
    const x = i % width;
    const y = Math.floor(i / width);
    return x >= width / 4 && x < (3 * width) / 4 && y >= height / 4 && y < (3 * height) / 4 ? hi : 0;
  });
}

export const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

/** A deterministic PRNG (mulberry32) for reproducible fuzzing. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
