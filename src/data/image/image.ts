/**
 * Reading images from disk into typed arrays, following Pytorch-UNet's `load_image` +
 * `preprocess` (PIL): images are bicubic-resized and scaled to 0..1. (Masks keep their raw
 * values and are nearest-resized: mask-read.ts.)
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

import type { Metadata } from 'sharp';
import { type DataWarning, DEFAULT_MAX_PIXELS, type ReadOptions, checkFormat, checkPixels, metadataOf, npyLayout, parseNpyChecked, readBytes, run, targetSize } from './decode.js';
import { type FileFormat, type HeaderInfo, readHeader } from './formats.js';
import { decodeGifIndices } from './gif.js';
import { parseNpyHeader, type NpyArray } from './npy.js';
import { dropLastChannel, greyToRgb, hwcToChw, rgbToLuma, toChwFloat32 } from './pixels.js';
import { paletteIsGrey, pngPalette } from './png.js';
import { type PixelData, resizeBicubic, u16View } from './resize.js';
import { SHARP_INPUT, sharp } from './sharp.js';

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
async function resizeAndFinish(hwc: PixelData, channels: number, source: { width: number; height: number }, opts: ReadOptions, path: string, divisor: number | 'float', bitDepth: 8 | 16 | 32, warnings: DataWarning[]): Promise<RawImage> {
  let c = channels;
  if (opts.channels === 1 && c === 3) {
    hwc = rgbToLuma(hwc);
    c = 1;
  }
  const size = targetSize(source.width, source.height, opts, path);
  hwc = await resizeBicubic(hwc, source.width, source.height, c, size.width, size.height);
  if (opts.channels === 3 && c === 1) {
    hwc = greyToRgb(hwc);
    c = 3;
  }
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
    else {
      hwc[3 * i] = rgb[0];
      hwc[3 * i + 1] = rgb[1];
      hwc[3 * i + 2] = rgb[2];
    }
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
