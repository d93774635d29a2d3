/**
 * JPEG decoding with the system libjpeg-turbo through the addon (native/jpeg.cpp): the decoder and
 * defaults Pillow uses, at about a third of libvips' CPU time for a full-size decode.
 */
import { N } from '../engine/native.js';

export interface DecodedJpeg {
  data: Uint8Array; // [H,W,C] interleaved
  width: number;
  height: number;
  channels: 1 | 3;
}

/**
 * The pixels of a greyscale or YCbCr/RGB JPEG, or null when this file (CMYK, 12-bit, damaged) or
 * this build (no libjpeg headers) needs sharp instead: sharp then decodes it or says what is wrong.
 */
export async function decodeJpeg(bytes: Uint8Array): Promise<DecodedJpeg | null> {
  try {
    return (await N.decodeJpeg(bytes)) as DecodedJpeg;
  } catch {
    return null;
  }
}
