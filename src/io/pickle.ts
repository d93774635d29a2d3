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

/**
 * The VM's state and its bounded readers. Each opcode is a small handler in OPCODES, as in
 * CPython's pickle.py `dispatch` table.
 */
class Unpickler {
  pos = 0;
  /** The opcode being run and where it starts, for error messages. */
  op = 0;
  opPos = 0;
  stack: unknown[] = [];
  readonly metastack: unknown[][] = [];
  readonly memo = new Map<number, unknown>();
  /** Set by STOP. */
  done = false;
  result: unknown;
  readonly n: number;
  private readonly dv: DataView;

  constructor(readonly bytes: Uint8Array, readonly hooks: UnpickleHooks) {
    this.dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.n = bytes.length;
  }

  fail(msg: string): never {
    throw new Error(`pickle: ${msg} (opcode 0x${this.op.toString(16).padStart(2, '0')} at byte ${this.opPos})`);
  }
  /** Consume `k` bytes and return where they start. */
  advance(k: number): number {
    if (k > this.n - this.pos) this.fail('unexpected end of data (truncated?)');
    this.pos += k;
    return this.pos - k;
  }
  take(k: number): Uint8Array {
    const at = this.advance(k);
    return this.bytes.subarray(at, at + k);
  }
  u8(): number {
    return this.bytes[this.advance(1)];
  }
  u16(): number {
    return this.dv.getUint16(this.advance(2), true);
  }
  u32(): number {
    return this.dv.getUint32(this.advance(4), true);
  }
  i32(): number {
    return this.dv.getInt32(this.advance(4), true);
  }
  u64(): number {
    const v = this.dv.getBigUint64(this.advance(8), true);
    if (v > BigInt(this.n)) this.fail('length exceeds the data');
    return Number(v);
  }
  /** BINFLOAT is big-endian. */
  f64(): number {
    return this.dv.getFloat64(this.advance(8), false);
  }
  str(k: number): string {
    const b = this.take(k);
    try {
      return utf8.decode(b);
    } catch {
      return this.fail('string is not valid UTF-8');
    }
  }
  /** Text line for GLOBAL, bounded so a missing newline cannot scan far. */
  line(): string {
    const end = this.bytes.indexOf(0x0a, this.pos);
    if (end < 0 || end - this.pos > 1024) this.fail('GLOBAL name is unterminated or too long');
    const s = Buffer.from(this.bytes.buffer, this.bytes.byteOffset + this.pos, end - this.pos).toString('latin1');
    this.pos = end + 1;
    return s;
  }

  push(v: unknown): void {
    this.stack.push(v);
  }
  pop(): unknown {
    if (this.stack.length === 0) this.fail('stack underflow');
    return this.stack.pop();
  }
  top(): unknown {
    if (this.stack.length === 0) this.fail('stack underflow');
    return this.stack[this.stack.length - 1];
  }
  /** Items since the last MARK; restores the stack below it (so call it before touching `stack`). */
  popMark(): unknown[] {
    const items = this.stack;
    const prev = this.metastack.pop();
    if (!prev) this.fail('no MARK on the stack');
    this.stack = prev;
    return items;
  }
  setItems(dict: unknown, kv: unknown[]): void {
    if (!(dict instanceof PyDict)) this.fail(`cannot set items on a ${describe(dict)}`);
    if (kv.length % 2) this.fail('odd number of items for SETITEMS');
    for (let i = 0; i < kv.length; i += 2) {
      const k = kv[i];
      // Map keys: JS distinguishes 1 and "1" just like Python does. Other key
      // types (tuples, None, bools, huge ints) have no faithful JS equivalent.
      if (typeof k !== 'string' && typeof k !== 'number') this.fail(`unsupported dict key type: ${describe(k)}`);
      dict.entries.set(k, kv[i + 1]);
    }
  }
  append(list: unknown, items: unknown[]): void {
    if (!Array.isArray(list) || Object.isFrozen(list)) this.fail(`cannot append to a ${describe(list)}`);
    for (const it of items) list.push(it);
  }
  memoPut(idx: number): void {
    this.memo.set(idx, this.top());
  }
  memoGet(idx: number): void {
    if (!this.memo.has(idx)) this.fail(`memo key ${idx} is not defined`);
    this.stack.push(this.memo.get(idx));
  }
}

const tuple = (items: unknown[]): unknown[] => Object.freeze(items) as unknown[];

/** REDUCE and NEWOBJ (cls.__new__(cls, *args)); only allow-listed tokens get here. */
function reduce(vm: Unpickler): void {
  const args = vm.pop();
  const fn = vm.pop();
  if (!Array.isArray(args) || !Object.isFrozen(args)) vm.fail(`arguments must be a tuple, got ${describe(args)}`);
  vm.push(vm.hooks.call(fn, args));
}

type Handler = (vm: Unpickler) => void;

/** Opcode -> handler, named as in CPython's pickletools. */
const OPCODES: Readonly<Record<number, Handler>> = {
  0x80: (vm) => { // PROTO
    const v = vm.u8();
    if (v < 2 || v > 5) vm.fail(`unsupported pickle protocol ${v}`);
  },
  0x95: (vm) => void vm.u64(), // FRAME: a length prefix for buffering; the contents are ordinary opcodes
  0x2e: (vm) => { // STOP
    if (vm.metastack.length) vm.fail('STOP inside an unclosed MARK');
    vm.result = vm.pop();
    vm.done = true;
  },
  0x4e: (vm) => vm.push(null), // NONE
  0x88: (vm) => vm.push(true), // NEWTRUE
  0x89: (vm) => vm.push(false), // NEWFALSE
  0x4b: (vm) => vm.push(vm.u8()), // BININT1
  0x4d: (vm) => vm.push(vm.u16()), // BININT2
  0x4a: (vm) => vm.push(vm.i32()), // BININT
  0x8a: (vm) => vm.push(decodeLong(vm.take(vm.u8()))), // LONG1
  0x8b: (vm) => { // LONG4
    const k = vm.i32();
    if (k < 0 || k > MAX_LONG_BYTES) vm.fail(`LONG4 length ${k} is not supported`);
    vm.push(decodeLong(vm.take(k)));
  },
  0x47: (vm) => vm.push(vm.f64()), // BINFLOAT
  0x58: (vm) => vm.push(vm.str(vm.u32())), // BINUNICODE
  0x8c: (vm) => vm.push(vm.str(vm.u8())), // SHORT_BINUNICODE
  0x8d: (vm) => vm.push(vm.str(vm.u64())), // BINUNICODE8
  0x7d: (vm) => vm.push(new PyDict()), // EMPTY_DICT
  0x5d: (vm) => vm.push([]), // EMPTY_LIST
  0x29: (vm) => vm.push(tuple([])), // EMPTY_TUPLE
  0x28: (vm) => { // MARK: items up to the matching pop go in a fresh frame
    vm.metastack.push(vm.stack);
    vm.stack = [];
  },
  0x74: (vm) => { const items = vm.popMark(); vm.push(tuple(items)); }, // TUPLE
  0x85: (vm) => vm.push(tuple([vm.pop()])), // TUPLE1
  0x86: (vm) => { const b = vm.pop(); const a = vm.pop(); vm.push(tuple([a, b])); }, // TUPLE2
  0x87: (vm) => { const c = vm.pop(); const b = vm.pop(); const a = vm.pop(); vm.push(tuple([a, b, c])); }, // TUPLE3
  0x6c: (vm) => { const items = vm.popMark(); vm.push(items); }, // LIST
  0x64: (vm) => { const d = new PyDict(); vm.setItems(d, vm.popMark()); vm.push(d); }, // DICT
  0x61: (vm) => { const v = vm.pop(); vm.append(vm.top(), [v]); }, // APPEND
  0x65: (vm) => { const items = vm.popMark(); vm.append(vm.top(), items); }, // APPENDS
  0x73: (vm) => { const v = vm.pop(); const k = vm.pop(); vm.setItems(vm.top(), [k, v]); }, // SETITEM
  0x75: (vm) => { const kv = vm.popMark(); vm.setItems(vm.top(), kv); }, // SETITEMS
  0x63: (vm) => { const module = vm.line(); const name = vm.line(); vm.push(vm.hooks.findGlobal(module, name)); }, // GLOBAL
  0x93: (vm) => { // STACK_GLOBAL
    const name = vm.pop();
    const module = vm.pop();
    if (typeof module !== 'string' || typeof name !== 'string') vm.fail('STACK_GLOBAL needs two strings');
    vm.push(vm.hooks.findGlobal(module as string, name as string));
  },
  0x52: reduce, // REDUCE
  0x81: reduce, // NEWOBJ
  0x62: (vm) => { const state = vm.pop(); const obj = vm.pop(); vm.push(vm.hooks.build(obj, state)); }, // BUILD
  0x51: (vm) => vm.push(vm.hooks.persistentLoad(vm.pop())), // BINPERSID
  0x71: (vm) => vm.memoPut(vm.u8()), // BINPUT
  0x72: (vm) => vm.memoPut(vm.u32()), // LONG_BINPUT
  0x94: (vm) => vm.memoPut(vm.memo.size), // MEMOIZE
  0x68: (vm) => vm.memoGet(vm.u8()), // BINGET
  0x6a: (vm) => vm.memoGet(vm.u32()), // LONG_BINGET
  0x30: (vm) => void vm.pop(), // POP
  0x31: (vm) => void vm.popMark(), // POP_MARK
  0x32: (vm) => vm.push(vm.top()), // DUP
};

/** OPCODES as a dense array: one indexed load per opcode. */
const DISPATCH: readonly (Handler | undefined)[] = Array.from({ length: 256 }, (_, op) => OPCODES[op]);

/** Run a pickle program and return the object it builds. */
export function unpickle(bytes: Uint8Array, hooks: UnpickleHooks): unknown {
  const vm: Unpickler = new Unpickler(bytes, hooks); // typed, so vm.fail() narrows
  while (!vm.done) {
    vm.opPos = vm.pos;
    if (vm.pos >= vm.n) {
      vm.op = 0;
      vm.fail('missing STOP opcode (truncated?)');
    }
    vm.op = bytes[vm.pos++];
    const handler = DISPATCH[vm.op];
    if (!handler) vm.fail('unsupported pickle opcode');
    handler(vm);
  }
  return vm.result;
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
