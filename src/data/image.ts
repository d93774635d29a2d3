/**
 * Reading images and masks from disk into typed arrays, following Pytorch-UNet's
 * `load_image` + `preprocess` (PIL): images are bicubic-resized and scaled to 0..1, masks keep
 * their raw values (palette indices for "P" PNG/GIF masks) and are nearest-resized.
 *
 * Differences from the reference, on purpose:
 * - Normalisation: 8-bit data is divided by 255 and 16-bit data by 65535 (the type's maximum).
 *   The reference divides by 255 only when some value is > 1, so a 16-bit image there ends up
 *   in 0..257; and an 8-bit image whose values are all 0/1 stays 0/1 there. Float data (float
 *   TIFF, float/int `.npy`) keeps the reference rule: divided by 255 only if a value is > 1.
 * - RGBA and grey+alpha lose their alpha channel (with a warning) instead of giving 4/2 channels;
 *   CMYK becomes RGB instead of 4 channels.
 * - Palette ("P") *images* are expanded to RGB, or to grey when the palette is all grey, and
 *   resized bicubic (PIL would resize the indices NEAREST and feed them to the network).
 *   Palette *masks* stay indices, as in the reference.
 * - 16-bit RGB PNGs keep 16 bits (PIL reads them as 8-bit RGB); 16-bit TIFFs are resized (PIL
 *   9.4 cannot resize its "I;16" mode). Both use PIL's "I" arithmetic, as a 16-bit grey PNG does.
 * - ICC profiles and EXIF orientation are ignored, as PIL's `Image.open` does.
 * - BMP is not supported (the libvips bundled with sharp has no BMP reader): clear error.
 */

import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import sharp, { type Metadata, type OutputInfo, type Sharp, type SharpOptions } from 'sharp';
import { DataError } from './errors.js';
import { describeBytes, type FileFormat, type HeaderInfo, readHeader, sniffFormat } from './formats.js';
import { decodeGifIndices } from './gif.js';
import { decodeJpeg } from './jpeg.js';
import { parseNpy, parseNpyHeader, type NpyArray } from './npy.js';
import { decodePngIndices, paletteIsGrey, pngHeader, pngPalette } from './png.js';
import { type PixelData, resizeBicubic, resizeNearest, scaledSize, u16View } from './resize.js';

/** PIL's decompression-bomb limit (2 × `Image.MAX_IMAGE_PIXELS`), above which PIL raises. */
export const DEFAULT_MAX_PIXELS = 178_956_970;

export interface ReadOptions {
  /** Resize by this factor while decoding: `floor(scale * w) × floor(scale * h)`. */
  scale?: number;
  /** Resize to exactly this size (takes precedence over `scale`). */
  size?: { width: number; height: number };
  /** Refuse files with more pixels than this (0 = no limit). Default 178,956,970 like PIL. */
  maxPixels?: number;
  /** Convert to this many channels (1 or 3): PIL's convert('L') / convert('RGB'). */
  channels?: 1 | 3;
  /**
   * Layout of `readImageRaw` data: 'chw' (default) or sharp's native 'hwc', which saves a pass
   * when the transpose can be fused with a later one (the dataset cache does this).
   */
  layout?: 'chw' | 'hwc';
}

/** A non-fatal finding; `code` lets a dataset report each kind once. */
export interface DataWarning {
  code: 'alpha' | 'cmyk' | 'multipage' | 'depth';
  message: string;
}

/** A decoded image before normalisation: what the dataset caches (8/16-bit stays compact). */
export interface RawImage {
  /** [C, H, W] planar (default) or [H, W, C] interleaved, see `layout`; divide by `divisor` for 0..1 */
  data: PixelData;
  layout: 'chw' | 'hwc';
  channels: number;
  height: number;
  width: number;
  /** Bits per sample of `data`: 8, 16 or 32 (float). */
  bitDepth: 8 | 16 | 32;
  /** 255, 65535, or for float data 1 or 255 (reference rule). */
  divisor: number;
  /** Size of the file's image before resizing. */
  sourceWidth: number;
  sourceHeight: number;
  warnings: DataWarning[];
}

export interface ImageData {
  /** [C, H, W] float32 in 0..1 */
  data: Float32Array;
  channels: number;
  height: number;
  width: number;
  bitDepth: 8 | 16 | 32;
  sourceWidth: number;
  sourceHeight: number;
  warnings: string[];
}

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

/** Reads an image as [C, H, W] float32 in 0..1 (1 channel for greyscale, 3 for colour). */
export async function readImage(path: string, opts: ReadOptions = {}): Promise<ImageData> {
  const raw = await readImageRaw(path, { ...opts, layout: 'hwc' });
  return {
    data: toChwFloat32(raw.data, raw.channels, raw.divisor),
    channels: raw.channels,
    height: raw.height,
    width: raw.width,
    bitDepth: raw.bitDepth,
    sourceWidth: raw.sourceWidth,
    sourceHeight: raw.sourceHeight,
    warnings: raw.warnings.map((w) => w.message),
  };
}

/**
 * [H, W, C] samples -> [C, H, W] float32 in 0..1, written at `out[offset…]` (e.g. into a batch).
 * 8-bit data goes through a table, which gives exactly float32(v / 255) as the reference.
 */
export function toChwFloat32(hwc: PixelData, channels: number, divisor: number, out?: Float32Array, offset = 0): Float32Array {
  const n = hwc.length;
  const dst = out ?? new Float32Array(n);
  const plane = n / channels;
  const lut = hwc instanceof Uint8Array && divisor === 255 ? LUT_255 : null;
  if (channels === 1) {
    if (lut) for (let i = 0; i < n; i++) dst[offset + i] = lut[hwc[i]];
    else if (divisor === 1) dst.set(hwc, offset);
    else for (let i = 0; i < n; i++) dst[offset + i] = hwc[i] / divisor;
    return dst;
  }
  if (channels === 3 && lut) {
    // The common case: one sequential pass over the source, three output streams (2x faster
    // than three strided passes).
    const src = hwc as Uint8Array;
    const o0 = offset, o1 = offset + plane, o2 = offset + 2 * plane;
    for (let i = 0, j = 0; i < plane; i++, j += 3) {
      dst[o0 + i] = lut[src[j]];
      dst[o1 + i] = lut[src[j + 1]];
      dst[o2 + i] = lut[src[j + 2]];
    }
    return dst;
  }
  for (let c = 0; c < channels; c++) {
    const o = offset + c * plane;
    if (lut) for (let i = 0, j = c; i < plane; i++, j += channels) dst[o + i] = lut[hwc[j]];
    else for (let i = 0, j = c; i < plane; i++, j += channels) dst[o + i] = hwc[j] / divisor;
  }
  return dst;
}

/** Element-wise samples / divisor as float32 (any layout; 8-bit via the exact table). */
export function toFloat32(data: PixelData, divisor: number, out?: Float32Array, offset = 0): Float32Array {
  return toChwFloat32(data, 1, divisor, out, offset);
}

const LUT_255 = Float32Array.from({ length: 256 }, (_, v) => v / 255);

/**
 * Decodes (sharp, or our GIF/.npy readers) and resizes (Pillow's arithmetic, resize.ts) an image
 * without normalising it. With `opts.channels`, a greyscale image becomes RGB (grey copied to R, G,
 * B) and an RGB image greyscale (PIL's convert('L') luma, before resizing as PIL would).
 */
export async function readImageRaw(path: string, opts: ReadOptions = {}): Promise<RawImage> {
  const bytes = await readBytes(path);
  const format = checkFormat(bytes, path);
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (format === 'npy') return npyImage(parseNpyChecked(bytes, path, maxPixels), path, opts);
  if (format === 'gif') return gifImage(bytes, path, opts, maxPixels);

  const { meta, grey, warnings } = await inspect(bytes, path, format, maxPixels);
  const isFloat = meta.depth !== 'uchar' && meta.depth !== 'ushort';
  const is16 = meta.depth === 'ushort';
  if (format === 'jpeg' && (meta.space === 'srgb' || meta.space === 'b-w') && meta.depth === 'uchar') {
    const jpeg = await decodeJpeg(bytes);
    if (jpeg && jpeg.channels === (grey ? 1 : 3) && jpeg.width === meta.width && jpeg.height === meta.height) {
      return resizeAndFinish(jpeg.data, jpeg.channels, meta, opts, path, 255, 8, warnings);
    }
  }
  let pipeline = sharp(bytes, SHARP_INPUT);
  if (meta.hasAlpha) pipeline = pipeline.removeAlpha();
  if (!(meta.space === 'b-w' || meta.space === 'grey16') && grey) pipeline = pipeline.extractChannel(0); // grey palette
  if (isFloat) {
    // Float samples (e.g. float32 TIFF): decoded exactly, resized like PIL's "F" mode.
    if (grey) pipeline = pipeline.pipelineColourspace('b-w');
    const { data, info } = await run(pipeline.toColourspace(grey ? 'b-w' : 'srgb').raw({ depth: 'float' }), path, format);
    const hwc = new Float32Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength));
    return resizeAndFinish(hwc, info.channels, meta, opts, path, 'float', 32, warnings);
  }
  pipeline = pipeline.toColourspace(grey ? (is16 ? 'grey16' : 'b-w') : is16 ? 'rgb16' : 'srgb');
  const { data, info } = await run(pipeline.raw({ depth: is16 ? 'ushort' : 'uchar' }), path, format);
  const hwc = is16 ? u16View(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return resizeAndFinish(hwc, info.channels, meta, opts, path, is16 ? 65535 : 255, is16 ? 16 : 8, warnings);
}

/** What `readImageRaw` will give for a file, from its header (GIFs are decoded): no resize. */
export interface ImageInfo {
  width: number;
  height: number;
  /** 1 (greyscale) or 3 (colour), after dropping alpha and expanding palettes as readImageRaw does. */
  channels: number;
}

/** The size and channel count of an image without decoding its pixels (PNG/JPEG headers, sharp's metadata for the rest). */
export async function probeImage(path: string, opts: { maxPixels?: number } = {}): Promise<ImageInfo> {
  const bytes = await readBytes(path);
  const format = checkFormat(bytes, path);
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  if (format === 'npy') {
    const h = parseNpyHeader(bytes, path);
    const { height, width, channels } = npyLayout({ shape: h.shape }, path, 'image');
    checkPixels(width, height, maxPixels, path);
    return { width, height, channels: channels === 4 || channels === 2 ? channels - 1 : channels };
  }
  if (format === 'gif') {
    const { width, height, grey } = gifPixels(bytes, path, maxPixels);
    return { width, height, channels: grey ? 1 : 3 };
  }
  const { meta, grey } = await inspect(bytes, path, format, maxPixels);
  return { width: meta.width, height: meta.height, channels: grey ? 1 : 3 };
}

/** Header, pixel limit and the grey/colour decision shared by readImageRaw and probeImage. */
async function inspect(bytes: Uint8Array, path: string, format: FileFormat, maxPixels: number): Promise<{ meta: Metadata | HeaderInfo; grey: boolean; warnings: DataWarning[] }> {
  const meta = readHeader(bytes, format) ?? (await metadataOf(bytes, path, format));
  checkPixels(meta.width, meta.height, maxPixels, path);
  const warnings: DataWarning[] = [];
  if ((meta.pages ?? 1) > 1) warnings.push({ code: 'multipage', message: `${path}: has ${meta.pages} pages/frames; only the first is used` });
  if (meta.hasAlpha) warnings.push({ code: 'alpha', message: `${path}: has an alpha channel; it was dropped` });
  if (meta.space === 'cmyk') warnings.push({ code: 'cmyk', message: `${path}: CMYK image converted to RGB` });
  let grey = meta.space === 'b-w' || meta.space === 'grey16';
  if (!grey && meta.isPalette && format === 'png') {
    // A grey palette is a greyscale image: one channel, values taken as they are.
    const palette = pngPalette(bytes);
    grey = palette !== null && paletteIsGrey(palette);
  }
  return { meta, grey, warnings };
}

/**
 * Channel conversion (`opts.channels`), resize to the target size, and the RawImage. RGB -> grey
 * happens before resizing, as `Image.open(f).convert('L').resize(...)` does; grey -> RGB after it
 * (the same result, on a third of the pixels). `divisor: 'float'` applies the reference's rule
 * to the resized data.
 */
async function resizeAndFinish(
  hwc: PixelData, channels: number, source: { width: number; height: number }, opts: ReadOptions, path: string,
  divisor: number | 'float', bitDepth: 8 | 16 | 32, warnings: DataWarning[],
): Promise<RawImage> {
  let c = channels;
  if (opts.channels === 1 && c === 3) { hwc = rgbToLuma(hwc); c = 1; }
  const size = targetSize(source.width, source.height, opts, path);
  hwc = await resizeBicubic(hwc, source.width, source.height, c, size.width, size.height);
  if (opts.channels === 3 && c === 1) { hwc = greyToRgb(hwc); c = 3; }
  const div = divisor === 'float' ? floatDivisor(hwc as Float32Array) : divisor;
  return {
    data: opts.layout === 'hwc' ? hwc : hwcToChw(hwc, size.height, size.width, c),
    layout: opts.layout ?? 'chw',
    channels: c,
    height: size.height,
    width: size.width,
    bitDepth,
    divisor: div,
    sourceWidth: source.width,
    sourceHeight: source.height,
    warnings,
  };
}

/**
 * PIL's convert('L'): L = (19595 R + 38470 G + 7471 B + 2^15) >> 16 (ITU-R 601-2 luma in 16-bit
 * fixed point) for integer samples; the same weights without rounding for float samples.
 */
export function rgbToLuma<T extends PixelData>(hwc: T): T {
  const n = hwc.length / 3;
  const out = new (hwc.constructor as new (n: number) => T)(n);
  if (hwc instanceof Float32Array) {
    for (let i = 0, j = 0; i < n; i++, j += 3) out[i] = (hwc[j] * 19595 + hwc[j + 1] * 38470 + hwc[j + 2] * 7471) / 65536;
  } else {
    for (let i = 0, j = 0; i < n; i++, j += 3) out[i] = Math.floor((hwc[j] * 19595 + hwc[j + 1] * 38470 + hwc[j + 2] * 7471 + 0x8000) / 65536);
  }
  return out;
}

/** PIL's convert('RGB') of a greyscale image: the value copied to R, G and B. */
export function greyToRgb<T extends PixelData>(hwc: T): T {
  const out = new (hwc.constructor as new (n: number) => T)(hwc.length * 3);
  for (let i = 0, j = 0; i < hwc.length; i++, j += 3) { out[j] = hwc[i]; out[j + 1] = hwc[i]; out[j + 2] = hwc[i]; }
  return out;
}

/** [H, W, C] interleaved -> [C, H, W] planar (no copy for one channel). */
export function hwcToChw<T extends PixelData>(src: T, height: number, width: number, channels: number): T {
  if (channels === 1) return src;
  const plane = height * width;
  const out = new (src.constructor as new (n: number) => T)(plane * channels);
  for (let c = 0; c < channels; c++) for (let i = 0, j = c; i < plane; i++, j += channels) out[c * plane + i] = src[j];
  return out;
}

/** The reference's rule for float data: divide by 255 only if some value is > 1. */
function floatDivisor(data: Float32Array): number {
  for (let i = 0; i < data.length; i++) if (data[i] > 1) return 255;
  return 1;
}

/** The first frame of a GIF as colours: 1 channel when the palette is grey, else RGB. */
function gifPixels(bytes: Uint8Array, path: string, maxPixels: number): { width: number; height: number; grey: boolean; hwc: Uint8Array } {
  const gif = decodeGifIndices(bytes, path, (w, h) => checkPixels(w, h, maxPixels, path));
  const { width, height } = gif;
  const pal = gif.palette;
  const grey = paletteIsGrey(pal);
  const hwc = new Uint8Array(width * height * (grey ? 1 : 3));
  for (let i = 0; i < gif.indices.length; i++) {
    const rgb = pal[gif.indices[i]] ?? BLACK;
    if (grey) hwc[i] = rgb[0];
    else { hwc[3 * i] = rgb[0]; hwc[3 * i + 1] = rgb[1]; hwc[3 * i + 2] = rgb[2]; }
  }
  return { width, height, grey, hwc };
}

async function gifImage(bytes: Uint8Array, path: string, opts: ReadOptions, maxPixels: number): Promise<RawImage> {
  const { width, height, grey, hwc } = gifPixels(bytes, path, maxPixels);
  return resizeAndFinish(hwc, grey ? 1 : 3, { width, height }, opts, path, 255, 8, []);
}

const BLACK: [number, number, number] = [0, 0, 0];

/** `.npy` images: H×W or H×W×C (C = 1, 3 or 4) in C order. */
async function npyImage(arr: NpyArray, path: string, opts: ReadOptions): Promise<RawImage> {
  const warnings: DataWarning[] = [];
  const { height, width, channels } = npyLayout(arr, path, 'image');
  let hwc: PixelData;
  let divisor: number | 'float';
  let bitDepth: 8 | 16 | 32;
  if (arr.dtype === 'uint8' || arr.dtype === 'bool') {
    hwc = arr.data as Uint8Array;
    divisor = arr.dtype === 'bool' ? 1 : 255;
    bitDepth = 8;
  } else if (arr.dtype === 'uint16') {
    hwc = arr.data as Uint16Array;
    divisor = 65535;
    bitDepth = 16;
  } else {
    hwc = arr.data instanceof Float32Array ? arr.data : Float32Array.from(arr.data);
    divisor = 'float';
    bitDepth = 32;
  }
  let c = channels;
  if (c === 4 || c === 2) {
    hwc = dropLastChannel(hwc, c);
    c -= 1;
    warnings.push({ code: 'alpha', message: `${path}: has an alpha channel; it was dropped` });
  }
  return resizeAndFinish(hwc, c, { width, height }, opts, path, divisor, bitDepth, warnings);
}

function dropLastChannel<T extends PixelData>(src: T, channels: number): T {
  const n = src.length / channels;
  const out = new (src.constructor as new (n: number) => T)(n * (channels - 1));
  for (let i = 0, o = 0; i < n; i++) for (let c = 0; c < channels - 1; c++) out[o++] = src[i * channels + c];
  return out;
}

function npyLayout(arr: Pick<NpyArray, 'shape'>, path: string, what: 'image' | 'mask'): { height: number; width: number; channels: number } {
  const s = arr.shape;
  if (s.length === 2) return { height: s[0], width: s[1], channels: 1 };
  if (s.length === 3 && [1, 2, 3, 4].includes(s[2])) return { height: s[0], width: s[1], channels: s[2] };
  const chwHint = s.length === 3 && [1, 3, 4].includes(s[0]) && s[2] > 4
    ? `It looks channels-first (C, H, W); save it as (H, W, C): np.save(path, a.transpose(1, 2, 0)).`
    : what === 'mask' ? 'Save masks as (H, W) class/value arrays or (H, W, 3) colour arrays.' : 'Save images as (H, W) or (H, W, C) arrays with C = 1, 3 or 4.';
  throw new DataError(`.npy ${what} has shape (${s.join(', ')}); expected (H, W) or (H, W, C)`, { file: path, hint: chwHint });
}

function parseNpyChecked(bytes: Uint8Array, path: string, maxPixels: number): NpyArray {
  const h = parseNpyHeader(bytes, path);
  if (h.shape.length >= 2) checkPixels(h.shape[1], h.shape[0], maxPixels, path);
  return parseNpy(bytes, path);
}

// ---------------------------------------------------------------------------------------------
// Masks

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
  const mask = (data: Uint8Array | Uint16Array, width: number, height: number, channels: 1 | 3, palette?: boolean): RawMask =>
    ({ data, channels, width, height, sourceWidth: width, sourceHeight: height, warnings, ...(palette ? { palette } : {}) });

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

// ---------------------------------------------------------------------------------------------
// Shared checks

/**
 * `failOn: 'error'`: refuse truncated/corrupt data like PIL, but accept files that only raise
 * libjpeg warnings (e.g. extraneous bytes), which PIL also accepts. Pixel limits are ours.
 */
const SHARP_INPUT: SharpOptions = { failOn: 'error', limitInputPixels: false, ignoreIcc: true };

// libvips' operation cache never hits for one-off decodes of distinct files, yet costs ~6% CPU
// per decode and up to 50 MB. (Process-wide; harmless for the encoders elsewhere.)
sharp.cache(false);

const SUPPORTED = 'PNG, JPEG, GIF, TIFF, WebP and NumPy .npy';

async function readBytes(path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new DataError('file not found', { file: path, hint: 'Check the path and the --imgs/--masks folders.', cause: err });
    if (code === 'EISDIR') throw new DataError('is a folder, not an image file', { file: path, hint: 'Pass image files, or the folder through --imgs/--masks.', cause: err });
    if (code === 'EACCES' || code === 'EPERM') throw new DataError('permission denied', { file: path, hint: 'Make the file readable (chmod +r).', cause: err });
    throw new DataError(`cannot read file (${(err as Error).message})`, { file: path, cause: err });
  }
}

function checkFormat(bytes: Uint8Array, path: string): FileFormat {
  if (bytes.length === 0) {
    throw new DataError('file is empty (0 bytes)', {
      file: path,
      hint: 'It was probably cut off by an interrupted copy or download. Re-create it, or remove it (and its image/mask partner) from the dataset.',
    });
  }
  const format = sniffFormat(bytes);
  if (format === 'unknown') {
    throw new DataError(`not an image file: it starts with ${describeBytes(bytes)} although it is named ${extname(path) || '(no extension)'}`, {
      file: path,
      hint: `Only ${SUPPORTED} files can be read. Remove this file from the folder or convert it.`,
    });
  }
  if (format === 'bmp') {
    throw new DataError('BMP files are not supported (the libvips bundled with sharp has no BMP reader)', {
      file: path,
      hint: "Convert to PNG first, e.g. `mogrify -format png *.bmp` (ImageMagick) or Python: Image.open('x.bmp').save('x.png').",
    });
  }
  return format;
}

function checkPixels(width: number, height: number, maxPixels: number, path: string): void {
  if (maxPixels > 0 && width * height > maxPixels) {
    throw new DataError(`image is ${width}×${height} = ${width * height} pixels, above the limit of ${maxPixels}`, {
      file: path,
      hint: 'Very large images are refused to protect memory (like PIL\'s decompression-bomb check). Downscale or tile it, or raise the limit (maxPixels option, --max-pixels) if you trust the file.',
    });
  }
}

function targetSize(width: number, height: number, opts: ReadOptions, path: string): { width: number; height: number } {
  if (opts.size) return opts.size;
  if (opts.scale !== undefined) return scaledSize(width, height, opts.scale, path);
  return { width, height };
}

function decodeError(err: unknown, path: string, format: FileFormat): DataError {
  const msg = ((err as Error).message ?? String(err)).trim().replace(/\s+/g, ' ');
  return new DataError(`cannot decode ${format.toUpperCase()} data (${msg})`, {
    file: path,
    hint: 'The file is damaged or truncated (e.g. an interrupted copy). Export it again, or remove it and its image/mask partner from the dataset.',
    cause: err,
  });
}

async function metadataOf(bytes: Uint8Array, path: string, format: FileFormat): Promise<Metadata | HeaderInfo> {
  try {
    return await sharp(bytes, SHARP_INPUT).metadata();
  } catch (err) {
    throw decodeError(err, path, format);
  }
}

async function run(pipeline: Sharp, path: string, format: FileFormat): Promise<{ data: Buffer; info: OutputInfo }> {
  try {
    return await pipeline.toBuffer({ resolveWithObject: true });
  } catch (err) {
    const msg = (err as Error).message ?? '';
    if (/no known route|colourspace/i.test(msg)) {
      return Promise.reject(new DataError(`unsupported colour layout (${msg.trim()})`, {
        file: path,
        hint: 'Save the file as greyscale or RGB (PNG/TIFF), or as an (H, W, C) .npy array.',
        cause: err,
      }));
    }
    throw decodeError(err, path, format);
  }
}
