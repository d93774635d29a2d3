// No input from JavaScript can crash the process: every libtorch error becomes a JS Error with
// libtorch's message and no C++ backtrace, and argument mistakes are TypeErrors or RangeErrors
// naming the argument. Wrong shapes, wrong dtypes, disposed tensors, out-of-range indices,
// devices that do not exist here, nonsense arguments straight into the addon.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import * as E from '../src/engine/index.js';
import { N } from '../src/engine/native.js';
import type { Tensor } from '../src/engine/index.js';
import { ROOT, TSX } from './helpers/cli.js';

/** Every sign of a C++ backtrace or source location in a message. */
const BACKTRACE = /Exception raised from|frame #\d|\(most recent call first\)|\.(cpp|h):\d+|c10::|at::native::/;

function expectError(label: string, fn: () => unknown, pattern?: RegExp): Error {
  let err: unknown;
  try {
    E.tidy(() => {
      fn();
    });
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof Error, `${label}: expected an Error, got ${err === undefined ? 'no error' : String(err)}`);
  assert.doesNotMatch(err.message, BACKTRACE, `${label}: C++ backtrace in ${JSON.stringify(err.message)}`);
  assert.ok(err.message.length > 0 && err.message.length < 2000, `${label}: message length ${err.message.length}`);
  if (pattern) assert.match(err.message, pattern, label);
  return err;
}

const t4 = () => E.rand([2, 3, 8, 8]);

test('wrong shapes: libtorch errors become Errors with code ERR_TORCH and no backtrace', () => {
  const cases: [string, () => unknown, RegExp?][] = [
    ['conv2d channels', () => E.conv2d(t4(), E.rand([4, 5, 3, 3]))],
    ['conv2d weight rank', () => E.conv2d(t4(), E.rand([4, 3]))],
    ['conv2d stride 0', () => E.conv2d(t4(), E.rand([4, 3, 3, 3]), null, { stride: 0 })],
    ['conv2d negative padding', () => E.conv2d(t4(), E.rand([4, 3, 3, 3]), null, { padding: -1 })],
    ['conv2d groups 0', () => E.conv2d(t4(), E.rand([4, 3, 3, 3]), null, { groups: 0 })],
    ['conv2d kernel larger than input', () => E.conv2d(E.rand([1, 3, 2, 2]), E.rand([4, 3, 5, 5]))],
    ['convTranspose2d output padding >= stride', () => E.convTranspose2d(t4(), E.rand([3, 4, 2, 2]), null, { stride: 1, outputPadding: 2 })],
    ['batchNorm running stats of the wrong size', () => E.batchNorm(t4(), E.zeros([5]), E.ones([5]), null, null, true)],
    ['maxPool2d kernel larger than input', () => E.maxPool2d(E.rand([1, 1, 2, 2]), 4)],
    ['maxPool2d stride 0', () => E.maxPool2d(t4(), 2, 0)],
    ['avgPool2d padding > kernel/2', () => E.avgPool2d(t4(), 2, 2, 3)],
    ['interpolate to 0x0', () => E.interpolate(t4(), [0, 0], 'bilinear')],
    ['interpolate a 3-d tensor bilinear', () => E.interpolate(E.rand([3, 8, 8]), [4, 4], 'bilinear')],
    ['matmul mismatch', () => E.rand([2, 3]).matmul(E.rand([4, 5]))],
    ['add broadcast mismatch', () => E.rand([2, 3]).add(E.rand([4]))],
    ['view incompatible', () => E.rand([2, 3]).view([4])],
    ['reshape two -1', () => E.rand([2, 3]).reshape([-1, -1])],
    ['expand smaller', () => E.rand([2, 3]).expand([2, 2])],
    ['permute wrong dims', () => E.rand([2, 3]).permute([0, 0])],
    ['transpose out of range', () => E.rand([2, 3]).transpose(0, 5)],
    ['cat of different ranks', () => E.cat([E.rand([2, 3]), E.rand([2])])],
    ['cat of nothing', () => E.cat([])],
    ['stack of different shapes', () => E.stack([E.rand([2]), E.rand([3])])],
    ['crossEntropy target shape', () => E.crossEntropy(t4(), E.zeros([2, 4, 4], { dtype: 'int64' }))],
    ['bce shape mismatch', () => E.binaryCrossEntropyWithLogits(E.rand([2, 3]), E.rand([3, 2]))],
    ['mseLoss shape mismatch', () => E.mseLoss(E.rand([2, 3]), E.rand([5]))],
    ['pad reflect wider than input', () => E.pad(E.rand([1, 1, 2, 2]), [5, 5, 5, 5], 'reflect')],
    ['softmax dim out of range', () => E.rand([2, 3]).softmax(4)],
    ['flatten start > end', () => E.rand([2, 3, 4]).flatten(2, 0)],
    ['chunk 0', () => E.rand([4]).chunk(0)],
    ['masked_select mask of another shape', () => E.rand([2, 3]).maskedSelect(E.ones([4], { dtype: 'bool' }))],
    ['copy_ of another shape', () => E.zeros([2, 3]).copy_(E.rand([4]))],
    ['foreach lists of different lengths', () => E.foreach.add_([E.zeros([2])], [E.zeros([2]), E.zeros([2])])],
    ['empty with a negative size', () => E.zeros([-1])],
    ['arange step 0', () => E.arange(0, 10, 0)],
    ['randint low >= high', () => E.randint(5, 5, [2])],
    ['randperm of -1', () => E.randperm(-1)],
  ];
  for (const [label, fn] of cases) {
    const err = expectError(label, fn);
    const code = (err as { code?: string }).code;
    assert.ok(code === 'ERR_TORCH' || err instanceof TypeError || err instanceof RangeError, `${label}: ${err.name} ${code}: ${err.message}`);
  }
});

test('wrong dtypes', () => {
  const cases: [string, () => unknown][] = [
    ['crossEntropy with a float target', () => E.crossEntropy(t4(), E.zeros([2, 8, 8]))],
    ['crossEntropy with int64 logits', () => E.crossEntropy(E.zeros([2, 3, 8, 8], { dtype: 'int64' }), E.zeros([2, 8, 8], { dtype: 'int64' }))],
    ['in-place float result into an int64 tensor', () => E.zeros([3], { dtype: 'int64' }).sqrt_()],
    ['in-place add of a float tensor into a bool tensor', () => E.zeros([3], { dtype: 'bool' }).add_(E.rand([3]))],
    ['conv2d with mixed dtypes', () => E.conv2d(E.rand([1, 1, 4, 4]), E.zeros([1, 1, 3, 3], { dtype: 'float64' }))],
    ['norm of an int tensor', () => E.zeros([3], { dtype: 'int64' }).norm()],
    ['var of an int tensor', () => E.zeros([3], { dtype: 'int64' }).var()],
    ['oneHot of a float tensor', () => E.oneHot(E.rand([3]), 2)],
    ['bincount of a float tensor', () => E.bincount(E.rand([3]))],
    ['indexSelect with a float index', () => E.rand([3]).indexSelect(0, E.rand([2]))],
    ['an unknown dtype name', () => E.zeros([2], { dtype: 'complex64' as never })],
    ['a typed array of another size than shape x dtype', () => E.tensor(new Float32Array(5), [2, 3])],
    ['a plain object as data', () => E.tensor({} as never, [1])],
    ['rng state of the wrong dtype', () => E.setRngState(E.zeros([5056]))],
    ['rng state of the wrong size', () => E.setRngState(E.zeros([7], { dtype: 'uint8' }))],
  ];
  for (const [label, fn] of cases) expectError(label, fn);
});

test('out-of-range indices and values', () => {
  const cases: [string, () => unknown][] = [
    ['select index 10 of 3', () => E.rand([3]).select(0, 10)],
    ['select dim 5', () => E.rand([3]).select(5, 0)],
    ['narrow past the end', () => E.rand([3]).narrow(0, 2, 5)],
    ['slice step 0', () => E.rand([3]).slice(0, 0, 2, 0)],
    ['indexSelect with index 99', () => E.rand([3]).indexSelect(0, E.tensor(new BigInt64Array([99n]), [1]))],
    ['indexSelect with index -99', () => E.rand([3]).indexSelect(0, E.tensor(new BigInt64Array([-99n]), [1]))],
    ['gather with index 50', () => E.rand([2, 3]).gather(1, E.full([2, 3], 50, { dtype: 'int64' }))],
    ['crossEntropy target class 7 of 3', () => E.crossEntropy(E.rand([1, 3, 4, 4]), E.full([1, 4, 4], 7, { dtype: 'int64' }))],
    ['crossEntropy target class -5', () => E.crossEntropy(E.rand([1, 3, 4, 4]), E.full([1, 4, 4], -5, { dtype: 'int64' }))],
    ['oneHot value above numClasses', () => E.oneHot(E.tensor(new BigInt64Array([5n]), [1]), 3)],
    ['bincount of negative values', () => E.bincount(E.tensor(new BigInt64Array([-1n]), [1]))],
    ['squeeze dim 9', () => E.rand([3]).squeeze(9)],
    ['unsqueeze dim 9', () => E.rand([3]).unsqueeze(9)],
    ['size(7) on a 1-d tensor', () => E.rand([3]).size(7)],
    ['item of a 3-element tensor', () => E.rand([3]).item()],
    ['item of an empty tensor', () => E.zeros([0]).item()],
    ['a shape too large to allocate (exabytes)', () => E.zeros([2 ** 40, 2 ** 30])],
    ['a buffer whose shape overflows int64', () => E.tensor(new Uint8Array(0), [2 ** 32, 2 ** 32])],
    ['a NaN size', () => E.zeros([Number.NaN])],
    ['an infinite size', () => E.zeros([Number.POSITIVE_INFINITY])],
    ['a fractional size', () => E.zeros([1.5])],
    ['setNumThreads(0)', () => E.setNumThreads(0)],
    ['setNumThreads(100000) (OpenMP would abort creating them)', () => E.setNumThreads(100_000)],
  ];
  for (const [label, fn] of cases) expectError(label, fn);
});

test('a shape whose element count wraps around to the buffer size is refused', () => {
  // 2^32 * 2^32 * 1 wraps to 0 in 64-bit arithmetic, and so does 2^33 * 2^31: an empty buffer must
  // not pass as data for an exabyte tensor.
  for (const shape of [
    [2 ** 32, 2 ** 32],
    [2 ** 33, 2 ** 31],
    [2 ** 62, 4],
    [3, 2 ** 62, 2],
  ]) {
    expectError(`shape ${shape}`, () => E.tensor(new Uint8Array(0), shape, { dtype: 'uint8' }));
  }
});

test('disposed tensors: every use is an Error, disposing twice is harmless', () => {
  const a = E.rand([2, 3]);
  const b = E.rand([2, 3]);
  a.dispose();
  a.dispose();
  assert.equal(a.isDisposed, true);
  assert.equal(String(a), 'Tensor(disposed)');
  const uses: [string, () => unknown][] = [
    ['shape', () => a.shape],
    ['dtype', () => a.dtype],
    ['data', () => a.data()],
    ['item', () => a.item()],
    ['add (left)', () => a.add(1)],
    ['add (right)', () => b.add(a)],
    ['add_ into it', () => a.add_(b)],
    ['copy_ from it', () => b.copy_(a)],
    ['cat', () => E.cat([b, a])],
    ['conv2d weight', () => E.conv2d(E.rand([1, 3, 4, 4]), a)],
    ['backward', () => a.backward()],
    ['grad', () => a.grad],
    ['foreach', () => E.foreach.add_([b], [a])],
    ['to', () => a.to({ dtype: 'float64' })],
  ];
  for (const [label, fn] of uses) expectError(`disposed: ${label}`, fn, /disposed/);
  b.dispose();
});

test('autograd misuse: backward without grad, twice, in-place on a leaf, grads of another shape', () => {
  expectError('backward on a tensor that does not require grad', () => E.rand([3]).sum().backward());
  expectError('backward of a non-scalar without a gradient', () => E.rand([3]).requiresGrad_(true).mul(2).backward());
  const w = E.rand([3]).requiresGrad_(true);
  E.tidy(() => {
    const l = w.mul(w).sum();
    l.backward();
    expectError('backward twice through freed buffers', () => l.backward());
  });
  expectError('in-place op on a leaf that requires grad', () => w.add_(1));
  expectError('setting a gradient of another shape', () => {
    w.grad = E.zeros([7]);
  });
  expectError('requiresGrad on an integer tensor', () => E.zeros([3], { dtype: 'int64' }).requiresGrad_(true));
  const inf = E.inferenceMode(() => E.rand([3]));
  expectError('an inference tensor saved for backward', () => E.rand([3]).requiresGrad_(true).mul(inf).sum().backward());
  expectError('in-place update of an inference tensor outside inference mode', () => inf.add_(1));
  inf.dispose();
  w.dispose();
  // Unbalanced scope exits are no-ops, not crashes.
  N.inferenceExit();
  N.autocastExit();
});

test('devices: CUDA without CUDA, and devices that do not exist, are Errors naming the fix', () => {
  if (E.cudaIsAvailable()) return;
  expectError('zeros on cuda', () => E.zeros([2], { device: 'cuda' }), /CUDA is not available.*--device cpu/);
  expectError('to cuda:1', () => E.rand([2]).to({ device: 'cuda:1' }), /CUDA is not available/);
  expectError('fromBuffer to cuda', () => E.tensor(new Float32Array(2), [2], { device: 'cuda' }), /CUDA is not available/);
  for (const d of ['meta', 'mps', 'xla', 'vulkan', 'hip', 'cpu:0x', 'gpu', '', 'cuda:-1']) {
    expectError(`device '${d}'`, () => E.zeros([2], { device: d }).data());
  }
  assert.throws(
    () => E.resolveDevice('cuda'),
    (e: Error & { code?: string }) => e.code === 'ERR_DEVICE' && /--device cpu/.test(e.message),
  );
  assert.throws(
    () => E.resolveDevice('tpu'),
    (e: Error & { code?: string }) => e.code === 'ERR_DEVICE',
  );
});

test('nonsense straight into the addon: TypeErrors, never a crash', () => {
  const real = E.rand([2]);
  const junk: unknown[] = [undefined, null, 0, -1, 1.5, Number.NaN, 'x', {}, [], [real], () => 0, Symbol('s'), 10n, new Float32Array(2), new ArrayBuffer(4)];
  let calls = 0;
  for (const [name, fn] of Object.entries(N)) {
    if (typeof fn !== 'function' || name === 'TensorHandle') continue;
    if (['setNumThreads', 'manualSeed', 'setFlags', 'mallocTrim', 'inferenceEnter', 'autocastEnter', 'setGradEnabled'].includes(name)) continue; // global state, tested separately
    for (const a of junk) {
      for (const b of [undefined, a, real.h]) {
        calls++;
        try {
          const out = fn(a, b, a);
          if (out && typeof out === 'object' && 'dispose' in N) {
            for (const h of Array.isArray(out) ? out : [out]) if (h && typeof h === 'object' && h instanceof N.TensorHandle) N.dispose(h);
          }
        } catch (e) {
          assert.ok(e instanceof Error, `${name}: threw a non-Error ${String(e)}`);
          assert.doesNotMatch(e.message, BACKTRACE, `${name}: backtrace`);
        }
      }
    }
  }
  assert.ok(calls > 1000);
  // A handle made from JS without a tensor is "disposed", not a null pointer.
  const empty = new N.TensorHandle();
  expectError('a bare handle', () => N.shape(empty), /disposed/);
  real.dispose();
});

test('global settings with bad values are refused or ignored, not crashes', () => {
  const threads = E.getNumThreads();
  expectError('setNumThreads(-3)', () => E.setNumThreads(-3));
  expectError('setNumThreads(NaN)', () => E.setNumThreads(Number.NaN));
  expectError('setFlags(undefined)', () => N.setFlags(undefined as never));
  expectError('autocast on an unknown dtype', () => E.autocast('cpu', 'int8' as never, () => 0));
  assert.equal(E.getNumThreads(), threads);
  assert.equal(E.isAutocastEnabled('cpu'), false);
  assert.equal(E.isGradEnabled(), true);
});

test('an out-of-memory error carries code ERR_OUT_OF_MEMORY (CPU allocation that cannot succeed)', () => {
  // 2^44 floats (64 TiB) cannot be allocated on any test machine.
  const err = expectError('64 TiB', () => E.empty([2 ** 44]));
  assert.equal((err as { code?: string }).code, 'ERR_OUT_OF_MEMORY', err.message);
});

test('no live tensors leaked by the failing calls above', () => {
  // Inputs made inside expectError's tidy() are freed even when the call throws.
  const before = E.memoryStats().liveTensors;
  for (let i = 0; i < 200; i++) expectError('loop', () => E.conv2d(t4(), E.rand([4, 5, 3, 3])));
  assert.equal(E.memoryStats().liveTensors, before);
});

test('a child process that abuses the engine exits normally (no signal, no abort)', () => {
  // Belt and braces: the worst of the above in a fresh process, checked for a clean exit status.
  const script = `
    import * as E from ${JSON.stringify(`${ROOT}/src/engine/index.ts`)};
    const tryIt = (f) => { try { E.tidy(f); } catch (e) { if (!(e instanceof Error)) throw new Error('non-Error'); } };
    for (let i = 0; i < 50; i++) {
      tryIt(() => E.rand([3]).indexSelect(0, E.tensor(new BigInt64Array([BigInt(1e6)]), [1])));
      tryIt(() => E.rand([2, 3]).gather(1, E.full([2, 3], -9, { dtype: 'int64' })));
      tryIt(() => E.crossEntropy(E.rand([1, 3, 4, 4]), E.full([1, 4, 4], 99, { dtype: 'int64' })));
      tryIt(() => E.zeros([2], { device: 'meta' }).data());
      tryIt(() => E.tensor(new Uint8Array(0), [2 ** 32, 2 ** 32], { dtype: 'uint8' }).data());
      tryIt(() => { const t = E.rand([2]); t.dispose(); t.add_(1); });
    }
    console.log('survived');
  `;
  const r = spawnSync(process.execPath, ['--import', TSX, '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.signal, null, r.stderr);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /survived/);
});

// Keep the Tensor type import used (documentation of what expectError receives).
export type { Tensor };
