/**
 * What reading an image and reading a mask share: the read options and warnings, the file's
 * bytes and format, the pixel limit, `.npy` shapes, and sharp calls whose errors name the file.
 */

import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import type { Metadata, OutputInfo, Sharp } from 'sharp';
import { MAX_PIXELS } from '../../config/options.js';
import { DataError } from '../errors.js';
import { describeBytes, type FileFormat, type HeaderInfo, sniffFormat } from './formats.js';
import { parseNpy, parseNpyHeader, type NpyArray } from './npy.js';
import { scaledSize } from './resize.js';
import { SHARP_INPUT, sharp } from './sharp.js';

/** PIL's decompression-bomb limit (2 × `Image.MAX_IMAGE_PIXELS`), above which PIL raises. */
export const DEFAULT_MAX_PIXELS = MAX_PIXELS;

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

const SUPPORTED = 'PNG, JPEG, GIF, TIFF, WebP and NumPy .npy';

export async function readBytes(path: string): Promise<Buffer> {
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

export function checkFormat(bytes: Uint8Array, path: string): FileFormat {
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

export function checkPixels(width: number, height: number, maxPixels: number, path: string): void {
  if (maxPixels > 0 && width * height > maxPixels) {
    throw new DataError(`image is ${width}×${height} = ${width * height} pixels, above the limit of ${maxPixels}`, {
      file: path,
      hint: "Very large images are refused to protect memory (like PIL's decompression-bomb check). Downscale it, or raise the limit if you trust the file: --max-pixels N (maxPixels option); `unet predict --max-pixels 0 --tile auto` predicts a huge image region by region.",
    });
  }
}

export function targetSize(width: number, height: number, opts: ReadOptions, path: string): { width: number; height: number } {
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

export async function metadataOf(bytes: Uint8Array, path: string, format: FileFormat): Promise<Metadata | HeaderInfo> {
  try {
    return await sharp(bytes, SHARP_INPUT).metadata();
  } catch (err) {
    throw decodeError(err, path, format);
  }
}

export async function run(pipeline: Sharp, path: string, format: FileFormat): Promise<{ data: Buffer; info: OutputInfo }> {
  try {
    return await pipeline.toBuffer({ resolveWithObject: true });
  } catch (err) {
    const msg = (err as Error).message ?? '';
    if (/no known route|colourspace/i.test(msg)) {
      return Promise.reject(
        new DataError(`unsupported colour layout (${msg.trim()})`, {
          file: path,
          hint: 'Save the file as greyscale or RGB (PNG/TIFF), or as an (H, W, C) .npy array.',
          cause: err,
        }),
      );
    }
    throw decodeError(err, path, format);
  }
}

export function npyLayout(arr: Pick<NpyArray, 'shape'>, path: string, what: 'image' | 'mask'): { height: number; width: number; channels: number } {
  const s = arr.shape;
  if (s.length === 2) return { height: s[0], width: s[1], channels: 1 };
  if (s.length === 3 && [1, 2, 3, 4].includes(s[2])) return { height: s[0], width: s[1], channels: s[2] };
  const chwHint =
    s.length === 3 && [1, 3, 4].includes(s[0]) && s[2] > 4
      ? `It looks channels-first (C, H, W); save it as (H, W, C): np.save(path, a.transpose(1, 2, 0)).`
      : what === 'mask'
        ? 'Save masks as (H, W) class/value arrays or (H, W, 3) colour arrays.'
        : 'Save images as (H, W) or (H, W, C) arrays with C = 1, 3 or 4.';
  throw new DataError(`.npy ${what} has shape (${s.join(', ')}); expected (H, W) or (H, W, C)`, { file: path, hint: chwHint });
}

export function parseNpyChecked(bytes: Uint8Array, path: string, maxPixels: number): NpyArray {
  const h = parseNpyHeader(bytes, path);
  if (h.shape.length >= 2) checkPixels(h.shape[1], h.shape[0], maxPixels, path);
  return parseNpy(bytes, path);
}
