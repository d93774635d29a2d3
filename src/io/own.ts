/** Keys that come from files (checkpoints, safetensors headers, --config) are data, never prototype slots. */

/** Sets `k` as an own property: a key "__proto__" must not swap the object's prototype. */
export function defineKey<T>(obj: Record<string, T>, k: string, v: T): void {
  Object.defineProperty(obj, k, { value: v, enumerable: true, writable: true, configurable: true });
}
