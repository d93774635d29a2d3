/**
 * `unet bench --predict --onnx` and `--web`: the same UNet (seed 0, as the libtorch bench builds
 * it) exported to ONNX and timed in onnxruntime-node (CPU, the same thread count as libtorch) or
 * in headless Chromium with onnxruntime-web (WebAssembly, one thread). Prints JSON lines.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as E from '../engine/index.js';
import { type UNetArgs, createModel } from '../model/index.js';
import { toRaw } from '../model/checkpoint.js';
import { writeOnnx } from '../export/onnx.js';
import { loadOnnxPredictor } from '../export/onnx-runtime.js';
import { serveSite } from '../export/serve.js';
import { writeWebSite } from '../export/web.js';

export interface OnnxBenchOptions {
  args: UNetArgs;
  batch: number;
  height: number;
  width: number;
  steps: number;
  warmup: number;
  /** Chromium for --web (default /usr/bin/chromium or CHROMIUM_PATH) */
  chromium?: string;
}

const META = { model_args: '{}', mask_values: '[]', scale: '1', min_size: '16' };

/** Writes the seed-0 UNet as ONNX (or a web folder) into a temp folder; returns the folder. */
async function exportSeed0(o: OnnxBenchOptions, web: boolean): Promise<string> {
  E.manualSeed(0);
  const m = createModel(o.args);
  const dir = mkdtempSync(join(tmpdir(), 'unet-bench-onnx-'));
  try {
    const weights = new Map([...m.stateDict()].map(([k, t]) => [k, toRaw(t)]));
    if (web) await writeWebSite(dir, [{ weights, args: o.args }], { ...META, mask_values: JSON.stringify(Array.from({ length: o.args.nClasses === 1 ? 2 : o.args.nClasses }, (_, i) => i)) }, 'bench');
    else await writeOnnx(join(dir, 'model.onnx'), weights, o.args, META);
  } finally {
    m.dispose();
  }
  return dir;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const round2 = (v: number) => Math.round(v * 100) / 100;

export async function benchOnnxNode(o: OnnxBenchOptions): Promise<Record<string, unknown>> {
  const dir = await exportSeed0(o, false);
  try {
    const threads = E.getNumThreads();
    const p = await loadOnnxPredictor(join(dir, 'model.onnx'), threads);
    const shape: [number, number, number, number] = [o.batch, o.args.nChannels, o.height, o.width];
    const x = new Float32Array(shape.reduce((a, b) => a * b, 1)).map(() => Math.random());
    const times: number[] = [];
    for (let i = 0; i < o.warmup + o.steps; i++) {
      const t = performance.now();
      await p.run(x, shape);
      if (i >= o.warmup) times.push(performance.now() - t);
    }
    await p.release();
    const ms = median(times);
    return {
      impl: 'onnxruntime-node',
      mode: 'predict',
      threads,
      batch: o.batch,
      channels: o.args.nChannels,
      height: o.height,
      width: o.width,
      classes: o.args.nClasses,
      bilinear: o.args.bilinear,
      ms_per_step: round2(ms),
      img_per_s: round2((o.batch / ms) * 1000),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchOnnxWeb(o: OnnxBenchOptions): Promise<Record<string, unknown>> {
  // biome-ignore lint/suspicious/noExplicitAny: playwright-core is a devDependency, imported on demand
  let pw: any;
  try {
    pw = await import('playwright-core');
  } catch {
    throw new Error('bench --web needs playwright-core (npm i -D playwright-core) and Chromium (apt-get install chromium)');
  }
  const dir = await exportSeed0(o, true);
  const site = await serveSite(dir);
  const browser = await pw.chromium.launch({ executablePath: o.chromium ?? process.env.CHROMIUM_PATH ?? '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
  try {
    const page = await browser.newPage();
    await page.goto(site.url);
    await page.waitForSelector('body[data-state="ready"]', { timeout: 120_000 });
    const ms: number = await page.evaluate(([h, w, s, wu]: number[]) => (globalThis as unknown as { unetBench: (...a: number[]) => Promise<number> }).unetBench(h, w, s, wu), [o.height, o.width, o.steps, o.warmup]);
    return {
      impl: 'onnxruntime-web (wasm, chromium)',
      mode: 'predict',
      threads: 1,
      batch: 1,
      channels: o.args.nChannels,
      height: o.height,
      width: o.width,
      classes: o.args.nClasses,
      bilinear: o.args.bilinear,
      browser: browser.version(),
      ms_per_step: round2(ms),
      img_per_s: round2(1000 / ms),
    };
  } finally {
    await browser.close();
    await site.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
