/** File formats: which extensions we accept and what a file really is (by its first bytes). */

import { extname } from 'node:path';

/** Extensions accepted in image and mask folders (lower case, with the dot). */
export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.gif', '.tif', '.tiff', '.bmp', '.webp', '.npy'] as const;

export type FileFormat = 'png' | 'jpeg' | 'gif' | 'tiff' | 'webp' | 'bmp' | 'npy' | 'unknown';

export function hasImageExtension(name: string): boolean {
  return (IMAGE_EXTENSIONS as readonly string[]).includes(extname(name).toLowerCase());
}

/**
 * The format from the magic number, so a JPEG saved as `.png` still loads (as with PIL, which
 * also ignores the extension) and a text file named `.png` gets a precise error.
 */
export function sniffFormat(bytes: Uint8Array): FileFormat {
  const b = bytes;
  const at = (i: number, s: string) => {
    for (let k = 0; k < s.length; k++) if (b[i + k] !== s.charCodeAt(k)) return false;
    return true;
  };
  if (b.length >= 8 && b[0] === 0x89 && at(1, 'PNG\r\n\x1a\n')) return 'png';
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (at(0, 'GIF87a') || at(0, 'GIF89a')) return 'gif';
  if (at(0, 'II*\0') || at(0, 'MM\0*') || at(0, 'II+\0') || at(0, 'MM\0+')) return 'tiff';
  if (at(0, 'RIFF') && at(8, 'WEBP')) return 'webp';
  if (b.length >= 6 && b[0] === 0x93 && at(1, 'NUMPY')) return 'npy';
  if (at(0, 'BM') && b.length >= 26) return 'bmp';
  return 'unknown';
}

/** A short printable preview of the first bytes, for "this is not an image" errors. */
export function describeBytes(bytes: Uint8Array): string {
  const head = bytes.subarray(0, 16);
  const printable = head.every((c) => c === 9 || c === 10 || c === 13 || (c >= 32 && c < 127));
  if (printable) return `text ${JSON.stringify(Buffer.from(head).toString('latin1'))}`;
  return `bytes ${Array.from(head.subarray(0, 8), (c) => c.toString(16).padStart(2, '0')).join(' ')}`;
}

/** What the decoders need to know before decoding, as in sharp's `Metadata`. */
export interface HeaderInfo {
  width: number;
  height: number;
  space: 'b-w' | 'grey16' | 'srgb' | 'rgb16' | 'cmyk';
  depth: 'uchar' | 'ushort';
  hasAlpha: boolean;
  isPalette: boolean;
  pages: number;
}

/**
 * Header fields for PNG and baseline/progressive 8-bit JPEG, read from the bytes (no decode).
 * This saves a sharp `metadata()` round trip per file; anything unusual returns null and the
 * caller asks sharp.
 */
export function readHeader(b: Uint8Array, format: FileFormat): HeaderInfo | null {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (format === 'png') {
    if (b.length < 33 || String.fromCharCode(b[12], b[13], b[14], b[15]) !== 'IHDR') return null;
    const width = dv.getUint32(16),
      height = dv.getUint32(20),
      bitDepth = b[24],
      colorType = b[25];
    let hasTrns = false;
    // Walk the chunks before the image data: tRNS adds an alpha channel, acTL means APNG.
    for (let p = 8; p + 8 <= b.length; ) {
      const len = dv.getUint32(p);
      const t = String.fromCharCode(b[p + 4], b[p + 5], b[p + 6], b[p + 7]);
      if (t === 'IDAT' || t === 'IEND') break;
      if (t === 'acTL') return null;
      if (t === 'tRNS') hasTrns = true;
      p += 12 + len;
    }
    const is16 = bitDepth === 16;
    const grey = colorType === 0 || colorType === 4;
    if (![0, 2, 3, 4, 6].includes(colorType)) return null;
    return {
      width,
      height,
      space: grey ? (is16 ? 'grey16' : 'b-w') : is16 ? 'rgb16' : 'srgb',
      depth: is16 ? 'ushort' : 'uchar',
      hasAlpha: colorType === 4 || colorType === 6 || hasTrns,
      isPalette: colorType === 3,
      pages: 1,
    };
  }
  if (format === 'jpeg') {
    for (let p = 2; p + 4 <= b.length; ) {
      if (b[p] !== 0xff) return null;
      const marker = b[p + 1];
      if (marker === 0xff) {
        p++;
        continue;
      } // fill byte
      const len = dv.getUint16(p + 2);
      const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
      if (isSof) {
        if (p + 10 > b.length || b[p + 4] !== 8) return null; // 12-bit and friends: let sharp decide
        const comps = b[p + 9];
        const space = comps === 1 ? 'b-w' : comps === 3 ? 'srgb' : comps === 4 ? 'cmyk' : null;
        if (!space) return null;
        return { width: dv.getUint16(p + 7), height: dv.getUint16(p + 5), space, depth: 'uchar', hasAlpha: false, isPalette: false, pages: 1 };
      }
      if (marker === 0xda || marker === 0xd9) return null; // scan before any frame header: odd file
      p += 2 + len;
    }
    return null;
  }
  return null;
}
