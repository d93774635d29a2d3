/**
 * Mask values and class indices, as Pytorch-UNet's `unique_mask_values` / `preprocess` /
 * `mask_to_image`: the sorted union of the values found in all masks is `maskValues`, and the
 * class index of a pixel is the position of its value in that list.
 *
 *   greyscale masks: maskValues = [0, 255]            -> classes 0, 1
 *   colour masks:    maskValues = [[0,0,0], [255,0,0]] -> classes 0, 1 (lexicographic order)
 *   palette masks:   maskValues = palette indices      (PIL "P" mode)
 */

import { extname } from 'node:path';
import { defaultWorkers } from '../config/options.js';
import { DataError } from './errors.js';
import type { ReadOptions } from './image/decode.js';
import { readMaskRaw } from './image/mask-read.js';
import { mapPool } from './pool.js';

import { IGNORE_CLASS, type MaskValue, type MaskValues, type RGB } from './mask-values.js';
export { IGNORE_CLASS, type MaskValue, type MaskValues, type RGB, classIndexToMaskValues } from './mask-values.js';

/** The pixel data a mask carries: [H, W] values (channels 1) or [H, W, 3] RGB (channels 3). */
export interface MaskLike {
  data: Uint8Array | Uint16Array;
  channels: 1 | 3;
}

const pack = (r: number, g: number, b: number) => (r << 16) | (g << 8) | b;
const unpack = (k: number): RGB => [(k >> 16) & 255, (k >> 8) & 255, k & 255];

/** Sorted distinct values of one mask (`np.unique`, per pixel vector for colour masks). */
export function uniqueMaskValues(mask: MaskLike): MaskValues {
  const d = mask.data;
  if (mask.channels === 1) {
    const seen = new Uint8Array(d instanceof Uint16Array ? 65536 : 256);
    for (let i = 0; i < d.length; i++) seen[d[i]] = 1;
    const out: number[] = [];
    for (let v = 0; v < seen.length; v++) if (seen[v]) out.push(v);
    return out;
  }
  // Colour masks have few colours in long runs: check against the previous pixel first.
  const keys = new Set<number>();
  let last = -1;
  for (let i = 0; i < d.length; i += 3) {
    const k = pack(d[i], d[i + 1], d[i + 2]);
    if (k !== last) {
      keys.add(k);
      last = k;
    }
  }
  return [...keys].sort((a, b) => a - b).map(unpack);
}

/** Sorted union of several value lists. Greyscale values mixed with colours become [v, v, v]. */
export function mergeMaskValues(lists: readonly MaskValues[]): MaskValues {
  const anyRgb = lists.some((l) => l.length > 0 && Array.isArray(l[0]));
  if (!anyRgb) {
    const set = new Set<number>();
    for (const l of lists) for (const v of l as number[]) set.add(v);
    return [...set].sort((a, b) => a - b);
  }
  const set = new Set<number>();
  for (const l of lists) for (const v of l) set.add(Array.isArray(v) ? pack(v[0], v[1], v[2]) : pack(v, v, v));
  return [...set].sort((a, b) => a - b).map(unpack);
}

export interface ScanOptions extends Pick<ReadOptions, 'maxPixels'> {
  /** Masks decoded at once (sharp decodes on libuv threads). Default 4. */
  workers?: number;
}

/** Reads every mask at full resolution and returns the sorted union of their values. */
export async function scanMaskValues(maskPaths: readonly string[], opts: ScanOptions = {}): Promise<MaskValues> {
  const lists = await mapPool(maskPaths, opts.workers ?? defaultWorkers, async (p) => uniqueMaskValues(await readMaskRaw(p, { maxPixels: opts.maxPixels })));
  return mergeMaskValues(lists);
}

/**
 * [H, W] class indices: pixel value == maskValues[i] -> i; values not in the list -> 0 (as the
 * reference); `ignoreValue` (--ignore-index) -> IGNORE_CLASS. Greyscale masks match colour values
 * [v, v, v] and vice versa.
 */
export function maskToClassIndex(mask: MaskLike, maskValues: MaskValues, out?: Uint8Array, ignoreValue: number | null = null): Uint8Array {
  if (maskValues.length > 256) {
    throw new DataError(`${maskValues.length} mask values cannot be stored as 8-bit class indices`, {
      hint: 'Check the masks with checkClasses(); usually JPEG masks or anti-aliased edges create extra values.',
    });
  }
  const d = mask.data;
  const n = mask.channels === 1 ? d.length : d.length / 3;
  const dst = out ?? new Uint8Array(n);
  if (mask.channels === 1) {
    // Lookup table from raw value to class (0 for unknown values).
    const lut = new Uint8Array(d instanceof Uint16Array ? 65536 : 256);
    maskValues.forEach((v, i) => {
      const g = Array.isArray(v) ? (v[0] === v[1] && v[1] === v[2] ? v[0] : -1) : v;
      if (g >= 0 && g < lut.length) lut[g] = i;
    });
    if (ignoreValue !== null && ignoreValue < lut.length) lut[ignoreValue] = IGNORE_CLASS;
    if (d instanceof Uint8Array) lookup8(d, lut, dst);
    else for (let i = 0; i < n; i++) dst[i] = lut[d[i]];
    return dst;
  }
  const table = new Map<number, number>();
  maskValues.forEach((v, i) => table.set(Array.isArray(v) ? pack(v[0], v[1], v[2]) : pack(v, v, v), i));
  if (ignoreValue !== null && ignoreValue < 256) table.set(pack(ignoreValue, ignoreValue, ignoreValue), IGNORE_CLASS);
  let lastKey = -1;
  let lastClass = 0;
  for (let i = 0, j = 0; i < n; i++, j += 3) {
    const k = pack(d[j], d[j + 1], d[j + 2]);
    if (k !== lastKey) {
      lastKey = k;
      lastClass = table.get(k) ?? 0;
    }
    dst[i] = lastClass;
  }
  return dst;
}

/** dst[i] = lut[src[i]] for bytes; a separate monomorphic function keeps the loop tight. */
function lookup8(src: Uint8Array, lut: Uint8Array, dst: Uint8Array): void {
  for (let i = 0; i < src.length; i++) dst[i] = lut[src[i]];
}

export function formatMaskValues(values: MaskValues, max = 20): string {
  const shown = values.slice(0, max).map((v) => (Array.isArray(v) ? `[${v.join(', ')}]` : String(v)));
  return `[${shown.join(', ')}${values.length > max ? `, … (${values.length} in total)` : ''}]`;
}

/** Whether a scanned value is the --ignore-index value (greyscale v, or colour [v, v, v]). */
export const isIgnoreValue = (v: MaskValue, ignoreValue: number): boolean => (Array.isArray(v) ? v[0] === ignoreValue && v[1] === ignoreValue && v[2] === ignoreValue : v === ignoreValue);

/**
 * --ignore-index: the scanned values without the ignored one (the classes), or a one-line problem
 * naming the flag and the values found: the value is in no mask, or the rest does not fit -c.
 */
export function withoutIgnoreValue(found: MaskValues, ignoreValue: number, classes: number): { values: MaskValues; problem: null } | { values: null; problem: string } {
  const flag = `--ignore-index ${ignoreValue}`;
  if (!found.some((v) => isIgnoreValue(v, ignoreValue))) {
    return {
      values: null,
      problem: `${flag}: no mask holds the value ${ignoreValue}; the masks hold ${formatMaskValues(found)}: pass one of them (as stored in the mask files), or leave the flag out`,
    };
  }
  const values = (found as MaskValue[]).filter((v) => !isIgnoreValue(v, ignoreValue)) as MaskValues;
  const n = values.length;
  if (n === classes || (classes === 1 && n === 2)) {
    return n < IGNORE_CLASS ? { values, problem: null } : { values: null, problem: `${flag} leaves ${n} classes, but at most ${IGNORE_CLASS - 1} can be used with --ignore-index` };
  }
  return {
    values: null,
    problem: `${flag} leaves ${n} class value(s) ${formatMaskValues(values)} of the masks' ${formatMaskValues(found)}, but --classes is ${classes}: ` + `use -c ${n}${n === 2 ? ' (or -c 1)' : ''}, or another --ignore-index`,
  };
}

export interface CheckClassesOptions {
  /** Mask file names, to recognise JPEG masks (lossy compression invents values). */
  maskFiles?: readonly string[];
}

/**
 * `null` when `maskValues` fits `classes` (equal counts, or 2 values with `classes == 1`, the
 * binary sigmoid case); otherwise a message that says what was found and which `-c` to use.
 * Pytorch-UNet has no such check, which is behind its "Target 255 is out of bounds" and
 * "t >= 0 && t < n_classes" crashes.
 */
export function checkClasses(maskValues: MaskValues, classes: number, opts: CheckClassesOptions = {}): string | null {
  const n = maskValues.length;
  if (n === classes || (classes === 1 && n === 2)) return null;
  const found = formatMaskValues(maskValues);
  if (n === 0) return 'No mask values were found: the masks folder has no readable masks.';
  if (n === 1) {
    return `Every mask contains only the value ${found.slice(1, -1)}, so there is nothing to segment. Check that --masks points at the label images (not copies of the inputs) and that the masks are not blank.`;
  }
  const lines = [
    `The masks contain ${n} distinct values ${found}, but --classes is ${classes}.`,
    `Each distinct mask value becomes one class (the i-th smallest value is class i), so this data needs \`-c ${n}\` (\`--classes ${n}\`)${n === 2 ? ', or `-c 1` for a single sigmoid output.' : '.'}`,
  ];
  if (n === classes + 1) lines.push("If one of the values marks unlabelled pixels (e.g. CamVid's void, 11), `--ignore-index VALUE` leaves it out of the classes, the loss and the metrics.");
  const jpegMasks = (opts.maskFiles ?? []).filter((f) => /^\.jpe?g$/i.test(extname(f))).length;
  if (jpegMasks > 0 && n > classes) {
    lines.push(
      `${jpegMasks} of the masks are JPEG files. JPEG compression is lossy: it blurs label edges and invents ` +
        'in-between values (e.g. 1, 2, 253, 254 around 0/255), and each one would become a "class". ' +
        'Save masks as PNG (lossless), or re-threshold them to the real label values.',
    );
  } else if (n > Math.max(2 * classes, 8)) {
    lines.push('So many values usually means the masks were resized with interpolation or drawn with anti-aliasing. ' + 'Masks must hold only the label values: resize them with nearest-neighbour and save as PNG.');
  }
  if (n > 256) lines.push('More than 256 values cannot be used as classes.');
  return lines.join('\n');
}
