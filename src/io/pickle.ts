// A data-only pickle VM and a small pickle writer.
//
// Why not a general unpickler: pickle is a program, and GLOBAL + REDUCE mean
// "import this and call it". We never import or call anything. Every GLOBAL is
// passed to `hooks.findGlobal`, which returns an opaque token for allow-listed
// names and throws for the rest; REDUCE/NEWOBJ/BUILD/BINPERSID hand tokens back
// to the hooks, which interpret them as data. The VM itself is generic; the
// torch semantics live in pth.ts.
//
// Representation while unpickling (converted to PyValue by the caller):
//   list  -> JS array            tuple -> frozen JS array (APPEND on it is an error)
//   dict  -> PyDict (keeps insertion order and key types until the end)
//   int   -> number, or bigint outside the safe-integer range
//   float -> number              str -> string     None/True/False -> null/true/false
//
// Every read is bounded against the buffer, each opcode consumes at least one
// byte, and there is no recursion, so corrupt input fails fast with an Error.

export type DictKey = string | number;

/** A Python dict (or OrderedDict) under construction. */
export class PyDict {
  readonly entries = new Map<DictKey, unknown>();
}

export interface UnpickleHooks {
  /** Resolve `module.name` to a token; must throw for anything not allowed. */
  findGlobal(module: string, name: string): unknown;
  /** REDUCE and NEWOBJ: "call" a token with arguments (a tuple). */
  call(callable: unknown, args: readonly unknown[]): unknown;
  /** BINPERSID: the persistent id (for torch a tuple naming a storage). */
  persistentLoad(pid: unknown): unknown;
  /** BUILD: apply `state` to `obj` and return the result. */
  build(obj: unknown, state: unknown): unknown;
}

/** Longest LONG4 integer we accept (bytes). Python never writes such ints in a checkpoint. */
const MAX_LONG_BYTES = 1 << 16;

const utf8 = new TextDecoder('utf-8', { fatal: true });

function describe(v: unknown): string {
  if (v === null) return 'None';
  if (Array.isArray(v)) return Object.isFrozen(v) ? 'tuple' : 'list';
  if (v instanceof PyDict) return 'dict';
  return typeof v;
}

/** Decode little-endian two's complement bytes (LONG1/LONG4 payload). */
function decodeLong(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
  return toIntValue(v);
}

function toIntValue(v: bigint): number | bigint {
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/** Run a pickle program and return the object it builds. */
export function unpickle(bytes: Uint8Array, hooks: UnpickleHooks): unknown {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = bytes.length;
  let pos = 0;
  let op = 0;
  let opPos = 0;
  let stack: unknown[] = [];
  const metastack: unknown[][] = [];
  const memo = new Map<number, unknown>();

  const fail = (msg: string): never => {
    throw new Error(`pickle: ${msg} (opcode 0x${op.toString(16).padStart(2, '0')} at byte ${opPos})`);
  };
  const need = (k: number): void => {
    if (k > n - pos) fail('unexpected end of data (truncated?)');
  };
  const take = (k: number): Uint8Array => {
    need(k);
    const s = bytes.subarray(pos, pos + k);
    pos += k;
    return s;
  };
  const u8 = (): number => (need(1), bytes[pos++]);
  const u16 = (): number => (need(2), (pos += 2), dv.getUint16(pos - 2, true));
  const u32 = (): number => (need(4), (pos += 4), dv.getUint32(pos - 4, true));
  const u64 = (): number => {
    need(8);
    const v = dv.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(n)) fail('length exceeds the data');
    return Number(v);
  };
  const str = (k: number): string => {
    const b = take(k);
    try {
      return utf8.decode(b);
    } catch {
      return fail('string is not valid UTF-8');
    }
  };
  /** Text line for GLOBAL, bounded so a missing newline cannot scan far. */
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0 || end - pos > 1024) fail('GLOBAL name is unterminated or too long');
    const s = Buffer.from(bytes.buffer, bytes.byteOffset + pos, end - pos).toString('latin1');
    pos = end + 1;
    return s;
  };
  const pop = (): unknown => {
    if (stack.length === 0) fail('stack underflow');
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) fail('stack underflow');
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const items = stack;
    const prev = metastack.pop();
    if (!prev) fail('no MARK on the stack');
    stack = prev!;
    return items;
  };
  const tuple = (items: unknown[]): unknown[] => Object.freeze(items) as unknown[];
  const setItems = (dict: unknown, kv: unknown[]): void => {
    if (!(dict instanceof PyDict)) fail(`cannot set items on a ${describe(dict)}`);
    if (kv.length % 2) fail('odd number of items for SETITEMS');
    for (let i = 0; i < kv.length; i += 2) {
      const k = kv[i];
      // Map keys: JS distinguishes 1 and "1" just like Python does. Other key
      // types (tuples, None, bools, huge ints) have no faithful JS equivalent.
      if (typeof k !== 'string' && typeof k !== 'number') fail(`unsupported dict key type: ${describe(k)}`);
      (dict as PyDict).entries.set(k as DictKey, kv[i + 1]);
    }
  };
  const append = (list: unknown, items: unknown[]): void => {
    if (!Array.isArray(list) || Object.isFrozen(list)) fail(`cannot append to a ${describe(list)}`);
    for (const it of items) (list as unknown[]).push(it);
  };
  const memoPut = (idx: number): void => {
    memo.set(idx, top());
  };
  const memoGet = (idx: number): void => {
    if (!memo.has(idx)) fail(`memo key ${idx} is not defined`);
    stack.push(memo.get(idx));
  };

  for (;;) {
    opPos = pos;
    if (pos >= n) {
      op = 0;
      fail('missing STOP opcode (truncated?)');
    }
    op = bytes[pos++];
    switch (op) {
      case 0x80: { // PROTO
        const v = u8();
        if (v < 2 || v > 5) fail(`unsupported pickle protocol ${v}`);
        break;
      }
      case 0x95: // FRAME: a length prefix for buffering; the contents are ordinary opcodes
        u64();
        break;
      case 0x2e: // STOP
        if (metastack.length) fail('STOP inside an unclosed MARK');
        return pop();
      case 0x4e: stack.push(null); break; // NONE
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x4a: need(4); stack.push(dv.getInt32(pos, true)); pos += 4; break; // BININT
      case 0x8a: stack.push(decodeLong(take(u8()))); break; // LONG1
      case 0x8b: { // LONG4
        need(4);
        const k = dv.getInt32(pos, true);
        pos += 4;
        if (k < 0 || k > MAX_LONG_BYTES) fail(`LONG4 length ${k} is not supported`);
        stack.push(decodeLong(take(k)));
        break;
      }
      case 0x47: need(8); stack.push(dv.getFloat64(pos, false)); pos += 8; break; // BINFLOAT (big-endian)
      case 0x58: stack.push(str(u32())); break; // BINUNICODE
      case 0x8c: stack.push(str(u8())); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(str(u64())); break; // BINUNICODE8
      case 0x7d: stack.push(new PyDict()); break; // EMPTY_DICT
      case 0x5d: stack.push([]); break; // EMPTY_LIST
      case 0x29: stack.push(tuple([])); break; // EMPTY_TUPLE
      case 0x28: metastack.push(stack); stack = []; break; // MARK: items up to the matching pop go in a fresh frame
      // Note: popMark() replaces `stack`, so call it before touching `stack`.
      case 0x74: { const items = popMark(); stack.push(tuple(items)); break; } // TUPLE
      case 0x85: stack.push(tuple([pop()])); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push(tuple([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push(tuple([a, b, c])); break; } // TUPLE3
      case 0x6c: { const items = popMark(); stack.push(items); break; } // LIST
      case 0x64: { const d = new PyDict(); setItems(d, popMark()); stack.push(d); break; } // DICT
      case 0x61: { const v = pop(); append(top(), [v]); break; } // APPEND
      case 0x65: { const items = popMark(); append(top(), items); break; } // APPENDS
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const kv = popMark(); setItems(top(), kv); break; } // SETITEMS
      case 0x63: { const module = line(); const name = line(); stack.push(hooks.findGlobal(module, name)); break; } // GLOBAL
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') fail('STACK_GLOBAL needs two strings');
        stack.push(hooks.findGlobal(module as string, name as string));
        break;
      }
      case 0x52: // REDUCE
      case 0x81: { // NEWOBJ (cls.__new__(cls, *args)); only allow-listed tokens get here
        const args = pop();
        const fn = pop();
        if (!Array.isArray(args) || !Object.isFrozen(args)) fail(`arguments must be a tuple, got ${describe(args)}`);
        stack.push(hooks.call(fn, args as unknown[]));
        break;
      }
      case 0x62: { const state = pop(); const obj = pop(); stack.push(hooks.build(obj, state)); break; } // BUILD
      case 0x51: stack.push(hooks.persistentLoad(pop())); break; // BINPERSID
      case 0x71: memoPut(u8()); break; // BINPUT
      case 0x72: memoPut(u32()); break; // LONG_BINPUT
      case 0x94: memoPut(memo.size); break; // MEMOIZE
      case 0x68: memoGet(u8()); break; // BINGET
      case 0x6a: memoGet(u32()); break; // LONG_BINGET
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      default:
        fail('unsupported pickle opcode');
    }
  }
}

// ---------------------------------------------------------------------------
// Writing (protocol 2, the protocol torch.save uses)

/** Append-only pickle byte builder; the caller drives the structure. */
export class PickleWriter {
  private buf = new Uint8Array(4096);
  private len = 0;
  private memoCount = 0;
  private readonly globals = new Map<string, number>();

  private reserve(k: number): void {
    if (this.len + k <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + k) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(this.buf.subarray(0, this.len));
    this.buf = b;
  }
  private byte(b: number): void {
    this.reserve(1);
    this.buf[this.len++] = b;
  }
  private raw(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  private u32(v: number): void {
    this.reserve(4);
    new DataView(this.buf.buffer).setUint32(this.len, v, true);
    this.len += 4;
  }

  proto(): void { this.byte(0x80); this.byte(2); }
  stop(): void { this.byte(0x2e); }
  mark(): void { this.byte(0x28); }
  none(): void { this.byte(0x4e); }
  bool(v: boolean): void { this.byte(v ? 0x88 : 0x89); }
  emptyDict(): void { this.byte(0x7d); }
  emptyList(): void { this.byte(0x5d); }
  emptyTuple(): void { this.byte(0x29); }
  setItems(): void { this.byte(0x75); }
  appends(): void { this.byte(0x65); }
  reduce(): void { this.byte(0x52); }
  binPersId(): void { this.byte(0x51); }

  /** Build a tuple from the top `k` stack items (k >= 4 needs a preceding mark()). */
  tuple(k: number): void {
    if (k === 0) this.emptyTuple();
    else if (k <= 3) this.byte(0x84 + k); // TUPLE1..3
    else this.byte(0x74); // TUPLE (after MARK)
  }

  int(v: number | bigint): void {
    if (typeof v === 'number' && !Number.isSafeInteger(v)) v = BigInt(v); // still exact: v is an integer
    if (typeof v === 'number') {
      if (v >= 0 && v < 0x100) { this.byte(0x4b); this.byte(v); return; }
      if (v >= 0 && v < 0x10000) { this.byte(0x4d); this.byte(v & 0xff); this.byte(v >>> 8); return; }
      if (v >= -0x80000000 && v <= 0x7fffffff) { this.byte(0x4a); this.u32(v >>> 0); return; }
      v = BigInt(v);
    }
    // LONG1: minimal little-endian two's complement.
    const out: number[] = [];
    let x = v;
    for (;;) {
      const b = Number(x & 0xffn);
      out.push(b);
      x >>= 8n;
      if ((x === 0n && !(b & 0x80)) || (x === -1n && b & 0x80)) break;
    }
    if (out.length > 255) throw new Error(`integer ${v} is too large to pickle`);
    this.byte(0x8a);
    this.byte(out.length);
    this.raw(Uint8Array.from(out));
  }

  float(v: number): void {
    this.reserve(9);
    this.buf[this.len] = 0x47;
    new DataView(this.buf.buffer).setFloat64(this.len + 1, v, false);
    this.len += 9;
  }

  str(s: string): void {
    // Python would need surrogatepass to round-trip a lone surrogate; refuse instead of mangling.
    if (/\p{Surrogate}/u.test(s)) throw new Error(`string contains a lone surrogate: ${JSON.stringify(s.slice(0, 40))}`);
    const b = Buffer.from(s, 'utf8');
    this.byte(0x58);
    this.u32(b.length);
    this.raw(b);
  }

  /** GLOBAL, memoized like Python's pickler so repeated classes cost 2 bytes. */
  global(module: string, name: string): void {
    const key = `${module}\n${name}\n`;
    const idx = this.globals.get(key);
    if (idx !== undefined) return this.get(idx);
    this.byte(0x63);
    this.raw(Buffer.from(key, 'latin1'));
    this.globals.set(key, this.put());
  }

  /** Memoize the top of stack; returns the memo index. */
  put(): number {
    const idx = this.memoCount++;
    if (idx < 0x100) { this.byte(0x71); this.byte(idx); } else { this.byte(0x72); this.u32(idx); }
    return idx;
  }

  get(idx: number): void {
    if (idx < 0x100) { this.byte(0x68); this.byte(idx); } else { this.byte(0x6a); this.u32(idx); }
  }

  bytes(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}
