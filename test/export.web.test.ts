// `unet export --format web` in a real browser: the folder is served by a plain static server
// (python3 -m http.server), Debian's chromium (playwright-core) opens it, and the mask the page
// offers for download must equal `unet predict`'s mask for the same image (>= 99.9% of pixels);
// no request may leave 127.0.0.1; a text file and a too-small image show an error in the page.
// UNET_SCREENSHOTS=1 saves docs/web.png.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { type MaskData, readImageRaw, readMask } from '../src/data/index.js';
import { type TtaMode, preprocessRgba } from '../src/predictor-page/infer.js';
import * as E from '../src/engine/index.js';
import { UNet, type UNetArgs } from '../src/model/index.js';
import { encodeMaskPng } from '../src/predict/overlay.js';
import { exportCommand } from '../src/export/command.js';
import { type Predictor, predictBatch, preprocess } from '../src/predict/index.js';
import { saveCheckpoint } from '../src/model/checkpoint.js';
import { PYTHON } from './helpers/python.js';
import { evalUNet } from './helpers/tiny-unet.js';
import { CHROMIUM, LAUNCH_ARGS, SHOTS, browserSkip, pw } from './helpers/browser.js';

const ISBI = resolve(import.meta.dirname, '../../shared/data/isbi2012-membranes/imgs/00.png');

let skip: string | false = browserSkip;
if (!skip && !existsSync(ISBI)) skip = `the ISBI image ${ISBI} is missing (../shared/data)`;

let dir: string;
const servers: ChildProcess[] = [];
const quiet = { log: () => {} };

/**
 * A UNet at 1/8 width with non-trivial BatchNorm statistics, saved as our checkpoint; returns
 * `unet predict`'s mask for an image with that model (its preprocess + predictBatch + mask PNG:
 * loadPredictor builds full-width UNets only).
 */
async function checkpoint(path: string, args: UNetArgs, maskValues: number[], seed: number, image: string, classNames?: string[]): Promise<(image: string, tta?: TtaMode) => Promise<MaskData>> {
  const m = evalUNet(args, seed);
  // Centre each class's logits on this image, so that the mask has every class (a random UNet
  // otherwise predicts one class everywhere).
  const pre = await preprocess(image, 0.5, args.nChannels);
  const y = E.noGrad(() => m.forward(E.tensor(pre.data, [1, args.nChannels, pre.height, pre.width]))).disposeAfter((t) => t.data() as Float32Array);
  const plane = pre.width * pre.height;
  const means = Float32Array.from({ length: args.nClasses }, (_, k) => y.subarray(k * plane, (k + 1) * plane).reduce((a, b) => a + b, 0) / plane);
  E.noGrad(() => E.tensor(means, [args.nClasses]).disposeAfter((t) => m.stateDict().get('outc.conv.bias')?.add_(t, -1)));
  await saveCheckpoint(path, { model: m.stateDict(), epoch: 3, globalStep: 30, loss: 0.3, valScore: 0.81, maskValues, classNames, modelArgs: m.args, config: { scale: 0.5 } });
  /** predict's mask; also checks that the page's preprocessing gives predict's input exactly. */
  return async (image, tta = 'none') => {
    const p = { args, model: m, device: 'cpu', ampDtype: null, tta } as unknown as Predictor;
    const pre = await preprocess(image, 0.5, args.nChannels);
    const raw = await readImageRaw(image);
    const rgba = new Uint8Array(raw.width * raw.height * 4);
    const plane = raw.width * raw.height;
    for (let i = 0; i < plane; i++) {
      for (let c = 0; c < 3; c++) {
        const k = Math.min(c, raw.channels - 1);
        rgba[4 * i + c] = raw.data[raw.layout === 'chw' ? k * plane + i : i * raw.channels + k];
      }
    }
    assert.deepEqual(preprocessRgba(rgba, raw.width, raw.height, args.nChannels, 0.5).data, pre.data, "the page's resized input equals predict's");
    const [pred] = predictBatch(p, [pre]);
    const file = join(dir, `predict-${seed}.png`);
    writeFileSync(file, await encodeMaskPng(pred.classes, pred.width, pred.height, maskValues));
    return readMask(file);
  };
}

/** Serves `site` with Python's http.server (a plain static host) on 127.0.0.1; killed after the tests. */
async function serveWithPython(site: string): Promise<string> {
  const port = await new Promise<number>((ok) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => ok(port));
    });
  });
  servers.push(spawn(PYTHON, ['-m', 'http.server', String(port), '--bind', '127.0.0.1', '--directory', site], { stdio: 'ignore' }));
  const origin = `http://127.0.0.1:${port}/`;
  for (let i = 0; i < 100; i++) {
    if (
      await fetch(origin).then(
        (res) => res.ok,
        () => false,
      )
    )
      break;
    await new Promise((ok) => setTimeout(ok, 100));
  }
  return origin;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'unet-web-'));
});
after(() => {
  for (const s of servers) s.kill();
  rmSync(dir, { recursive: true, force: true });
});

describe('the exported web page in chromium', { skip }, () => {
  test('mask equals unet predict, no outside requests, errors for a text file and a tiny image', { timeout: 180_000 }, async () => {
    const ckpt = join(dir, 'model.pth');
    const image = join(dir, 'isbi.png');
    copyFileSync(ISBI, image);
    const predictMask = await checkpoint(ckpt, { nChannels: 1, nClasses: 3, bilinear: false }, [0, 100, 200], 5, image);
    const site = join(dir, 'site');
    assert.equal(await exportCommand({ model: ckpt, format: 'web', output: site, ...quiet }), 0);

    const origin = await serveWithPython(site);

    const browser = await pw.chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
    try {
      const page = await browser.newPage({ viewport: { width: 900, height: 900 }, acceptDownloads: true });
      const requests: string[] = [];
      const errors: string[] = [];
      page.on('request', (q: { url(): string }) => requests.push(q.url()));
      page.on('pageerror', (e: Error) => errors.push(e.message));
      await page.goto(origin);
      await page.waitForSelector('body[data-state="ready"]', { timeout: 60_000 });
      assert.match(await page.locator('#model').innerText(), /model\.pth \(epoch 3, validation Dice 0\.810\)/);
      assert.equal(await page.locator('#legend li').count(), 3);
      assert.match(await page.locator('#legend li').nth(1).innerText(), /^class 1: value 100$/);

      await page.setInputFiles('#file', image);
      await page.waitForSelector('body[data-state="done"]', { timeout: 60_000 });
      assert.match(await page.locator('#timing').innerText(), /inference \d+ ms \(256x256 at scale 0\.5; image 512x512\)/);
      const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
      assert.equal(download.suggestedFilename(), 'isbi_OUT.png');
      const got = join(dir, 'browser_OUT.png');
      await download.saveAs(got);

      const a = await predictMask(image);

      const b = await readMask(got);
      // Both resize with Pillow's bicubic (checked in predictMask): only onnxruntime-web's float
      // arithmetic against libtorch's can flip a pixel where classes tie.
      const agree = Array.from(a.data).reduce((n: number, v: number, i: number) => n + (v === b.data[i] ? 1 : 0), 0) / a.data.length;
      console.log(`# browser vs unet predict: ${(100 * agree).toFixed(3)}% of ${a.data.length} pixels agree`);
      assert.ok(agree >= 0.999, `only ${(100 * agree).toFixed(3)}% of the pixels agree with unet predict`);
      const counts = [0, 100, 200].map((v) => Array.from(a.data).reduce((n: number, x: number) => n + (x === v ? 1 : 0), 0));
      console.log(`# pixels per class (unet predict): ${counts.join(', ')}`);
      assert.ok(
        counts.every((c) => c > a.data.length / 50),
        'every class covers part of the image',
      );
      if (SHOTS) {
        mkdirSync(SHOTS, { recursive: true });
        await page.screenshot({ path: join(SHOTS, 'web.png'), fullPage: true });
      }

      // wrong files: the page says what is wrong and stays usable
      const text = join(dir, 'notes.txt');
      writeFileSync(text, 'not an image\n');
      await page.setInputFiles('#file', text);
      await page.waitForSelector('body[data-state="error"]');
      assert.match(await page.locator('#error').innerText(), /notes\.txt is not an image this browser can read/);
      const tiny = join(dir, 'tiny.png');
      await sharp(Buffer.alloc(20 * 20, 128), { raw: { width: 20, height: 20, channels: 1 } })
        .png()
        .toFile(tiny);
      await page.setInputFiles('#file', tiny);
      await page.waitForFunction(() => /at least 16x16/.test(document.getElementById('error')?.textContent ?? ''));
      assert.match(await page.locator('#error').innerText(), /tiny\.png: the image is 20x20; at the model's scale 0\.5 that is 10x10, but the UNet needs at least 16x16 pixels/);

      assert.deepEqual(errors, [], 'no page errors');
      const outside = requests.filter((u) => !u.startsWith(origin) && !u.startsWith('blob:') && !u.startsWith('data:'));
      assert.deepEqual(outside, [], 'every request goes to the static server on 127.0.0.1');
      assert.ok(requests.some((u) => u.endsWith('/model.onnx')));
    } finally {
      await browser.close();
    }
  });

  test('a binary RGB model: threshold slider changes the mask', { timeout: 120_000 }, async () => {
    const ckpt = join(dir, 'binary.pth');
    const image = join(dir, 'rgb.png');
    const W = 70;
    const H = 53;
    const px = Uint8Array.from({ length: W * H * 3 }, (_, i) => ((i % 3) * 80 + Math.floor(i / 3 / W) * 4 + ((i * 7) % 31)) & 255);
    await sharp(px, { raw: { width: W, height: H, channels: 3 } })
      .png()
      .toFile(image);
    const predictMask = await checkpoint(ckpt, { nChannels: 3, nClasses: 1, bilinear: true }, [0, 255], 9, image, ['background', 'membrane']);
    const site = join(dir, 'site-binary');
    assert.equal(await exportCommand({ model: ckpt, format: 'web', output: site, ...quiet }), 0);
    const origin = await serveWithPython(site);
    const browser = await pw.chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
    try {
      const page = await browser.newPage({ acceptDownloads: true });
      await page.goto(origin);
      await page.waitForSelector('body[data-state="ready"]', { timeout: 60_000 });
      assert.equal(await page.locator('#threshold-box').isVisible(), true);
      // the checkpoint's --class-names, in the legend (the first test's checkpoint has none: "class k")
      assert.deepEqual(await page.locator('#legend li').allInnerTexts(), ['background (class 0, value 0) (background, not coloured)', 'membrane (class 1, value 255)']);
      await page.setInputFiles('#file', image);
      await page.waitForSelector('body[data-state="done"]', { timeout: 60_000 });
      const ones = async (): Promise<number> => {
        const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
        const f = join(dir, `bin-${Date.now()}.png`);
        await download.saveAs(f);
        const m = await readMask(f);
        assert.deepEqual([m.width, m.height], [W, H]);
        return Array.from(m.data).reduce((n: number, v: number) => n + (v ? 1 : 0), 0);
      };
      const at = async (t: number) => {
        await page.locator('#threshold').fill(String(t));
        return ones();
      };
      const low = await at(0.01);
      const high = await at(0.99);
      assert.ok(low > high, `threshold 0.01 marks more pixels (${low}) than 0.99 (${high})`);
      // the 0.5 mask equals unet predict's
      const mid = await at(0.5);
      const refOnes = Array.from((await predictMask(image)).data).reduce((n: number, v: number) => n + (v ? 1 : 0), 0);
      assert.ok(Math.abs(mid - refOnes) <= W * H * 0.001 + 1, `browser ${mid} vs predict ${refOnes} foreground pixels`);

      // A phone photo: EXIF orientation 6 (shown turned 90 degrees). The page predicts on the stored
      // W x H pixels, as unet predict (sharp, like PIL) does, not on the turned H x W picture.
      const photo = join(dir, 'photo.jpg');
      await sharp(px, { raw: { width: W, height: H, channels: 3 } })
        .jpeg({ quality: 95 })
        .withMetadata({ orientation: 6 })
        .toFile(photo);
      await page.setInputFiles('#file', photo);
      await page.waitForFunction(() => (document.getElementById('download') as HTMLAnchorElement | null)?.download === 'photo_OUT.png', undefined, { timeout: 60_000 });
      assert.match(await page.locator('#timing').innerText(), new RegExp(`image ${W}x${H}\\)`));
      const photoOnes = await ones(); // also checks the mask is W x H
      const refPhoto = Array.from((await predictMask(photo)).data).reduce((n: number, v: number) => n + (v ? 1 : 0), 0);
      assert.ok(Math.abs(photoOnes - refPhoto) <= W * H * 0.01 + 1, `oriented JPEG: browser ${photoOnes} vs predict ${refPhoto} foreground pixels`);

      // The TTA select predicts the shown image again with the 8 views (a non-square one), as predict --tta d4.
      await page.selectOption('#tta', 'd4');
      await page.waitForFunction(() => /8 views/.test(document.getElementById('timing')?.textContent ?? ''), undefined, { timeout: 60_000 });
      const ttaOnes = await ones();
      const refTta = Array.from((await predictMask(photo, 'd4')).data).reduce((n: number, v: number) => n + (v ? 1 : 0), 0);
      assert.ok(Math.abs(ttaOnes - refTta) <= W * H * 0.01 + 1, `--tta d4: browser ${ttaOnes} vs predict ${refTta} foreground pixels`);
    } finally {
      await browser.close();
    }
  });
});

describe('the dashboard\'s "Try it" page', { skip }, () => {
  test("serves the run's best model as the browser predictor; other runs get a reason", { timeout: 120_000 }, async () => {
    const { startDashboard } = await import('../src/tracking/index.js');
    const { tryItPages } = await import('../src/export/try-it.js');
    const logdir = join(dir, 'runs');
    const run = join(logdir, '20250101-000000-demo');
    const other = join(logdir, '20250101-000001-other');
    const ckptDir = join(dir, 'ckpts');
    mkdirSync(run, { recursive: true });
    mkdirSync(other, { recursive: true });
    mkdirSync(ckptDir, { recursive: true });
    writeFileSync(join(run, 'config.json'), JSON.stringify({ checkpointDir: ckptDir, scale: 0.5 }));
    writeFileSync(join(other, 'config.json'), JSON.stringify({ checkpointDir: join(dir, 'none') }));
    E.manualSeed(1);
    const m = new UNet({ nChannels: 1, nClasses: 2, bilinear: false }, 8);
    await saveCheckpoint(join(ckptDir, 'best_model.pth'), {
      model: m.stateDict(),
      epoch: 4,
      globalStep: 8,
      loss: 0.2,
      valScore: 0.9,
      maskValues: [0, 255],
      modelArgs: m.args,
      config: { scale: 0.5 },
      runDir: run,
    });
    m.dispose();
    const tryIt = tryItPages();
    const dash = await startDashboard({ logdir, port: 0, tryIt: tryIt.serve });
    const browser = await pw.chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
    try {
      assert.equal((await (await fetch(`${dash.url}api/runs`)).json()).tryIt, true);
      const info = await (await fetch(`${dash.url}try/20250101-000000-demo/model.json`)).json();
      assert.equal(info.source, '20250101-000000-demo: best_model.pth (epoch 4, validation Dice 0.900)');
      const none = await fetch(`${dash.url}try/20250101-000001-other/`);
      assert.equal(none.status, 404);
      assert.match(await none.text(), /No model to try: no .*best_model\.pth yet/);
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e: Error) => errors.push(e.message));
      page.on('console', (msg: { type(): string; text(): string }) => msg.type() === 'error' && errors.push(msg.text()));
      await page.goto(`${dash.url}try/20250101-000000-demo`); // redirected to the folder URL
      await page.waitForSelector('body[data-state="ready"]', { timeout: 60_000 });
      assert.match(await page.locator('#model').innerText(), /epoch 4/);
      assert.deepEqual(errors, [], 'no errors (the CSP allows the wasm)');
    } finally {
      await browser.close();
      await dash.close();
      tryIt.close();
    }
  });
});
