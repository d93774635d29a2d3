/**
 * A small reader and writer for NumPy `.npy` files (format versions 1-3, C order).
 * Spec: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
 */

import { DataError } from '../errors.js';

export type NpyDtype = 'bool' | 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'int64' | 'uint64' | 'float32' | 'float64';

/** int64/uint64 arrive as Float64Array (exact up to 2^53, which covers any pixel value). */
export type NpyData = Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array;

export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  /** Row-major (C order) values; `bool` is 0/1 bytes. */
  data: NpyData;
}

const DTYPES: Record<string, { dtype: NpyDtype; bytes: number }> = {
  b1: { dtype: 'bool', bytes: 1 },
  u1: { dtype: 'uint8', bytes: 1 },
  i1: { dtype: 'int8', bytes: 1 },
  u2: { dtype: 'uint16', bytes: 2 },
  i2: { dtype: 'int16', bytes: 2 },
  u4: { dtype: 'uint32', bytes: 4 },
  i4: { dtype: 'int32', bytes: 4 },
  i8: { dtype: 'int64', bytes: 8 },
  u8: { dtype: 'uint64', bytes: 8 },
  f4: { dtype: 'float32', bytes: 4 },
  f8: { dtype: 'float64', bytes: 8 },
};

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Header fields only (cheap): lets callers check the pixel limit before copying data. */
export function parseNpyHeader(bytes: Uint8Array, file = '<buffer>'): { dtype: NpyDtype; shape: number[]; littleEndian: boolean; dataOffset: number; itemBytes: number } {
  const bad = (what: string) => new DataError(`not a valid .npy file (${what})`, { file, hint: 'Save arrays with numpy.save(path, array); .npz archives and pickled objects are not supported.' });
  if (bytes.length < 10 || bytes[0] !== 0x93 || String.fromCharCode(...bytes.subarray(1, 6)) !== 'NUMPY') throw bad('missing \\x93NUMPY magic');
  const major = bytes[6];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let headerStart: number;
  if (major === 1) {
    headerLen = view.getUint16(8, true);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw bad('truncated header');
    headerLen = view.getUint32(8, true);
    headerStart = 12;
  } else {
    throw bad(`unknown format version ${major}`);
  }
  if (headerStart + headerLen > bytes.length) throw bad('truncated header');
  const header = Buffer.from(bytes.buffer, bytes.byteOffset + headerStart, headerLen).toString(major === 3 ? 'utf8' : 'latin1');

  const descr = /'descr'\s*:\s*'([<>|=])([a-z])(\d+)'/.exec(header);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shapeM = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shapeM) throw bad(`unreadable header ${JSON.stringify(header.trim())}`);
  const spec = DTYPES[descr[2] + descr[3]];
  if (!spec) {
    throw new DataError(`unsupported .npy dtype '${descr[1]}${descr[2]}${descr[3]}'`, {
      file,
      hint: 'Use uint8, uint16, int32, int64, float32 or bool, e.g. np.save(path, array.astype(np.float32)).',
    });
  }
  if (fortran[1] === 'True') {
    throw new DataError('.npy array is stored in Fortran order', { file, hint: 'Save it in C order: np.save(path, np.ascontiguousarray(array)).' });
  }
  const shape = shapeM[1]
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw bad(`bad shape (${shapeM[1]})`);
  const littleEndian = descr[1] === '<' || descr[1] === '|' || (descr[1] === '=' && LITTLE_ENDIAN_HOST);
  return { dtype: spec.dtype, shape, littleEndian, dataOffset: headerStart + headerLen, itemBytes: spec.bytes };
}

/** Parses a whole `.npy` file. Throws DataError for malformed, truncated or unsupported files. */
export function parseNpy(bytes: Uint8Array, file = '<buffer>'): NpyArray {
  const h = parseNpyHeader(bytes, file);
  const count = h.shape.reduce((a, b) => a * b, 1);
  const need = count * h.itemBytes;
  if (bytes.length - h.dataOffset < need) {
    throw new DataError(`.npy file is truncated: expected ${need} data bytes for shape (${h.shape.join(', ')}), found ${bytes.length - h.dataOffset}`, {
      file,
      hint: 'The file was cut off (interrupted copy or download); save it again.',
    });
  }
  // Copy into a fresh, aligned buffer (the source may be a Buffer at an odd offset; note that
  // Buffer#slice would return a view, hence the explicit copy).
  const raw = new Uint8Array(bytes.subarray(h.dataOffset, h.dataOffset + need));
  const dv = new DataView(raw.buffer);
  const le = h.littleEndian;
  const native = le === LITTLE_ENDIAN_HOST || h.itemBytes === 1;
  let data: NpyData;
  switch (h.dtype) {
    case 'bool':
    case 'uint8':
      data = raw;
      break;
    case 'int8':
      data = new Int8Array(raw.buffer);
      break;
    case 'uint16':
      data = native ? new Uint16Array(raw.buffer) : Uint16Array.from({ length: count }, (_, i) => dv.getUint16(2 * i, le));
      break;
    case 'int16':
      data = native ? new Int16Array(raw.buffer) : Int16Array.from({ length: count }, (_, i) => dv.getInt16(2 * i, le));
      break;
    case 'uint32':
      data = native ? new Uint32Array(raw.buffer) : Uint32Array.from({ length: count }, (_, i) => dv.getUint32(4 * i, le));
      break;
    case 'int32':
      data = native ? new Int32Array(raw.buffer) : Int32Array.from({ length: count }, (_, i) => dv.getInt32(4 * i, le));
      break;
    case 'float32':
      data = native ? new Float32Array(raw.buffer) : Float32Array.from({ length: count }, (_, i) => dv.getFloat32(4 * i, le));
      break;
    case 'float64':
      data = native ? new Float64Array(raw.buffer) : Float64Array.from({ length: count }, (_, i) => dv.getFloat64(8 * i, le));
      break;
    case 'int64': {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = Number(dv.getBigInt64(8 * i, le));
      data = out;
      break;
    }
    case 'uint64': {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = Number(dv.getBigUint64(8 * i, le));
      data = out;
      break;
    }
  }
  if (h.dtype === 'bool') for (let i = 0; i < count; i++) if (raw[i] > 1) raw[i] = 1;
  return { dtype: h.dtype, shape: h.shape, data };
}

const DESCR: Record<string, string> = {
  Uint8Array: '|u1',
  Int8Array: '|i1',
  Uint16Array: '<u2',
  Int16Array: '<i2',
  Uint32Array: '<u4',
  Int32Array: '<i4',
  Float32Array: '<f4',
  Float64Array: '<f8',
};

/** Encodes a C-order array as `.npy` v1.0 (little endian). `dtype: 'bool'` writes a Uint8Array as bool. */
export function encodeNpy(data: NpyData, shape: readonly number[], opts: { dtype?: 'bool' } = {}): Uint8Array {
  if (!LITTLE_ENDIAN_HOST) throw new Error('encodeNpy: big-endian hosts are not supported');
  const descr = opts.dtype === 'bool' ? '|b1' : DESCR[data.constructor.name];
  if (!descr) throw new Error(`encodeNpy: unsupported array type ${data.constructor.name}`);
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new Error(`encodeNpy: shape (${shape.join(', ')}) needs ${count} values, got ${data.length}`);
  const shapeStr = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeStr}, }`;
  // Pad so that magic(6) + version(2) + len(2) + header is a multiple of 64, ending in '\n'.
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = `${header}${' '.repeat(total - 10 - header.length - 1)}\n`;
  const out = new Uint8Array(total + data.byteLength);
  out.set([0x93, ...Buffer.from('NUMPY', 'latin1'), 1, 0], 0);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(Buffer.from(header, 'latin1'), 10);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), total);
  return out;
}
