// src/io/pth.ts against Python torch (/usr/bin/python3): Python writes, we read and compare exactly;
// we write, Python reads (weights_only where torch allows it) and loads the results into real
// modules and optimizers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { PyFloat, loadPth, rawTensor, savePth, type DType, type PyValue, type RawTensor } from '../src/io/pth.js';
import { hex, python, tmpDir, values } from './helpers/pth.js';
import { NO_TORCH, hasTorch } from './helpers/python.js';

// Tagged JSON from Python: ints/floats are tagged so nothing is lost to JSON numbers.
type Tagged =
  | null
  | boolean
  | string
  | { __int__: string }
  | { __float__: string } // float: little-endian IEEE-754 double bits, hex
  | { __list__: Tagged[] }
  | { __dict__: [Tagged, Tagged][] }
  | { __tensor__: { dtype: DType; shape: number[]; hex: string; requires_grad: boolean; values?: Tagged[] } };

function floatBits(x: number): string {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(x);
  return b.toString('hex');
}

/**
 * Assert that a PyValue matches what Python reports. Number rules: a Python int
 * must be an integral number or bigint; a Python float must be a number or
 * PyFloat with the same double bits, except that an integral float is allowed
 * to come back as a number when `floatMayBeInt` (reading: 1.0 -> 1).
 */
function assertMatches(actual: unknown, expected: Tagged, where: string, floatMayBeInt: boolean): void {
  if (expected === null || typeof expected !== 'object') {
    assert.equal(actual, expected, where);
    return;
  }
  if ('__int__' in expected) {
    assert.ok(typeof actual === 'bigint' || Number.isSafeInteger(actual), `${where}: expected int ${expected.__int__}, got ${String(actual)}`);
    assert.equal(BigInt(actual as number | bigint), BigInt(expected.__int__), where);
    if (typeof actual === 'bigint') assert.ok(actual > BigInt(Number.MAX_SAFE_INTEGER) || actual < BigInt(Number.MIN_SAFE_INTEGER), `${where}: small int decoded as bigint`);
  } else if ('__float__' in expected) {
    const v = actual instanceof PyFloat ? actual.value : actual;
    assert.equal(typeof v, 'number', `${where}: expected float, got ${typeof v}`);
    if (!floatMayBeInt && !(actual instanceof PyFloat)) assert.ok(!Number.isInteger(v) || Object.is(v, -0), `${where}: written as int, Python read a float`);
    const bits = floatBits(v as number);
    const nan = Number.isNaN(v) && Number.isNaN(Buffer.from(expected.__float__, 'hex').readDoubleLE());
    assert.ok(nan || bits === expected.__float__, `${where}: float bits ${bits} != ${expected.__float__}`);
  } else if ('__list__' in expected) {
    assert.ok(Array.isArray(actual), `${where}: expected a list, got ${typeof actual}`);
    assert.equal(actual.length, expected.__list__.length, `${where}: length`);
    expected.__list__.forEach((e, i) => assertMatches((actual as unknown[])[i], e, `${where}[${i}]`, floatMayBeInt));
  } else if ('__dict__' in expected) {
    const stringKeys = expected.__dict__.every(([k]) => typeof k === 'string');
    let entries: [unknown, unknown][];
    if (actual instanceof Map) {
      assert.ok(!stringKeys || expected.__dict__.length === 0 || !floatMayBeInt, `${where}: all-string-key dict decoded as a Map`);
      entries = [...actual.entries()];
    } else {
      assert.ok(actual !== null && typeof actual === 'object' && !Array.isArray(actual), `${where}: expected a dict`);
      assert.ok(stringKeys, `${where}: dict with non-string keys decoded as a plain object`);
      entries = Object.entries(actual as object);
    }
    assert.equal(entries.length, expected.__dict__.length, `${where}: number of keys`);
    expected.__dict__.forEach(([ek, ev], i) => {
      const [ak, av] = entries[i];
      assertMatches(ak, ek, `${where} key #${i}`, floatMayBeInt);
      assertMatches(av, ev, `${where}[${JSON.stringify(ak)}]`, floatMayBeInt);
    });
  } else if ('__tensor__' in expected) {
    const e = expected.__tensor__;
    const t = actual as RawTensor;
    assert.equal(t?.kind, 'tensor', `${where}: expected a tensor`);
    assert.equal(t.dtype, e.dtype, `${where}: dtype`);
    assert.deepEqual(t.shape, e.shape, `${where}: shape`);
    assert.equal(hex(t.data), e.hex, `${where}: bytes`);
    assert.equal(t.requiresGrad === true, e.requires_grad, `${where}: requires_grad`);
    if (e.values) {
      const vs = values(t);
      assert.equal(vs.length, e.values.length, `${where}: numel`);
      e.values.forEach((ev, i) => {
        const av = vs[i];
        if (t.dtype === 'bool') assert.equal(av === 1, ev, `${where}[${i}]`);
        else assertMatches(typeof av === 'bigint' && av >= BigInt(Number.MIN_SAFE_INTEGER) && av <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(av) : av, ev, `${where}[${i}]`, true);
      });
    }
  } else {
    assert.fail(`${where}: unknown tag ${JSON.stringify(expected)}`);
  }
}

// Python side of the tagged format (shared by both interop directions).
const PY_TAG = String.raw`
import json, math, struct, sys, collections, pickletools, zipfile
import torch
DT = {torch.float32: 'float32', torch.float64: 'float64', torch.float16: 'float16', torch.bfloat16: 'bfloat16',
      torch.int64: 'int64', torch.int32: 'int32', torch.int16: 'int16', torch.int8: 'int8', torch.uint8: 'uint8', torch.bool: 'bool'}
def tensor_hex(t):
    t = t.detach().contiguous().clone()
    if t.dtype == torch.bfloat16: t = t.view(torch.int16)
    return t.numpy().tobytes().hex()
def tag(v):
    if isinstance(v, torch.Tensor):
        d = {'dtype': DT[v.dtype], 'shape': list(v.shape), 'hex': tensor_hex(v), 'requires_grad': v.requires_grad}
        if v.dtype not in (torch.float16, torch.bfloat16): d['values'] = [tag(x) for x in v.detach().flatten().tolist()]
        return {'__tensor__': d}
    if v is None or isinstance(v, (bool, str)): return v
    if isinstance(v, int): return {'__int__': str(v)}
    if isinstance(v, float): return {'__float__': struct.pack('<d', v).hex()}
    if isinstance(v, dict): return {'__dict__': [[tag(k), tag(x)] for k, x in v.items()]}
    if isinstance(v, (list, tuple)): return {'__list__': [tag(x) for x in v]}
    if isinstance(v, torch.device): return str(v)
    raise TypeError(type(v))
`;

// ---------------------------------------------------------------------------
// Interop with Python torch

const PY_WRITE_CASES =
  PY_TAG +
  String.raw`
out = sys.argv[1]
torch.manual_seed(0)
cases = {}
def case(name, obj, **kw):
    torch.save(obj, f'{out}/{name}.pth', **kw)
    cases[name] = tag(obj)

model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
model.train(); model(torch.randn(2, 3, 6, 6))   # running stats and num_batches_tracked = 1
sd = model.state_dict()
assert isinstance(sd, collections.OrderedDict) and hasattr(sd, '_metadata')
case('state_dict', sd)
case('plain_dict', {'w': torch.randn(3, 4), 'b': torch.randn(4)})
case('one_item', {'only': torch.arange(5)})
case('top_level_tensor', torch.randn(2, 2))

special = torch.tensor([0.0, -0.0, 1.5, float('inf'), float('-inf'), float('nan'), 1e-30, 65504.0])
case('dtypes', {
    'f32': special.clone(), 'f64': special.double() * 1e200, 'f16': special.half(), 'bf16': special.bfloat16(),
    'i64': torch.tensor([-2**63, 2**63 - 1, 0, -1]), 'i32': torch.tensor([-2**31, 2**31 - 1], dtype=torch.int32),
    'i16': torch.tensor([-32768, 32767], dtype=torch.int16), 'i8': torch.tensor([-128, 127], dtype=torch.int8),
    'u8': torch.tensor([0, 128, 255], dtype=torch.uint8), 'bool': torch.tensor([True, False, True]),
    'f16_rand': torch.randn(5, 3).half(), 'bf16_rand': torch.randn(3, 5).bfloat16(),
})

base = torch.arange(24.).reshape(4, 6)
case('views', {
    'base': base, 'transposed': base.t(), 'slice': base[1:3, 2:5], 'row': base[2], 'column': base[:, 3],
    'step': torch.arange(10)[::3], 'expand': torch.ones(3).expand(2, 3),
    'channels_last': torch.randn(2, 3, 4, 5).to(memory_format=torch.channels_last),
    'channels_last_i64': torch.arange(2 * 3 * 2 * 2).reshape(2, 3, 2, 2).to(memory_format=torch.channels_last),
    'channels_last_bf16': torch.randn(1, 3, 2, 2).bfloat16().to(memory_format=torch.channels_last),
    'permuted': torch.randn(2, 3, 4).permute(2, 0, 1), 'empty': torch.empty(0, 3), 'scalar': torch.tensor(3.5),
})
assert base.t().storage().data_ptr() == base.storage().data_ptr()

case('params', {'p': torch.nn.Parameter(torch.randn(2, 2)), 'p_frozen': torch.nn.Parameter(torch.randn(2), requires_grad=False),
                'leaf_requires_grad': torch.randn(3).requires_grad_()})
case('nested', {'a': [1, 2.5, 'x', True, False, None, [], {'k': (1, 2)}], 'big': 2**70, 'neg': -2**40, 'one_float': 1.0,
                'inf': float('inf'), 'nan': float('nan'), 'unicode': 'héllo ✓ 𝄞', 'empty_dict': {}, 'tuple': (1, (2, 3)),
                '__proto__': 'own key', 'int_keys': {0: 'a', 1: 'b', -5: 'c'}, 'float_key': {0.5: 1}})

opt_model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
opt = torch.optim.RMSprop(opt_model.parameters(), lr=1e-5, weight_decay=1e-8, momentum=0.9)
opt_model(torch.randn(2, 3, 6, 6)).sum().backward(); opt.step()
case('optimizer', opt.state_dict())
case('checkpoint', {'model': opt_model.state_dict(), 'optimizer': opt.state_dict(), 'epoch': 3, 'mask_values': [0, 1]})
case('device_size', {'dev': torch.device('cuda', 1), 'cpu': torch.device('cpu'), 'size': torch.Size([2, 3])})
case('protocol4', {'a': torch.arange(6.).reshape(2, 3).t(), 'b': 'hi', 'c': [1.5, {2: 3}]}, pickle_protocol=4)

# Files we must refuse.
torch.save(torch.ones(2), f'{out}/legacy.pth', _use_new_zipfile_serialization=False)
torch.save(torch.nn.Linear(2, 2), f'{out}/whole_module.pth')
torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), f'{out}/torchscript.pth')

json.dump(cases, open(f'{out}/expected.json', 'w'))
`;

test('reads what Python torch.save writes, exactly', { skip: hasTorch() ? false : NO_TORCH }, async () => {
  const dir = tmpDir();
  python(PY_WRITE_CASES, [dir]);
  const expected = JSON.parse(fs.readFileSync(path.join(dir, 'expected.json'), 'utf8')) as Record<string, Tagged>;
  assert.equal(Object.keys(expected).length, 12);
  for (const [name, exp] of Object.entries(expected)) {
    const v = await loadPth(path.join(dir, `${name}.pth`));
    assertMatches(v, exp, name, true);
  }
  // Spot checks of the data model.
  const sd = (await loadPth(path.join(dir, 'state_dict.pth'))) as Record<string, RawTensor>;
  assert.equal(Object.getPrototypeOf(sd), Object.prototype, 'OrderedDict state dict -> plain object');
  assert.deepEqual(Object.keys(sd), ['0.weight', '0.bias', '1.weight', '1.bias', '1.running_mean', '1.running_var', '1.num_batches_tracked']);
  assert.deepEqual(sd['1.num_batches_tracked'].shape, []);
  assert.equal(sd['1.num_batches_tracked'].dtype, 'int64');
  assert.deepEqual([...values(sd['1.num_batches_tracked'])], [1n]);
  const opt = (await loadPth(path.join(dir, 'optimizer.pth'))) as { state: Map<number, Record<string, PyValue>>; param_groups: Record<string, PyValue>[] };
  assert.ok(opt.state instanceof Map, 'int-keyed optimizer state -> Map');
  assert.deepEqual([...opt.state.keys()], [0, 1, 2, 3]);
  assert.deepEqual(opt.param_groups[0].params, [0, 1, 2, 3]);
  const nested = (await loadPth(path.join(dir, 'nested.pth'))) as Record<string, PyValue>;
  assert.equal(Object.getOwnPropertyDescriptor(nested, '__proto__')?.value, 'own key');
  assert.equal(Object.getPrototypeOf(nested), Object.prototype);
  assert.equal(nested.one_float, 1);
  assert.equal(nested.big, 2n ** 70n);
  assert.deepEqual(await loadPth(path.join(dir, 'device_size.pth')), { dev: 'cuda:1', cpu: 'cpu', size: [2, 3] });

  await assert.rejects(loadPth(path.join(dir, 'legacy.pth')), /legacy\.pth: legacy torch\.save format; re-save it with torch>=1\.6/);
  await assert.rejects(loadPth(path.join(dir, 'whole_module.pth')), /whole_module\.pth: refusing to load global "torch\.nn\.modules\.linear\.Linear".*state_dict/);
  await assert.rejects(loadPth(path.join(dir, 'torchscript.pth')), /torchscript\.pth: .*TorchScript/);
  fs.rmSync(dir, { recursive: true });
});

const PY_READ_CASES =
  PY_TAG +
  String.raw`
from torch._weights_only_unpickler import _get_allowed_globals
d = sys.argv[1]
names = json.loads(sys.argv[2])
TORCH2 = tuple(int(x) for x in torch.__version__.split('.')[:2]) >= (2, 0)
# Opcodes torch 1.13's weights_only unpickler implements. It lacks BINFLOAT, so it cannot load
# *any* file containing a Python float (Python's own torch.save({'lr': 0.1}) fails the same way);
# for such files we check the opcodes/globals ourselves and load with weights_only=False.
WO_OPS = {'GLOBAL', 'NEWOBJ', 'REDUCE', 'BUILD', 'APPEND', 'APPENDS', 'SETITEM', 'SETITEMS', 'MARK', 'TUPLE', 'TUPLE1',
          'TUPLE2', 'TUPLE3', 'NONE', 'NEWFALSE', 'NEWTRUE', 'EMPTY_TUPLE', 'EMPTY_LIST', 'EMPTY_DICT', 'EMPTY_SET',
          'BININT', 'BININT1', 'BININT2', 'BINUNICODE', 'SHORT_BINSTRING', 'BINPERSID', 'BINGET', 'LONG_BINGET',
          'BINPUT', 'LONG_BINPUT', 'LONG1', 'PROTO', 'STOP'}
result = {}
for name in names:
    p = f'{d}/{name}.pth'
    z = zipfile.ZipFile(p)
    assert z.testzip() is None
    raw = open(p, 'rb').read()
    for info in z.infolist():   # torch's 64-byte alignment of record data
        h = info.header_offset
        n, e = struct.unpack('<HH', raw[h + 26:h + 30])
        assert (h + 30 + n + e) % 64 == 0, (name, info.filename)
    pkl = [n for n in z.namelist() if n.endswith('/data.pkl')][0]
    uses_float = False
    for op, arg, pos in pickletools.genops(z.read(pkl)):
        if op.name == 'BINFLOAT': uses_float = True
        else: assert op.name in WO_OPS, (name, op.name)
        if op.name == 'GLOBAL': assert arg.replace(' ', '.') in _get_allowed_globals(), (name, arg)
    wo = TORCH2 or not uses_float
    v = torch.load(p, weights_only=wo)
    result[name] = {'value': tag(v), 'weights_only': wo}
    if name == 'kitchen_sink':
        assert v['shared_a'] is v['shared_b'], 'one JS tensor object -> one Python tensor'
        assert all(t.is_contiguous() for t in v.values() if isinstance(t, torch.Tensor))
    if name == 'state_dict':
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
        model.load_state_dict(v, strict=True)
        ref = torch.load(f'{d}/ref_state_dict.pth')
        for k, t in model.state_dict().items(): assert torch.equal(t, ref[k]), k
    if name == 'optimizer':
        model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
        opt = torch.optim.RMSprop(model.parameters(), lr=1e-5, weight_decay=1e-8, momentum=0.9)
        opt.load_state_dict(v)
        ref = torch.load(f'{d}/ref_optimizer.pth')
        got = opt.state_dict()
        assert got['param_groups'] == ref['param_groups'], (got['param_groups'], ref['param_groups'])
        for i, st in ref['state'].items():
            for k, x in st.items():
                assert (torch.equal(got['state'][i][k], x) if torch.is_tensor(x) else got['state'][i][k] == x), (i, k)
        model(torch.randn(2, 3, 6, 6)).sum().backward(); opt.step()   # the loaded state is usable
print(json.dumps(result))
`;

test('Python torch.load reads what we write (weights_only), state dict and optimizer load into torch', { skip: hasTorch() ? false : NO_TORCH }, async () => {
  const dir = tmpDir();
  // Reference files from Python, decoded by us and re-encoded: the round trip Python -> TS -> Python.
  python(
    PY_TAG +
      String.raw`
d = sys.argv[1]
torch.manual_seed(1)
model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
opt = torch.optim.RMSprop(model.parameters(), lr=1e-5, weight_decay=1e-8, momentum=0.9)
model(torch.randn(2, 3, 6, 6)).sum().backward(); opt.step()
torch.save(model.state_dict(), f'{d}/ref_state_dict.pth')
torch.save(opt.state_dict(), f'{d}/ref_optimizer.pth')
`,
    [dir],
  );
  const cases: Record<string, PyValue> = {
    state_dict: await loadPth(path.join(dir, 'ref_state_dict.pth')),
    optimizer: await loadPth(path.join(dir, 'ref_optimizer.pth')),
  };
  const shared = rawTensor('float32', [2], new Float32Array([1, 2]));
  cases.kitchen_sink = {
    f32: rawTensor('float32', [2, 3], new Float32Array([1, -2, 3.5, NaN, Infinity, -0])),
    f64: rawTensor('float64', [2], new Float64Array([Math.PI, 1e-300])),
    f16: rawTensor('float16', [2], new Uint16Array([0x3c00, 0xfc00])),
    bf16: rawTensor('bfloat16', [2, 1], new Uint16Array([0x3f80, 0x7fc1])),
    i64: rawTensor('int64', [3], new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, 0n])),
    i32: rawTensor('int32', [1], new Int32Array([-5])),
    i16: rawTensor('int16', [1], new Int16Array([300])),
    i8: rawTensor('int8', [1], new Int8Array([-1])),
    u8: rawTensor('uint8', [2, 2], new Uint8Array([0, 1, 254, 255])),
    bool: rawTensor('bool', [2], new Uint8Array([1, 0])),
    scalar: rawTensor('int64', [], new BigInt64Array([7n])),
    empty: rawTensor('float32', [0, 2], new Float32Array(0)),
    rank5: rawTensor('uint8', [1, 2, 1, 2, 1], new Uint8Array([1, 2, 3, 4])),
    grad: { ...rawTensor('float32', [1], new Float32Array([1])), requiresGrad: true },
    shared_a: shared,
    shared_b: shared,
    lr: new PyFloat(1),
    eps: 1e-8,
    epoch: 3,
    big: 2n ** 80n,
    neg: -(2 ** 40),
    list: [1, 'two', [3, [4]], null, true, false, new PyFloat(0)],
    int_keys: new Map<string | number, PyValue>([
      [0, 'a'],
      [7, { nested: [1] }],
    ]),
    ['__proto__']: 'own',
    unicode: 'héllo ✓ 𝄞',
  } as Record<string, PyValue>;
  cases.one_item = { only: rawTensor('int64', [2], new BigInt64Array([1n, 2n])) };
  cases.top_tensor = rawTensor('float32', [2], new Float32Array([0.5, 0.25]));
  cases.ints_only = { a: [1, 2, 3], b: new Map([[1, 'x']]), c: null, d: true };

  for (const [name, v] of Object.entries(cases)) await savePth(path.join(dir, `${name}.pth`), v);
  const got = JSON.parse(python(PY_READ_CASES, [dir, JSON.stringify(Object.keys(cases))])) as Record<string, { value: Tagged; weights_only: boolean }>;
  for (const [name, v] of Object.entries(cases)) {
    assertMatches(v, got[name].value, name, name === 'state_dict' || name === 'optimizer' /* decoded from Python: 1.0 became 1 */);
  }
  for (const name of ['state_dict', 'one_item', 'top_tensor', 'ints_only']) assert.ok(got[name].weights_only, `${name} loaded with weights_only=True`);
  fs.rmSync(dir, { recursive: true });
});
