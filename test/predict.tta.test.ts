// Test-time augmentation (--tta hflip|flip|d4) and ensembles (several -m): a D4-equivariant model (its
// kernels made symmetric) predicts the same with and without TTA, also window by window; for
// generic models (grey/RGB, softmax/sigmoid, batches, a non-square input) our TTA and ensembles
// equal the views' softmax averaged by hand; the browser page's TTA equals ours; an ensemble of
// one model equals the model in predict and evaluate; mismatched members are refused naming both
// files; an ensemble exported to ONNX gives our ensemble's probabilities in onnxruntime-node.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as E from '../src/engine/index.js';
import { exportCommand } from '../src/export/command.js';
import { ModelProto } from '../src/export/onnx-schema.js';
import { loadOnnxPredictor } from '../src/export/onnx-runtime.js';
import type { UNet, UNetArgs } from '../src/model/index.js';
import { saveCheckpoint } from '../src/model/checkpoint.js';
import { type Predictor, PredictError, forwardTensor, loadPredictor, preprocess, runEvaluate, runPredict } from '../src/predict/index.js';
import { predictTiledInMemory } from '../src/predict/tiled-image.js';
import { type TtaMode, type View, ttaViews } from '../src/predict/tta.js';
import { ttaLogits } from '../src/predictor-page/infer.js';
import { defaults, evaluateOptions, predictOptions } from '../src/config/options.js';
import { prng, writePairs, writePng } from './helpers/fixtures.js';
import { PYTHON, runPython } from './helpers/python.js';
import { evalUNet } from './helpers/tiny-unet.js';

let NO_ORT: string | false = false;
try {
  await import('onnxruntime-node');
} catch {
  NO_ORT = 'onnxruntime-node is not installed (npm ci installs it as a devDependency)';
}

const HAS_ONNX = spawnSync(PYTHON, ['-c', 'import onnx'], { encoding: 'utf8' }).status === 0;

let dir: string;
const owned: UNet[] = [];
const unet = (args: UNetArgs, seed: number): UNet => {
  const m = evalUNet(args, seed, 16);
  owned.push(m);
  return m;
};
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'unet-tta-'));
});
after(() => {
  for (const m of owned) m.dispose();
  rmSync(dir, { recursive: true, force: true });
});

const predictor = (models: UNet[], tta: TtaMode): Predictor => ({
  path: 'test',
  kind: 'unet-ts',
  args: models[0].args,
  maskValues: [0, 1],
  maskValuesSource: 'checkpoint',
  notes: [],
  device: 'cpu',
  ampDtype: null,
  model: models[0],
  models,
  tta,
  epoch: 1,
  valScore: null,
  trainingScale: null,
  dispose: () => {},
});

/** Softmax over the classes (sigmoid for 1 output) of [N, K, H, W] logits, as a flat array. */
const probsOf = (logits: E.Tensor, k: number): Float32Array => E.tidy(() => (k === 1 ? logits.sigmoid() : logits.softmax(1)).contiguous().data() as Float32Array);

/** Pixel (y, x) of an h x w plane -> its index in the view's plane (flip W, flip H, then swap: w x h). */
function at(y: number, x: number, h: number, w: number, v: View): number {
  const fy = v.flipV ? h - 1 - y : y;
  const fx = v.flipH ? w - 1 - x : x;
  return v.transpose ? fx * h + fy : fy * w + fx;
}

/** The views' softmax averaged by hand: each view built pixel by pixel, one forward pass of each model, undone pixel by pixel. */
function handAverage(models: UNet[], x: Float32Array, shape: [number, number, number, number], views: View[]): Float32Array {
  const [n, c, h, w] = shape;
  const k = models[0].args.nClasses;
  const plane = h * w;
  const sum = new Float32Array(n * k * plane);
  for (const m of models) {
    for (const v of views) {
      const vx = new Float32Array(x.length);
      for (let i = 0; i < n * c; i++) for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) vx[i * plane + at(y, xx, h, w, v)] = x[i * plane + y * w + xx];
      const vshape = v.transpose ? [n, c, w, h] : [n, c, h, w];
      const out = E.noGrad(() => E.tidy(() => probsOf(m.forward(E.tensor(vx, vshape)), k)));
      for (let i = 0; i < n * k; i++) for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) sum[i * plane + y * w + xx] += out[i * plane + at(y, xx, h, w, v)];
    }
  }
  return sum.map((s) => s / (models.length * views.length));
}

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
};

const ours = (p: Predictor, x: Float32Array, shape: number[]): Float32Array => E.tidy(() => probsOf(forwardTensor(p, E.tensor(x, shape)), p.args.nClasses));

/** Every 3x3 / 2x2 kernel made symmetric under the 8 symmetries of the square: the UNet becomes D4-equivariant. */
function symmetrise(m: UNet): void {
  E.noGrad(() => {
    for (const [, t] of m.namedParameters()) {
      if (t.ndim !== 4 || t.shape[2] === 1) continue;
      const s = t.shape[2];
      const d = Float32Array.from(t.data() as Float32Array);
      const out = new Float32Array(d.length);
      const views = ttaViews('d4');
      for (let base = 0; base < d.length; base += s * s) {
        for (let y = 0; y < s; y++) for (let x = 0; x < s; x++) for (const v of views) out[base + y * s + x] += d[base + at(y, x, s, s, v)] / views.length;
      }
      E.tensor(out, t.shape).disposeAfter((u) => t.copy_(u));
    }
  });
}

const random = (n: number, seed: number): Float32Array => {
  const r = prng(seed);
  return Float32Array.from({ length: n }, () => r());
};

describe('--tta', () => {
  test('a D4-equivariant model predicts the same with and without --tta flip and d4, also window by window', async () => {
    const m = unet({ nChannels: 1, nClasses: 3, bilinear: false }, 1);
    symmetrise(m);
    // Outputs that vary over the image (a random narrow UNet's are nearly flat), so that a wrong view would show.
    const weight = (k: string) => m.namedParameters().find(([n]) => n === k)?.[1] as E.Tensor;
    E.noGrad(() => (weight('inc.double_conv.0.weight').mul_(50), weight('outc.conv.weight').mul_(30)));
    const shape = [2, 1, 32, 48];
    const x = random(2 * 32 * 48, 1).map((v, i) => v * ((i % 48) / 48) * (((i / 48) | 0) % 32 < 12 ? 1 : 0.2));
    const plain = ours(predictor([m], 'none'), x, shape);
    for (const mode of ['hflip', 'flip', 'd4'] as const) assert.ok(maxDiff(plain, ours(predictor([m], mode), x, shape)) < 1e-5, mode);
    // The image is not symmetric, nor is the prediction: the equality above is the model's.
    const flipped = ours(predictor([m], 'none'), handFlip(x, 2, 32, 48), shape);
    assert.ok(maxDiff(plain, flipped) > 1e-2, 'flipping the input changes the prediction');

    const png = join(dir, 'sym.png');
    await writePng(png, 56, 40, 1, (i) => (i * 37) % 251);
    const pre = await preprocess(png, 1, 1);
    const o = { tile: 32, overlap: 0.25, blend: 'gaussian' as const, batchSize: 2, threshold: 0.5, probs: true };
    const a = await predictTiledInMemory(predictor([m], 'none'), pre, o);
    const b = await predictTiledInMemory(predictor([m], 'flip'), pre, o);
    assert.ok(maxDiff(a.probs?.[1] ?? [], b.probs?.[1] ?? []) <= 1, 'probabilities within one 16-bit step');
  });

  const cases: [UNetArgs, TtaMode][] = [
    [{ nChannels: 1, nClasses: 3, bilinear: false }, 'flip'],
    [{ nChannels: 3, nClasses: 4, bilinear: false }, 'hflip'],
    [{ nChannels: 3, nClasses: 1, bilinear: false }, 'd4'],
    [{ nChannels: 3, nClasses: 2, bilinear: true }, 'd4'],
  ];
  for (const [args, mode] of cases) {
    const n = mode === 'flip' ? 2 : 1;
    test(`--tta ${mode} = the views' ${args.nClasses === 1 ? 'sigmoid' : 'softmax'} averaged by hand (${args.nChannels} channel(s), batch ${n}, 32x48)`, () => {
      const m = unet(args, 2 + args.nClasses);
      const shape: [number, number, number, number] = [n, args.nChannels, 32, 48];
      const x = random(n * args.nChannels * 32 * 48, 3);
      const got = ours(predictor([m], mode), x, shape);
      assert.ok(maxDiff(got, handAverage([m], x, shape, ttaViews(mode))) < 1e-5);
      assert.ok(maxDiff(got, ours(predictor([m], 'none'), x, shape)) > 1e-3, "TTA changes a generic model's output");
    });
  }

  test('a model trained with --upright: --tta flip and d4 say it adds views the model never saw; hflip does not', async () => {
    const m = unet({ nChannels: 1, nClasses: 2, bilinear: false }, 1);
    const notes = async (config: Record<string, unknown>, tta: TtaMode) => {
      const path = join(dir, 'upright.pth');
      await saveCheckpoint(path, { model: m.stateDict(), epoch: 1, globalStep: 1, loss: 0, valScore: 0, maskValues: [0, 1], modelArgs: m.args, config });
      const p = await loadPredictor(path, { device: 'cpu', tta });
      p.dispose();
      return p.notes.join('\n');
    };
    const upright = { scale: 1, augment: true, upright: true };
    assert.match(await notes(upright, 'flip'), /trained upright .*--tta flip adds views it never saw, --tta hflip/);
    assert.match(await notes(upright, 'd4'), /--tta d4 adds views/);
    assert.doesNotMatch(await notes(upright, 'hflip'), /upright/);
    assert.doesNotMatch(await notes({ scale: 1, augment: true }, 'flip'), /upright/);
  });

  test("the browser page's TTA (on arrays) equals ours, for logits and for an ensemble's probabilities", async () => {
    const a = unet({ nChannels: 3, nClasses: 3, bilinear: false }, 5);
    const b = unet({ nChannels: 3, nClasses: 3, bilinear: true }, 6);
    const x = random(3 * 32 * 48, 4);
    for (const [models, output, mode] of [
      [[a], 'logits', 'd4'],
      [[a, b], 'probabilities', 'flip'],
    ] as const) {
      const plain = predictor([...models], 'none');
      const run = async (v: Float32Array, h: number, w: number) =>
        E.tidy(() => {
          const l = forwardTensor(plain, E.tensor(v, [1, 3, h, w]));
          return (output === 'logits' ? l : l.softmax(1)).contiguous().data() as Float32Array;
        });
      const web = await ttaLogits(run, x, 3, 32, 48, 3, mode, output);
      const page = E.tensor(web, [1, 3, 32, 48]).disposeAfter((t) => probsOf(t, 3));
      assert.ok(maxDiff(page, ours(predictor([...models], mode), x, [1, 3, 32, 48])) < 1e-5, output);
    }
  });
});

function handFlip(x: Float32Array, n: number, h: number, w: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < n; i++) for (let y = 0; y < h; y++) for (let xx = 0; xx < w; xx++) out[i * h * w + y * w + xx] = x[i * h * w + y * w + (w - 1 - xx)];
  return out;
}

describe('ensembles', () => {
  test("an ensemble (with and without --tta) = its models' softmax averaged by hand; grey, 2 models of different upsampling", () => {
    const a = unet({ nChannels: 1, nClasses: 2, bilinear: false }, 7);
    const b = unet({ nChannels: 1, nClasses: 2, bilinear: true }, 8);
    const shape: [number, number, number, number] = [1, 1, 32, 32];
    const x = random(32 * 32, 5);
    for (const mode of ['none', 'flip'] as const) assert.ok(maxDiff(ours(predictor([a, b], mode), x, shape), handAverage([a, b], x, shape, ttaViews(mode))) < 1e-5, mode);
  });

  let files: Record<string, string>;
  before(async () => {
    const save = async (name: string, args: UNetArgs, seed: number, maskValues: number[]) => {
      const m = unet(args, seed);
      const file = join(dir, `${name}.pth`);
      await saveCheckpoint(file, { model: m.stateDict(), epoch: 1, globalStep: 1, loss: 0, valScore: 0, maskValues, modelArgs: m.args, config: { scale: 1 } });
      return file;
    };
    files = {
      a: await save('a', { nChannels: 1, nClasses: 3, bilinear: false }, 11, [0, 127, 255]),
      b: await save('b', { nChannels: 1, nClasses: 3, bilinear: true }, 12, [0, 127, 255]),
      classes: await save('two-classes', { nChannels: 1, nClasses: 2, bilinear: false }, 13, [0, 255]),
      values: await save('other-values', { nChannels: 1, nClasses: 3, bilinear: false }, 14, [0, 1, 2]),
      rgb: await save('rgb', { nChannels: 3, nClasses: 3, bilinear: false }, 15, [0, 127, 255]),
    };
    await writePairs(
      dir,
      2,
      { width: 40, height: 32, channels: 1, name: (i) => `i${i}.png` },
      (p, i) => (p * (7 + i)) % 256,
      (p) => [0, 127, 255][(p >> 4) % 3],
    );
  });

  test('an ensemble of one model equals that model (predict, evaluate); of the same model twice, too', async () => {
    const quiet = { log: () => {}, warn: () => {} };
    const predict = async (model: string | string[], out: string) => {
      const r = await runPredict({ ...defaults(predictOptions), model, input: [join(dir, 'imgs', 'i0.png')], outputDir: join(dir, out), device: 'cpu', scale: 0.5 }, quiet);
      assert.equal(r.exitCode, 0);
      return readFileSync(join(dir, out, 'i0_OUT.png'));
    };
    const single = await predict(files.a, 'single');
    assert.ok(single.equals(await predict([files.a], 'one')));
    assert.ok(single.equals(await predict([files.a, files.a], 'twice')));
    const evaluate = async (model: string | string[]) => (await runEvaluate({ ...defaults(evaluateOptions), model, imgs: join(dir, 'imgs'), masks: join(dir, 'masks'), device: 'cpu' }, quiet)).confusion;
    assert.deepEqual(await evaluate([files.a]), await evaluate(files.a));
    const both = await runEvaluate({ ...defaults(evaluateOptions), model: [files.a, files.b], tta: 'flip', imgs: join(dir, 'imgs'), masks: join(dir, 'masks'), device: 'cpu' }, quiet);
    assert.equal(both.model, `${files.a} + ${files.b}`);
    assert.equal(both.tta, 'flip');
  });

  test('models that differ in classes, mask values or input channels are refused, naming both files and the difference', async () => {
    for (const [other, what] of [
      [files.classes, /classes \(-c\): .*a\.pth has 3, .*two-classes\.pth has 2/],
      [files.values, /mask values: .*a\.pth has \[0,127,255\], .*other-values\.pth has \[0,1,2\]/],
      [files.rgb, /input channels: .*a\.pth has 1, .*rgb\.pth has 3/],
    ] as const) {
      await assert.rejects(
        runPredict({ ...defaults(predictOptions), model: [files.a, other], input: [join(dir, 'imgs', 'i0.png')], device: 'cpu' }, { log: () => {}, warn: () => {} }),
        (e: Error) => e instanceof PredictError && what.test(e.message),
      );
    }
  });

  test('export -m a -m b --format onnx: one graph whose output "probabilities" = our ensemble in onnxruntime-node (1e-4)', { skip: NO_ORT }, async () => {
    const file = join(dir, 'ensemble.onnx');
    await exportCommand({ model: [files.a, files.b], format: 'onnx', output: file, log: () => {} });
    const meta = Object.fromEntries((ModelProto.decode(readFileSync(file)) as unknown as { metadata_props: { key: string; value: string }[] }).metadata_props.map((p) => [p.key, p.value]));
    assert.match(meta.output, /^probabilities: .*mean over the 2 models of the softmax/);
    assert.deepEqual(JSON.parse(meta.models), ['a.pth', 'b.pth']);
    if (HAS_ONNX) {
      const checked = runPython<{ output: string; dims: (string | number)[] }>(
        `import sys, json, onnx
m = onnx.load(json.load(sys.stdin))
onnx.checker.check_model(m, full_check=True)
inf = onnx.shape_inference.infer_shapes(m, strict_mode=True)
print(json.dumps({'output': m.graph.output[0].name, 'dims': [d.dim_param or d.dim_value for d in inf.graph.output[0].type.tensor_type.shape.dim]}))`,
        file,
      );
      assert.deepEqual(checked, { output: 'probabilities', dims: ['batch', 3, 'height', 'width'] }, "Debian's onnx checker (full check) passes it");
    }
    const { loadEnsemble } = await import('../src/predict/ensemble.js');
    const p = await loadEnsemble([files.a, files.b], { device: 'cpu' });
    const x = random(2 * 33 * 47, 9);
    try {
      const session = await loadOnnxPredictor(file);
      const onnx = await session.run(x, [2, 1, 33, 47]);
      await session.release();
      assert.ok(maxDiff(onnx.data, ours(p, x, [2, 1, 33, 47])) < 1e-4);
    } finally {
      p.dispose();
    }
    // The web page gets the same graph and is told its output is probabilities.
    await exportCommand({ model: [files.a, files.b], format: 'web', output: join(dir, 'site'), log: () => {} });
    assert.equal(JSON.parse(readFileSync(join(dir, 'site', 'model.json'), 'utf8')).output, 'probabilities');
    await assert.rejects(exportCommand({ model: [files.a, files.b], format: 'safetensors', output: join(dir, 'x.safetensors'), log: () => {} }), /an ensemble \(2 -m\) exports as --format onnx or web/);
  });
});
