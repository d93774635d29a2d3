/**
 * JPEG decoding with the system libjpeg-turbo through the addon (native/jpeg.cpp): the decoder and
 * defaults Pillow uses, at about two thirds of libvips' CPU time for a full-size decode.
 */
import { N } from '../engine/native.js';
import type { DecodedJpegPixels } from '../engine/native-contract.js';

/**
 * The [H,W,C] pixels of a greyscale or YCbCr/RGB JPEG, or null when this file (CMYK, 12-bit,
 * truncated, damaged) or this build (no libjpeg headers) needs sharp: sharp then decodes it or says
 * what is wrong.
 */
export async function decodeJpeg(bytes: Uint8Array): Promise<DecodedJpegPixels | null> {
  try {
    return await N.decodeJpeg(bytes);
  } catch {
    return null;
  }
}
