// safetensors (huggingface/safetensors) read/write in pure TypeScript.
//
// Layout: u64 LE header length N | N bytes of UTF-8 JSON | data buffer.
//   header = {"__metadata__": {str: str}?, "<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...}
//   offsets are relative to the data buffer, end exclusive; tensors are
//   C-contiguous little-endian and tile the buffer exactly (no holes, no overlap).
// We pad the header with spaces to a multiple of 8 and order tensors by item
// size (largest first), as the reference implementation does, so every tensor
// starts aligned to its item size and can be viewed as a typed array in place.
import { readDecoded, writeFileAtomic } from './files.js';
import { defineKey } from './own.js';
import { DTYPE_ITEMSIZE, type DType, type RawTensor } from './tensor.js';

const TO_ST: Readonly<Record<DType, string>> = {
  float32: 'F32',
  float64: 'F64',
  float16: 'F16',
  bfloat16: 'BF16',
  int64: 'I64',
  int32: 'I32',
  int16: 'I16',
  int8: 'I8',
  uint8: 'U8',
  bool: 'BOOL',
};
const FROM_ST = new Map<string, DType>(Object.entries(TO_ST).map(([d, s]) => [s, d as DType]));

/** The reference implementation's limit; a larger header is treated as hostile. */
const MAX_HEADER_BYTES = 100_000_000;

export interface Safetensors {
  tensors: Record<string, RawTensor>;
  metadata: Record<string, string>;
}

// ---------------------------------------------------------------------------
// Writing

/** Encode tensors (and optional string metadata) as a safetensors file. */
export function encodeSafetensors(tensors: Record<string, RawTensor>, metadata?: Record<string, string>): Uint8Array {
  const names = Object.keys(tensors);
  for (const name of names) {
    if (name === '__metadata__') throw new Error('"__metadata__" cannot be a tensor name');
    const t = tensors[name];
    if (t?.kind !== 'tensor' || !(t.data instanceof Uint8Array)) throw new Error(`tensors[${JSON.stringify(name)}] is not a RawTensor`);
    if (!Object.hasOwn(TO_ST, t.dtype)) throw new Error(`tensors[${JSON.stringify(name)}]: unknown dtype ${String(t.dtype)}`);
    let numel = 1;
    for (const s of t.shape) {
      if (!Number.isSafeInteger(s) || s < 0) throw new Error(`tensors[${JSON.stringify(name)}]: invalid shape [${t.shape.join(', ')}]`);
      numel *= s;
    }
    const want = numel * DTYPE_ITEMSIZE[t.dtype];
    if (t.data.length !== want) throw new Error(`tensors[${JSON.stringify(name)}]: data has ${t.data.length} bytes, ${t.dtype}[${t.shape.join(', ')}] needs ${want}`);
  }
  // Largest item size first keeps each tensor aligned to its item size; ties by name for deterministic output.
  names.sort((a, b) => DTYPE_ITEMSIZE[tensors[b].dtype] - DTYPE_ITEMSIZE[tensors[a].dtype] || (a < b ? -1 : a > b ? 1 : 0));

  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) {
    const meta: Record<string, string> = {};
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new Error(`metadata[${JSON.stringify(k)}] must be a string, got ${typeof v}`);
      defineKey(meta, k, v);
    }
    header.__metadata__ = meta;
  }
  let offset = 0;
  for (const name of names) {
    const t = tensors[name];
    defineKey(header, name, { dtype: TO_ST[t.dtype], shape: t.shape, data_offsets: [offset, offset + t.data.length] });
    offset += t.data.length;
  }
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded > MAX_HEADER_BYTES) throw new Error(`safetensors header would be ${padded} bytes (limit ${MAX_HEADER_BYTES})`);

  const out = new Uint8Array(8 + padded + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(padded), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + padded); // spaces are JSON whitespace
  let p = 8 + padded;
  for (const name of names) {
    out.set(tensors[name].data, p);
    p += tensors[name].data.length;
  }
  return out;
}

/** Save tensors as safetensors, atomically (temp file, fsync, rename). */
export async function saveSafetensors(path: string, tensors: Record<string, RawTensor>, metadata?: Record<string, string>): Promise<void> {
  let bytes: Uint8Array;
  try {
    bytes = encodeSafetensors(tensors, metadata);
  } catch (err) {
    throw new Error(`${path}: ${(err as Error).message}`, { cause: err });
  }
  await writeFileAtomic(path, [bytes]);
}

// ---------------------------------------------------------------------------
// Reading

/**
 * Strict JSON parser for the header. JSON.parse silently keeps the last of
 * duplicate keys; the format forbids duplicates, so objects become Maps here
 * and a repeated key is an error.
 */
function parseHeaderJson(text: string): unknown {
  let i = 0;
  const fail = (msg: string): never => {
    throw new Error(`safetensors: header JSON ${msg} at offset ${i}`);
  };
  const ws = (): void => {
    while (i < text.length && (text[i] === ' ' || text[i] === '\n' || text[i] === '\r' || text[i] === '\t')) i++;
  };
  const value = (depth: number): unknown => {
    if (depth > 8) fail('is nested too deeply'); // a valid header is 3 levels deep
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const obj = new Map<string, unknown>();
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expects a string key');
        const k = string();
        if (obj.has(k)) fail(`has duplicate key ${JSON.stringify(k)}`);
        ws();
        if (text[i++] !== ':') fail('expects ":"');
        obj.set(k, value(depth + 1));
        ws();
        const sep = text[i++];
        if (sep === '}') return obj;
        if (sep !== ',') fail('expects "," or "}"');
      }
    }
    if (c === '[') {
      i++;
      const arr: unknown[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1));
        ws();
        const sep = text[i++];
        if (sep === ']') return arr;
        if (sep !== ',') fail('expects "," or "]"');
      }
    }
    if (c === '"') return string();
    const m = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?|true|false|null)/.exec(text.slice(i, i + 64));
    if (!m) return fail('has an unexpected token');
    i += m[0].length;
    return m[0] === 'true' ? true : m[0] === 'false' ? false : m[0] === 'null' ? null : Number(m[0]);
  };
  const string = (): string => {
    // Find the closing quote (skipping escapes) and let JSON.parse decode the literal.
    const start = i++;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    if (i >= text.length) fail('has an unterminated string');
    i++;
    try {
      return JSON.parse(text.slice(start, i)) as string;
    } catch {
      return fail('has an invalid string');
    }
  };
  const v = value(0);
  ws();
  if (i !== text.length) fail('has trailing characters');
  return v;
}

/** Decode a safetensors file held in memory. Tensor data is copied (own, aligned buffers). */
export function decodeSafetensors(bytes: Uint8Array): Safetensors {
  const fail = (msg: string): never => {
    throw new Error(`safetensors: ${msg}`);
  };
  if (bytes.length < 8) fail(`file is too short (${bytes.length} bytes)`);
  const n64 = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES)) fail(`header length ${n64} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const n = Number(n64);
  if (8 + n > bytes.length) fail(`header length ${n} runs past the end of the file (truncated?)`);
  if (n < 2 || bytes[8] !== 0x7b /* { */) fail('header is not a JSON object');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n));
  } catch {
    return fail('header is not valid UTF-8');
  }
  const header = parseHeaderJson(text);
  if (!(header instanceof Map)) return fail('header is not a JSON object');

  const dataStart = 8 + n;
  const dataLen = bytes.length - dataStart;
  const metadata: Record<string, string> = {};
  const entries: { name: string; dtype: DType; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, info] of header) {
    if (name === '__metadata__') {
      if (!(info instanceof Map)) fail('__metadata__ must be an object');
      for (const [k, v] of info as Map<string, unknown>) {
        if (typeof v !== 'string') fail(`__metadata__[${JSON.stringify(k)}] is not a string`);
        defineKey(metadata, k, v as string);
      }
      continue;
    }
    const what = `tensor ${JSON.stringify(name)}`;
    if (!(info instanceof Map)) return fail(`${what} is not an object`);
    const st = info.get('dtype');
    const dtype = typeof st === 'string' ? FROM_ST.get(st) : undefined;
    if (!dtype) return fail(`${what} has unsupported dtype ${JSON.stringify(st)}`);
    const shape = info.get('shape');
    const offsets = info.get('data_offsets');
    if (!Array.isArray(shape) || !shape.every((s) => Number.isSafeInteger(s) && s >= 0)) return fail(`${what} has an invalid shape`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      return fail(`${what} has invalid data_offsets`);
    }
    const [begin, end] = offsets as [number, number];
    if (begin > end || end > dataLen) fail(`${what} data_offsets [${begin}, ${end}] are outside the ${dataLen}-byte data buffer`);
    let numel = 1;
    for (const s of shape as number[]) numel *= s;
    if (numel * DTYPE_ITEMSIZE[dtype] !== end - begin) fail(`${what}: ${st}[${shape.join(', ')}] needs ${numel * DTYPE_ITEMSIZE[dtype]} bytes, data_offsets span ${end - begin}`);
    entries.push({ name, dtype, shape: shape as number[], begin, end });
  }

  // The tensors must tile the buffer exactly: sorted by offset, each starts where the previous ended.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expect = 0;
  for (const e of sorted) {
    if (e.begin !== expect) fail(`tensor ${JSON.stringify(e.name)} starts at ${e.begin}, expected ${expect} (hole or overlap)`);
    expect = e.end;
  }
  if (expect !== dataLen) fail(`tensors cover ${expect} bytes, but the data buffer has ${dataLen}`);

  const tensors: Record<string, RawTensor> = {};
  for (const e of entries) {
    const data = new Uint8Array(e.end - e.begin);
    data.set(bytes.subarray(dataStart + e.begin, dataStart + e.end));
    defineKey(tensors, e.name, { kind: 'tensor', dtype: e.dtype, shape: e.shape, data });
  }
  return { tensors, metadata };
}

/** Load a safetensors file. Errors name the file. */
export function loadSafetensors(path: string): Promise<Safetensors> {
  return readDecoded(path, decodeSafetensors);
}
