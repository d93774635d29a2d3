// Strided views of a storage, materialised as C-contiguous bytes: how a saved tensor's
// (storage, offset, size, stride) becomes a RawTensor's data.
import { constants as bufferConstants } from 'node:buffer';
import { copyBytes } from './tensor.js';

/**
 * Copy the strided view (offset, shape, stride in elements) of `src` into a new
 * C-contiguous buffer. Dims are first simplified (size-1 dims dropped, adjacent
 * dims merged when they are contiguous with each other), so ordinary tensors are
 * one memcpy, row-major slices a memcpy per row, and only truly permuted layouts
 * (transposes, channels_last) take the per-element loop.
 */
export function gather(src: Uint8Array, itemsize: number, offset: number, shape: number[], stride: number[]): Uint8Array {
  let numel = 1;
  for (const s of shape) numel *= s;
  if (numel === 0) return new Uint8Array(0);
  const outBytes = numel * itemsize;
  const storageNumel = src.length / itemsize;
  let last = offset;
  for (let d = 0; d < shape.length; d++) last += (shape[d] - 1) * stride[d];
  if (!Number.isSafeInteger(outBytes) || last >= storageNumel) {
    throw new Error(`tensor view (offset ${offset}, size [${shape.join(', ')}], stride [${stride.join(', ')}]) exceeds its storage of ${storageNumel} elements`);
  }
  if (outBytes > bufferConstants.MAX_LENGTH) {
    throw new Error(`refusing to materialise a ${outBytes}-byte view (larger than a Node buffer can be)`);
  }

  // dims: [size, stride] outermost first, simplified.
  const dims: [number, number][] = [];
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const prev = dims[dims.length - 1];
    if (prev && prev[1] === shape[d] * stride[d]) {
      prev[0] *= shape[d];
      prev[1] = stride[d];
    } else dims.push([shape[d], stride[d]]);
  }
  if (dims.length === 0 || (dims.length === 1 && dims[0][1] === 1)) {
    return copyBytes(src, offset * itemsize, offset * itemsize + outBytes);
  }

  const out = new Uint8Array(outBytes);
  const [innerSize, innerStride] = dims[dims.length - 1];
  const outer = dims.slice(0, -1);
  const idx = new Array<number>(outer.length).fill(0);
  const rows = numel / innerSize;
  let base = offset; // element index of the current row's first element
  const advance = (): void => {
    for (let k = outer.length - 1; k >= 0; k--) {
      base += outer[k][1];
      if (++idx[k] < outer[k][0]) return;
      base -= outer[k][1] * outer[k][0];
      idx[k] = 0;
    }
  };

  if (innerStride === 1) {
    const rowBytes = innerSize * itemsize;
    for (let r = 0, o = 0; r < rows; r++, o += rowBytes) {
      out.set(src.subarray(base * itemsize, base * itemsize + rowBytes), o);
      advance();
    }
    return out;
  }

  // Per-element copy in word units (8-byte items as two u32 words, so NaN payloads are never touched).
  const word = Math.min(itemsize, 4);
  const wordsPerItem = itemsize / word;
  const aligned = src.byteOffset % word === 0 ? src : copyBytes(src);
  const view = (buf: ArrayBufferLike, byteOffset: number, bytes: number): Uint8Array | Uint16Array | Uint32Array =>
    word === 1 ? new Uint8Array(buf, byteOffset, bytes) : word === 2 ? new Uint16Array(buf, byteOffset, bytes / 2) : new Uint32Array(buf, byteOffset, bytes / 4);
  const s = view(aligned.buffer, aligned.byteOffset, aligned.length);
  const d = view(out.buffer, 0, out.length);
  let o = 0;
  for (let r = 0; r < rows; r++) {
    if (wordsPerItem === 1) {
      for (let j = 0, p = base; j < innerSize; j++, p += innerStride) d[o++] = s[p];
    } else {
      for (let j = 0, p = base * 2; j < innerSize; j++, p += innerStride * 2) {
        d[o++] = s[p];
        d[o++] = s[p + 1];
      }
    }
    advance();
  }
  return out;
}
