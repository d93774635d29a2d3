/**
 * `unet bench`: times the training step (or inference, or one conv layer) on synthetic data already
 * on the device, and optionally runs ../shared/bench/unet_reference.py with the same settings in the
 * same command to print our time / PyTorch's time. Prints JSON lines.
 */
import { spawnSync } from 'node:child_process';
import type { BenchConfig } from '../config/options.js';
import * as E from '../engine/index.js';
import { benchData } from './data.js';
import { ENCODERS } from '../model/encoders/index.js';
import { BenchError, type BenchOpts, benchArgs, benchConv, benchTrain } from './steps.js';
import { benchTiled } from './tiled.js';

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

/** --predict --onnx: libtorch, then onnxruntime-node on the same model; --web: onnxruntime-web in Chromium only. */
async function benchOnnx(o: BenchOpts, web: boolean): Promise<number> {
  if (o.mode !== 'predict') throw new BenchError('bench: --onnx and --web time inference: add --predict');
  const { benchOnnxNode, benchOnnxWeb } = await import('./onnx.js');
  const oo = { args: benchArgs(o), batch: o.batch, height: o.height, width: o.width, steps: o.steps, warmup: o.warmup };
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

/** --predict --tta: one view, then the views, and the ratio to views x one view (goal: <= 1.1). */
function benchTta(o: BenchOpts, c: BenchConfig): number {
  if (o.mode !== 'predict' || c.tile !== undefined || c.onnx || c.web || c.reference !== undefined || c.nprocPerNode !== undefined) {
    throw new BenchError('bench: --tta times predict --tta against one view: use it with --predict only (no --tile, --onnx, --web, --reference, --nproc-per-node)');
  }
  const single = benchTrain({ ...o, tta: 'none' });
  console.log(JSON.stringify(single));
  const tta = benchTrain(o);
  console.log(JSON.stringify(tta));
  const ratio = (tta.ms_per_step as number) / ((tta.views as number) * (single.ms_per_step as number));
  console.log(JSON.stringify({ ratio_tta_over_views_x_single: Math.round(ratio * 1000) / 1000 }));
  return 0;
}

/** --encoder: a registered name, a train or --predict step (the PyTorch side times training only), full width. */
function checkEncoder(o: BenchOpts, c: BenchConfig): void {
  if (!o.encoder) return;
  const names = ['plain', ...Object.keys(ENCODERS)];
  if (!names.includes(o.encoder)) throw new BenchError(`bench: --encoder must be one of ${names.join(', ')}; got '${o.encoder}'`);
  if (o.divisor > 1 || o.bilinear || o.mode === 'conv' || c.tile !== undefined || c.nprocPerNode !== undefined)
    throw new BenchError("bench: --encoder times the encoder UNet's train or --predict step: drop --width-divisor, --bilinear, --conv, --tile and --nproc-per-node");
  if (o.mode === 'predict' && c.reference !== undefined) throw new BenchError('bench: --encoder --reference times the training step: drop --predict');
}

export async function benchCommand(c: BenchConfig): Promise<number> {
  if (c.data !== undefined) {
    const lines = await benchData({ dir: typeof c.data === 'string' ? c.data : undefined, count: c.count, scale: c.scale, epochs: c.epochs, python: c.reference !== undefined ? c.python : null });
    for (const l of lines) console.log(JSON.stringify(l));
    return 0;
  }
  const o: BenchOpts = {
    device: c.device,
    batch: c.batchSize,
    height: c.height,
    width: c.width,
    channels: c.channels,
    classes: c.classes,
    amp: c.amp,
    bilinear: c.bilinear,
    steps: c.steps,
    warmup: c.warmup,
    mode: c.conv ? 'conv' : c.predict ? 'predict' : 'train',
    divisor: c.widthDivisor,
    tta: c.tta,
    ...(c.encoder !== 'plain' ? { encoder: c.encoder, encoderDepth: c.encoderDepth } : {}),
  };
  checkEncoder(o, c);
  if ((c.tta ?? 'none') !== 'none') return benchTta(o, c);
  if (c.tile !== undefined) {
    if (o.mode !== 'predict') throw new BenchError('bench: --tile goes with --predict');
    console.log(JSON.stringify(await benchTiled({ ...o, tile: c.tile, overlap: c.overlap, scale: c.scale, image: c.image })));
    return 0;
  }
  // The other sides (PyTorch, ONNX) build the full-width UNet: a ratio needs the same model.
  if (o.divisor > 1 && (c.reference !== undefined || c.onnx || c.web)) throw new BenchError('bench: --width-divisor applies to our side only; drop it with --reference, --onnx or --web');
  if (c.nprocPerNode !== undefined && o.mode === 'train') return (await import('./dist.js')).benchDistributed(o, c.nprocPerNode, c.masterPort);
  if (c.web || c.onnx) return benchOnnx(o, c.web);
  const ours = o.mode === 'conv' ? benchConv(o) : benchTrain(o);
  console.log(JSON.stringify(ours));
  const python = c.python;
  if (o.mode === 'conv' && c.reference !== undefined) {
    const r = spawnSync(python, ['-c', CONV_PY, JSON.stringify({ threads: E.getNumThreads(), shape: ours.shape, steps: o.steps, warmup: o.warmup })], { encoding: 'utf8' });
    if (r.status !== 0) throw new BenchError(`bench: PyTorch run failed: ${r.stderr}`);
    const theirs = JSON.parse(r.stdout.trim().split('\n').pop() as string);
    console.log(JSON.stringify(theirs));
    console.log(JSON.stringify({ ratio_ours_over_pytorch: Math.round(((ours.ms as number) / theirs.ms) * 1000) / 1000 }));
  } else if (c.reference !== undefined) {
    pytorchSide(o, c, c.reference, ours);
  }
  return 0;
}

/** The PyTorch side of a train or --predict step (c.reference: the script), then the ratio. */
function pytorchSide(o: BenchOpts, c: BenchConfig, reference: string, ours: ReturnType<typeof benchTrain>): void {
  const python = c.python;
  const args = [
    reference,
    '--device',
    String(ours.device).replace(/:.*/, ''),
    '--batch',
    String(o.batch),
    '--height',
    String(o.height),
    '--width',
    String(o.width),
    '--channels',
    String(o.channels),
    '--classes',
    String(o.classes),
    '--steps',
    String(o.steps),
    '--warmup',
    String(o.warmup),
    '--threads',
    String(E.getNumThreads()),
    '--amp',
    o.amp ? (String(ours.device).startsWith('cuda') ? 'fp16' : 'bf16') : 'none',
  ];
  if (o.bilinear) args.push('--bilinear');
  if (o.encoder) args.push('--encoder', o.encoder, '--encoder-depth', String(o.encoderDepth));
  if (ours.channels_last) args.push('--channels-last', '--cudnn-benchmark');
  const r =
    o.mode === 'predict'
      ? spawnSync(
          python,
          [
            '-c',
            PREDICT_PY,
            JSON.stringify({
              ref: reference,
              threads: E.getNumThreads(),
              batch: o.batch,
              channels: o.channels,
              classes: o.classes,
              height: o.height,
              width: o.width,
              bilinear: o.bilinear,
              steps: o.steps,
              warmup: o.warmup,
              device: String(ours.device),
              amp: o.amp,
            }),
          ],
          { encoding: 'utf8' },
        )
      : spawnSync(python, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new BenchError(`bench: PyTorch run failed: ${r.stderr}`);
  const theirs = JSON.parse(r.stdout.trim().split('\n').pop() as string);
  console.log(JSON.stringify(theirs));
  const ratio = (a: number, b: number) => Math.round((a / b) * 1000) / 1000;
  // The CPU-time ratio where the reference reports it (test/reference/bench.py does).
  const cpu = typeof theirs.cpu_ms_per_step === 'number' ? { ratio_ours_over_pytorch_cpu_time: ratio(ours.cpu_ms_per_step as number, theirs.cpu_ms_per_step) } : {};
  console.log(JSON.stringify({ ratio_ours_over_pytorch_step_time: ratio(ours.ms_per_step as number, theirs.ms_per_step), ...cpu }));
}
