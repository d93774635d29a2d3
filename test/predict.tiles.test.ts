// Tiled (sliding-window) prediction: the window grid and weights, tiled vs whole-image agreement,
// images smaller than a window, sizes not divisible by 16, region-by-region reading and writing,
// --tile through `unet predict` and `unet evaluate`, and the flag errors.
// The model is a narrow UNet (widths / 4) with random weights whose class-1 bias is shifted so that
// half of the pixels of the test image are foreground: every pixel is near a decision boundary,
// which makes agreement harder than with a trained model.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { decode as decodePng, encode as encodePng } from 'fast-png';
import sharp from 'sharp';
import { type EvaluateConfig, type PredictConfig, defaults, evaluateOptions, predictOptions } from '../src/config/options.js';
import { buildProgram } from '../src/cli/program.js';
import { readImage, readMask } from '../src/data/index.js';
import { openScaledRegions } from '../src/data/image/regions.js';
import * as E from '../src/engine/index.js';
import { UNet } from '../src/model/index.js';
import { type Predictor, forwardLogits, predictBatch, preprocess, runEvaluate, runPredict } from '../src/predict/index.js';
import { predictTiledFile, predictTiledInMemory, sourceRows } from '../src/predict/tiled-image.js';
import { tileStarts, windowWeights } from '../src/predict/sliding-window.js';
import { saveCheckpoint } from '../src/model/checkpoint.js';
import { assertCleanFailure, runCli } from './helpers/cli.js';

let dir: string;
let model: string; // a full-width checkpoint for the command tests
let p: Predictor; // a narrow UNet, 1 channel, 2 classes, mask values [0, 255], balanced on the test image
let start: number;

/** A grey image with a few discs on a textured background. */
async function greyPng(file: string, w: number, h: number): Promise<string> {
  const px = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const disc = (x - w / 2) ** 2 + (y - h / 2) ** 2 < (Math.min(w, h) / 3) ** 2 || (x - w / 5) ** 2 + (y - h / 5) ** 2 < (Math.min(w, h) / 8) ** 2;
      px[y * w + x] = (disc ? 190 : 50) + ((x * 7 + y * 13) % 17);
    }
  }
  await sharp(px, { raw: { width: w, height: h, channels: 1 } })
    .toColourspace('b-w')
    .png()
    .toFile(file);
  return file;
}

const agreement = (a: Uint8Array, b: Uint8Array) => {
  assert.equal(a.length, b.length);
  let same = 0;
  for (let i = 0; i < a.length; i++) same += a[i] === b[i] ? 1 : 0;
  return same / a.length;
};

const opts = (tile: number, over: Partial<Parameters<typeof predictTiledInMemory>[2]> = {}) => ({
  tile,
  overlap: 0.25,
  blend: 'gaussian' as const,
  batchSize: 2,
  threshold: 0.5,
  probs: false,
  ...over,
});

before(async () => {
  start = E.memoryStats().liveTensors;
  dir = mkdtempSync(join(tmpdir(), 'unet-tiles-'));
  const img = await greyPng(join(dir, 'agree.png'), 300, 200);
  E.manualSeed(3);
  const m = new UNet({ nChannels: 1, nClasses: 2, bilinear: false }, 4);
  m.eval();
  p = {
    path: 'narrow',
    kind: 'unet-ts',
    args: m.args,
    maskValues: [0, 255],
    maskValuesSource: 'checkpoint',
    notes: [],
    device: 'cpu',
    ampDtype: null,
    model: m,
    epoch: 1,
    valScore: null,
    trainingScale: null,
    dispose: () => m.dispose(),
  };
  // Shift class 1's bias by the median logit difference on the test image: half the pixels each way.
  const pre = await preprocess(img, 1, 1);
  const diff = E.tidy(() => forwardLogits(p, [pre]).disposeAfter((l) => l.select(1, 1).sub(l.select(1, 0)).flatten()));
  const d = Float32Array.from(diff.disposeAfter((t) => t.data() as Float32Array)).sort();
  const bias = m.namedParameters().find(([k]) => k === 'outc.conv.bias')?.[1] as E.Tensor;
  E.noGrad(() => E.tensor(new Float32Array([0, -d[d.length >> 1]])).disposeAfter((t) => bias.add_(t)));
  // `unet predict`/`evaluate` load full-width models: a random bilinear one for the command tests.
  const full = new UNet({ nChannels: 1, nClasses: 2, bilinear: true });
  model = join(dir, 'full.pth');
  await saveCheckpoint(model, { model: full.stateDict(), epoch: 1, globalStep: 1, loss: 0, valScore: 0, maskValues: [0, 255], modelArgs: full.args, config: {} });
  full.dispose();
});

after(() => {
  p?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

describe('window grid and weights', () => {
  test('windows cover the axis, the last one ends at the border, one window when the axis is shorter', () => {
    assert.deepEqual(tileStarts(300, 128, 0.25), [0, 96, 172]);
    assert.deepEqual(tileStarts(256, 128, 0.25), [0, 96, 128]);
    assert.deepEqual(tileStarts(128, 128, 0.25), [0]);
    assert.deepEqual(tileStarts(61, 128, 0.25), [0]);
    assert.deepEqual(tileStarts(100, 32, 0), [0, 32, 64, 68]);
    for (const [len, t, o] of [
      [93, 32, 0.25],
      [1000, 512, 0.5],
      [17, 16, 0.9],
    ] as const) {
      const s = tileStarts(len, t, o);
      assert.equal(s[0], 0);
      assert.equal(s[s.length - 1] + Math.min(t, len), len);
      for (let i = 1; i < s.length; i++) assert.ok(s[i] > s[i - 1] && s[i] <= s[i - 1] + t, `no gap at ${len}/${t}/${o}`);
    }
  });

  test('Gaussian weights: sigma = size/8, 1 at the centre, symmetric; constant weights are ones', () => {
    const g = windowWeights(64, 'gaussian');
    assert.ok(Math.abs(g[31] - Math.exp(-(0.5 ** 2) / (2 * 8 * 8))) < 1e-7);
    assert.ok(Math.abs(g[0] - Math.exp(-(31.5 ** 2) / 128)) < 1e-9);
    for (let i = 0; i < 64; i++) assert.equal(g[i], g[63 - i]);
    assert.deepEqual(Array.from(windowWeights(5, 'constant')), [1, 1, 1, 1, 1]);
  });

  test('the resize-back rows are PyTorch bilinear (align_corners=False) rows', () => {
    // 4 -> 8: src = (y + 0.5) / 2 - 0.5, clamped at 0
    const r = sourceRows(4, 8);
    assert.deepEqual(Array.from(r.i0), [0, 0, 0, 1, 1, 2, 2, 3]);
    assert.deepEqual(Array.from(r.i1), [1, 1, 1, 2, 2, 3, 3, 3]);
    assert.deepEqual(Array.from(r.l1), [0, 0.25, 0.75, 0.25, 0.75, 0.25, 0.75, 0.25]);
  });
});

describe('tiled vs whole image', () => {
  test('200x300, windows of 128 (2x3), overlap 0.25: Gaussian blending agrees on >= 99.9% of pixels', async (t) => {
    const pre = await preprocess(join(dir, 'agree.png'), 1, 1);
    const whole = predictBatch(p, [pre])[0];
    const fg = whole.classes.reduce((a, c) => a + c, 0) / whole.classes.length;
    assert.ok(fg > 0.3 && fg < 0.7, `the model is balanced on this image (foreground ${fg})`);
    const gauss = agreement((await predictTiledInMemory(p, pre, opts(128))).classes, whole.classes);
    const constant = agreement((await predictTiledInMemory(p, pre, opts(128, { blend: 'constant' }))).classes, whole.classes);
    t.diagnostic(`agreement with the whole-image prediction: gaussian ${(100 * gauss).toFixed(3)}%, constant ${(100 * constant).toFixed(3)}%`);
    assert.ok(gauss >= 0.999, `gaussian agreement ${gauss}`);
    assert.ok(gauss > constant, 'Gaussian weighting is better than plain averaging');
  });

  test('at --scale 0.5 the blended logits are resized back to the full size band by band like the whole-image path', async () => {
    const pre = await preprocess(join(dir, 'agree.png'), 0.5, 1);
    const whole = predictBatch(p, [pre], { probs: true })[0];
    // One window (no blending) isolates the resize-back, done 7 output rows at a time.
    const tiled = await predictTiledInMemory(p, pre, opts(160, { probs: true, chunkPixels: 7 * 300 * 2 }));
    assert.deepEqual([tiled.width, tiled.height], [300, 200]);
    assert.ok(agreement(tiled.classes, whole.classes) >= 0.9999);
    let maxDiff = 0;
    for (let k = 0; k < 2; k++) for (let i = 0; i < 300 * 200; i++) maxDiff = Math.max(maxDiff, Math.abs((tiled.probs?.[k][i] ?? -9) - (whole.probs?.[k][i] ?? 0)));
    assert.ok(maxDiff <= 1, `probabilities differ by ${maxDiff}/65535`);
    // Several windows at scale 0.5: the full-size result still follows the whole-image one.
    const a = agreement((await predictTiledInMemory(p, pre, opts(64))).classes, whole.classes);
    assert.ok(a >= 0.97, `agreement ${a}`);
  });

  test('an image smaller than a window is one forward pass: identical to the whole-image prediction', async () => {
    const img = await greyPng(join(dir, 'small.png'), 93, 61); // not divisible by 16
    const pre = await preprocess(img, 1, 1);
    const whole = predictBatch(p, [pre], { probs: true })[0];
    const tiled = await predictTiledInMemory(p, pre, opts(512, { probs: true }));
    assert.deepEqual(tiled.classes, whole.classes);
    assert.deepEqual(tiled.probs, whole.probs);
  });

  test('sizes not divisible by 16, windows clipped at the borders, -b larger than a window row: the blend of the windows computed by hand', async () => {
    const img = await greyPng(join(dir, 'odd.png'), 93, 61);
    const pre = await preprocess(img, 1, 1);
    const [W, H, T] = [93, 61, 64];
    const xs = tileStarts(W, T, 0.25);
    assert.deepEqual(xs, [0, 29]); // one window row of height 61 (the image is lower than a window)
    const tiled = await predictTiledInMemory(p, pre, opts(T, { batchSize: 7 }));
    // Reference: each window alone through the model, Gaussian weights g(y) g(x), weighted mean, argmax.
    const gy = windowWeights(H, 'gaussian');
    const gx = windowWeights(T, 'gaussian');
    const acc = new Float64Array(2 * H * W);
    const wsum = new Float64Array(H * W);
    for (const x0 of xs) {
      const crop = new Float32Array(H * T);
      for (let y = 0; y < H; y++) crop.set(pre.data.subarray(y * W + x0, y * W + x0 + T), y * T);
      const l = forwardLogits(p, [{ ...pre, data: crop, width: T }]).disposeAfter((t) => t.data() as Float32Array);
      for (let y = 0; y < H; y++) {
        for (let x = 0; x < T; x++) {
          const wgt = gy[y] * gx[x];
          wsum[y * W + x0 + x] += wgt;
          for (let k = 0; k < 2; k++) acc[k * H * W + y * W + x0 + x] += wgt * l[k * H * T + y * T + x];
        }
      }
    }
    let differ = 0;
    for (let i = 0; i < H * W; i++) {
      const cls = acc[H * W + i] / wsum[i] > acc[i] / wsum[i] ? 1 : 0;
      if (cls !== tiled.classes[i]) differ++;
    }
    assert.ok(differ <= 1, `${differ} pixels differ from the hand-made blend`);
  });
});

describe('region by region', () => {
  test('a file read in bands of one window row and written row by row equals the in-memory result, byte for byte', async () => {
    const img = await greyPng(join(dir, 'region.png'), 251, 190);
    // 0.5: 125x95 scaled; 0.37: 92x70, an odd ratio whose taps overlap unevenly.
    for (const [scale, bands] of [
      [0.5, 3],
      [0.37, 2],
    ] as const) {
      const pre = await preprocess(img, scale, 1);
      const mem = await predictTiledInMemory(p, pre, opts(48, { probs: true }));
      const out = { mask: join(dir, `region_${scale}.png`), probs: [join(dir, `region_${scale}_P0.png`), join(dir, `region_${scale}_P1.png`)] };
      const r = await predictTiledFile(p, img, scale, out, opts(48, { probs: true }), () => undefined);
      assert.deepEqual([r.width, r.height], [251, 190]);
      // One band of 48 scaled rows per window row, each made from only the input rows its
      // bicubic taps reach (48 / scale + the kernel's reach): the file is never read whole.
      assert.equal(r.maxRows, 48);
      assert.equal(r.reads, tileStarts(pre.height, 48, 0.25).length);
      assert.equal(r.reads, bands);
      assert.ok(r.maxInputRows <= Math.ceil(48 / scale) + 2 * Math.ceil(2 / scale) + 1, `${r.maxInputRows} input rows in one read`);
      assert.ok(r.maxInputRows < 190, `${r.maxInputRows} of 190 input rows in one read`);
      const mask = decodePng(readFileSync(out.mask));
      assert.deepEqual([mask.width, mask.height, mask.channels, mask.depth], [251, 190, 1, 8]);
      assert.deepEqual(
        mask.data,
        Uint8Array.from(mem.classes, (c) => (c ? 255 : 0)),
        `mask at scale ${scale}`,
      );
      for (let k = 0; k < 2; k++) {
        const pr = decodePng(readFileSync(out.probs[k]));
        assert.equal(pr.depth, 16);
        assert.deepEqual(pr.data, Uint16Array.from(mem.probs?.[k] ?? []), `probability map ${k} at scale ${scale}`);
      }
    }
  });

  test('16-bit grey and 8-bit RGB files: the bands of scaled rows equal the in-memory scaled image exactly', async () => {
    const [w, h] = [97, 83];
    const grey16 = Uint16Array.from({ length: w * h }, (_, i) => ((i % w) * 677 + Math.floor(i / w) * 401) % 65536);
    const rgb = Uint8Array.from({ length: w * h * 3 }, (_, i) => (i * 37 + (i % 7) * 91) % 256);
    writeFileSync(join(dir, 'g16.png'), encodePng({ width: w, height: h, data: grey16, depth: 16, channels: 1 }));
    await sharp(rgb, { raw: { width: w, height: h, channels: 3 } })
      .tiff()
      .toFile(join(dir, 'rgb.tif'));
    for (const file of ['g16.png', 'rgb.tif']) {
      const path = join(dir, file);
      for (const scale of [0.5, 0.37, 1]) {
        const want = await readImage(path, { scale });
        const src = await openScaledRegions(path, scale);
        try {
          assert.deepEqual([src.width, src.height, src.channels], [want.width, want.height, want.channels]);
          const plane = src.width * src.height;
          const got = new Float32Array(plane * src.channels);
          for (let y0 = 0; y0 < src.height; y0 += 13) {
            const y1 = Math.min(src.height, y0 + 13);
            const band = await src.read(y0, y1);
            const n = (y1 - y0) * src.width;
            for (let c = 0; c < src.channels; c++) got.set(band.subarray(c * n, (c + 1) * n), c * plane + y0 * src.width);
          }
          assert.deepEqual(got, want.data, `${file} at scale ${scale}`);
          // Sharp edges: PIL's "I" mode overshoots 0..65535 and is not clipped (nor is it here).
          if (file === 'g16.png' && scale < 1) assert.ok(want.data.some((v) => v < 0 || v > 1));
          assert.ok(src.stats.maxInputRows < h, `${file}: ${src.stats.maxInputRows} input rows in one read`);
        } finally {
          src.close();
        }
      }
    }
  });

  test('-o x.tif: the mask as a TIFF with the mask values, written region by region ([0, 1] as 8-bit 0/1)', async () => {
    const img = await greyPng(join(dir, 'region_tif.png'), 251, 190);
    const pre = await preprocess(img, 0.5, 1);
    const mem = await predictTiledInMemory(p, pre, opts(48));
    const tif = join(dir, 'region_01.tif');
    const r = await predictTiledFile({ ...p, maskValues: [0, 1] }, img, 0.5, { mask: tif }, opts(48), () => undefined);
    assert.equal(r.reads, 3);
    const m = await readMask(tif);
    assert.deepEqual([m.width, m.height, m.channels, (await sharp(tif).metadata()).format], [251, 190, 1, 'tiff']);
    assert.deepEqual(m.data, mem.classes);
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.startsWith('.')),
      [],
      'no temp files left',
    );
  });
});

describe('unet predict / evaluate --tile', () => {
  const predictCfg = (over: Partial<PredictConfig>): PredictConfig => ({ ...defaults(predictOptions), device: 'cpu', workers: 1, model, ...over });

  test('--tile auto: whole images within the budget, region by region under a tiny --max-memory; same masks as --tile', async () => {
    // runPredict loads the checkpoint itself (a full-width UNet): a small image at scale 0.25
    // (120x100, four windows of 64) whose decoded pixels and outputs exceed half of 1 MiB.
    const img = await greyPng(join(dir, 'cli.png'), 480, 400);
    const log: string[] = [];
    const io = { log: (l: string) => log.push(l), warn: (l: string) => log.push(l), progress: false };
    const auto = await runPredict(predictCfg({ input: [img], output: [join(dir, 'auto.png')], tile: 'auto', scale: 0.25 }), io);
    assert.equal(auto.exitCode, 0);
    assert.ok(!log.join('\n').includes('region by region'));
    const tight = await runPredict(predictCfg({ input: [img], output: [join(dir, 'tight.png')], tile: 'auto', scale: 0.25, maxMemory: 1 }), io);
    assert.equal(tight.exitCode, 0);
    assert.match(log.join('\n'), /windows of 64, region by region/);
    const mem = await runPredict(predictCfg({ input: [img], output: [join(dir, 'mem.png')], tile: 64, scale: 0.25, maxMemory: 100000 }), io);
    assert.equal(log.filter((l) => l.includes('region by region')).length, 1);
    assert.equal(mem.exitCode, 0);
    assert.deepEqual(decodePng(readFileSync(join(dir, 'tight.png'))).data, decodePng(readFileSync(join(dir, 'mem.png'))).data);
    // -o x.tif: the same mask as a TIFF, in memory and region by region.
    for (const [name, maxMemory] of [
      ['mem.tif', 100000],
      ['tight.tif', 1],
    ] as const) {
      assert.equal((await runPredict(predictCfg({ input: [img], output: [join(dir, name)], tile: 64, scale: 0.25, maxMemory }), io)).exitCode, 0);
      const m = await readMask(join(dir, name));
      assert.deepEqual([m.width, m.height, m.channels], [480, 400, 1]);
      assert.deepEqual(m.data, decodePng(readFileSync(join(dir, 'mem.png'))).data, name);
    }
    assert.equal(log.filter((l) => l.includes('region by region')).length, 2);
  });

  test('evaluate --tile: one window = the untiled metrics; small windows score close to them', async () => {
    const imgs = join(dir, 'ev', 'imgs');
    const masks = join(dir, 'ev', 'masks');
    mkdirSync(imgs, { recursive: true });
    mkdirSync(masks, { recursive: true });
    await greyPng(join(imgs, 'a.png'), 70, 50);
    const m = Uint8Array.from({ length: 70 * 50 }, (_, i) => (i % 70 > 35 ? 255 : 0));
    await sharp(m, { raw: { width: 70, height: 50, channels: 1 } })
      .toColourspace('b-w')
      .png()
      .toFile(join(masks, 'a.png'));
    const cfg = (over: Partial<EvaluateConfig>): EvaluateConfig => ({ ...defaults(evaluateOptions), device: 'cpu', workers: 1, model, imgs, masks, scale: 1, ...over });
    const quiet = { warn: () => undefined };
    const plain = await runEvaluate(cfg({}), quiet);
    const one = await runEvaluate(cfg({ tile: 512 }), quiet);
    assert.deepEqual(one.confusion, plain.confusion);
    const small = await runEvaluate(cfg({ tile: 32 }), quiet);
    assert.equal(small.images, 1);
    assert.ok(Math.abs(small.pixelAccuracy - plain.pixelAccuracy) < 0.1);
  });

  test('bad --tile / --overlap / --blend / --max-memory values: one line naming the flag', async () => {
    for (const [args, flag] of [
      [['--tile', '100'], '--tile'],
      [['--tile', 'big'], '--tile'],
      [['--tile', '0'], '--tile'],
      [['--overlap', '1'], '--overlap'],
      [['--overlap', '-0.1'], '--overlap'],
      [['--blend', 'median'], '--blend'],
      [['--max-memory', '-5'], '--max-memory'],
    ] as const) {
      for (const cmd of ['predict', 'evaluate']) {
        let err = '';
        const program = buildProgram({ train: async () => 0, evaluate: async () => 0, predict: async () => 0 }, { exitOverride: true, writeErr: (s) => (err += s) });
        await assert.rejects(
          program.parseAsync(
            [cmd, '-i', 'a.png', ...args].filter((a) => cmd === 'predict' || (a !== '-i' && a !== 'a.png')),
            { from: 'user' },
          ),
        );
        const first = err.split('\n')[0];
        assert.ok(first.includes(flag), `${cmd} ${args.join(' ')}: ${first}`);
      }
    }
  });

  test('bench --predict --tile: one JSON line with MP/s and the peak RSS; bad --tile refused', async () => {
    const r = await runCli(['bench', '--predict', '--tile', '64', '--width', '300', '--height', '200', '-s', '0.5', '--width-divisor', '16', '-b', '2', '--device', 'cpu'], { timeoutMs: 300_000 });
    assert.equal(r.code, 0, r.stderr);
    const line = JSON.parse(r.stdout.trim().split('\n').pop() as string);
    assert.equal(line.mode, 'predict-tile');
    assert.deepEqual([line.width, line.height, line.tile, line.unet], [300, 200, 64, 'width / 16']);
    assert.ok(line.mp_per_s > 0 && line.peak_rss_mib > 0 && line.cpu_seconds > 0);
    assert.equal(line.band_reads, 2); // 150x100 scaled: window rows at 0 and 36
    // 64 scaled rows need 128 input rows plus the taps' reach (about 4 rows beyond, one side clipped at the border): not all 200.
    assert.deepEqual([line.rows_per_read, line.input_rows_per_read], [64, 131]);
    assertCleanFailure(await runCli(['bench', '--predict', '--tile', '100']), /--tile <n>' argument '100' is invalid\. must be a multiple of 16/, '--tile', 64);
  });

  test('no tensors left behind', () => {
    // The predictor's parameters and buffers are the only live tensors.
    assert.equal(E.memoryStats().liveTensors - start, p.model.parameters().length + p.model.namedBuffers().length);
  });
});
