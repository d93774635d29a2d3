/**
 * Browsers apply a JPEG's EXIF orientation when decoding (Chromium ignores createImageBitmap's
 * imageOrientation 'none' since the spec renamed it 'from-image'); `unet predict` (sharp, like PIL)
 * does not. So the page decodes a copy whose orientation tag says 1 (as stored): a phone photo
 * gets the same, unrotated mask in the page and on the command line.
 */

const TAG_ORIENTATION = 0x0112;

/** Offset of the orientation value (a SHORT) in a TIFF block, or -1. */
function orientationAt(dv: DataView, tiff: number, end: number): number {
  if (tiff + 8 > end) return -1;
  const order = dv.getUint16(tiff);
  if (order !== 0x4949 && order !== 0x4d4d) return -1; // "II" little-endian, "MM" big-endian
  const le = order === 0x4949;
  const ifd = tiff + dv.getUint32(tiff + 4, le);
  if (ifd + 2 > end) return -1;
  const n = dv.getUint16(ifd, le);
  for (let i = 0; i < n; i++) {
    const e = ifd + 2 + 12 * i;
    if (e + 12 > end) return -1;
    if (dv.getUint16(e, le) === TAG_ORIENTATION && dv.getUint16(e + 2, le) === 3 /* SHORT */) return e + 8;
  }
  return -1;
}

/** The bytes with a JPEG's EXIF orientation set to 1 (a copy), or the input as it is. */
export function withoutOrientation(bytes: Uint8Array): Uint8Array {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return bytes; // not a JPEG
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let p = 2;
  while (p + 4 <= bytes.length && bytes[p] === 0xff) {
    const marker = bytes[p + 1];
    if (marker === 0xda || marker === 0xd9) break; // start of scan / end of image: no more metadata
    const len = dv.getUint16(p + 2);
    const end = Math.min(p + 2 + len, bytes.length);
    const exif = marker === 0xe1 && len >= 16 && String.fromCharCode(...bytes.subarray(p + 4, p + 10)) === 'Exif\0\0';
    if (exif) {
      const at = orientationAt(dv, p + 10, end);
      const le = dv.getUint16(p + 10) === 0x4949;
      if (at < 0 || dv.getUint16(at, le) <= 1) return bytes; // absent, or already as stored (0: unset)
      const out = bytes.slice();
      new DataView(out.buffer).setUint16(at, 1, le);
      return out;
    }
    p = end;
  }
  return bytes;
}
