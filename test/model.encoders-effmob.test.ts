// The EfficientNet-B0..B3 and MobileNetV3-Large encoders against Debian torchvision 0.14
// (test/reference/encoders_effmob.py): the state-dict keys, shapes, BatchNorm eps/momentum and
// stochastic-depth probabilities of every variant; for b0, b3 and mobilenet_v3_large with random
// weights (BN statistics that matter), the features at every stage, the input gradient and a few
// parameter gradients of sum_i <feature_i, w_i> in eval mode and in train mode (stochastic depth
// p set to 0 on both sides, so train mode is deterministic), and the running statistics after it.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as E from '../src/engine/index.js';
import { ENCODERS } from '../src/model/encoders/index.js';
import { Graph } from '../src/export/onnx.js';
import { DataType, ModelProto } from '../src/export/onnx-schema.js';
import { BatchNorm2d, type Module, StochasticDepth } from '../src/nn/index.js';
import { PY_EXCHANGE, loadTensors } from './helpers/exchange.js';
import { NO_TORCH, assertClose, hasTorch, maxDiff, runPython } from './helpers/python.js';

const SCRIPT = join(import.meta.dirname, 'reference', 'encoders_effmob.py');
const CASES = ['efficientnet_b0', 'efficientnet_b3', 'mobilenet_v3_large'];
const ALL = ['efficientnet_b0', 'efficientnet_b1', 'efficientnet_b2', 'efficientnet_b3', 'mobilenet_v3_large'];
const SIZE = { n: 2, h: 57, w: 46 }; // odd sizes: every stride-2 stage rounds up

interface Structure {
  keys: string[];
  shapes: number[][];
  bn: Record<string, [number, number]>;
  sd: Record<string, number>;
}
interface Golden {
  structure: Record<string, Structure>;
  picked: Record<string, string[]>;
}

let NO_ORT: string | false = false;
try {
  await import('onnxruntime-node');
} catch {
  NO_ORT = 'onnxruntime-node is not installed (npm ci installs it as a devDependency)';
}
const SKIP = hasTorch() ? false : NO_TORCH;
E.setNumThreads(1); // tiny inputs: per-op overhead dominates, and spinning threads cost much on a busy machine
let dir = '';
let golden: Golden;
before(() => {
  if (SKIP) return;
  dir = mkdtempSync(join(tmpdir(), 'unet-effmob-'));
  golden = runPython<Golden>(`${PY_EXCHANGE}\n${readFileSync(SCRIPT, 'utf8')}`, { dir, seed: 0, ...SIZE, cases: CASES, structure: ALL });
});
after(() => dir && rmSync(dir, { recursive: true, force: true }));

test('torchvision initialisation: conv weights N(0, 2/fan_out), conv biases 0, BN 1 and 0; depth 3 on 1 channel gives 3 features', () => {
  for (const arch of ['efficientnet_b0', 'mobilenet_v3_large']) {
    const full = ENCODERS[arch].build(3, 5);
    let checked = 0;
    E.tidy(() => {
      for (const [k, t] of full.stateDict()) {
        if (k.endsWith('.bias') && t.ndim === 1) assert.equal(t.abs().amax().item(), 0, k);
        if (t.ndim !== 4 || t.numel < 20_000) continue;
        const std = Math.sqrt(2 / (t.size(0) * t.size(2) * t.size(3))); // PyTorch's fan_out ignores groups
        assert.ok(Math.abs(t.var().sqrt().item() / std - 1) < 0.05 && Math.abs(t.mean().item()) < std / 20, `${k}: std ${t.var().sqrt().item()}, expected ${std}`);
        checked++;
      }
      assert.ok([...full.stateDict()].some(([k, t]) => k.endsWith('.weight') && t.ndim === 1 && t.amin().item() === 1));
    });
    assert.ok(checked >= 10, `${arch}: ${checked} conv weights checked`);
    full.dispose();
    const enc = ENCODERS[arch].build(1, 3);
    E.tidy(() => {
      const feats = E.noGrad(() => enc.features(E.rand([1, 1, 40, 33])));
      assert.deepEqual(
        feats.map((f) => f?.shape),
        enc.outChannels.map((c, i) => [1, c, Math.ceil(40 / 2 ** (i + 1)), Math.ceil(33 / 2 ** (i + 1))]),
      );
    });
    assert.equal(enc.outChannels.length, 3);
    enc.dispose();
  }
});

/** Every submodule by its state-dict prefix (Module keeps its children private). */
function namedModules(m: Module, prefix = ''): [string, Module][] {
  const children = (m as unknown as { _children: Map<string, Module> })._children;
  return [[prefix, m], ...[...children].flatMap(([n, c]) => namedModules(c, prefix ? `${prefix}.${n}` : n))];
}

describe('EfficientNet / MobileNetV3 encoders = torchvision 0.14', { skip: SKIP }, () => {
  for (const arch of ALL) {
    test(`${arch}: keys and shapes are torchvision's minus spec.unused (depth 5 and 3); BN eps/momentum, stochastic depth`, () => {
      const spec = ENCODERS[arch];
      const tv = golden.structure[arch];
      for (const depth of [5, 3]) {
        const enc = spec.build(3, depth);
        const ours = [...enc.stateDict()].map(([k, t]) => `${k} [${t.shape}]`);
        const kept = tv.keys.map((k, i) => `${k} [${tv.shapes[i]}]`).filter((_, i) => !spec.unused(tv.keys[i], depth));
        assert.deepEqual(ours, kept, `depth ${depth}`);
        assert.ok(tv.keys.filter((k) => spec.unused(k, depth)).some((k) => k.startsWith('classifier.')));
        assert.equal(enc.outChannels.length, depth);
        enc.dispose();
      }
      const enc = spec.build(3, 5);
      const modules = namedModules(enc);
      const bns = modules.filter(([, m]) => m instanceof BatchNorm2d).map(([n, m]) => [n, [(m as BatchNorm2d).eps, (m as BatchNorm2d).momentum]]);
      assert.deepEqual(Object.fromEntries(bns), Object.fromEntries(Object.entries(tv.bn).filter(([n]) => !spec.unused(`${n}.weight`, 5))));
      const sds = modules.filter(([, m]) => m instanceof StochasticDepth).map(([n, m]) => [n, (m as StochasticDepth).p]);
      const tvSds = Object.entries(tv.sd).filter(([n]) => !spec.unused(`${n}.x`, 5));
      assert.equal(sds.length, tvSds.length);
      sds.forEach(([n, p], i) => {
        assert.equal(n, tvSds[i][0]);
        assert.ok(Math.abs((p as number) - tvSds[i][1]) < 1e-12, `${n}: p ${p} vs ${tvSds[i][1]}`);
      });
      enc.dispose();
    });
  }

  for (const arch of ['efficientnet_b0', 'mobilenet_v3_large']) {
    test(`${arch}: onnxFeatures in onnxruntime-node = our libtorch features (1e-4), every weight used`, { skip: NO_ORT }, async () => {
      await compareOnnx(arch);
    });
  }

  for (const arch of CASES) {
    for (const mode of ['eval', 'train'] as const) {
      test(`${arch}, ${mode} mode: features at /2../32, input and parameter gradients, ${mode === 'train' ? 'running statistics' : 'BN on loaded statistics'}`, () => {
        compareCase(arch, mode);
      });
    }
  }
});

/** Loads torchvision's state dict (minus spec.unused) and checks one mode against the goldens. */
function compareCase(arch: string, mode: 'eval' | 'train'): void {
  const spec = ENCODERS[arch];
  const enc = spec.build(3, 5);
  const sd = loadTensors(dir, `${arch}.weights.json`);
  const data = loadTensors(dir, `${arch}.data.json`);
  try {
    enc.loadStateDict(new Map([...sd].filter(([k]) => !spec.unused(k, 5))));
    enc.train(mode === 'train');
    for (const m of enc.modules()) if (m instanceof StochasticDepth) (m as { p: number }).p = 0;
    E.tidy(() => {
      const x = (data.get('x') as E.Tensor).clone().requiresGrad_(true);
      const feats = enc.features(x) as E.Tensor[];
      const ref = loadTensors(dir, `${arch}.${mode}.features.json`);
      feats.forEach((f, i) => {
        const r = ref.get(`f${i}`) as E.Tensor;
        assert.deepEqual(f.shape, r.shape, `feature ${i}`);
        assert.deepEqual([f.size(1), f.size(2)], [enc.outChannels[i], Math.ceil(SIZE.h / 2 ** (i + 1))]);
        closeTo(f, r, `${mode} feature ${i} (/${2 ** (i + 1)})`);
      });
      feats.reduce((s, f, i) => s.add(f.mul(data.get(`w${i}`) as E.Tensor).sum()), E.scalar(0)).backward();
      const grads = loadTensors(dir, `${arch}.${mode}.grads.json`);
      closeTo(x.grad as E.Tensor, grads.get('x') as E.Tensor, `${mode} input gradient`);
      const params = new Map(enc.namedParameters());
      for (const key of golden.picked[arch]) closeTo(params.get(key)?.grad as E.Tensor, grads.get(key) as E.Tensor, `${mode} gradient of ${key}`);
      if (mode === 'train') {
        const own = enc.stateDict();
        for (const [k, r] of loadTensors(dir, `${arch}.train.stats.json`)) closeTo(own.get(k) as E.Tensor, r, k);
      }
    });
  } finally {
    enc.dispose();
    for (const t of [...sd.values(), ...data.values()]) t.dispose();
  }
}

/** The exporter's graph builder, noting which weights feed a node. */
class TestSink extends Graph {
  readonly used = new Set<string>();
  w(key: string): string {
    this.used.add(key);
    return super.w(key);
  }
}

/** The encoder as an ONNX model (input `x`, one output per feature) run in onnxruntime-node against libtorch, eval mode. */
async function compareOnnx(arch: string): Promise<void> {
  const spec = ENCODERS[arch];
  const enc = spec.build(3, 5).eval();
  const data = loadTensors(dir, `${arch}.data.json`);
  const sd = loadTensors(dir, `${arch}.weights.json`);
  enc.loadStateDict(new Map([...sd].filter(([k]) => !spec.unused(k, 5))));
  const g = new TestSink();
  const outs = enc.onnxFeatures(g, 'x', 'encoder.');
  const weights = [...enc.stateDict()].filter(([k]) => !k.endsWith('num_batches_tracked'));
  assert.deepEqual([...g.used].sort(), weights.map(([k]) => `encoder.${k}`).sort(), 'every weight, and only those, feeds a node');
  const initializer = weights.map(([k, t]) => ({ name: `encoder.${k}`, dims: t.shape, data_type: DataType.FLOAT, raw_data: t.bytes() }));
  const value = (name: string) => ({ name, type: { tensor_type: { elem_type: DataType.FLOAT } } });
  const graph = { node: g.nodes, name: arch, initializer: [...initializer, ...g.constants], input: [value('x')], output: outs.map(value) };
  const bytes = ModelProto.encode({ ir_version: 8, opset_import: [{ domain: '', version: 17 }], graph }).finish();
  const x = data.get('x') as E.Tensor;
  const ours = E.noGrad(() => enc.features(x) as E.Tensor[]);
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(bytes);
  const res = await session.run({ x: new ort.Tensor('float32', x.data() as Float32Array, x.shape) });
  await session.release();
  ours.forEach((f, i) => {
    const r = res[outs[i]];
    assert.deepEqual([...r.dims], f.shape, `feature ${i}`);
    const d = maxDiff(f.data() as Float32Array, r.data as Float32Array);
    assert.ok(d <= 1e-4 * Math.max(1, f.abs().amax().item()), `feature ${i}: max |diff| ${d}`);
  });
  for (const t of [...ours, ...sd.values(), ...data.values()]) t.dispose();
  enc.dispose();
}

/** max |a - b| <= 1e-5 relative to the largest |b| (at least 1): float32 sums over many layers. */
function closeTo(a: E.Tensor, b: E.Tensor, what: string): void {
  assert.ok(a, `${what}: no value`);
  assert.deepEqual(a.shape, b.shape, what);
  const scale = Math.max(1, b.abs().amax().item());
  assertClose(a.toArray() as number[], b.toArray() as number[], 1e-5 * scale, 0, what);
}
