/**
 * Region-by-region image I/O for images too large to decode at once (tiled prediction).
 *
 * Reading: libvips (through sharp) streams the file once, top to bottom (`sequentialRead`: PNG,
 * JPEG and WebP cannot be read at random), converts it like `readImageRaw` (alpha dropped, grey
 * palettes to grey, CMYK to RGB, 8/16 bits kept) and stages it, unscaled, as a temporary *tiled*
 * TIFF (uncompressed: as large on disk as the decoded image). Memory stays at a few rows of tiles.
 * A band of scaled rows is then served by extracting, full width, only the input rows that the
 * vertical bicubic taps of those rows reach (libvips reads the TIFF tile by tile), and resizing
 * them with the in-memory path's arithmetic (`bicubicBands`): the result is byte-equal to
 * `readImageRaw`'s, which is Pillow's.
 *
 * Writing: PNG must be written top to bottom, so `PngRowWriter` deflates rows as they come
 * (filter "none"; masks compress well anyway) into IDAT chunks, to a temp file renamed at the end.
 */
import { closeSync, mkdtempSync, openSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { createDeflate } from 'node:zlib';
import type { Metadata } from 'sharp';
import { removeStaleTemps, trackTemp } from '../../io/temp-files.js';
import { DataError } from '../errors.js';
import { toChwFloat32 } from './pixels.js';
import { paletteIsGrey, pngPalette } from './png.js';
import { bicubicBands, scaledSize, u16View } from './resize.js';
import { sharp } from './sharp.js';

/** Staging folders in $TMPDIR: `unet-regions-<pid>-XXXXXX/staged.tif`. */
export const STAGING_PREFIX = 'unet-regions-';

/** Formats that libvips can stream: the others (GIF, .npy, float TIFF) are decoded whole. */
const STREAMABLE = new Set(['png', 'jpeg', 'tiff', 'webp']);

export interface ImageHeader {
  format: string;
  width: number;
  height: number;
  channels: number;
  /** Whether `openScaledRegions` can read this file region by region. */
  streamable: boolean;
}

/** The file's size and kind from its header, without decoding pixels. */
export async function imageHeader(path: string): Promise<ImageHeader> {
  const m = await metadataOf(path);
  const grey = m.space === 'b-w' || m.space === 'grey16';
  const channels = grey ? 1 : 3;
  const streamable = STREAMABLE.has(m.format ?? '') && (m.depth === 'uchar' || m.depth === 'ushort');
  return { format: m.format ?? 'unknown', width: m.width ?? 0, height: m.height ?? 0, channels, streamable };
}

async function metadataOf(path: string): Promise<Metadata> {
  try {
    return await sharp(path, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw new DataError(`cannot read the image header (${((err as Error).message ?? '').trim()})`, {
      file: path,
      hint: 'Large images are read region by region from PNG, JPEG, TIFF or WebP files; check that the file is one and is complete.',
      cause: err,
    });
  }
}

export interface ScaledRegions {
  /** The scaled size (what the network sees). */
  width: number;
  height: number;
  channels: number;
  /** The file's size. */
  fullWidth: number;
  fullHeight: number;
  warnings: string[];
  /** Rows [y0, y1) of the scaled image as [C, y1 - y0, width] float32 in 0..1 (8-bit / 255, 16-bit / 65535). */
  read(y0: number, y1: number): Promise<Float32Array>;
  /**
   * How many reads, the most scaled rows one read returned, and the most input rows one read
   * extracted from the staged file (tests check that no read is the whole image).
   */
  stats: { reads: number; maxRows: number; maxInputRows: number };
  /** Removes the temporary file. */
  close(): void;
}

/**
 * Stages `path` as a tiled TIFF in a temp folder (one streaming pass), then serves row bands of
 * it resized by `scale`. The caller must close() it.
 */
export async function openScaledRegions(path: string, scale: number, tmpRoot = tmpdir()): Promise<ScaledRegions> {
  const m = await metadataOf(path);
  if (!STREAMABLE.has(m.format ?? '') || !(m.depth === 'uchar' || m.depth === 'ushort')) {
    throw new DataError(`${m.format ?? 'this'} ${m.depth ?? ''} images cannot be read region by region`, {
      file: path,
      hint: 'Convert the image to an 8- or 16-bit PNG or TIFF (e.g. `vips copy in.gif out.tif`).',
    });
  }
  const warnings: string[] = [];
  const fullWidth = m.width as number;
  const fullHeight = m.height as number;
  const { width, height } = scaledSize(fullWidth, fullHeight, scale, path);
  const is16 = m.depth === 'ushort';
  let grey = m.space === 'b-w' || m.space === 'grey16';
  let pipeline = sharp(path, { limitInputPixels: false, sequentialRead: true, failOn: 'error', ignoreIcc: true });
  if (m.hasAlpha) {
    pipeline = pipeline.removeAlpha();
    warnings.push(`${path}: has an alpha channel; it was dropped`);
  }
  if (!grey && m.isPalette && m.format === 'png') {
    const head = await readHead(path);
    const palette = pngPalette(head);
    if (palette && paletteIsGrey(palette)) {
      pipeline = pipeline.extractChannel(0);
      grey = true;
    }
  }
  if (m.space === 'cmyk') warnings.push(`${path}: CMYK image converted to RGB`);
  if ((m.pages ?? 1) > 1) warnings.push(`${path}: has ${m.pages} pages/frames; only the first is used`);
  const space = grey ? (is16 ? 'grey16' : 'b-w') : is16 ? 'rgb16' : 'srgb';
  pipeline = pipeline.toColourspace(space);
  // Named with the pid: a later run removes the folders of processes that were killed (kill -9).
  removeStaleTemps(tmpRoot, STAGING_PREFIX);
  const dir = mkdtempSync(join(tmpRoot, `${STAGING_PREFIX}${process.pid}-`));
  const untrack = trackTemp(dir);
  const close = () => {
    rmSync(dir, { recursive: true, force: true });
    untrack();
  };
  const staged = join(dir, 'staged.tif');
  try {
    await pipeline.tiff({ tile: true, tileWidth: 256, tileHeight: 256, compression: 'none' }).toFile(staged);
  } catch (err) {
    close();
    const msg = ((err as Error).message ?? '').trim();
    throw new DataError(`cannot decode the image region by region (${msg})`, {
      file: path,
      hint: /space|disk|write/i.test(msg) ? `An uncompressed copy goes to ${tmpRoot}; free space there or set TMPDIR.` : 'The file is damaged or truncated; export it again.',
      cause: err,
    });
  }
  const channels = grey ? 1 : 3;
  const stats = { reads: 0, maxRows: 0, maxInputRows: 0 };
  const bands = bicubicBands(fullWidth, fullHeight, channels, width, height);
  return {
    width,
    height,
    channels,
    fullWidth,
    fullHeight,
    warnings,
    stats,
    read: async (y0, y1) => {
      const [i0, i1] = bands.inputRows(y0, y1);
      stats.reads++;
      stats.maxRows = Math.max(stats.maxRows, y1 - y0);
      stats.maxInputRows = Math.max(stats.maxInputRows, i1 - i0);
      const data = await sharp(staged, { limitInputPixels: false })
        .extract({ left: 0, top: i0, width: fullWidth, height: i1 - i0 })
        .toColourspace(space)
        .raw({ depth: is16 ? 'ushort' : 'uchar' })
        .toBuffer();
      const hwc = is16 ? u16View(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
      return toChwFloat32(await bands.resize(hwc, i0, y0, y1), channels, is16 ? 65535 : 255);
    },
    close,
  };
}

/** The first MiB of a file (PNG chunks before the pixel data). */
async function readHead(path: string): Promise<Uint8Array> {
  const f = await open(path, 'r');
  try {
    const buf = Buffer.alloc(1 << 20);
    const { bytesRead } = await f.read(buf, 0, buf.length, 0);
    return buf.subarray(0, bytesRead);
  } finally {
    await f.close();
  }
}

// ------------------------------------------------------------------------------------------------
// Streaming PNG writer, and PNG -> TIFF

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(parts: Uint8Array[]): number {
  let c = 0xffffffff;
  for (const p of parts) for (let i = 0; i < p.length; i++) c = CRC_TABLE[(c ^ p[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'latin1');
  const tail = Buffer.alloc(4);
  tail.writeUInt32BE(crc32([head.subarray(4), data]), 0);
  return Buffer.concat([head, data, tail]);
}

export interface PngRowFormat {
  width: number;
  height: number;
  /** 1 (values 0/1, packed here), 8 or 16 bits per sample. */
  depth: 1 | 8 | 16;
  channels: 1 | 3;
}

/**
 * Writes a PNG top to bottom: `write(samples, rows)` takes [rows, width, channels] samples
 * (Uint8Array, or Uint16Array for 16 bits); `close()` finishes and renames the temp file to `path`.
 * `abort()` removes the temp file. Memory: one deflate stream and the rows of the current call.
 */
export class PngRowWriter {
  readonly path: string;
  private readonly tmp: string;
  private readonly fd: number;
  private readonly deflate = createDeflate({ level: 6 });
  private readonly rowBytes: number;
  private rowsWritten = 0;
  private pending: Error | null = null;
  private readonly ended: Promise<void>;
  private readonly untrack: () => void;

  constructor(
    path: string,
    readonly format: PngRowFormat,
  ) {
    this.path = path;
    this.tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
    this.fd = openSync(this.tmp, 'w');
    this.untrack = trackTemp(this.tmp);
    const { width, height, depth, channels } = format;
    this.rowBytes = depth === 1 ? Math.ceil(width / 8) : (width * channels * depth) / 8;
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(width, 0);
    ihdr.writeUInt32BE(height, 4);
    ihdr[8] = depth;
    ihdr[9] = channels === 3 ? 2 : 0; // colour type: RGB or grey
    writeSync(this.fd, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    writeSync(this.fd, chunk('IHDR', ihdr));
    this.deflate.on('data', (d: Buffer) => {
      if (!this.pending) {
        try {
          writeSync(this.fd, chunk('IDAT', d));
        } catch (e) {
          this.pending = e as Error;
        }
      }
    });
    this.ended = new Promise((res, rej) => {
      this.deflate.on('end', res);
      this.deflate.on('error', rej);
    });
  }

  /** Appends `rows` full rows. */
  async write(samples: Uint8Array | Uint16Array, rows: number): Promise<void> {
    if (this.pending) throw this.pending;
    const { width, depth, channels } = this.format;
    const buf = Buffer.alloc(rows * (1 + this.rowBytes));
    const perRow = width * channels;
    for (let r = 0; r < rows; r++) {
      const o = r * (1 + this.rowBytes) + 1; // filter byte 0 (none) before each row
      const src = r * perRow;
      if (depth === 1)
        for (let x = 0; x < width; x++) {
          if (samples[src + x]) buf[o + (x >> 3)] |= 0x80 >> (x & 7);
        }
      else if (depth === 8) buf.set(samples.subarray(src, src + perRow), o);
      else for (let i = 0; i < perRow; i++) buf.writeUInt16BE(samples[src + i], o + 2 * i);
    }
    this.rowsWritten += rows;
    if (!this.deflate.write(buf)) await new Promise<void>((res) => this.deflate.once('drain', res));
    if (this.pending) throw this.pending;
  }

  async close(): Promise<void> {
    if (this.rowsWritten !== this.format.height) throw new Error(`PngRowWriter: ${this.rowsWritten} of ${this.format.height} rows written`);
    this.deflate.end();
    await this.ended;
    if (this.pending) throw this.pending;
    writeSync(this.fd, chunk('IEND', new Uint8Array(0)));
    closeSync(this.fd);
    renameSync(this.tmp, this.path);
    this.untrack();
  }

  abort(): void {
    this.deflate.destroy();
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
    try {
      unlinkSync(this.tmp);
    } catch {
      // already gone
    }
    this.untrack();
  }
}

/**
 * Rewrites a PNG (a file or its bytes) as a deflate-compressed TIFF at `path`, same samples (8 or
 * 16 bits, grey or RGB). libvips streams it strip by strip, so a mask larger than memory converts
 * in bounded memory. Written to a temp name, renamed at the end.
 */
export async function pngToTiff(png: string | Uint8Array, path: string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const untrack = trackTemp(tmp);
  try {
    const input = { limitInputPixels: false, sequentialRead: true };
    const { space } = await sharp(png, input).metadata(); // kept: sharp would otherwise write grey as sRGB
    await sharp(png, input).toColourspace(space).tiff({ compression: 'deflate', predictor: 'horizontal' }).toFile(tmp);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  } finally {
    untrack();
  }
}

/** Whether an output name asks for a TIFF. */
export const isTiffName = (path: string): boolean => /\.tiff?$/i.test(path);
