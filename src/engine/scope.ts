/**
 * The memory contract. JS garbage collection cannot see GPU memory (and barely sees native CPU
 * memory), so lifetime is explicit: `dispose()` frees a tensor now, and `tidy(fn)` frees every
 * tensor created inside `fn` except what `fn` returns. Tensors made outside any scope live until
 * disposed; a GC finalizer in the addon is only a safety net.
 */
import { N } from './native.js';
import type { MemoryStats } from './native-contract.js';

const scopes: Set<Scoped>[] = [];

/** What scopes track: Tensor extends this (here so that scopes need not import Tensor). */
export abstract class Scoped {
  constructor() {
    const s = scopes[scopes.length - 1];
    if (s !== undefined) s.add(this);
  }
  abstract dispose(): void;
}

/** Collects the tensors reachable from a tidy() result (tensors, arrays, plain objects, Maps). */
function collect(value: unknown, out: Set<Scoped>, seen = new Set<unknown>()): void {
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  if (value instanceof Scoped) out.add(value);
  else if (Array.isArray(value)) for (const v of value) collect(v, out, seen);
  else if (value instanceof Map) for (const v of value.values()) collect(v, out, seen);
  else if (Object.getPrototypeOf(value) === Object.prototype) for (const v of Object.values(value)) collect(v, out, seen);
}

/**
 * Runs `fn` in a scope: tensors created inside are disposed when it returns, except those in its
 * result, which move to the enclosing scope. Synchronous only (async code would interleave scopes).
 */
export function tidy<T>(fn: () => T): T {
  const scope = new Set<Scoped>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    for (const t of scope) t.dispose();
    throw e;
  }
  scopes.pop();
  if (result instanceof Promise) throw new Error('tidy() needs a synchronous function; dispose tensors explicitly in async code');
  const keepSet = new Set<Scoped>();
  collect(result, keepSet);
  const parent = scopes[scopes.length - 1];
  for (const t of scope) {
    if (keepSet.has(t)) parent?.add(t);
    else t.dispose();
  }
  return result;
}

/** Removes tensors from every enclosing scope so they outlive it (parameters, optimizer state). */
export function keep<T extends Scoped | Scoped[]>(t: T): T {
  const list = Array.isArray(t) ? t : [t];
  for (const x of list) for (const s of scopes) s.delete(x);
  return t;
}

/** Disposes every tensor found in a value (tensor, array, object). */
export function dispose(value: unknown): void {
  const set = new Set<Scoped>();
  collect(value, set);
  for (const t of set) t.dispose();
}

/** Live tensor handles and their bytes, counted by the addon (for leak tests). */
export function memoryStats(): MemoryStats {
  return N.stats();
}
