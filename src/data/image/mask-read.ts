/**
 * Reading masks from disk, as Pytorch-UNet's `load_image` does for masks: raw values, nearest
 * resize. Mapping values to classes is masks.ts.
 */

import { DataError } from '../errors.js';
import { readHeader } from './formats.js';
import { decodeGifIndices } from './gif.js';
import { type DataWarning, DEFAULT_MAX_PIXELS, type ReadOptions, checkFormat, checkPixels, metadataOf, npyLayout, parseNpyChecked, readBytes, run, targetSize } from './decode.js';
import type { NpyArray } from './npy.js';
import { dropLastChannel } from './pixels.js';
import { decodePngIndices, pngHeader } from './png.js';
import { resizeNearest, u16View } from './resize.js';
import { SHARP_INPUT, sharp } from './sharp.js';

export interface MaskData {
  /** [H, W] values for 1 channel, [H, W, 3] interleaved RGB for 3 channels */
  data: Uint8Array | Uint16Array;
  channels: 1 | 3;
  height: number;
  width: number;
  /** True when `data` holds palette indices (palette PNG or GIF), like PIL's "P" mode. */
  palette?: boolean;
  sourceWidth: number;
  sourceHeight: number;
  warnings: string[];
}

/**
 * Reads a mask with its raw values (no class mapping): greyscale -> [H, W] (16-bit kept), colour
 * -> [H, W, 3], palette PNG/GIF -> [H, W] palette indices. Resizing is nearest (PIL-exact).
 */
export async function readMask(path: string, opts: ReadOptions = {}): Promise<MaskData> {
  const m = await readMaskRaw(path, opts);
  return { ...m, warnings: m.warnings.map((w) => w.message) };
}

export type RawMask = Omit<MaskData, 'warnings'> & { warnings: DataWarning[] };

export async function readMaskRaw(path: string, opts: ReadOptions = {}): Promise<RawMask> {
  const full = await decodeMaskFull(path, opts.maxPixels ?? DEFAULT_MAX_PIXELS);
  const target = targetSize(full.width, full.height, opts, path);
  if (target.width === full.width && target.height === full.height) return full;
  return {
    ...full,
    data: resizeNearest(full.data, full.width, full.height, full.channels, target.width, target.height),
    width: target.width,
    height: target.height,
  };
}

async function decodeMaskFull(path: string, maxPixels: number): Promise<RawMask> {
  const bytes = await readBytes(path);
  const format = checkFormat(bytes, path);
  const warnings: DataWarning[] = [];
  const mask = (data: Uint8Array | Uint16Array, width: number, height: number, channels: 1 | 3, palette?: boolean): RawMask => ({
    data,
    channels,
    width,
    height,
    sourceWidth: width,
    sourceHeight: height,
    warnings,
    ...(palette ? { palette } : {}),
  });

  if (format === 'npy') return npyMask(parseNpyChecked(bytes, path, maxPixels), path, warnings);
  if (format === 'gif') {
    const gif = decodeGifIndices(bytes, path, (w, h) => checkPixels(w, h, maxPixels, path));
    return mask(gif.indices, gif.width, gif.height, 1, true);
  }
  if (format === 'png') {
    const h = pngHeader(bytes);
    if (h && h.colorType === 3) {
      checkPixels(h.width, h.height, maxPixels, path);
      const png = decodePngIndices(bytes, path);
      return mask(png.indices, png.width, png.height, 1, true);
    }
  }
  const meta = readHeader(bytes, format) ?? (await metadataOf(bytes, path, format));
  checkPixels(meta.width, meta.height, maxPixels, path);
  if ((meta.pages ?? 1) > 1) warnings.push({ code: 'multipage', message: `${path}: has ${meta.pages} pages/frames; only the first is used` });
  if (meta.depth !== 'uchar' && meta.depth !== 'ushort') {
    throw new DataError(`mask has ${meta.depth} samples; masks must be 8- or 16-bit integer images`, {
      file: path,
      hint: 'Save masks as 8-bit PNG (class ids or colours), or as integer .npy arrays.',
    });
  }
  let pipeline = sharp(bytes, SHARP_INPUT);
  if (meta.hasAlpha) {
    pipeline = pipeline.removeAlpha();
    warnings.push({ code: 'alpha', message: `${path}: has an alpha channel; it was dropped` });
  }
  const grey = meta.space === 'b-w' || meta.space === 'grey16';
  if (grey) {
    const is16 = meta.depth === 'ushort';
    const { data } = await run(pipeline.toColourspace(is16 ? 'grey16' : 'b-w').raw({ depth: is16 ? 'ushort' : 'uchar' }), path, format);
    const values = is16 ? u16View(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    // A 1-bit PNG is PIL mode "1": values 0/1 (bool), not the 0/255 that libvips returns.
    if (format === 'png' && pngHeader(bytes)?.bitDepth === 1) for (let i = 0; i < values.length; i++) values[i] = values[i] ? 1 : 0;
    return mask(values, meta.width, meta.height, 1);
  }
  if (meta.depth === 'ushort') warnings.push({ code: 'depth', message: `${path}: 16-bit colour mask reduced to 8 bits per channel` });
  if (meta.space === 'cmyk') warnings.push({ code: 'cmyk', message: `${path}: CMYK mask converted to RGB` });
  const { data } = await run(pipeline.toColourspace('srgb').raw({ depth: 'uchar' }), path, format);
  return mask(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), meta.width, meta.height, 3);
}

function npyMask(arr: NpyArray, path: string, warnings: DataWarning[]): RawMask {
  const { height, width, channels } = npyLayout(arr, path, 'mask');
  let c = channels;
  let data: Uint8Array | Uint16Array;
  if (arr.dtype === 'uint8' || arr.dtype === 'bool') data = arr.data as Uint8Array;
  else if (arr.dtype === 'uint16') data = arr.data as Uint16Array;
  else {
    // Other dtypes are fine when they hold small non-negative integers (class ids).
    let max = 0;
    for (let i = 0; i < arr.data.length; i++) {
      const v = arr.data[i];
      if (!(v >= 0 && v <= 65535 && Number.isInteger(v))) {
        throw new DataError(`.npy mask (${arr.dtype}) contains the value ${v}; masks must hold integers in 0..65535`, {
          file: path,
          hint: 'Store class ids (0, 1, 2, …) or grey levels, e.g. np.save(path, mask.astype(np.uint8)).',
        });
      }
      if (v > max) max = v;
    }
    data = max <= 255 ? Uint8Array.from(arr.data) : Uint16Array.from(arr.data);
  }
  if (c === 4 || c === 2) {
    data = dropLastChannel(data, c);
    c -= 1;
    warnings.push({ code: 'alpha', message: `${path}: has an alpha channel; it was dropped` });
  }
  if (c === 3 && data instanceof Uint16Array) {
    throw new DataError('.npy colour mask must be uint8', { file: path, hint: 'Save colour masks as (H, W, 3) uint8 arrays.' });
  }
  return { data, channels: c as 1 | 3, width, height, sourceWidth: width, sourceHeight: height, warnings };
}
