// The native boundary is a typed contract: the addon exports exactly the functions that
// src/engine/native-contract.ts declares (an export added or removed in native/*.cpp without the
// declaration fails here), and the functions that return plain objects return the declared fields.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NATIVE_EXPORTS } from '../src/engine/native-contract.js';
import { N } from '../src/engine/native.js';

/** The names `module` has beyond the contract, and the contract's names it lacks. */
function compare(module: object): { extra: string[]; missing: string[] } {
  const have = new Set(Object.keys(module));
  const want = new Set<string>(NATIVE_EXPORTS);
  return { extra: [...have].filter((n) => !want.has(n)).sort(), missing: [...want].filter((n) => !have.has(n)).sort() };
}

test('the addon exports exactly the declared names, each a function', () => {
  const { extra, missing } = compare(N);
  assert.deepEqual(extra, [], `exported by native/*.cpp but not declared in src/engine/native-contract.ts: ${extra.join(', ')}`);
  assert.deepEqual(missing, [], `declared in src/engine/native-contract.ts but not exported by the addon: ${missing.join(', ')}`);
  assert.ok(NATIVE_EXPORTS.length > 150, `${NATIVE_EXPORTS.length} names`);
  for (const name of NATIVE_EXPORTS) assert.equal(typeof N[name], 'function', name);
});

test('the comparison names an undeclared export and a missing one', () => {
  const fake: Record<string, unknown> = Object.fromEntries(NATIVE_EXPORTS.filter((n) => n !== 'zeros').map((n) => [n, () => 0]));
  fake.newOp = () => 0;
  assert.deepEqual(compare(fake), { extra: ['newOp'], missing: ['zeros'] });
});

test('object results carry the declared fields', () => {
  const sorted = (o: object) => Object.keys(o).sort();
  assert.deepEqual(sorted(N.stats()), ['cachedBytes', 'liveBytes', 'liveTensors']);
  assert.deepEqual(sorted(N.buildInfo()), ['config', 'cuda', 'mkldnn', 'parallel', 'torch']);
  assert.deepEqual(sorted(N.distInfo()), ['backend', 'gloo', 'initialized', 'nccl', 'rank', 'worldSize']);
  const h = N.zeros([2, 3], 'float32', 'cpu');
  assert.ok(h instanceof N.TensorHandle);
  assert.deepEqual(N.shape(h), [2, 3]);
  assert.equal(N.dtype(h), 'float32');
  assert.ok(N.toBuffer(h) instanceof ArrayBuffer);
  const parts = N.chunk(h, 2, 1);
  assert.ok(Array.isArray(parts) && parts.every((p) => p instanceof N.TensorHandle));
  for (const x of [h, ...parts]) N.dispose(x);
});
