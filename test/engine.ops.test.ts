// Every exposed op, forward and gradient, against Debian's PyTorch 1.13 (golden values computed in
// the test run by /usr/bin/python3 from the same inputs).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as E from '../src/engine/index.js';
import { F, type Tensor } from './helpers/engine.js';
import { NO_TORCH, assertClose, hasTorch, runPython } from './helpers/python.js';

type Input = { shape: number[]; dtype?: 'float32' | 'int64' | 'bool'; grad?: boolean; low?: number; high?: number };
interface Case {
  name: string;
  inputs: Record<string, Input>;
  py: string; // python expression over the inputs (torch, F available)
  ts: (x: Record<string, Tensor>) => Tensor;
  atol?: number;
}

// Deterministic inputs (xorshift), shared by both sides as plain lists.
function values(seed: number, inp: Input): number[] {
  let s = seed * 2654435761 + 1;
  const n = inp.shape.reduce((a, b) => a * b, 1);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    const u = s / 4294967296;
    if (inp.dtype === 'int64') out.push(Math.floor((inp.low ?? 0) + u * ((inp.high ?? 3) - (inp.low ?? 0))));
    else if (inp.dtype === 'bool') out.push(u > 0.5 ? 1 : 0);
    else out.push(Math.round(((inp.low ?? -2) + u * ((inp.high ?? 2) - (inp.low ?? -2))) * 1e4) / 1e4);
  }
  return out;
}

const f = (shape: number[], grad = true, low?: number, high?: number): Input => ({ shape, grad, low, high });
const cases: Case[] = [
  { name: 'add', inputs: { a: f([3, 4]), b: f([4]) }, py: 'a + 2*b', ts: ({ a, b }) => a.add(b, 2) },
  { name: 'add scalar', inputs: { a: f([3, 4]) }, py: 'a + 1.5', ts: ({ a }) => a.add(1.5) },
  { name: 'sub', inputs: { a: f([3, 4]), b: f([3, 4]) }, py: 'a - b', ts: ({ a, b }) => a.sub(b) },
  { name: 'mul', inputs: { a: f([2, 3]), b: f([2, 3]) }, py: 'a * b', ts: ({ a, b }) => a.mul(b) },
  { name: 'div', inputs: { a: f([2, 3]), b: f([2, 3], true, 0.5, 2) }, py: 'a / b', ts: ({ a, b }) => a.div(b) },
  { name: 'pow', inputs: { a: f([2, 3], true, 0.5, 2) }, py: 'a ** 3', ts: ({ a }) => a.pow(3) },
  { name: 'neg abs', inputs: { a: f([5]) }, py: '(-a).abs()', ts: ({ a }) => a.neg().abs() },
  { name: 'exp log', inputs: { a: f([5], true, 0.1, 2) }, py: 'a.exp() + a.log() + a.log1p()', ts: ({ a }) => a.exp().add(a.log()).add(a.log1p()) },
  { name: 'sqrt rsqrt', inputs: { a: f([5], true, 0.1, 2) }, py: 'a.sqrt() + a.rsqrt() + a.reciprocal()', ts: ({ a }) => a.sqrt().add(a.rsqrt()).add(a.reciprocal()) },
  { name: 'sigmoid tanh relu', inputs: { a: f([6]) }, py: 'a.sigmoid() + a.tanh() + a.relu() + a.square()', ts: ({ a }) => a.sigmoid().add(a.tanh()).add(a.relu()).add(a.square()) },
  { name: 'sin cos', inputs: { a: f([6]) }, py: 'a.sin() * a.cos()', ts: ({ a }) => a.sin().mul(a.cos()) },
  { name: 'floor ceil round sign', inputs: { a: f([6], false) }, py: 'a.floor() + a.ceil() + a.round() + a.sign()', ts: ({ a }) => a.floor().add(a.ceil()).add(a.round()).add(a.sign()) },
  { name: 'clamp', inputs: { a: f([8]) }, py: 'a.clamp(-0.5, 0.7)', ts: ({ a }) => a.clamp(-0.5, 0.7) },
  { name: 'maximum minimum', inputs: { a: f([8]), b: f([8]) }, py: 'torch.maximum(a, b) + torch.minimum(a, b) * 2', ts: ({ a, b }) => a.maximum(b).add(a.minimum(b).mul(2)) },
  {
    name: 'compare where',
    inputs: { a: f([8]), b: f([8]) },
    py: 'torch.where(a > b, a, b * 3) + torch.where(a <= 0, 1.0, 0.0) + (a >= b).float() + (a < b).float() + (a == a).float() + (a != b).float()',
    ts: ({ a, b }) =>
      E.where(a.gt(b), a, b.mul(3))
        .add(E.where(a.le(0), 1, 0))
        .add(a.ge(b).float())
        .add(a.lt(b).float())
        .add(a.eq(a).float())
        .add(a.ne(b).float()),
  },
  {
    name: 'logical',
    inputs: { a: f([8], false), b: f([8], false) },
    py: '((a > 0).logical_and(b > 0).logical_or(a < -1).logical_not()).float() + a.isfinite().float() + a.isnan().float() + a.isinf().float()',
    ts: ({ a, b }) => a.gt(0).logicalAnd(b.gt(0)).logicalOr(a.lt(-1)).logicalNot().float().add(a.isfinite().float()).add(a.isnan().float()).add(a.isinf().float()),
  },
  { name: 'remainder', inputs: { a: f([6], false, 0, 10) }, py: 'a.remainder(3)', ts: ({ a }) => a.remainder(3) },
  { name: 'sum dims keepdim', inputs: { a: f([2, 3, 4]) }, py: 'a.sum((1, 2), keepdim=True) + a.sum()', ts: ({ a }) => a.sum([1, 2], true).add(a.sum()) },
  { name: 'mean', inputs: { a: f([2, 3, 4]) }, py: 'a.mean(-1) + a.mean()', ts: ({ a }) => a.mean(-1).add(a.mean()) },
  { name: 'amax amin', inputs: { a: f([3, 5]) }, py: 'a.amax(1) + a.amin(1) + a.max() + a.min()', ts: ({ a }) => a.amax(1).add(a.amin(1)).add(a.amax()).add(a.amin()) },
  { name: 'argmax argmin', inputs: { a: f([3, 5], false) }, py: '(a.argmax(1) * 10 + a.argmin(1) + a.argmax()).float()', ts: ({ a }) => a.argmax(1).mul(10).add(a.argmin(1)).add(a.argmax()).float() },
  { name: 'all any', inputs: { a: f([3, 5], false) }, py: '(a > -3).all().float() + (a > 1.9).any().float()', ts: ({ a }) => a.gt(-3).all().float().add(a.gt(1.9).any().float()) },
  { name: 'norm', inputs: { a: f([3, 4]) }, py: 'a.norm() + a.norm(1) + a.norm(2, dim=1).sum()', ts: ({ a }) => a.norm().add(a.norm(1)).add(a.norm(2, 1).sum()) },
  { name: 'var', inputs: { a: f([3, 4]) }, py: 'a.var(1) + a.var()', ts: ({ a }) => a.var(1).add(a.var()) },
  { name: 'matmul', inputs: { a: f([3, 4]), b: f([4, 2]) }, py: 'a @ b', ts: ({ a, b }) => a.matmul(b) },
  {
    name: 'reshape view permute transpose',
    inputs: { a: f([2, 3, 4]) },
    py: 'a.reshape(6, 4).view(4, 6).reshape(2, 3, 4).permute(2, 0, 1).transpose(0, 1).contiguous()',
    ts: ({ a }) => a.reshape([6, 4]).view([4, 6]).reshape([2, 3, 4]).permute([2, 0, 1]).transpose(0, 1).contiguous(),
  },
  {
    name: 'slice narrow select',
    inputs: { a: f([4, 6]) },
    py: 'a[1:4:2, ::3].sum() + a.narrow(1, 2, 3).sum() + a.select(0, 2).sum()',
    ts: ({ a }) =>
      a
        .slice(0, 1, 4, 2)
        .slice(1, null, null, 3)
        .sum()
        .add(a.narrow(1, 2, 3).sum())
        .add(a.select(0, 2).sum()),
  },
  {
    name: 'index_select gather',
    inputs: { a: f([4, 5]), i: { shape: [3], dtype: 'int64', high: 4 }, g: { shape: [4, 2], dtype: 'int64', high: 5 } },
    py: 'a.index_select(0, i).sum(0) + a.gather(1, g).sum()',
    ts: ({ a, i, g }) => a.indexSelect(0, i).sum(0).add(a.gather(1, g).sum()),
  },
  { name: 'masked_select', inputs: { a: f([4, 5]) }, py: 'a.masked_select(a > 0).sum()', ts: ({ a }) => a.maskedSelect(a.gt(0)).sum() },
  {
    name: 'squeeze unsqueeze flatten expand',
    inputs: { a: f([3, 1, 4]) },
    py: 'a.squeeze(1).unsqueeze(0).flatten(1) + a.squeeze().flatten().expand(2, 12)',
    ts: ({ a }) =>
      a
        .squeeze(1)
        .unsqueeze(0)
        .flatten(1)
        .add(a.squeeze().flatten().expand([2, 12])),
  },
  {
    name: 'cat stack chunk',
    inputs: { a: f([2, 3]), b: f([2, 3]) },
    py: 'torch.cat([a, b], 1).sum(0) + torch.stack([a, b], 0).sum((0, 1)).repeat(2) + a.chunk(3, 1)[1].sum()',
    ts: ({ a, b }) =>
      E.cat([a, b], 1)
        .sum(0)
        .add(E.cat([E.stack([a, b], 0).sum([0, 1]), E.stack([a, b], 0).sum([0, 1])]))
        .add(a.chunk(3, 1)[1].sum()),
  },
  { name: 'conv2d', inputs: { x: f([2, 3, 7, 6]), w: f([4, 3, 3, 3]), b: f([4]) }, py: 'F.conv2d(x, w, b, padding=1)', ts: ({ x, w, b }) => E.conv2d(x, w, b, { padding: 1 }) },
  {
    name: 'conv2d stride dilation groups',
    inputs: { x: f([1, 4, 9, 9]), w: f([4, 2, 3, 3]) },
    py: 'F.conv2d(x, w, None, stride=2, padding=2, dilation=2, groups=2)',
    ts: ({ x, w }) => E.conv2d(x, w, null, { stride: 2, padding: 2, dilation: 2, groups: 2 }),
  },
  {
    name: 'conv_transpose2d',
    inputs: { x: f([2, 4, 3, 5]), w: f([4, 2, 2, 2]), b: f([2]) },
    py: 'F.conv_transpose2d(x, w, b, stride=2)',
    ts: ({ x, w, b }) => E.convTranspose2d(x, w, b, { stride: 2 }),
  },
  {
    name: 'batch_norm train',
    inputs: { x: f([3, 2, 4, 4]), w: f([2]), b: f([2]) },
    py: 'F.batch_norm(x, torch.zeros(2), torch.ones(2), w, b, training=True, momentum=0.1, eps=1e-5)',
    ts: ({ x, w, b }) => E.batchNorm(x, E.zeros([2]), E.ones([2]), w, b, true),
  },
  {
    name: 'batch_norm eval',
    inputs: { x: f([3, 2, 4, 4]), w: f([2]), b: f([2]), m: f([2], false), v: f([2], false, 0.5, 2) },
    py: 'F.batch_norm(x, m, v, w, b, training=False)',
    ts: ({ x, w, b, m, v }) => E.batchNorm(x, m, v, w, b, false),
  },
  { name: 'max_pool2d', inputs: { x: f([2, 2, 7, 6]) }, py: 'F.max_pool2d(x, 2)', ts: ({ x }) => E.maxPool2d(x, 2) },
  { name: 'avg_pool2d', inputs: { x: f([2, 2, 6, 6]) }, py: 'F.avg_pool2d(x, 2)', ts: ({ x }) => E.avgPool2d(x, 2) },
  {
    name: 'upsample bilinear align_corners',
    inputs: { x: f([1, 2, 3, 5]) },
    py: 'F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)',
    ts: ({ x }) => E.interpolate(x, [6, 10], 'bilinear', true),
  },
  { name: 'interpolate bilinear', inputs: { x: f([1, 2, 4, 5]) }, py: 'F.interpolate(x, size=(9, 7), mode="bilinear")', ts: ({ x }) => E.interpolate(x, [9, 7], 'bilinear') },
  { name: 'interpolate bicubic', inputs: { x: f([1, 1, 4, 5]) }, py: 'F.interpolate(x, size=(3, 3), mode="bicubic")', ts: ({ x }) => E.interpolate(x, [3, 3], 'bicubic') },
  { name: 'interpolate nearest', inputs: { x: f([1, 1, 4, 5]) }, py: 'F.interpolate(x, size=(7, 9), mode="nearest")', ts: ({ x }) => E.interpolate(x, [7, 9], 'nearest') },
  { name: 'softmax log_softmax', inputs: { x: f([2, 3, 4]) }, py: 'F.softmax(x, 1) + F.log_softmax(x, 1)', ts: ({ x }) => E.softmax(x, 1).add(E.logSoftmax(x, 1)) },
  { name: 'cross_entropy', inputs: { x: f([2, 3, 4, 5]), t: { shape: [2, 4, 5], dtype: 'int64', high: 3 } }, py: 'F.cross_entropy(x, t)', ts: ({ x, t }) => E.crossEntropy(x, t) },
  {
    name: 'cross_entropy weight ignore smoothing',
    inputs: { x: f([4, 3]), t: { shape: [4], dtype: 'int64', high: 3 }, w: f([3], false, 0.5, 2) },
    py: 'F.cross_entropy(x, t, weight=w, ignore_index=1) + F.cross_entropy(x, t, reduction="sum", label_smoothing=0.1) + F.cross_entropy(x, t, reduction="none").sum()',
    ts: ({ x, t, w }) =>
      E.crossEntropy(x, t, { weight: w, ignoreIndex: 1 })
        .add(E.crossEntropy(x, t, { reduction: 'sum', labelSmoothing: 0.1 }))
        .add(E.crossEntropy(x, t, { reduction: 'none' }).sum()),
  },
  {
    name: 'bce_with_logits',
    inputs: { x: f([2, 5]), t: f([2, 5], false, 0, 1), pw: f([5], false, 0.5, 3) },
    py: 'F.binary_cross_entropy_with_logits(x, t) + F.binary_cross_entropy_with_logits(x, t, pos_weight=pw, reduction="sum")',
    ts: ({ x, t, pw }) => E.binaryCrossEntropyWithLogits(x, t).add(E.binaryCrossEntropyWithLogits(x, t, { posWeight: pw, reduction: 'sum' })),
  },
  { name: 'mse_loss', inputs: { a: f([3, 4]), b: f([3, 4]) }, py: 'F.mse_loss(a, b)', ts: ({ a, b }) => E.mseLoss(a, b) },
  { name: 'one_hot', inputs: { t: { shape: [2, 3], dtype: 'int64', high: 4 } }, py: 'F.one_hot(t, 4).float()', ts: ({ t }) => E.oneHot(t, 4).float() },
  { name: 'pad constant', inputs: { x: f([1, 2, 3, 4]) }, py: 'F.pad(x, [1, 2, 0, 1])', ts: ({ x }) => E.pad(x, [1, 2, 0, 1]) },
  {
    name: 'pad reflect replicate',
    inputs: { x: f([1, 2, 4, 4]) },
    py: 'F.pad(x, [1, 1, 2, 2], mode="reflect") + F.pad(x, [1, 1, 2, 2], mode="replicate")',
    ts: ({ x }) => E.pad(x, [1, 1, 2, 2], 'reflect').add(E.pad(x, [1, 1, 2, 2], 'replicate')),
  },
  {
    name: 'sort (values, then indices) cumsum',
    inputs: { a: f([4, 5]) },
    py: 'torch.sort(a, dim=1, descending=True, stable=True)[0] * (1 + torch.sort(a, dim=0, stable=True)[1].float().sum()) + a.cumsum(0)',
    ts: ({ a }) => E.sort(a, 1, true)[0].mul(E.sort(a, 0)[1].float().sum().add(1)).add(E.cumsum(a, 0)),
  },
  { name: 'bincount', inputs: { t: { shape: [20], dtype: 'int64', high: 5 } }, py: 'torch.bincount(t, minlength=7).float()', ts: ({ t }) => E.bincount(t, null, 7).float() },
  { name: 'dropout eval', inputs: { x: f([4, 4]) }, py: 'F.dropout(x, 0.5, training=False)', ts: ({ x }) => E.dropout(x, 0.5, false) },
  { name: 'to float64 and back', inputs: { x: f([4]) }, py: 'x.double().float() * 2', ts: ({ x }) => x.to({ dtype: 'float64' }).float().mul(2) },
];

const PY = `
import json, sys, math, torch, torch.nn.functional as F
torch.set_num_threads(2)
req = json.load(sys.stdin)
out = []
for c in req:
    env = {'torch': torch, 'F': F}
    grads = []
    for name, inp in c['inputs'].items():
        dt = {'float32': torch.float32, 'int64': torch.int64, 'bool': torch.bool}[inp.get('dtype', 'float32')]
        t = torch.tensor(inp['values'], dtype=torch.float64).to(dt).reshape(inp['shape'])
        if inp.get('grad'): t.requires_grad_(True); grads.append(name)
        env[name] = t
    y = eval(c['py'], env)
    w = torch.cos(torch.arange(y.numel(), dtype=torch.float64)).reshape(y.shape).float()
    res = {'y': y.detach().double().flatten().tolist(), 'shape': list(y.shape)}
    if grads and y.requires_grad:
        (y.float() * w).sum().backward()
        res['grads'] = {g: env[g].grad.double().flatten().tolist() for g in grads}
    out.append(res)
print(json.dumps(out))
`;

test('ops match PyTorch: forward and gradients', { skip: !hasTorch() && NO_TORCH }, () => {
  const req = cases.map((c, ci) => ({
    py: c.py,
    inputs: Object.fromEntries(Object.entries(c.inputs).map(([k, v], i) => [k, { ...v, values: values(ci * 31 + i + 1, v) }])),
  }));
  const golden = runPython<{ y: number[]; shape: number[]; grads?: Record<string, number[]> }[]>(PY, req);
  cases.forEach((c, ci) => {
    E.tidy(() => {
      const xs: Record<string, Tensor> = {};
      for (const [k, v] of Object.entries(req[ci].inputs)) {
        const t = E.tensor(new Float64Array(v.values), v.shape, { dtype: 'float64' }).to({ dtype: v.dtype ?? 'float32' });
        xs[k] = v.grad ? t.requiresGrad_(true) : t;
      }
      const y = c.ts(xs);
      const g = golden[ci];
      assert.deepEqual(y.shape, g.shape, `${c.name}: shape`);
      assertClose(y.toArray(), g.y, c.atol ?? 1e-5, 1e-4, `${c.name}: forward`);
      if (g.grads) {
        const w = E.arange(0, y.numel, 1, { dtype: 'float64' }).cos().reshape(y.shape).float();
        y.float().mul(w).sum().backward();
        for (const [k, gv] of Object.entries(g.grads)) {
          const gr = xs[k].grad;
          assert.ok(gr, `${c.name}: no gradient for ${k}`);
          assertClose(gr.toArray(), gv, c.atol ?? 1e-4, 1e-4, `${c.name}: d/d${k}`);
        }
      }
    });
  });
});

test('in-place and foreach ops match their definitions', () => {
  E.tidy(() => {
    const a = E.tensor([1, 2, 3]);
    const b = E.tensor([4, 5, 6]);
    a.add_(b, 2)
      .mul_(0.5)
      .div_(2)
      .addcmul_(b, b, 0.1)
      .addcdiv_(b, E.tensor([2, 2, 2]), 1);
    // ((1+8)*.5/2 + 1.6 + 2), ((2+10)*.5/2 + 2.5 + 2.5), ((3+12)*.5/2 + 3.6 + 3)
    assertClose(a.toArray(), [2.25 + 1.6 + 2, 3 + 2.5 + 2.5, 3.75 + 3.6 + 3], 1e-5, 0, 'in-place chain');
    const c = E.tensor([1, 4, 9]).sqrt_().clamp_(1.5, 2.5);
    assertClose(c.toArray(), [1.5, 2, 2.5], 1e-6, 0, 'sqrt_ clamp_');
    const d = E.zeros([3])
      .fill_(2)
      .lerp_(E.tensor([4, 6, 8]), 0.5);
    assertClose(d.toArray(), [3, 4, 5], 1e-6, 0, 'fill_ lerp_');
    const e = E.tensor([-1, 2, -3]).relu_();
    assertClose(e.toArray(), [0, 2, 0], 0, 0, 'relu_');
    const xs = [E.tensor([1, 2]), E.tensor([3])];
    const ys = [E.tensor([10, 20]), E.tensor([30])];
    E.foreach.add_(xs, ys, 0.1);
    E.foreach.mul_(xs, 2);
    E.foreach.mul_(xs, E.scalar(0.5));
    E.foreach.addcmul_(xs, ys, ys, 0.01);
    E.foreach.addcdiv_(xs, ys, ys, 1);
    assertClose(xs[0].toArray(), [2 + 1 + 1, 4 + 4 + 1], 1e-5, 0, 'foreach[0]');
    assertClose(xs[1].toArray(), [6 + 9 + 1], 1e-5, 0, 'foreach[1]');
    const n = E.foreach.norm([E.tensor([3, 4]), E.tensor([5, 12])]);
    assertClose(n.toArray(), [5, 13], 1e-5, 0, 'foreach norm');
    const s = E.foreach.sqrt([E.tensor([4]), E.tensor([9])]);
    assertClose(
      s.flatMap((t) => t.toArray()),
      [2, 3],
      1e-6,
      0,
      'foreach sqrt',
    );
    const added = E.foreach.add([E.tensor([1])], 1);
    assertClose(added[0].toArray(), [2], 0, 0, 'foreach add');
    E.foreach.div_(xs, 2);
    E.foreach.lerp_(xs, ys, 1);
    assertClose(xs[1].toArray(), [30], 1e-6, 0, 'foreach lerp');
    E.foreach.copy_(xs, ys);
    E.foreach.zero_(ys);
    assertClose(xs[0].toArray(), [10, 20], 0, 0, 'foreach copy');
    assertClose(ys[0].toArray(), [0, 0], 0, 0, 'foreach zero');
  });
});

test('creation ops, dtypes, devices and typed-array round trips', () => {
  E.tidy(() => {
    assert.deepEqual(E.zeros([2, 3]).toArray(), [0, 0, 0, 0, 0, 0]);
    assert.deepEqual(E.ones([2], { dtype: 'int32' }).toArray(), [1, 1]);
    assert.deepEqual(E.full([2], 7, { dtype: 'int64' }).toArray(), [7, 7]);
    assert.deepEqual(E.arange(0, 5).toArray(), [0, 1, 2, 3, 4]);
    assert.equal(E.empty([4, 4]).numel, 16);
    const r = E.rand([1000]);
    assert.ok(r.amin().item() >= 0 && r.amax().item() < 1);
    assert.ok(Math.abs(E.randn([10000]).mean().item()) < 0.05);
    const ri = E.randint(2, 5, [1000]);
    assert.equal(ri.dtype, 'int64');
    assert.ok(ri.amin().item() >= 2 && ri.amax().item() <= 4);
    assert.deepEqual([...E.randperm(5).toArray()].sort(), [0, 1, 2, 3, 4]);
    assert.ok(Math.abs(E.empty([10000]).uniform_(-1, 1).mean().item()) < 0.05);
    assert.ok(Math.abs(E.empty([10000]).normal_(3, 1).mean().item() - 3) < 0.05);
    for (const dtype of ['float32', 'float64', 'float16', 'bfloat16', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool'] as const) {
      const t = E.tensor([0, 1, 2, 3], [2, 2]).to({ dtype });
      assert.equal(t.dtype, dtype);
      assert.deepEqual(t.toArray(), dtype === 'bool' ? [0, 1, 1, 1] : [0, 1, 2, 3], dtype);
      assert.equal(t.bytes().length, 4 * ({ float64: 8, int64: 8, float32: 4, int32: 4, float16: 2, bfloat16: 2, int16: 2 } as Record<string, number>)[dtype] || 4);
    }
    assert.deepEqual(Array.from(E.tensor(new Uint8Array([1, 2, 250])).data() as Uint8Array), [1, 2, 250]);
    assert.deepEqual(Array.from(E.tensor(new BigInt64Array([1n, -2n])).data() as BigInt64Array), [1n, -2n]);
    assert.deepEqual(E.tensor(new Int32Array([5, 6]), [2, 1]).shape, [2, 1]);
    // channels_last
    const x = E.rand([2, 3, 4, 5]);
    const cl = x.contiguous('channels_last');
    assert.ok(cl.isContiguous('channels_last'));
    assert.deepEqual(cl.strides, [60, 1, 15, 3]);
    assert.deepEqual(cl.toArray(), x.toArray());
    assert.equal(x.to({ device: 'cpu' }).device, 'cpu');
    assert.equal(E.scalar(2.5).item(), 2.5);
    assert.equal(E.tensor([1]).clone().detach().pinMemory().item(), 1);
  });
});

test('autograd: grad, noGrad, inference mode, setData, clearGrads', () => {
  E.tidy(() => {
    const w = E.tensor([1, 2, 3]).requiresGrad_();
    assert.ok(w.requiresGrad && w.isLeaf);
    const y = w.mul(w).sum();
    assert.ok(!y.isLeaf);
    y.backward();
    assert.deepEqual(w.grad?.toArray(), [2, 4, 6]);
    w.mul(2).sum().backward(); // accumulates
    assert.deepEqual(w.grad?.toArray(), [4, 6, 8]);
    E.clearGrads([w]);
    assert.equal(w.grad, null);
    w.grad = E.tensor([1, 1, 1]);
    assert.deepEqual(E.grads([w, E.tensor([0])])[0]?.toArray(), [1, 1, 1]);
    const z = E.noGrad(() => w.mul(2));
    assert.equal(z.requiresGrad, false);
    assert.ok(E.isGradEnabled());
    const i = E.inferenceMode(() => w.mul(3));
    assert.equal(i.requiresGrad, false);
    E.noGrad(() => w.setData(E.tensor([7, 8, 9])));
    assert.deepEqual(w.toArray(), [7, 8, 9]);
    assert.ok(w.requiresGrad);
    // backward with explicit grad and retained graph
    const v = E.tensor([1, 2]).requiresGrad_();
    const o = v.mul(3);
    o.backward(E.tensor([1, 10]), true);
    o.backward(E.tensor([1, 1]));
    assert.deepEqual(v.grad?.toArray(), [6, 33]);
  });
});

test('autocast bf16 on CPU casts convolutions and keeps fp32 losses', () => {
  E.tidy(() => {
    const x = E.rand([1, 2, 8, 8]);
    const w = E.rand([3, 2, 3, 3]);
    const y = E.autocast('cpu', 'bfloat16', () => {
      assert.ok(E.isAutocastEnabled('cpu'));
      return E.conv2d(x, w, null, { padding: 1 });
    });
    assert.equal(y.dtype, 'bfloat16');
    assert.ok(!E.isAutocastEnabled('cpu'));
    const ref = E.conv2d(x, w, null, { padding: 1 });
    assert.ok(y.float().sub(ref).abs().amax().item() < 0.1);
    const off = E.autocast('cpu', 'bfloat16', () => E.conv2d(x, w), false);
    assert.equal(off.dtype, 'float32');
  });
});

test('tidy frees everything but its result; dispose and keep work', () => {
  const before = E.memoryStats().liveTensors;
  const kept = E.tidy(() => {
    const a = E.ones([100]);
    const b = a.mul(2);
    const inner = E.tidy(() => [b.add(1), b.add(2)]);
    return { x: inner[0], y: [b.sum()] };
  });
  assert.equal(E.memoryStats().liveTensors, before + 2);
  assert.equal(
    kept.x.sum().disposeAfter((t) => t.item()),
    300,
  );
  E.dispose(kept);
  assert.equal(E.memoryStats().liveTensors, before);
  const held = E.tidy(() => {
    const p = E.zeros([3]).keep();
    E.ones([3]);
    return p.isDisposed;
  });
  assert.equal(held, false);
  assert.equal(E.memoryStats().liveTensors, before + 1);
  // A throwing tidy frees its tensors too.
  assert.throws(
    () =>
      E.tidy(() => {
        E.ones([5]);
        throw new Error('boom');
      }),
    /boom/,
  );
  assert.equal(E.memoryStats().liveTensors, before + 1);
});

test('RNG: manualSeed and state round trip reproduce draws', () => {
  E.tidy(() => {
    E.manualSeed(123);
    const a = E.rand([5]).toArray();
    E.manualSeed(123);
    const state = E.getRngState();
    const b = E.rand([5]).toArray();
    E.setRngState(state);
    const c = E.rand([5]).toArray();
    assert.deepEqual(a, b);
    assert.deepEqual(b, c);
  });
});

test('runtime: threads, device resolution and build info', () => {
  assert.ok(E.getNumThreads() >= 1);
  E.setNumThreads(1);
  assert.equal(E.getNumThreads(), 1);
  E.setNumThreads(2);
  assert.equal(E.resolveDevice('cpu'), 'cpu');
  assert.equal(E.resolveDevice('auto'), E.cudaIsAvailable() ? 'cuda' : 'cpu');
  assert.throws(() => E.resolveDevice('tpu'), /unknown device/);
  if (!E.cudaIsAvailable()) assert.throws(() => E.resolveDevice('cuda'), /CUDA is not available/);
  assert.match(E.buildInfo().torch, /^\d+\.\d+/);
  E.setBackendFlags({ cudnnBenchmark: true, allowTF32: true });
  assert.equal(E.mallocTrim(), E.mallocTrim()); // callable
  assert.equal(typeof F, 'object');
});
