/**
 * `unet bench`: times the training step (or inference, or one conv layer) on synthetic data already
 * on the device, and optionally runs ../shared/bench/unet_reference.py with the same settings in the
 * same command to print our time / PyTorch's time. Prints JSON lines.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import { benchData } from '../data/bench.js';
import { UNet } from '../model/index.js';
import { GradScaler, clipGradNorm, createOptimizer } from '../optim/index.js';
import { segmentationLoss } from './loss.js';
import type { Predictor } from '../predict/predictor.js';
import { predictTiledFile } from '../predict/tiled.js';

/** A bad bench flag or a failed reference run: reported as one line, no stack trace. */
export class BenchError extends Error {
  override name = 'BenchError';
}

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
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export function benchTrain(o: BenchOpts): Record<string, unknown> {
  const device = E.resolveDevice(o.device);
  const cuda = device.startsWith('cuda');
  E.manualSeed(0);
  if (cuda) E.setBackendFlags({ cudnnBenchmark: true, allowTF32: true });
  const model = new UNet({ nChannels: o.channels, nClasses: o.classes, bilinear: o.bilinear }, o.divisor);
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
        return E.inferenceMode(() => sync(E.autocastOn(device, ampDtype, () => model.forward(x)).sum()));
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
  for (let i = 0; i < o.steps; i++) {
    const t = performance.now();
    lastLoss = step();
    times.push(performance.now() - t);
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
    ...(o.divisor > 1 ? { width_divisor: o.divisor } : {}),
    channels_last: channelsLast,
    ms_per_step: Math.round(ms * 100) / 100,
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
  const x = E.rand([o.batch, 128, o.height / 2, o.width / 2]).requiresGrad_().keep();
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

const CONV_PY = `
import sys, json, time, torch
a = json.loads(sys.argv[1]); torch.set_num_threads(a['threads'])
x = torch.rand(a['shape'], requires_grad=True); w = torch.rand(128, 128, 3, 3, requires_grad=True)
def step():
    y = torch.nn.functional.conv2d(x, w, None, padding=1); y.sum().backward(); x.grad = None; w.grad = None
for _ in range(a['warmup']): step()
ts = []
for _ in range(a['steps']):
    t = time.perf_counter(); step(); ts.append(time.perf_counter() - t)
ts.sort(); print(json.dumps({'impl': 'pytorch', 'mode': 'conv', 'torch': torch.__version__, 'threads': torch.get_num_threads(), 'ms': round(ts[len(ts)//2]*1000, 2)}))
`;

/** The PyTorch side of `--predict`: the reference UNet in eval mode, a plain forward loop. */
const PREDICT_PY = `
import sys, json, time, importlib.util, torch
a = json.loads(sys.argv[1]); torch.set_num_threads(a['threads'])
spec = importlib.util.spec_from_file_location('ref', a['ref']); ref = importlib.util.module_from_spec(spec); spec.loader.exec_module(ref)
dev = torch.device(a['device']); cuda = dev.type == 'cuda'
m = ref.UNet(a['channels'], a['classes'], a['bilinear']).to(dev).eval()
x = torch.rand(a['batch'], a['channels'], a['height'], a['width'], device=dev)
def step():
    with torch.inference_mode(), torch.autocast(dev.type, dtype=torch.float16 if cuda else torch.bfloat16, enabled=a['amp']):
        return m(x).sum().item()
for _ in range(a['warmup']): step()
ts = []
for _ in range(a['steps']):
    t = time.perf_counter(); step(); ts.append(time.perf_counter() - t)
ts.sort(); med = ts[len(ts)//2]
print(json.dumps({'impl': 'pytorch', 'mode': 'predict', 'torch': torch.__version__, 'threads': torch.get_num_threads(), 'ms_per_step': round(med*1000, 2), 'img_per_s': round(a['batch']/med, 2)}))
`;

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
      const seed = Uint8Array.from({ length: 64 * 64 }, (_, i) => Math.floor(((Math.sin(i * 12.9898) * 43758.5453) % 1 + 1) % 1 * 255));
      await sharp(seed, { raw: { width: 64, height: 64, channels: 1 } }).resize(o.width, o.height, { kernel: 'cubic' }).toColourspace('b-w').png().toFile(image);
    }
    E.manualSeed(0);
    const model = new UNet({ nChannels: 1, nClasses: o.classes, bilinear: o.bilinear }, o.divisor);
    model.eval();
    model.to({ device, memoryFormat: device.startsWith('cuda') ? 'channels_last' : undefined });
    const p = { args: model.args, model, device, ampDtype: o.amp ? E.ampDtypeFor(device) : null, maskValues: o.classes <= 2 ? [0, 1] : Array.from({ length: o.classes }, (_, i) => i) } as unknown as Predictor;
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
      impl: 'unet-ts', mode: 'predict-tile', torch: E.buildInfo().torch, device, threads: E.getNumThreads(),
      image: o.image ?? 'synthetic grey PNG', width: r.width, height: r.height, scale: o.scale, tile: o.tile, overlap: o.overlap, batch: o.batch,
      unet: o.divisor === 1 ? 'full width (64-1024 channels)' : `width / ${o.divisor}`, classes: o.classes,
      seconds: Math.round(seconds * 10) / 10, cpu_seconds: Math.round((cpu.user + cpu.system) / 1e5) / 10, mp_per_s: Math.round((mp / seconds) * 1000) / 1000,
      scaled_mp_per_s: Math.round(((mp * o.scale * o.scale) / seconds) * 1000) / 1000,
      rss_before_mib: Math.round(before), peak_rss_mib: Math.round(peakRss.mib()), band_reads: r.reads, rows_per_read: r.maxRows, input_rows_per_read: r.maxInputRows,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function positiveInt(flag: string, v: number): number {
  if (!(Number.isInteger(v) && v > 0)) throw new BenchError(`bench: --${flag} must be a positive integer`);
  return v;
}

/** --predict --onnx: libtorch, then onnxruntime-node on the same model; --web: onnxruntime-web in Chromium only. */
async function benchOnnx(o: BenchOpts, web: boolean): Promise<number> {
  if (o.mode !== 'predict') throw new BenchError('bench: --onnx and --web time inference: add --predict');
  const { benchOnnxNode, benchOnnxWeb } = await import('../export/bench.js');
  const oo = { args: { nChannels: o.channels, nClasses: o.classes, bilinear: o.bilinear }, batch: o.batch, height: o.height, width: o.width, steps: o.steps, warmup: o.warmup };
  if (web) {
    if (o.batch !== 1) throw new BenchError('bench: --web times one image at a time: use -b 1');
    console.log(JSON.stringify(await benchOnnxWeb(oo)));
    return 0;
  }
  const ours = benchTrain({ ...o, device: 'cpu' });
  console.log(JSON.stringify(ours));
  const theirs = await benchOnnxNode(oo);
  console.log(JSON.stringify(theirs));
  console.log(JSON.stringify({ ratio_libtorch_over_onnxruntime_step_time: Math.round(((ours.ms_per_step as number) / (theirs.ms_per_step as number)) * 1000) / 1000 }));
  return 0;
}

export async function benchCommand(raw: Record<string, string | boolean>): Promise<number> {
  if (raw.data !== undefined) {
    const count = positiveInt('count', Number(raw.count ?? 200)), epochs = positiveInt('epochs', Number(raw.epochs ?? 2));
    const scale = Number(raw.scale ?? 0.5);
    if (!(scale > 0 && scale <= 1)) throw new BenchError('bench: --scale must be in (0, 1]');
    const lines = await benchData({
      dir: typeof raw.data === 'string' ? raw.data : undefined, count, scale, epochs,
      python: raw.reference !== undefined ? String(raw.python ?? '/usr/bin/python3') : null,
    });
    for (const l of lines) console.log(JSON.stringify(l));
    return 0;
  }
  const o: BenchOpts = {
    device: String(raw.device ?? 'auto'),
    batch: Number(raw.batch ?? 2),
    height: Number(raw.height ?? 256),
    width: Number(raw.width ?? 256),
    channels: Number(raw.channels ?? 3),
    classes: Number(raw.classes ?? 2),
    amp: raw.amp === true,
    bilinear: raw.bilinear === true,
    steps: Number(raw.steps ?? 10),
    warmup: Number(raw.warmup ?? 3),
    mode: raw.conv ? 'conv' : raw.predict ? 'predict' : 'train',
    divisor: positiveInt('width-divisor', Number(raw.widthDivisor ?? 1)),
  };
  for (const k of ['batch', 'height', 'width', 'channels', 'classes', 'steps'] as const) positiveInt(k, o[k]);
  if (raw.tile !== undefined) {
    if (o.mode !== 'predict') throw new BenchError('bench: --tile goes with --predict');
    const tile = positiveInt('tile', Number(raw.tile));
    if (tile % 16 !== 0) throw new BenchError('bench: --tile must be a multiple of 16');
    const overlap = Number(raw.overlap ?? 0.25);
    if (!(overlap >= 0 && overlap < 1)) throw new BenchError('bench: --overlap must be in [0, 1)');
    const scale = Number(raw.scale ?? 0.5);
    if (!(scale > 0 && scale <= 1)) throw new BenchError('bench: --scale must be in (0, 1]');
    console.log(JSON.stringify(await benchTiled({ ...o, tile, overlap, scale, image: typeof raw.image === 'string' ? raw.image : undefined })));
    return 0;
  }
  // The other sides (PyTorch, ONNX) build the full-width UNet: a ratio needs the same model.
  if (o.divisor > 1 && (raw.reference !== undefined || raw.onnx === true || raw.web === true)) throw new BenchError('bench: --width-divisor applies to our side only; drop it with --reference, --onnx or --web');
  if (raw.nprocPerNode !== undefined && o.mode === 'train') {
    const nproc = positiveInt('nproc-per-node', Number(raw.nprocPerNode));
    return (await import('./bench-dist.js')).benchDistributed(o, nproc, positiveInt('master-port', Number(raw.masterPort ?? 29500)));
  }
  if (raw.web === true || raw.onnx === true) return benchOnnx(o, raw.web === true);
  const ours = o.mode === 'conv' ? benchConv(o) : benchTrain(o);
  console.log(JSON.stringify(ours));
  const python = String(raw.python ?? '/usr/bin/python3');
  if (o.mode === 'conv' && raw.reference !== undefined) {
    const r = spawnSync(python, ['-c', CONV_PY, JSON.stringify({ threads: E.getNumThreads(), shape: ours.shape, steps: o.steps, warmup: o.warmup })], { encoding: 'utf8' });
    if (r.status !== 0) throw new BenchError(`bench: PyTorch run failed: ${r.stderr}`);
    const theirs = JSON.parse(r.stdout.trim().split('\n').pop() as string);
    console.log(JSON.stringify(theirs));
    console.log(JSON.stringify({ ratio_ours_over_pytorch: Math.round(((ours.ms as number) / theirs.ms) * 1000) / 1000 }));
  } else if (typeof raw.reference === 'string') {
    const args = [raw.reference, '--device', String(ours.device).replace(/:.*/, ''), '--batch', String(o.batch), '--height', String(o.height), '--width', String(o.width),
      '--channels', String(o.channels), '--classes', String(o.classes), '--steps', String(o.steps), '--warmup', String(o.warmup), '--threads', String(E.getNumThreads()),
      '--amp', o.amp ? (String(ours.device).startsWith('cuda') ? 'fp16' : 'bf16') : 'none'];
    if (o.bilinear) args.push('--bilinear');
    if (ours.channels_last) args.push('--channels-last', '--cudnn-benchmark');
    const r =
      o.mode === 'predict'
        ? spawnSync(python, ['-c', PREDICT_PY, JSON.stringify({ ref: raw.reference, threads: E.getNumThreads(), batch: o.batch, channels: o.channels, classes: o.classes, height: o.height, width: o.width, bilinear: o.bilinear, steps: o.steps, warmup: o.warmup, device: String(ours.device), amp: o.amp })], { encoding: 'utf8' })
        : spawnSync(python, args, { encoding: 'utf8' });
    if (r.status !== 0) throw new BenchError(`bench: PyTorch run failed: ${r.stderr}`);
    const theirs = JSON.parse(r.stdout.trim().split('\n').pop() as string);
    console.log(JSON.stringify(theirs));
    console.log(JSON.stringify({ ratio_ours_over_pytorch_step_time: Math.round(((ours.ms_per_step as number) / theirs.ms_per_step) * 1000) / 1000 }));
  }
  return 0;
}
