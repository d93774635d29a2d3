/**
 * PNG details sharp does not give us: the header fields, the palette, and palette **indices**
 * (sharp expands palettes to RGB; Pytorch-UNet reads "P" masks as indices via PIL).
 */

import { decode } from 'fast-png';
import { DataError } from '../errors.js';

export interface PngHeader {
  width: number;
  height: number;
  bitDepth: number;
  /** 0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA */
  colorType: number;
}

/** IHDR fields (the first chunk, at a fixed offset). */
export function pngHeader(bytes: Uint8Array): PngHeader | null {
  if (bytes.length < 33) return null;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { width: dv.getUint32(16), height: dv.getUint32(20), bitDepth: bytes[24], colorType: bytes[25] };
}

/** The PLTE table as [r, g, b] triples, or null when absent. Walks chunks without inflating. */
export function pngPalette(bytes: Uint8Array): [number, number, number][] | null {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let p = 8; p + 8 <= bytes.length; ) {
    const len = dv.getUint32(p);
    const type = String.fromCharCode(bytes[p + 4], bytes[p + 5], bytes[p + 6], bytes[p + 7]);
    if (type === 'PLTE') {
      const pal: [number, number, number][] = [];
      for (let i = 0; i + 2 < len && p + 8 + i + 2 < bytes.length; i += 3) pal.push([bytes[p + 8 + i], bytes[p + 9 + i], bytes[p + 10 + i]]);
      return pal;
    }
    if (type === 'IDAT' || type === 'IEND') return null;
    p += 12 + len;
  }
  return null;
}

export function paletteIsGrey(palette: readonly (readonly [number, number, number])[]): boolean {
  return palette.every(([r, g, b]) => r === g && g === b);
}

/** Decodes a palette PNG into [H, W] indices (bit depths 1/2/4 unpacked), like PIL "P" mode. */
export function decodePngIndices(bytes: Uint8Array, file = '<buffer>'): { width: number; height: number; indices: Uint8Array; palette: [number, number, number][] } {
  let png: ReturnType<typeof decode>;
  try {
    png = decode(bytes);
  } catch (err) {
    throw new DataError(`cannot decode PNG: ${(err as Error).message}`, {
      file,
      hint: 'The file is damaged or truncated; export it again (or remove it and its image from the dataset).',
      cause: err,
    });
  }
  const { width, height, depth } = png;
  const data = png.data as Uint8Array;
  const palette = (png.palette ?? []).map((c) => [c[0], c[1], c[2]] as [number, number, number]);
  if (depth === 8) return { width, height, indices: new Uint8Array(data.buffer, data.byteOffset, width * height), palette };
  // Rows are packed MSB-first and padded to whole bytes.
  const indices = new Uint8Array(width * height);
  const stride = Math.ceil((width * depth) / 8);
  const perByte = 8 / depth;
  const mask = (1 << depth) - 1;
  for (let y = 0; y < height; y++) {
    const row = y * stride;
    for (let x = 0; x < width; x++) {
      const byte = data[row + Math.floor(x / perByte)];
      const shift = 8 - depth * ((x % perByte) + 1);
      indices[y * width + x] = (byte >> shift) & mask;
    }
  }
  return { width, height, indices, palette };
}
