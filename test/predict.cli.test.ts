// `unet predict`: inputs (files, folders, globs), output names, mask values written back, overlays,
// probability maps, batching, broken inputs, -n, argument checks, and one end-to-end CLI run.
// Models are tiny-image bilinear UNets; "forced" models have a zero 1x1 output conv and a bias that
// picks one class everywhere, so the expected mask is known exactly.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { before, describe, test } from 'node:test';
import { decode as decodePng, encode as encodePng } from 'fast-png';
import sharp from 'sharp';
import { UserError } from '../src/config/errors.js';
import { defaults, predictOptions, type PredictConfig } from '../src/config/options.js';
import { type MaskValues, readMask, scanMaskValues } from '../src/data/index.js';
import * as E from '../src/engine/index.js';
import { savePth } from '../src/io/pth.js';
import { UNet, type UNetArgs } from '../src/model/index.js';
import { OUTPUT_STEM, PALETTE, checkGivenArgs, encodeMaskPng, expandInputs, legendLayout, runPredict } from '../src/predict/index.js';
import { buildProgram } from '../src/cli/program.js';
import { predictCommand } from '../src/predict/command.js';
import { saveCheckpoint, saveReferenceStateDict, toRaw } from '../src/model/checkpoint.js';
import { hasTorch, runPython } from './helpers/python.js';
import { tempDir } from './helpers/workdir.js';

const ROOT = resolve(import.meta.dirname, '..');
const W = 48;
const H = 32;
const dir = tempDir('predict');

// ------------------------------------------------------------------------------------------------
// Fixtures

interface CkptOpts {
  /** Make the output constant: this class everywhere (1-output models: a large positive logit). */
  forceClass?: number;
  /** 'ours' (saveCheckpoint), 'reference' (flat state_dict + mask_values), 'bare' (flat, no mask_values). */
  format?: 'ours' | 'reference' | 'bare';
  seed?: number;
}

async function makeCheckpoint(name: string, args: UNetArgs, maskValues: MaskValues, o: CkptOpts = {}): Promise<string> {
  const file = join(dir, name);
  E.manualSeed(o.seed ?? 0);
  const m = new UNet(args);
  try {
    const sd = m.stateDict();
    if (o.forceClass !== undefined) {
      E.noGrad(() => {
        (sd.get('outc.conv.weight') as E.Tensor).zero_();
        const b = new Float32Array(args.nClasses);
        if (args.nClasses === 1) b[0] = o.forceClass ? 50 : -50;
        else b[o.forceClass as number] = 50;
        E.tensor(b).disposeAfter((t) => (sd.get('outc.conv.bias') as E.Tensor).copy_(t));
      });
    }
    const format = o.format ?? 'ours';
    if (format === 'ours') {
      await saveCheckpoint(file, { model: sd, epoch: 3, globalStep: 30, loss: 0.1, valScore: 0.9, maskValues, modelArgs: args, config: {} });
    } else if (format === 'reference') {
      await saveReferenceStateDict(file, sd, maskValues);
    } else {
      const flat: Record<string, ReturnType<typeof toRaw>> = {};
      for (const [k, t] of sd) flat[k] = toRaw(t);
      await savePth(file, flat);
    }
  } finally {
    m.dispose();
  }
  return file;
}

/** A greyscale PNG with a gradient and some texture. */
async function greyPng(file: string, w = W, h = H, seed = 1): Promise<string> {
  const px = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) px[y * w + x] = (x * 5 + y * 3 + seed * 17 + ((x * y * seed) % 23)) & 255;
  await sharp(px, { raw: { width: w, height: h, channels: 1 } })
    .toColourspace('b-w')
    .png()
    .toFile(file);
  return file;
}

async function rgbPng(file: string, w = W, h = H): Promise<string> {
  const px = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) {
    px[3 * i] = (i * 3) & 255;
    px[3 * i + 1] = (i * 7) & 255;
    px[3 * i + 2] = (i * 11) & 255;
  }
  await sharp(px, { raw: { width: w, height: h, channels: 3 } })
    .png()
    .toFile(file);
  return file;
}

function cfg(over: Partial<PredictConfig>): PredictConfig {
  return { ...defaults(predictOptions), device: 'cpu', workers: 2, ...over };
}

/** runPredict with the output collected instead of printed. */
async function predict(over: Partial<PredictConfig>, opts: { classesGiven?: boolean; bilinearGiven?: boolean } = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const r = await runPredict(cfg(over), { ...opts, log: (l) => out.push(l), warn: (l) => err.push(l), progress: false });
  return { ...r, out: out.join('\n'), err: err.join('\n') };
}

const uniq = (a: ArrayLike<number>) => [...new Set(Array.from(a))].sort((x, y) => x - y);

let grey2: string; // 1-channel, 2 classes, random weights, mask values [0, 255]
let forced255: string; // same, always class 1

before(async () => {
  grey2 = await makeCheckpoint('grey2.pth', { nChannels: 1, nClasses: 2, bilinear: true }, [0, 255]);
  forced255 = await makeCheckpoint('forced255.pth', { nChannels: 1, nClasses: 2, bilinear: true }, [0, 255], { forceClass: 1 });
});

// ------------------------------------------------------------------------------------------------

describe('inputs', () => {
  test('folders (sorted, images only, earlier outputs skipped), globs, missing files', async () => {
    const d = join(dir, 'inputs');
    mkdirSync(d);
    for (const n of ['img10.png', 'img2.png', 'img1.png', 'x.tif']) await greyPng(join(d, n), 8, 8);
    writeFileSync(join(d, 'notes.txt'), 'hello');
    writeFileSync(join(d, '.hidden.png'), '');
    await greyPng(join(d, 'img1_OUT.png'), 8, 8);
    const r = expandInputs([d]);
    assert.deepEqual(
      r.entries.map((e) => e.input),
      ['img1.png', 'img2.png', 'img10.png', 'x.tif'].map((n) => join(d, n)),
    );
    assert.equal(r.skippedOutputs, 1);

    const g = expandInputs([join(d, 'img?.png'), join(d, 'img1*.png'), join(d, 'nothing*.png'), join(d, 'missing.png')]);
    assert.deepEqual(
      g.entries.filter((e) => !e.error).map((e) => e.input),
      ['img1.png', 'img2.png', 'img10.png'].map((n) => join(d, n)),
    );
    assert.deepEqual(
      g.entries.filter((e) => e.error).map((e) => e.input),
      [join(d, 'nothing*.png'), join(d, 'missing.png')],
    );

    const entriesOf = (pattern: string) => expandInputs([pattern]).entries.map((e) => e.input);
    assert.deepEqual(entriesOf(join(d, 'img[12].png')), [join(d, 'img1.png'), join(d, 'img2.png')]);
    assert.deepEqual(entriesOf(join(d, 'img[!1].png')), [join(d, 'img2.png')]);
    assert.ok(OUTPUT_STEM.test('a_PROB3') && OUTPUT_STEM.test('a_OVERLAY') && !OUTPUT_STEM.test('a_OUTLINE'));
  });

  test('multi-input run over a folder and a glob writes one mask per image', async () => {
    const d = join(dir, 'multi');
    mkdirSync(d);
    await greyPng(join(d, 'a.png'), W, H, 1);
    await greyPng(join(d, 'b.png'), W, H, 2);
    const e = join(dir, 'multi2');
    mkdirSync(e);
    await greyPng(join(e, 'c.png'), 40, 34, 3);
    const r = await predict({ model: grey2, input: [d, join(e, '*.png')] });
    assert.equal(r.exitCode, 0);
    assert.deepEqual(
      r.predicted.map((p) => p.mask),
      [join(d, 'a_OUT.png'), join(d, 'b_OUT.png'), join(e, 'c_OUT.png')],
    );
    const c = await readMask(join(e, 'c_OUT.png'));
    assert.deepEqual([c.width, c.height], [40, 34]); // the input's full size (predicted at 20x17)
    for (const v of uniq(c.data)) assert.ok(v === 0 || v === 255);
    assert.match(r.out, /Predicted 3 image\(s\) in [\d.]+ s \([\d.]+ images\/s\)/);
    // A second run over the same folder would not predict its own outputs.
    const again = expandInputs([d]);
    assert.deepEqual([again.entries.length, again.skippedOutputs], [2, 2]);
  });
});

describe('output names', () => {
  test("default {stem}_OUT.png next to the input, at the input's full size, values 0/255 only", async () => {
    const img = await greyPng(join(dir, 'full.png'));
    const r = await predict({ model: forced255, input: [img] });
    const m = await readMask(join(dir, 'full_OUT.png'));
    assert.equal(r.predicted[0].mask, join(dir, 'full_OUT.png'));
    assert.deepEqual([m.width, m.height, m.channels], [W, H, 1]);
    assert.deepEqual(uniq(m.data), [255]);
    const meta = await sharp(join(dir, 'full_OUT.png')).metadata();
    assert.equal(meta.depth, 'uchar');
    assert.equal(meta.space, 'b-w');
  });

  test('--output-dir (created) keeps the {stem}_OUT.png names', async () => {
    const a = await greyPng(join(dir, 'od_a.png'));
    const b = await greyPng(join(dir, 'od_b.png'));
    const out = join(dir, 'nested', 'out');
    const r = await predict({ model: forced255, input: [a, b], outputDir: out, amp: true });
    assert.deepEqual(
      r.predicted.map((p) => p.mask),
      [join(out, 'od_a_OUT.png'), join(out, 'od_b_OUT.png')],
    );
    // bf16 autocast on CPUs with native bf16; elsewhere fp32 and a note saying so
    assert.match(r.out + r.err, E.cpuHasNativeBf16() ? /with AMP/ : /no native bf16 instructions/);
    assert.deepEqual(uniq((await readMask(join(out, 'od_b_OUT.png'))).data), [255]);
    assert.ok(!existsSync(join(dir, 'od_a_OUT.png')));
  });

  test('UNET_CPU_AMP=bf16 forces bf16 autocast on any CPU; the masks stay the same', async () => {
    const a = await greyPng(join(dir, 'bf_a.png'));
    process.env.UNET_CPU_AMP = 'bf16';
    try {
      assert.equal(E.ampDtypeFor('cpu'), 'bfloat16');
      const r = await predict({ model: forced255, input: [a], outputDir: join(dir, 'bf16'), amp: true });
      assert.match(r.out, /with AMP/);
      assert.doesNotMatch(r.err, /no native bf16/);
      assert.deepEqual(uniq((await readMask(join(dir, 'bf16', 'bf_a_OUT.png'))).data), [255]);
    } finally {
      delete process.env.UNET_CPU_AMP;
    }
    assert.equal(E.ampDtypeFor('cpu'), E.cpuHasNativeBf16() ? 'bfloat16' : null);
    assert.equal(E.ampDtypeFor('cuda:0'), 'float16');
  });

  test('-o: one per input; a count mismatch or a lossy extension is an error before any work', async () => {
    const a = await greyPng(join(dir, 'o_a.png'));
    const b = await greyPng(join(dir, 'o_b.png'));
    const r = await predict({ model: forced255, input: [a, b], output: [join(dir, 'oa/first.png'), join(dir, 'second')] });
    assert.deepEqual(
      r.predicted.map((p) => p.mask),
      [join(dir, 'oa/first.png'), join(dir, 'second.png')],
    );
    await assert.rejects(predict({ model: forced255, input: [a, b], output: [join(dir, 'only.png')] }), (e: Error) => {
      assert.equal(e.name, 'PredictError');
      assert.match(e.message, /2 input image\(s\) but 1 output name/);
      return true;
    });
    await assert.rejects(predict({ model: forced255, input: [a], output: [join(dir, 'x.jpg')] }), /written as PNG/);
    assert.ok(!existsSync(join(dir, 'only.png')));
  });

  test('two inputs that would write the same file are refused', async () => {
    const d = join(dir, 'clash');
    mkdirSync(d);
    await greyPng(join(d, 'same.png'));
    await sharp(join(d, 'same.png')).jpeg().toFile(join(d, 'same.jpg'));
    await assert.rejects(predict({ model: forced255, input: [d] }), (e: Error) => e.name === 'PredictError' && /same_OUT\.png/.test(e.message));
  });
});

describe('mask values written back', () => {
  test('class-id values 0..4 (5 classes) and the encoder on a mixed map', async () => {
    const ck = await makeCheckpoint('five.pth', { nChannels: 1, nClasses: 5, bilinear: true }, [0, 1, 2, 3, 4], { forceClass: 3 });
    const img = await greyPng(join(dir, 'five.png'));
    const r = await predict({ model: ck, input: [img] });
    assert.match(r.err, /look \(almost\) black/);
    assert.deepEqual(uniq((await readMask(join(dir, 'five_OUT.png'))).data), [3]);
    const cls = Uint8Array.from({ length: 12 }, (_, i) => i % 5);
    const png = await encodeMaskPng(cls, 4, 3, [0, 1, 2, 3, 4]);
    writeFileSync(join(dir, 'enc.png'), png);
    assert.deepEqual(Array.from((await readMask(join(dir, 'enc.png'))).data), Array.from(cls));
  });

  test('RGB colour values come back as an RGB PNG; a greyscale input to an RGB model is replicated', async () => {
    const values: MaskValues = [
      [0, 0, 0],
      [0, 128, 255],
      [255, 0, 0],
    ];
    const ck = await makeCheckpoint('rgb.pth', { nChannels: 3, nClasses: 3, bilinear: true }, values, { forceClass: 1 });
    const img = await rgbPng(join(dir, 'colour.png'));
    const g = await greyPng(join(dir, 'greyin.png'));
    const r = await predict({ model: ck, input: [img, g] });
    assert.equal(r.exitCode, 0);
    assert.match(r.err, /greyscale image given to an RGB model/);
    const m = await readMask(join(dir, 'colour_OUT.png'));
    assert.equal(m.channels, 3);
    for (let i = 0; i < m.data.length; i += 3) assert.deepEqual([m.data[i], m.data[i + 1], m.data[i + 2]], [0, 128, 255]);
    const enc = await encodeMaskPng(Uint8Array.from([0, 1, 2, 2]), 2, 2, values);
    writeFileSync(join(dir, 'enc_rgb.png'), enc);
    assert.deepEqual(Array.from((await readMask(join(dir, 'enc_rgb.png'))).data), [0, 0, 0, 0, 128, 255, 255, 0, 0, 255, 0, 0]);
  });

  test('values above 255 are written as a 16-bit PNG', async () => {
    const png = await encodeMaskPng(Uint8Array.from([0, 1, 2, 1]), 2, 2, [0, 1000, 65535]);
    const d = decodePng(png);
    assert.equal(d.depth, 16);
    assert.deepEqual(Array.from(d.data), [0, 1000, 65535, 1000]);
  });

  test('a reference file without mask_values: [0, 1] written as a 1-bit PNG (PIL mode "1", as the reference\'s bool mask)', async () => {
    const ck = await makeCheckpoint('bare.pth', { nChannels: 1, nClasses: 2, bilinear: true }, [0, 1], { format: 'bare', forceClass: 1 });
    const img = await greyPng(join(dir, 'bare.png'));
    const r = await predict({ model: ck, input: [img] });
    assert.match(r.err, /no mask_values/);
    const png = readFileSync(join(dir, 'bare_OUT.png'));
    assert.equal(png[24], 1); // IHDR bit depth
    assert.deepEqual(uniq((await readMask(join(dir, 'bare_OUT.png'))).data), [1]);
    const cls = Uint8Array.from({ length: 11 * 3 }, (_, i) => ((i * 7) % 3 === 0 ? 1 : 0));
    writeFileSync(join(dir, 'bits.png'), await encodeMaskPng(cls, 11, 3, [0, 1]));
    assert.deepEqual(Array.from((await readMask(join(dir, 'bits.png'))).data), Array.from(cls));
    if (hasTorch()) {
      const py = runPython<{ mode: string; values: number[] }>(
        "import sys, json, numpy as np\nfrom PIL import Image\nim = Image.open(json.load(sys.stdin))\nprint(json.dumps({'mode': im.mode, 'values': sorted(set(np.array(im).astype(int).ravel().tolist()))}))",
        join(dir, 'bare_OUT.png'),
      );
      assert.deepEqual(py, { mode: '1', values: [1] });
    }
  });

  test('palette-derived values (palette-mask indices) are written back as those values', async () => {
    const idx = Uint8Array.from({ length: 16 }, (_, i) => [0, 2, 5][i % 3]);
    // A real palette PNG ("P" mode): a colour palette, indices 0, 2, 5.
    const palette = [
      [0, 0, 0],
      [10, 10, 10],
      [200, 0, 0],
      [1, 2, 3],
      [4, 5, 6],
      [0, 200, 0],
    ] as [number, number, number][];
    writeFileSync(join(dir, 'pal_mask.png'), encodePng({ width: 4, height: 4, data: idx, depth: 8, channels: 1, palette }));
    const values = await scanMaskValues([join(dir, 'pal_mask.png')]);
    assert.deepEqual(values, [0, 2, 5]);
    const ck = await makeCheckpoint('pal.pth', { nChannels: 1, nClasses: 3, bilinear: true }, values, { forceClass: 2, format: 'reference' });
    const img = await greyPng(join(dir, 'palimg.png'));
    await predict({ model: ck, input: [img] });
    assert.deepEqual(uniq((await readMask(join(dir, 'palimg_OUT.png'))).data), [5]);
  });
});

describe('overlay and probabilities', () => {
  test('--viz: the input with coloured classes plus a legend strip; background untouched', async () => {
    const img = await greyPng(join(dir, 'viz.png'));
    const forced0 = await makeCheckpoint('forced0.pth', { nChannels: 1, nClasses: 2, bilinear: true }, [0, 255], { forceClass: 0 });
    const r1 = await predict({ model: forced255, input: [img], viz: true });
    const layout = legendLayout(W, [0, 255]);
    assert.equal(r1.predicted[0].overlay, join(dir, 'viz_OVERLAY.png'));
    const ov = await sharp(join(dir, 'viz_OVERLAY.png')).raw().toBuffer({ resolveWithObject: true });
    assert.deepEqual([ov.info.width, ov.info.height, ov.info.channels], [layout.width, H + layout.legendHeight, 3]);
    assert.ok(layout.width >= W && layout.legendHeight > 0);
    const src = await sharp(img).extractChannel(0).raw().toBuffer(); // the grey values
    const at = (x: number, y: number) => Array.from(ov.data.subarray((y * ov.info.width + x) * 3, (y * ov.info.width + x) * 3 + 3));
    const c = PALETTE[0];
    for (const [x, y] of [
      [0, 0],
      [10, 5],
      [W - 1, H - 1],
    ]) {
      const g = src[y * W + x];
      assert.deepEqual(
        at(x, y),
        c.map((v) => Math.round(0.5 * g + 0.5 * v)),
      );
    }
    // The legend strip has text (light pixels) and the class colour swatch.
    let light = 0;
    let swatch = 0;
    for (let y = H; y < ov.info.height; y++) {
      for (let x = 0; x < ov.info.width; x++) {
        const [r, g, b] = at(x, y);
        if (r > 200 && g > 200 && b > 200) light++;
        if (r === c[0] && g === c[1] && b === c[2]) swatch++;
      }
    }
    assert.ok(light > 20, `legend text pixels: ${light}`);
    assert.ok(swatch > 50, `swatch pixels: ${swatch}`);
    // Class 0 everywhere: the image part is the input itself.
    await predict({ model: forced0, input: [img], viz: true, noSave: true });
    const ov0 = await sharp(join(dir, 'viz_OVERLAY.png')).raw().toBuffer({ resolveWithObject: true });
    for (const [x, y] of [
      [0, 0],
      [20, 9],
      [W - 1, H - 1],
    ])
      assert.deepEqual(Array.from(ov0.data.subarray((y * ov0.info.width + x) * 3, (y * ov0.info.width + x) * 3 + 3)), [src[y * W + x], src[y * W + x], src[y * W + x]]);
  });

  test('--probs: 16-bit {stem}_PROB{k}.png per class, summing to 1; binary models write PROB1', async () => {
    const img = await greyPng(join(dir, 'pr.png'));
    const r = await predict({ model: grey2, input: [img], probs: true, noSave: true });
    assert.deepEqual(r.predicted[0].probs, [join(dir, 'pr_PROB0.png'), join(dir, 'pr_PROB1.png')]);
    assert.ok(!existsSync(join(dir, 'pr_OUT.png')));
    const p0 = decodePng(readFileSync(join(dir, 'pr_PROB0.png')));
    const p1 = decodePng(readFileSync(join(dir, 'pr_PROB1.png')));
    assert.equal(p0.depth, 16);
    assert.deepEqual([p0.width, p0.height], [W, H]);
    for (let i = 0; i < p0.data.length; i += 37) assert.ok(Math.abs(p0.data[i] + p1.data[i] - 65535) <= 1);
    const bin = await makeCheckpoint('bin1.pth', { nChannels: 1, nClasses: 1, bilinear: true }, [0, 255], { forceClass: 1 });
    // -t: P = sigmoid(50) is 1.0 in float32; with a threshold of 1 (strictly greater, as the reference) nothing is foreground.
    const rb = await predict({ model: bin, input: [img], probs: true, maskThreshold: 1, output: [join(dir, 'binmask.png')] });
    assert.deepEqual(rb.predicted[0].probs, [join(dir, 'binmask_PROB1.png')]);
    assert.deepEqual(uniq(decodePng(readFileSync(join(dir, 'binmask_PROB1.png'))).data), [65535]);
    assert.deepEqual(uniq((await readMask(join(dir, 'binmask.png'))).data), [0]);
  });
});

describe('batches, failures, -n', () => {
  test('-b groups same-size images; results equal one-by-one; no tensors leak', async () => {
    const d = join(dir, 'batch');
    mkdirSync(d);
    for (let i = 0; i < 3; i++) await greyPng(join(d, `s${i}.png`), W, H, i + 1);
    await greyPng(join(d, 't.png'), 36, 40, 9);
    const before1 = E.memoryStats().liveTensors;
    const one = await predict({ model: grey2, input: [d], outputDir: join(dir, 'b1'), probs: true });
    const two = await predict({ model: grey2, input: [d], outputDir: join(dir, 'b3'), batchSize: 3, probs: true, classes: 2, bilinear: true }, { classesGiven: true, bilinearGiven: true });
    assert.equal(E.memoryStats().liveTensors, before1);
    assert.equal(two.predicted.length, 4);
    for (const n of ['s0', 's1', 's2', 't']) {
      const a = decodePng(readFileSync(join(dir, 'b1', `${n}_PROB1.png`))).data;
      const b = decodePng(readFileSync(join(dir, 'b3', `${n}_PROB1.png`))).data;
      let maxd = 0;
      for (let i = 0; i < a.length; i++) maxd = Math.max(maxd, Math.abs(a[i] - b[i]));
      assert.ok(maxd <= 2, `${n}: batch vs single differ by ${maxd}/65535`);
    }
    assert.equal(one.exitCode, 0);
  });

  test('broken inputs are reported with the reason and skipped; the rest is predicted; exit code 2', async () => {
    const d = join(dir, 'broken');
    mkdirSync(d);
    const ok = await greyPng(join(d, 'ok.png'));
    writeFileSync(join(d, 'text.png'), 'this is not a png');
    writeFileSync(join(d, 'empty.jpg'), '');
    await greyPng(join(d, 'tiny.png'), 20, 40);
    const r = await predict({ model: forced255, input: [d, join(dir, 'nope.png')] });
    assert.equal(r.exitCode, 2);
    assert.deepEqual(
      r.predicted.map((p) => p.input),
      [ok],
    );
    assert.ok(existsSync(join(d, 'ok_OUT.png')));
    const reasons = Object.fromEntries(r.failed.map((f) => [f.input, f.reason]));
    assert.match(reasons[join(d, 'text.png')], /not an image file/);
    assert.match(reasons[join(d, 'empty.jpg')], /empty/);
    assert.match(reasons[join(dir, 'nope.png')], /not found/);
    assert.match(reasons[join(d, 'tiny.png')], /at scale 0\.5 that is 10x20, but the UNet needs at least 16x16/);
    assert.match(r.err, /text\.png/);
    assert.match(r.err, /4 input\(s\) failed/);
  });

  test('-n: nothing written, still predicted and reported', async () => {
    const img = await greyPng(join(dir, 'nosave.png'));
    const r = await predict({ model: forced255, input: [img], noSave: true });
    assert.equal(r.predicted.length, 1);
    assert.equal(r.predicted[0].mask, undefined);
    assert.ok(!existsSync(join(dir, 'nosave_OUT.png')));
    assert.match(r.out, /not saved \(-n\)/);
    // The parser maps -n/--no-save to noSave = true (commander would read it as a negation).
    const parsed: boolean[] = [];
    for (const argv of [
      ['predict', '-i', 'a.png', '-n'],
      ['predict', '-i', 'a.png', '--no-save'],
      ['predict', '-i', 'a.png', '-vn'],
      ['predict', '-i', 'a.png', '-v'],
    ]) {
      const program = buildProgram({ train: async () => 0, evaluate: async () => 0, predict: async (c) => (parsed.push(c.noSave), 0) }, { exitOverride: true });
      await program.parseAsync(argv, { from: 'user' });
    }
    assert.deepEqual(parsed, [true, true, true, false]);
  });
});

describe('model and argument errors', () => {
  test('-c/--bilinear given on the command line are checked against the checkpoint', async () => {
    const img = await greyPng(join(dir, 'args.png'));
    await assert.rejects(predict({ model: grey2, input: [img], classes: 3 }, { classesGiven: true }), (e: Error) => {
      assert.equal(e.name, 'PredictError');
      assert.match(e.message, /--classes 3 was given, but the checkpoint .* has 2 class/);
      return true;
    });
    // Not given on the command line: the default is not checked.
    assert.equal((await predict({ model: grey2, input: [img], classes: 3, noSave: true })).exitCode, 0);
    const p = { path: 'm.pth', args: { nChannels: 3, nClasses: 2, bilinear: false } };
    assert.throws(() => checkGivenArgs(p, { bilinear: true }), /--bilinear was given, but the checkpoint m\.pth uses transposed convolutions/);
    assert.doesNotThrow(() => checkGivenArgs(p, { classes: 2, bilinear: false }));
  });

  test('missing model, a folder, not a checkpoint, not UNet weights: a CheckpointError (one line, exit 1) with the file', async () => {
    const img = await greyPng(join(dir, 'err.png'));
    const notCkpt = join(dir, 'notckpt.pth');
    writeFileSync(notCkpt, 'hello');
    const notUnet = join(dir, 'notunet.pth');
    await savePth(notUnet, { foo: toRaw(E.ones([2, 2]).disposeAfter((t) => t.clone())) });
    for (const [model, re] of [
      [join(dir, 'missing.pth'), /missing\.pth does not exist/],
      [dir, /is a folder/],
      [notCkpt, /cannot read .*notckpt\.pth/],
      [notUnet, /does not hold UNet weights/],
    ] as const) {
      await assert.rejects(predict({ model, input: [img] }), (e: Error) => {
        assert.ok(e instanceof UserError && e.exitCode === 1, `${e.name}: ${e.message}`);
        assert.equal(e.name, 'CheckpointError', e.message);
        assert.match(e.message, re);
        return true;
      });
    }
    await assert.rejects(predict({ model: grey2, input: [] }), /no input images/);
    if (!E.cudaIsAvailable()) await assert.rejects(predict({ model: grey2, input: [img], device: 'cuda' }), /CUDA is not available/);
    await assert.rejects(predict({ model: grey2, input: [join(dir, 'none*.png')] }), /no input images to predict/);
  });

  test('an RGB image given to a greyscale model is a per-file error naming both', async () => {
    const img = await rgbPng(join(dir, 'rgb_to_grey.png'));
    const r = await predict({ model: grey2, input: [img] });
    assert.equal(r.exitCode, 1, 'nothing was written: exit 1, not 2 (partial)');
    assert.match(r.failed[0].reason, /3 channel\(s\) .* expects 1/);
  });

  test('predictCommand returns the exit code', async () => {
    const img = await greyPng(join(dir, 'cmd.png'));
    const log = console.log;
    console.log = () => {};
    try {
      assert.equal(await predictCommand(cfg({ model: forced255, input: [img] }), false, false), 0);
    } finally {
      console.log = log;
    }
    assert.ok(existsSync(join(dir, 'cmd_OUT.png')));
  });
});

test('end to end: `unet predict` as a subprocess (exit codes, messages, -n)', async () => {
  const d = join(dir, 'e2e');
  mkdirSync(d);
  const good = await greyPng(join(d, 'good.png'));
  writeFileSync(join(d, 'bad.png'), 'garbage');
  const cli = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', join(ROOT, 'src/cli/main.ts'), 'predict', ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  const r = cli(['-m', forced255, '-i', good, join(d, 'bad.png'), '--device', 'cpu', '-v']);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stdout, /Predicted 1 image\(s\)/);
  assert.match(r.stderr, /bad\.png: not an image file/);
  assert.ok(!/at .*\.ts:\d+/.test(r.stderr), 'no stack trace');
  assert.deepEqual(uniq((await readMask(join(d, 'good_OUT.png'))).data), [255]);
  assert.ok(existsSync(join(d, 'good_OVERLAY.png')));

  rmSync(join(d, 'good_OUT.png'));
  const n = cli(['-m', forced255, '-i', good, '--device', 'cpu', '-n']);
  assert.equal(n.status, 0, n.stderr);
  assert.ok(!existsSync(join(d, 'good_OUT.png')), '-n must not write the mask');

  const m = cli(['-m', join(d, 'missing.pth'), '-i', good]);
  assert.equal(m.status, 1);
  assert.match(m.stderr, /^error: checkpoint .*missing\.pth does not exist/m);
  assert.ok(!/\n\s+at /.test(m.stderr), 'no stack trace');
});
