// Minimal zip reader/writer for PyTorch checkpoint archives.
//
// Why our own: torch.save writes a plain "stored" (uncompressed) zip whose
// records are 64-byte aligned so that tensor bytes can be used in place. We
// need exactly that layout on write, and on read a parser that treats every
// length and offset as untrusted (checkpoints come from anywhere). Compressed
// records (deflate) are accepted on read because re-zipping tools produce them.
//
// All failures throw a plain Error whose message starts with "zip:"; callers add
// the file path.
import zlib from 'node:zlib';

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const LOCAL_HEADER_SIZE = 30;
const CENTRAL_HEADER_SIZE = 46;
const EOCD_SIZE = 22;
const METHOD_STORED = 0;
const METHOD_DEFLATE = 8;
/** Flag bit 11: names are UTF-8 (torch sets it; we do too). */
const FLAG_UTF8 = 0x0800;
/** torch aligns every record's data to this many bytes (caffe2 inline_container kFieldAlignment). */
export const TORCH_RECORD_ALIGNMENT = 64;

// ---------------------------------------------------------------------------
// CRC-32 (IEEE). zlib.crc32 is native and fast (~4 GB/s) but only exists since
// Node 20.15; package.json allows >=20.9, so keep a table-driven fallback.

let crcTable: Uint32Array | undefined;
function crc32Js(data: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  const t = crcTable;
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = t[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export function crc32(data: Uint8Array): number {
  return typeof zlib.crc32 === 'function' ? zlib.crc32(data) >>> 0 : crc32Js(data);
}

// ---------------------------------------------------------------------------
// Reading

export interface ZipEntry {
  name: string;
  method: number;
  flags: number;
  crc32: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

function fail(msg: string): never {
  throw new Error(`zip: ${msg}`);
}

/** Read a u64 as a number, rejecting values past 2^53 (no real file is that big). */
function u64(dv: DataView, at: number, what: string): number {
  const v = dv.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) fail(`${what} is out of range`);
  return Number(v);
}

/**
 * Locate the central directory from the end-of-central-directory record (zip64 too), checking
 * that it lies inside the file and is large enough for its entry count.
 */
function findCentralDirectory(dv: DataView, len: number): { count: number; cdOffset: number; cdSize: number } {
  if (len < EOCD_SIZE) fail(`file is too short to be a zip archive (${len} bytes)`);
  // The end-of-central-directory record sits at the end, followed by a comment
  // of up to 65535 bytes; scan backwards for its signature.
  let eocd = -1;
  for (let p = len - EOCD_SIZE; p >= Math.max(0, len - EOCD_SIZE - 0xffff); p--) {
    if (dv.getUint32(p, true) === SIG_EOCD && p + EOCD_SIZE + dv.getUint16(p + 20, true) <= len) {
      eocd = p;
      break;
    }
  }
  if (eocd < 0) fail('no end-of-central-directory record (not a zip archive, or truncated)');

  let count = dv.getUint16(eocd + 10, true);
  let cdSize = dv.getUint32(eocd + 12, true);
  let cdOffset = dv.getUint32(eocd + 16, true);
  let cdLimit = eocd; // the central directory must end before this
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    // Zip64: a locator right before the EOCD points at the zip64 EOCD record.
    const loc = eocd - 20;
    if (loc < 0 || dv.getUint32(loc, true) !== SIG_ZIP64_LOCATOR) fail('zip64 end-of-central-directory locator is missing');
    const z64 = u64(dv, loc + 8, 'zip64 end-of-central-directory offset');
    if (z64 + 56 > loc || dv.getUint32(z64, true) !== SIG_ZIP64_EOCD) fail('zip64 end-of-central-directory record is missing or corrupt');
    count = u64(dv, z64 + 32, 'zip64 entry count');
    cdSize = u64(dv, z64 + 40, 'zip64 central directory size');
    cdOffset = u64(dv, z64 + 48, 'zip64 central directory offset');
    cdLimit = z64;
  }
  if (cdOffset + cdSize > cdLimit) fail('central directory lies outside the file (truncated?)');
  // Every central header is at least 46 bytes, which bounds the entry loop.
  if (count * CENTRAL_HEADER_SIZE > cdSize) fail(`central directory is too small for ${count} entries`);
  return { count, cdOffset, cdSize };
}

/** The central directory entry `i` at byte `p` (which must end by `cdEnd`), and where the next one starts. */
function readCentralEntry(dv: DataView, bytes: Uint8Array, p: number, cdEnd: number, i: number): { entry: ZipEntry; next: number } {
  if (p + CENTRAL_HEADER_SIZE > cdEnd || dv.getUint32(p, true) !== SIG_CENTRAL) fail(`central directory entry ${i} is corrupt`);
  const flags = dv.getUint16(p + 8, true);
  const method = dv.getUint16(p + 10, true);
  const crc = dv.getUint32(p + 16, true);
  const nameLen = dv.getUint16(p + 28, true);
  const extraLen = dv.getUint16(p + 30, true);
  const commentLen = dv.getUint16(p + 32, true);
  const nameStart = p + CENTRAL_HEADER_SIZE;
  const extraStart = nameStart + nameLen;
  const next = extraStart + extraLen + commentLen;
  if (next > cdEnd) fail(`central directory entry ${i} overruns the directory`);
  const nameBytes = bytes.subarray(nameStart, extraStart);
  const name = Buffer.from(nameBytes.buffer, nameBytes.byteOffset, nameBytes.length).toString(flags & FLAG_UTF8 ? 'utf8' : 'latin1');
  const sizes = { compressedSize: dv.getUint32(p + 20, true), size: dv.getUint32(p + 24, true), localHeaderOffset: dv.getUint32(p + 42, true) };
  if (sizes.size === 0xffffffff || sizes.compressedSize === 0xffffffff || sizes.localHeaderOffset === 0xffffffff) {
    readZip64Extra(dv, extraStart, extraLen, name, sizes);
  }
  return { entry: { name, method, flags, crc32: crc, ...sizes }, next };
}

/** Zip64 extended information: only the fields saturated in the fixed header are present, in this order. */
function readZip64Extra(dv: DataView, extraStart: number, extraLen: number, name: string, sizes: { compressedSize: number; size: number; localHeaderOffset: number }): void {
  let e = extraStart;
  while (e + 4 <= extraStart + extraLen) {
    const id = dv.getUint16(e, true);
    const n = dv.getUint16(e + 2, true);
    if (e + 4 + n > extraStart + extraLen) break;
    if (id === 0x0001) {
      let q = e + 4;
      const take = (what: string): number => {
        if (q + 8 > e + 4 + n) fail(`zip64 extra field of "${name}" is too short`);
        const v = u64(dv, q, what);
        q += 8;
        return v;
      };
      if (sizes.size === 0xffffffff) sizes.size = take('size');
      if (sizes.compressedSize === 0xffffffff) sizes.compressedSize = take('compressed size');
      if (sizes.localHeaderOffset === 0xffffffff) sizes.localHeaderOffset = take('local header offset');
      return;
    }
    e += 4 + n;
  }
  fail(`entry "${name}" needs a zip64 extra field but has none`);
}

/** Deflate's best case is about 1032:1 (258-byte matches coded in 2 bits); a record declaring more is lying. */
const DEFLATE_MAX_RATIO = 1032;
/**
 * What all deflated records together may inflate to: a multiple of the file size (re-zipped
 * checkpoints of trained weights shrink less than 2:1), at least 16 MiB for small files. Past it
 * the archive is a zip bomb; refused from the declared sizes before anything is inflated.
 */
export const INFLATE_FACTOR = 100;
const INFLATE_MIN = 16 << 20;

/**
 * Parsed central directory of an in-memory zip. `read(name)` returns a record's
 * bytes (a view into the input for stored records) after checking its CRC.
 */
export class ZipReader {
  readonly entries = new Map<string, ZipEntry>();
  private readonly dv: DataView;
  /** Start of the central directory: record data must end before it. */
  private readonly cdStart: number;

  /** `maxInflated`: bytes all deflated records may inflate to (default: INFLATE_FACTOR x the file, at least 16 MiB). */
  constructor(
    private readonly bytes: Uint8Array,
    maxInflated = Math.max(INFLATE_FACTOR * bytes.length, INFLATE_MIN),
  ) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const { count, cdOffset, cdSize } = findCentralDirectory(this.dv, bytes.length);
    this.cdStart = cdOffset;
    const cdEnd = cdOffset + cdSize;
    let p = cdOffset;
    let inflated = 0;
    for (let i = 0; i < count; i++) {
      const { entry, next } = readCentralEntry(this.dv, bytes, p, cdEnd, i);
      // Duplicate names are ambiguous (readers disagree on which wins), so refuse them.
      if (this.entries.has(entry.name)) fail(`duplicate entry "${entry.name}"`);
      if (entry.method === METHOD_DEFLATE) {
        if (entry.size > entry.compressedSize * DEFLATE_MAX_RATIO + DEFLATE_MAX_RATIO) {
          fail(`record "${entry.name}" declares ${entry.size} bytes from ${entry.compressedSize} compressed, more than deflate can produce (file is corrupt or hostile)`);
        }
        inflated += entry.size;
        if (inflated > maxInflated) {
          fail(`deflated records declare ${inflated}+ bytes inflated, over the ${maxInflated}-byte bound for a ${bytes.length}-byte file (a zip bomb?); refusing to inflate them`);
        }
      }
      this.entries.set(entry.name, entry);
      p = next;
    }
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** Bytes of a record, CRC-checked. Stored records are returned as a view (no copy). */
  read(name: string): Uint8Array {
    const e = this.entries.get(name);
    if (!e) fail(`no record "${name}"`);
    const dv = this.dv;
    const h = e.localHeaderOffset;
    if (h + LOCAL_HEADER_SIZE > this.cdStart || dv.getUint32(h, true) !== SIG_LOCAL) fail(`local header of "${name}" is missing or corrupt`);
    if (e.flags & 1) fail(`record "${name}" is encrypted`);
    // The local header has its own name/extra lengths (torch pads with an "FB" extra field there only).
    const dataStart = h + LOCAL_HEADER_SIZE + dv.getUint16(h + 26, true) + dv.getUint16(h + 28, true);
    const dataEnd = dataStart + e.compressedSize;
    if (dataEnd > this.cdStart) fail(`data of "${name}" runs past the end of the records (truncated?)`);
    const raw = this.bytes.subarray(dataStart, dataEnd);

    let data: Uint8Array;
    if (e.method === METHOD_STORED) {
      if (e.compressedSize !== e.size) fail(`stored record "${name}" has mismatched sizes`);
      data = raw;
    } else if (e.method === METHOD_DEFLATE) {
      try {
        // Never more than the declared size, which the constructor bounded.
        data = zlib.inflateRawSync(raw, { maxOutputLength: Math.max(1, e.size) });
      } catch (err) {
        fail(`cannot inflate "${name}": ${(err as Error).message}`);
      }
      if (data.length !== e.size) fail(`record "${name}" inflated to ${data.length} bytes, expected ${e.size}`);
    } else {
      fail(`record "${name}" uses unsupported compression method ${e.method}`);
    }
    if (crc32(data) !== e.crc32) fail(`CRC mismatch in record "${name}" (file is corrupt)`);
    return data;
  }
}

// ---------------------------------------------------------------------------
// Writing

export interface ZipRecord {
  name: string;
  data: Uint8Array;
}

/**
 * Lay out a stored zip as a list of chunks (headers interleaved with the
 * caller's data buffers, which are not copied). Each record's data starts at a
 * multiple of `alignment`, padded the way torch does: an extra field with id
 * "FB" filled with 'Z'. Sizes and CRC go in the local header (no data
 * descriptors), which every reader, miniz included, accepts.
 */
export function zipChunks(records: readonly ZipRecord[], alignment = TORCH_RECORD_ALIGNMENT): Uint8Array[] {
  if (records.length > 0xfffe) fail(`too many records (${records.length}); zip64 is not implemented`);
  const chunks: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  const DOS_DATE_1980_01_01 = 0x0021; // fixed timestamp keeps output deterministic
  let offset = 0;
  const seen = new Set<string>();
  for (const r of records) {
    if (seen.has(r.name)) fail(`duplicate record name "${r.name}"`);
    seen.add(r.name);
    const name = Buffer.from(r.name, 'utf8');
    if (name.length > 0xffff) fail(`record name too long: ${r.name.slice(0, 80)}…`);
    const crc = crc32(r.data);
    const size = r.data.length;
    // Padding so that offset + header + name + 4-byte extra header + pad is aligned.
    const unpadded = offset + LOCAL_HEADER_SIZE + name.length + 4;
    const pad = (alignment - (unpadded % alignment)) % alignment;

    const local = Buffer.alloc(LOCAL_HEADER_SIZE + name.length + 4 + pad);
    local.writeUInt32LE(SIG_LOCAL, 0);
    local.writeUInt16LE(20, 4); // version needed: 2.0
    local.writeUInt16LE(FLAG_UTF8, 6);
    local.writeUInt16LE(METHOD_STORED, 8);
    local.writeUInt16LE(0, 10); // time
    local.writeUInt16LE(DOS_DATE_1980_01_01, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(size >>> 0, 18);
    local.writeUInt32LE(size >>> 0, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(4 + pad, 28);
    name.copy(local, LOCAL_HEADER_SIZE);
    const x = LOCAL_HEADER_SIZE + name.length;
    local.write('FB', x, 'latin1');
    local.writeUInt16LE(pad, x + 2);
    local.fill(0x5a /* 'Z' */, x + 4);

    const cd = Buffer.alloc(CENTRAL_HEADER_SIZE + name.length);
    cd.writeUInt32LE(SIG_CENTRAL, 0);
    cd.writeUInt16LE(20, 4); // version made by
    cd.writeUInt16LE(20, 6); // version needed
    cd.writeUInt16LE(FLAG_UTF8, 8);
    cd.writeUInt16LE(METHOD_STORED, 10);
    cd.writeUInt16LE(0, 12);
    cd.writeUInt16LE(DOS_DATE_1980_01_01, 14);
    cd.writeUInt32LE(crc, 16);
    cd.writeUInt32LE(size >>> 0, 20);
    cd.writeUInt32LE(size >>> 0, 24);
    cd.writeUInt16LE(name.length, 28);
    // extra, comment, disk number, internal/external attributes stay 0
    cd.writeUInt32LE(offset >>> 0, 42);
    name.copy(cd, CENTRAL_HEADER_SIZE);

    chunks.push(local, r.data);
    central.push(cd);
    offset += local.length + size;
    if (offset > 0xffffffff) fail('archive would exceed 4 GiB; zip64 is not implemented');
  }
  const cdOffset = offset;
  const cdSize = central.reduce((n, c) => n + c.length, 0);
  if (cdOffset + cdSize + EOCD_SIZE > 0xffffffff) fail('archive would exceed 4 GiB; zip64 is not implemented');
  const eocd = Buffer.alloc(EOCD_SIZE);
  eocd.writeUInt32LE(SIG_EOCD, 0);
  eocd.writeUInt16LE(records.length, 8);
  eocd.writeUInt16LE(records.length, 10);
  eocd.writeUInt32LE(cdSize, 12);
  eocd.writeUInt32LE(cdOffset, 16);
  chunks.push(...central, eocd);
  return chunks;
}

/** Concatenate chunks into one buffer. */
export function concatChunks(chunks: readonly Uint8Array[]): Uint8Array {
  let total = 0;
  for (const c of chunks) total += c.length;
  const out = new Uint8Array(total);
  let p = 0;
  for (const c of chunks) {
    out.set(c, p);
    p += c.length;
  }
  return out;
}
