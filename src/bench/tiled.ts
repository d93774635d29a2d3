/** `unet bench --predict --tile`: tiled prediction of one large image, file to file (MP/s, peak RSS). */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import * as E from '../engine/index.js';
import { createModel } from '../model/index.js';
import type { Predictor } from '../predict/predictor.js';
import { predictTiledFile } from '../predict/tiled-image.js';
import { type BenchOpts, benchArgs } from './steps.js';

/** Peak RSS since the last reset (VmHWM), in MiB; reset() starts a new peak (Linux /proc/self/clear_refs). */
const peakRss = {
  reset: () => writeFileSync('/proc/self/clear_refs', '5'),
  mib: () => Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? 0) / 1024,
};

/**
 * `--predict --tile SIZE`: `unet predict --tile` on one large grey image, file to mask PNG, region
 * by region: megapixels of the input per second and the peak RSS of the prediction (the model and
 * the synthetic image are made before the peak is reset). Without --image, a smooth synthetic
 * `--width x --height` PNG is written first (libvips streams it).
 */
export async function benchTiled(o: BenchOpts & { tile: number; overlap: number; scale: number; image?: string }): Promise<Record<string, unknown>> {
  const device = E.resolveDevice(o.device);
  const dir = mkdtempSync(join(tmpdir(), 'unet-bench-tile-'));
  try {
    let image = o.image;
    if (!image) {
      image = join(dir, 'big.png');
      const seed = Uint8Array.from({ length: 64 * 64 }, (_, i) => Math.floor(((((Math.sin(i * 12.9898) * 43758.5453) % 1) + 1) % 1) * 255));
      await sharp(seed, { raw: { width: 64, height: 64, channels: 1 } })
        .resize(o.width, o.height, { kernel: 'cubic' })
        .toColourspace('b-w')
        .png()
        .toFile(image);
    }
    E.manualSeed(0);
    const model = createModel({ ...benchArgs(o), nChannels: 1, depth: undefined, baseChannels: undefined }, o.divisor);
    model.eval();
    model.to({ device, memoryFormat: device.startsWith('cuda') ? 'channels_last' : undefined });
    const p = {
      args: model.args,
      model,
      device,
      ampDtype: o.amp ? E.ampDtypeFor(device) : null,
      maskValues: o.classes <= 2 ? [0, 1] : Array.from({ length: o.classes }, (_, i) => i),
    } as unknown as Predictor;
    const before = process.memoryUsage().rss / 2 ** 20;
    peakRss.reset();
    const cpu0 = process.cpuUsage();
    const t = performance.now();
    const r = await predictTiledFile(p, image, o.scale, { mask: join(dir, 'big_OUT.png') }, { tile: o.tile, overlap: o.overlap, blend: 'gaussian', batchSize: o.batch, threshold: 0.5, probs: false }, () => undefined);
    const seconds = (performance.now() - t) / 1000;
    const cpu = process.cpuUsage(cpu0);
    model.dispose();
    const mp = (r.width * r.height) / 1e6;
    return {
      impl: 'unet-ts',
      mode: 'predict-tile',
      torch: E.buildInfo().torch,
      device,
      threads: E.getNumThreads(),
      image: o.image ?? 'synthetic grey PNG',
      width: r.width,
      height: r.height,
      scale: o.scale,
      tile: o.tile,
      overlap: o.overlap,
      batch: o.batch,
      unet: o.divisor === 1 ? 'full width (64-1024 channels)' : `width / ${o.divisor}`,
      classes: o.classes,
      seconds: Math.round(seconds * 10) / 10,
      cpu_seconds: Math.round((cpu.user + cpu.system) / 1e5) / 10,
      mp_per_s: Math.round((mp / seconds) * 1000) / 1000,
      scaled_mp_per_s: Math.round(((mp * o.scale * o.scale) / seconds) * 1000) / 1000,
      rss_before_mib: Math.round(before),
      peak_rss_mib: Math.round(peakRss.mib()),
      band_reads: r.reads,
      rows_per_read: r.maxRows,
      input_rows_per_read: r.maxInputRows,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
