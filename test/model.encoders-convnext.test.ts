// The ConvNeXt encoder (src/model/encoders/convnext.ts) against Debian torchvision 0.14's
// convnext_tiny (test/reference/encoders_convnext.py): its keys less spec.unused at every depth,
// the features at /4../32 and the gradients of the input and of parameters in every stage (eval
// mode, so stochastic depth is the identity on both sides), the layers it is made of (E.gelu,
// E.layerNorm, Linear, LayerNorm2d) forward and backward, and its ONNX form in onnxruntime.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as E from '../src/engine/index.js';
import type { Tensor } from '../src/engine/index.js';
import { Graph } from '../src/export/onnx.js';
import { DataType, ModelProto } from '../src/export/onnx-schema.js';
import { ENCODERS, type Encoder } from '../src/model/encoders/index.js';
import { LayerNorm2d, Linear, type Module, StochasticDepth } from '../src/nn/index.js';
import { PY_EXCHANGE, loadTensors } from './helpers/exchange.js';
import { NO_TORCH, PYTHON, assertClose, hasTorch, runPython } from './helpers/python.js';
import { PY_IMPORT_REFERENCE, REFERENCE_ROOT } from './helpers/reference.js';

const NO_TORCHVISION = spawnSync(PYTHON, ['-c', 'import torchvision'], { encoding: 'utf8' }).status === 0 ? false : 'Debian python3-torchvision is not installed';
const SKIP = hasTorch() ? NO_TORCHVISION : NO_TORCH;
const spec = ENCODERS.convnext_tiny;
const [N, H, W] = [2, 32, 64];
/** One parameter per kind and stage: stem conv, depthwise conv, LayerNorm, both Linears, layer_scale, downsampling LayerNorm2d and conv. */
const GRAD_KEYS = [
  'features.0.0.weight',
  'features.0.1.bias',
  'features.1.0.block.0.weight',
  'features.1.2.layer_scale',
  'features.2.0.weight',
  'features.3.1.block.3.weight',
  'features.4.1.bias',
  'features.5.8.block.2.weight',
  'features.5.4.block.5.bias',
  'features.7.2.block.5.weight',
  'features.7.0.layer_scale',
];
/**
 * float32 on both sides, different kernels (libtorch's and Debian torch's builds), so sums run in
 * different orders: |ours - torch| <= 1e-5 + 1e-5 |torch|, i.e. 1e-5 absolute for the O(1) values
 * and relative where they are large (gradients of the stem weight reach ~1e3).
 */
const close = (ours: Tensor, ref: Tensor, what: string, tol = 1e-5) => assertClose(ours.data() as Float32Array, ref.data() as Float32Array, tol, tol, what);

let dir: string;
let gold: Map<string, Tensor>;
let ops: Map<string, Tensor>;
/** convnext_tiny at depth 5 with the golden's weights, in eval mode. */
let enc: Encoder;
const get = (m: Map<string, Tensor>, k: string): Tensor => m.get(k) ?? assert.fail(`the golden has no ${k}`);

/** torchvision's state dict (keys `sd.*` of the golden) less the keys an encoder of `depth` does not hold. */
const torchvisionKeys = (depth: number): string[] =>
  [...gold.keys()]
    .filter((k) => k.startsWith('sd.'))
    .map((k) => k.slice(3))
    .filter((k) => !spec.unused(k, depth));

function loadGolden(m: Module, depth: number): void {
  m.loadStateDict(new Map(torchvisionKeys(depth).map((k) => [k, get(gold, `sd.${k}`)])));
}

before(() => {
  if (SKIP) return;
  dir = mkdtempSync(join(tmpdir(), 'unet-convnext-'));
  const script = `${PY_IMPORT_REFERENCE}${PY_EXCHANGE}
from reference.encoders_convnext import features_golden, ops_golden
torch.set_num_threads(2)
dump(_REQ['dir'], features_golden(0, ${N}, ${H}, ${W}, _REQ['grad_keys']), 'features.json')
dump(_REQ['dir'], ops_golden(1), 'ops.json')
print('{}')`;
  runPython(script, { root: REFERENCE_ROOT, dir, grad_keys: GRAD_KEYS });
  gold = loadTensors(dir, 'features.json');
  ops = loadTensors(dir, 'ops.json');
  enc = spec.build(3, 5);
  loadGolden(enc, 5);
  enc.eval();
});
after(() => {
  enc?.dispose();
  for (const m of [gold, ops]) for (const t of m?.values() ?? []) t.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

let NO_ORT: string | false = false;
try {
  await import('onnxruntime-node');
} catch {
  NO_ORT = 'onnxruntime-node is not installed (npm ci installs it as a devDependency)';
}

describe('ConvNeXt encoder (convnext_tiny) against torchvision 0.14', { skip: SKIP }, () => {
  test('E.gelu, E.layerNorm, Linear and LayerNorm2d equal PyTorch forward and backward', () => {
    const check = (name: string, run: (x: Tensor) => Tensor, params: [string, Tensor][]) =>
      E.tidy(() => {
        const x = get(ops, `${name}.x`).clone().requiresGrad_(true);
        const y = run(x);
        y.mul(get(ops, `${name}.g`))
          .sum()
          .backward();
        close(y, get(ops, name), `${name} forward`);
        close(x.grad as Tensor, get(ops, `${name}.grad.x`), `${name} input gradient`);
        for (const [k, p] of params) close(p.grad as Tensor, get(ops, `${name}.grad.${k}`), `${name} ${k} gradient`);
      });
    check('gelu', (x) => E.gelu(x), []);
    const [w, b] = ['weight', 'bias'].map((k) => get(ops, `ln.${k}`).clone().requiresGrad_(true));
    check('ln', (x) => E.layerNorm(x, [16], w, b, 1e-6), [
      ['weight', w],
      ['bias', b],
    ]);
    for (const [name, layer] of [
      ['linear', new Linear(16, 24)],
      ['ln2d', new LayerNorm2d(16, 1e-6)],
    ] as const) {
      layer.loadStateDict(new Map(['weight', 'bias'].map((k) => [k, get(ops, `${name}.${k}`)])));
      check(name, (x) => layer.forward(x), layer.namedParameters());
      layer.dispose();
    }
  });

  test("keys are torchvision's less spec.unused at every depth; initialisation and stochastic depth are torchvision's", () => {
    for (const depth of [2, 3, 4]) {
      const m = spec.build(3, depth);
      assert.deepEqual([...m.stateDict().keys()], torchvisionKeys(depth), `depth ${depth}`);
      assert.deepEqual(m.outChannels, [0, 96, 192, 384, 768].slice(0, depth));
      if (depth === 3) {
        const sd = m.stateDict();
        E.tidy(() => {
          const w = get(sd, 'features.3.1.block.3.weight');
          assert.ok(Math.abs(w.var().sqrt().item() - 0.02) < 2e-4 && Math.abs(w.mean().item()) < 2e-4, 'trunc_normal_(std=0.02)');
          assert.equal(get(sd, 'features.3.1.block.3.bias').abs().amax().item(), 0);
          assert.equal(get(sd, 'features.2.1.bias').abs().amax().item(), 0);
          assert.ok(Math.abs(get(sd, 'features.1.0.layer_scale').mean().item() - 1e-6) < 1e-12);
        });
      }
      m.dispose();
    }
    assert.deepEqual([...enc.stateDict().keys()], torchvisionKeys(5), 'depth 5');
    assert.deepEqual(enc.outChannels, [0, 96, 192, 384, 768]);
    const p = enc
      .modules()
      .filter((c) => c instanceof StochasticDepth)
      .map((c) => (c as StochasticDepth).p);
    assertClose(p, get(gold, 'sd_prob').data() as Float64Array, 1e-12, 0, 'stochastic depth probabilities');
    assert.equal(spec.firstConv, 'features.0.0.weight');
    assert.ok(spec.unused('classifier.2.weight', 5) && !spec.unused('features.7.2.layer_scale', 5) && spec.unused('features.6.0.weight', 4));
    assert.throws(() => spec.build(3, 1), /--encoder-depth 1: a ConvNeXt encoder has features at \/4..\/32 only; use 2..5/);
  });

  test("features at /4../32 and the gradients of the input and of parameters in every stage equal torchvision's (eval mode)", () => {
    const params = new Map(enc.namedParameters());
    for (const [k, p] of params) p.requiresGrad_(GRAD_KEYS.includes(k)); // as the reference: the others' gradients only cost time
    E.tidy(() => {
      const x = get(gold, 'x').clone().requiresGrad_(true);
      const f = enc.features(x);
      assert.equal(f[0], null);
      let loss = E.scalar(0);
      f.slice(1).forEach((t, i) => {
        close(t as Tensor, get(gold, `f${i}`), `feature /${4 << i}`);
        loss = loss.add((t as Tensor).mul(get(gold, `r${i}`)).sum());
      });
      loss.backward();
      close(x.grad as Tensor, get(gold, 'x.grad'), 'input gradient');
      for (const k of GRAD_KEYS) close(get(params, k).grad as Tensor, get(gold, `grad.${k}`), `gradient of ${k}`);
    });
    // a shallower encoder holds the first stages and gives their features
    const m3 = spec.build(3, 3);
    loadGolden(m3, 3);
    m3.eval();
    E.noGrad(() =>
      E.tidy(() =>
        m3
          .features(get(gold, 'x'))
          .slice(1)
          .forEach((t, i) => close(t as Tensor, get(gold, `f${i}`), `depth 3, feature /${4 << i}`)),
      ),
    );
    m3.dispose();
  });

  test('ONNX: onnxFeatures in onnxruntime equal the libtorch features (batch 2, 64x96)', { skip: NO_ORT }, async () => {
    const ort = await import('onnxruntime-node');
    const g = new Graph();
    const outs = enc.onnxFeatures(g, 'input', 'encoder.');
    assert.equal(outs[0], '');
    const sd = [...enc.stateDict()].map(([k, t]) => ({ name: `encoder.${k}`, dims: t.shape, data_type: DataType.FLOAT, raw_data: t.bytes() }));
    const info = (name: string, c: number) => ({
      name,
      type: { tensor_type: { elem_type: DataType.FLOAT, shape: { dim: [{ dim_param: 'n' }, { dim_value: c }, { dim_param: 'h' }, { dim_param: 'w' }] } } },
    });
    const bytes = ModelProto.encode({
      ir_version: 8,
      opset_import: [{ domain: '', version: 17 }],
      graph: { name: 'convnext', node: g.nodes, initializer: [...g.constants, ...sd], input: [info('input', 3)], output: outs.slice(1).map((o, i) => info(o, enc.outChannels[i + 1])) },
    }).finish();
    const session = await ort.InferenceSession.create(bytes);
    const x = E.randn([2, 3, 64, 96]);
    const got = await session.run({ input: new ort.Tensor('float32', x.data() as Float32Array, x.shape) });
    await session.release();
    E.noGrad(() =>
      E.tidy(() =>
        enc
          .features(x)
          .slice(1)
          .forEach((t, i) => {
            const y = got[outs[i + 1]];
            assert.deepEqual(y.dims, (t as Tensor).shape);
            assertClose(y.data as Float32Array, (t as Tensor).data() as Float32Array, 1e-4, 1e-4, `ONNX feature /${4 << i}`);
          }),
      ),
    );
    x.dispose();
  });
});
