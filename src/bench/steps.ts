/**
 * The timed steps of `unet bench`: one training step (or an inference forward) of the UNet on
 * synthetic data already on the device, or one UNet-sized conv layer. Median of --steps runs.
 */
import { UserError } from '../config/errors.js';
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import { type UNetArgs, createModel } from '../model/index.js';
import { GradScaler, clipGradNorm, createOptimizer } from '../optim/index.js';
import { type TtaMode, averagedLogits, ttaViews } from '../predict/tta.js';
import { segmentationLoss } from '../train/loss.js';

/** A bad bench flag or a failed reference run: reported as one line, no stack trace. */
export class BenchError extends UserError {}

export interface BenchOpts {
  device: string;
  batch: number;
  height: number;
  width: number;
  channels: number;
  classes: number;
  amp: boolean;
  bilinear: boolean;
  steps: number;
  warmup: number;
  mode: 'train' | 'predict' | 'conv';
  /** Every UNet width divided by this (1 = the full 64-1024 channels). */
  divisor: number;
  /** --predict: the views averaged per forward pass, as predict --tta (default none). */
  tta?: TtaMode;
  /** The UNet's shape (train --depth / --base-channels); absent: the reference's 4 and 64. */
  depth?: number;
  baseChannels?: number;
  /** --encoder: the encoder UNet (train --encoder) instead; absent or 'plain': the reference UNet. */
  encoder?: string;
  encoderDepth?: number;
}

/** The model a bench times: as train builds it from these flags. */
export const benchArgs = (o: BenchOpts): UNetArgs => ({
  nChannels: o.channels,
  nClasses: o.classes,
  bilinear: o.bilinear,
  depth: o.depth,
  baseChannels: o.baseChannels,
  encoder: o.encoder,
  encoderDepth: o.encoderDepth,
});

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export function benchTrain(o: BenchOpts): Record<string, unknown> {
  const device = E.resolveDevice(o.device);
  const cuda = device.startsWith('cuda');
  E.manualSeed(0);
  if (cuda) E.setBackendFlags({ cudnnBenchmark: true, allowTF32: true });
  const model = createModel(benchArgs(o), o.divisor);
  const channelsLast = cuda;
  model.to({ device, memoryFormat: channelsLast ? 'channels_last' : undefined });
  const params = model.parameters();
  const opt = createOptimizer('rmsprop', params, { lr: 1e-5, weightDecay: 1e-8, momentum: 0.999 });
  const ampDtype = o.amp ? E.ampDtypeFor(device) : null; // as train/predict: fp32 on CPUs without native bf16
  const scaler = new GradScaler({ enabled: ampDtype === 'float16', device });
  let x = E.rand([o.batch, o.channels, o.height, o.width], { device }).keep();
  if (channelsLast) x = x.contiguous('channels_last').keep();
  const y = E.randint(0, Math.max(o.classes, 2), [o.batch, o.height, o.width], { device }).keep();
  const sync = (t: Tensor) => t.item(); // a host read waits for the device
  let lastLoss = 0;
  const step = (): number =>
    E.tidy(() => {
      if (o.mode === 'predict') {
        model.eval();
        const forward = (v: Tensor) => E.autocastOn(device, ampDtype, () => model.forward(channelsLast ? v.contiguous('channels_last') : v)).float();
        return E.inferenceMode(() => sync(averagedLogits(x, [forward], o.tta ?? 'none', o.classes).sum()));
      }
      const loss = E.autocastOn(device, ampDtype, () => segmentationLoss(model.forward(x), y, o.classes));
      opt.zeroGrad();
      scaler.scale(loss).backward();
      scaler.unscale_(opt);
      clipGradNorm(params, 1.0);
      scaler.step(opt);
      scaler.update();
      return sync(loss);
    });
  for (let i = 0; i < o.warmup; i++) step();
  const times: number[] = [];
  const cpuTimes: number[] = [];
  for (let i = 0; i < o.steps; i++) {
    const c = process.cpuUsage();
    const t = performance.now();
    lastLoss = step();
    times.push(performance.now() - t);
    const used = process.cpuUsage(c);
    cpuTimes.push((used.user + used.system) / 1000);
  }
  const ms = median(times);
  const out = {
    impl: 'unet-ts',
    mode: o.mode,
    torch: E.buildInfo().torch,
    device,
    threads: E.getNumThreads(),
    batch: o.batch,
    channels: o.channels,
    height: o.height,
    width: o.width,
    classes: o.classes,
    amp: ampDtype ? (cuda ? 'fp16' : 'bf16') : o.amp ? 'none (--amp asked; no native bf16 on this CPU: fp32)' : 'none',
    bilinear: o.bilinear,
    ...(o.mode === 'predict' && o.tta && o.tta !== 'none' ? { tta: o.tta, views: ttaViews(o.tta).length } : {}),
    ...(o.divisor > 1 ? { width_divisor: o.divisor } : {}),
    channels_last: channelsLast,
    ms_per_step: Math.round(ms * 100) / 100,
    // CPU time of the whole process (every thread): on a shared machine it varies far less than the wall time.
    cpu_ms_per_step: Math.round(median(cpuTimes) * 100) / 100,
    img_per_s: Math.round((o.batch / ms) * 1000 * 100) / 100,
    loss: Math.round(lastLoss * 1e5) / 1e5,
    rss_mib: Math.round(process.memoryUsage().rss / 2 ** 20),
  };
  E.dispose([x, y]);
  opt.dispose?.();
  model.dispose();
  return out;
}

/** One UNet-sized conv layer (3x3, 128->128 at 128x128, batch 2), forward+backward. */
export function benchConv(o: BenchOpts): Record<string, unknown> {
  const x = E.rand([o.batch, 128, o.height / 2, o.width / 2])
    .requiresGrad_()
    .keep();
  const w = E.rand([128, 128, 3, 3]).requiresGrad_().keep();
  const step = () =>
    E.tidy(() => {
      const y = E.conv2d(x, w, null, { padding: 1 });
      y.sum().backward();
      E.clearGrads([x, w]);
    });
  for (let i = 0; i < o.warmup; i++) step();
  const times: number[] = [];
  for (let i = 0; i < o.steps; i++) {
    const t = performance.now();
    step();
    times.push(performance.now() - t);
  }
  E.dispose([x, w]);
  return { impl: 'unet-ts', mode: 'conv', threads: E.getNumThreads(), shape: [o.batch, 128, o.height / 2, o.width / 2], ms: Math.round(median(times) * 100) / 100 };
}
