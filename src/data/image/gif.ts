/**
 * Minimal GIF codec for masks: palette **indices** of the first frame, like PIL's "P" mode.
 *
 * Why not sharp: sharp expands GIF palettes to RGBA, and Pytorch-UNet's Carvana masks
 * (`<id>_mask.gif`) are read by PIL as indices {0, 1}; those become the checkpoint's
 * `mask_values`, so we need the indices to stay compatible. The encoder exists for synthetic
 * Carvana-like data (two-colour masks).
 */

import { DataError } from '../errors.js';

export interface GifIndexed {
  width: number;
  height: number;
  /** [H, W] palette indices */
  indices: Uint8Array;
  /** Palette as [r, g, b] triples (local table of the first frame if any, else global, else grey levels). */
  palette: [number, number, number][];
  /** Palette index marked transparent by a graphic control extension, if any. */
  transparentIndex?: number;
}

/** Width/height of the logical screen descriptor, without decoding (a larger first frame enlarges the image: decodeGifIndices). */
function gifSize(bytes: Uint8Array): { width: number; height: number } {
  return { width: bytes[6] | (bytes[7] << 8), height: bytes[8] | (bytes[9] << 8) };
}

/**
 * Decodes the first frame of a GIF into palette indices. Throws DataError on damaged files.
 * `checkSize(width, height)` is called before the pixels are allocated (a pixel limit can throw).
 */
export function decodeGifIndices(bytes: Uint8Array, file = '<buffer>', checkSize?: (width: number, height: number) => void): GifIndexed {
  const damaged = (what: string) => new DataError(`damaged GIF (${what})`, { file, hint: 'The file is truncated or corrupt; export the mask again (PNG is preferred for masks).' });
  const n = bytes.length;
  if (n < 13) throw damaged('too short');
  const { width, height } = gifSize(bytes);
  const lsdFlags = bytes[10];
  let p = 13;
  let globalPalette: [number, number, number][] = [];
  if (lsdFlags & 0x80) {
    const size = 2 << (lsdFlags & 7);
    if (p + 3 * size > n) throw damaged('truncated colour table');
    globalPalette = readPalette(bytes, p, size);
    p += 3 * size;
  }
  let transparentIndex: number | undefined;
  for (;;) {
    if (p >= n) throw damaged('no image data');
    const block = bytes[p++];
    if (block === 0x21) {
      // Extension: graphic control (0xF9) carries the transparent index; skip the rest.
      const label = bytes[p++];
      if (label === 0xf9 && bytes[p] >= 4 && p + 4 < n && bytes[p + 1] & 1) transparentIndex = bytes[p + 4];
      while (p < n && bytes[p] !== 0) p += bytes[p] + 1;
      p++;
    } else if (block === 0x2c) {
      if (p + 9 > n) throw damaged('truncated image descriptor');
      const left = bytes[p] | (bytes[p + 1] << 8);
      const top = bytes[p + 2] | (bytes[p + 3] << 8);
      const fw = bytes[p + 4] | (bytes[p + 5] << 8);
      const fh = bytes[p + 6] | (bytes[p + 7] << 8);
      const flags = bytes[p + 8];
      p += 9;
      let palette = globalPalette;
      if (flags & 0x80) {
        const size = 2 << (flags & 7);
        if (p + 3 * size > n) throw damaged('truncated local colour table');
        palette = readPalette(bytes, p, size);
        p += 3 * size;
      }
      // As Pillow: a first frame that reaches past the logical screen enlarges the image.
      const w = Math.max(width, left + fw);
      const h = Math.max(height, top + fh);
      checkSize?.(w, h);
      const minCodeSize = bytes[p++];
      if (minCodeSize < 2 || minCodeSize > 11) throw damaged(`bad LZW code size ${minCodeSize}`);
      // Gather the data sub-blocks into one contiguous stream.
      let total = 0;
      let q = p;
      while (q < n && bytes[q] !== 0) {
        total += bytes[q];
        q += bytes[q] + 1;
      }
      if (q >= n) throw damaged('truncated image data');
      const stream = new Uint8Array(total);
      for (let o = 0, r = p; r < q; r += bytes[r] + 1) {
        stream.set(bytes.subarray(r + 1, r + 1 + bytes[r]), o);
        o += bytes[r];
      }
      const frame = lzwDecode(stream, minCodeSize, fw * fh);
      if (frame === null) throw damaged('truncated LZW stream');
      const rows = flags & 0x40 ? deinterlace(frame, fw, fh) : frame;
      // Around a smaller frame lies the transparent index, else 0 (Pillow; not the background index).
      let indices = rows;
      if (left !== 0 || top !== 0 || fw !== w || fh !== h) {
        indices = new Uint8Array(w * h).fill(transparentIndex ?? 0);
        for (let y = 0; y < fh; y++) indices.set(rows.subarray(y * fw, (y + 1) * fw), (y + top) * w + left);
      }
      // No colour table at all: Pillow reads the indices as grey levels ("L").
      if (palette.length === 0) palette = Array.from({ length: 256 }, (_, i) => [i, i, i] as [number, number, number]);
      return { width: w, height: h, indices, palette, transparentIndex };
    } else if (block === 0x3b) {
      throw damaged('no image frame before the trailer');
    } else {
      throw damaged(`unknown block 0x${block.toString(16)}`);
    }
  }
}

function readPalette(bytes: Uint8Array, p: number, size: number): [number, number, number][] {
  const pal: [number, number, number][] = [];
  for (let i = 0; i < size; i++) pal.push([bytes[p + 3 * i], bytes[p + 3 * i + 1], bytes[p + 3 * i + 2]]);
  return pal;
}

/**
 * GIF-flavoured LZW (LSB-first codes, 12-bit max). Returns null when the stream ends early.
 * Each dictionary entry is remembered as (position, length) of an earlier occurrence in the
 * output, so emitting a code is a copy; masks have long runs, where this is much faster than
 * walking prefix chains.
 */
function lzwDecode(src: Uint8Array, minCodeSize: number, pixels: number): Uint8Array | null {
  const out = new Uint8Array(pixels);
  const pos = new Int32Array(4096);
  const len = new Int32Array(4096);
  const clear = 1 << minCodeSize;
  const eoi = clear + 1;
  let codeSize = minCodeSize + 1;
  let codeMask = (1 << codeSize) - 1;
  let next = eoi + 1;
  let prevPos = -1; // where the previous code's string was written (-1 right after a clear)
  let prevLen = 0;
  let bits = 0;
  let acc = 0;
  let sp = 0;
  let o = 0;
  while (o < pixels) {
    while (bits < codeSize) {
      if (sp >= src.length) return null;
      acc |= src[sp++] << bits;
      bits += 8;
    }
    const code = acc & codeMask;
    acc >>>= codeSize;
    bits -= codeSize;
    if (code === clear) {
      codeSize = minCodeSize + 1;
      codeMask = (1 << codeSize) - 1;
      next = eoi + 1;
      prevPos = -1;
      continue;
    }
    if (code === eoi) break;
    let n: number;
    if (code < clear) {
      out[o] = code;
      n = 1;
    } else if (code < next && code > eoi) {
      n = Math.min(len[code], pixels - o);
      copy(out, pos[code], o, n);
    } else if (code === next && prevPos >= 0) {
      // KwKwK case: the previous string plus its own first byte.
      n = Math.min(prevLen + 1, pixels - o);
      copy(out, prevPos, o, Math.min(prevLen, n));
      if (n > prevLen) out[o + prevLen] = out[prevPos];
    } else {
      return null; // corrupt code
    }
    // New entry = previous string + first byte of this one, which is exactly the previous string's
    // occurrence extended by one byte (this string follows it in the output).
    if (prevPos >= 0 && next < 4096) {
      pos[next] = prevPos;
      len[next] = prevLen + 1;
      next++;
      if (next === 1 << codeSize && codeSize < 12) {
        codeSize++;
        codeMask = (1 << codeSize) - 1;
      }
    }
    prevPos = o;
    prevLen = n;
    o += n;
  }
  return o === pixels ? out : null;
}

/** out[to..to+n) = out[from..from+n), non-overlapping; short runs by hand, long ones by memmove. */
function copy(out: Uint8Array, from: number, to: number, n: number): void {
  if (n < 24) for (let k = 0; k < n; k++) out[to + k] = out[from + k];
  else out.copyWithin(to, from, from + n);
}

function deinterlace(src: Uint8Array, w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h);
  let r = 0;
  for (const [start, step] of [
    [0, 8],
    [4, 8],
    [2, 4],
    [1, 2],
  ]) {
    for (let y = start; y < h; y += step, r++) out.set(src.subarray(r * w, (r + 1) * w), y * w);
  }
  return out;
}

/**
 * Encodes indices + palette as a single-frame GIF89a (palette padded to a power of two).
 * `indices` is [H, W]; every index must be < palette.length.
 */
export function encodeGifIndices(indices: Uint8Array, width: number, height: number, palette: readonly (readonly [number, number, number])[]): Uint8Array {
  if (indices.length !== width * height) throw new Error(`encodeGifIndices: expected ${width * height} indices, got ${indices.length}`);
  let bitsPerIndex = 1;
  while (1 << bitsPerIndex < palette.length) bitsPerIndex++;
  if (bitsPerIndex > 8) throw new Error('encodeGifIndices: at most 256 palette entries');
  const tableSize = 1 << bitsPerIndex;
  const out: number[] = [];
  const u16 = (v: number) => out.push(v & 0xff, (v >> 8) & 0xff);
  out.push(...Buffer.from('GIF89a', 'latin1'));
  u16(width);
  u16(height);
  out.push(0x80 | ((bitsPerIndex - 1) << 4) | (bitsPerIndex - 1), 0, 0);
  for (let i = 0; i < tableSize; i++) out.push(...(palette[i] ?? [0, 0, 0]));
  out.push(0x2c);
  u16(0);
  u16(0);
  u16(width);
  u16(height);
  out.push(0);
  const minCodeSize = Math.max(2, bitsPerIndex);
  out.push(minCodeSize);
  const lzw = lzwEncode(indices, minCodeSize);
  for (let i = 0; i < lzw.length; i += 255) {
    const chunk = lzw.subarray(i, i + 255);
    out.push(chunk.length, ...chunk);
  }
  out.push(0, 0x3b);
  return Uint8Array.from(out);
}

function lzwEncode(indices: Uint8Array, minCodeSize: number): Uint8Array {
  const clear = 1 << minCodeSize;
  const eoi = clear + 1;
  const table = new Int16Array(4096 * 256).fill(-1); // (prefix code, next index) -> code
  const bytes: number[] = [];
  let acc = 0;
  let bits = 0;
  let codeSize = minCodeSize + 1;
  const emit = (code: number) => {
    acc |= code << bits;
    bits += codeSize;
    while (bits >= 8) {
      bytes.push(acc & 0xff);
      acc >>>= 8;
      bits -= 8;
    }
  };
  emit(clear);
  let next = eoi + 1;
  let cur = indices[0];
  for (let i = 1; i < indices.length; i++) {
    const k = indices[i];
    const key = cur * 256 + k;
    const found = table[key];
    if (found >= 0) {
      cur = found;
      continue;
    }
    emit(cur);
    if (next === 4096) {
      emit(clear);
      table.fill(-1);
      next = eoi + 1;
      codeSize = minCodeSize + 1;
    } else {
      if (next >= 1 << codeSize) codeSize++;
      table[key] = next++;
    }
    cur = k;
  }
  emit(cur);
  emit(eoi);
  if (bits > 0) bytes.push(acc & 0xff);
  return Uint8Array.from(bytes);
}
