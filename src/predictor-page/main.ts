/**
 * The browser predictor page (index.html of `unet export --format web`): pick or drop an image,
 * run the exported UNet with onnxruntime-web (WebAssembly, one thread) and show the mask over the
 * image. Nothing leaves the browser: the page fetches only model.json, model.onnx and the wasm
 * files beside it.
 *
 * Test hooks: <body data-state="loading|ready|running|done|error">, #error holds the message,
 * #timing the inference time; the mask PNG is the #download link.
 */
import * as ort from 'onnxruntime-web/wasm';
import { MIN_SIDE } from '../model/limits.js';
import { maskPng } from '../predict/mask-png.js';
import { classColour, classLabel } from '../tracking/palette.js';
import { withoutOrientation } from './exif.js';
import { InputError, type TtaMode, type WebModelInfo, classify, preprocessRgba, resizeLogits, ttaLogits, ttaViews } from './infer.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

interface Result {
  name: string;
  width: number;
  height: number;
  /** full-size logits [K, H, W] (K = 1: the logit map the threshold applies to) */
  logits: Float32Array;
  classes: Uint8Array;
}

let info: WebModelInfo;
let session: ort.InferenceSession;
let result: Result | null = null;
let maskUrl = '';

function setState(state: string): void {
  document.body.dataset.state = state;
}

function showError(message: string): void {
  const el = $('error');
  el.textContent = message;
  el.hidden = false;
  setState('error');
}

function valueText(v: number | number[]): string {
  return Array.isArray(v) ? `(${v.join(', ')})` : String(v);
}

function renderLegend(): void {
  const ul = $('legend');
  ul.replaceChildren();
  info.mask_values.forEach((v, k) => {
    const li = document.createElement('li');
    const sw = document.createElement('span');
    sw.className = 'swatch';
    const c = classColour(k);
    if (c) sw.style.background = `rgb(${c.join(',')})`;
    else sw.classList.add('background');
    li.append(sw, `${classLabel(k, valueText(v), info.class_names)}${c ? '' : ' (background, not coloured)'}`);
    ul.append(li);
  });
}

async function loadModel(): Promise<void> {
  setState('loading');
  const res = await fetch('model.json');
  if (!res.ok) throw new Error(`cannot load model.json (${res.status})`);
  info = (await res.json()) as WebModelInfo;
  ort.env.wasm.numThreads = 1; // threads need a cross-origin-isolated page; a plain static host is not
  ort.env.wasm.wasmPaths = new URL('./', location.href).href;
  session = await ort.InferenceSession.create(info.model, { executionProviders: ['wasm'] });
  const kind = info.n_channels === 1 ? 'greyscale' : 'RGB';
  $('model').textContent = `${info.source} · ${kind} input · ${info.n_classes === 1 ? 'binary (sigmoid)' : `${info.n_classes} classes`} · scale ${info.scale}`;
  $('threshold-box').hidden = info.n_classes !== 1;
  renderLegend();
  setState('ready');
}

async function decode(file: File): Promise<ImageData> {
  let bitmap: ImageBitmap;
  try {
    const bytes = withoutOrientation(new Uint8Array(await file.arrayBuffer()));
    bitmap = await createImageBitmap(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: file.type }), { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  } catch {
    throw new InputError(`${file.name} is not an image this browser can read (${file.type || 'unknown type'}); pick a PNG, JPEG, GIF or WebP image.`);
  }
  const canvas = document.createElement('canvas');
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const ctx = canvas.getContext('2d', { willReadFrequently: true }) as CanvasRenderingContext2D;
  ctx.drawImage(bitmap, 0, 0);
  bitmap.close();
  return ctx.getImageData(0, 0, canvas.width, canvas.height);
}

async function predict(file: File): Promise<void> {
  $('error').hidden = true;
  setState('running');
  const img = await decode(file);
  const { width: W, height: H } = img;
  const x = preprocessRgba(img.data, W, H, info.n_channels, info.scale, info.min_size || MIN_SIDE); // 2^depth (older folders: none)
  const k = info.n_classes;
  const tta = $<HTMLSelectElement>('tta').value as TtaMode;
  // One forward pass per view (--tta); the views' mean probabilities come back as log-probabilities.
  const run = async (data: Float32Array, h: number, w: number): Promise<Float32Array> => {
    const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', data, [1, info.n_channels, h, w]) });
    const y = out[session.outputNames[0]];
    if (y.dims[2] !== h || y.dims[3] !== w) throw new Error(`the model returned ${y.dims.join('x')} for a ${w}x${h} input`);
    const values = (y.data as Float32Array).slice();
    y.dispose();
    return values;
  };
  const t0 = performance.now();
  const averaged = await ttaLogits(run, x.data, info.n_channels, x.height, x.width, k, tta, info.output ?? 'logits');
  const ms = performance.now() - t0;
  const logits = resizeLogits(averaged, k, x.height, x.width, H, W);
  result = { name: file.name, width: W, height: H, logits, classes: classify(logits, k, W * H, threshold()) };
  const imageCanvas = $<HTMLCanvasElement>('image');
  imageCanvas.width = W;
  imageCanvas.height = H;
  (imageCanvas.getContext('2d') as CanvasRenderingContext2D).putImageData(img, 0, 0);
  imageCanvas.style.width = W < 512 ? `${Math.min(512, W * 4)}px` : ''; // small images shown larger, pixelated
  $('timing').textContent = `inference ${ms.toFixed(0)} ms (${x.width}x${x.height} at scale ${info.scale}${tta === 'none' ? '' : `, ${ttaViews(tta).length} views`}; image ${W}x${H})`;
  $('timing').dataset.ms = String(ms);
  renderMask();
  setState('done');
}

const threshold = (): number => Number($<HTMLInputElement>('threshold').value);

/** Draws the class colours on the overlay canvas and refreshes the download link. */
function renderMask(): void {
  if (!result) return;
  const { width: W, height: H, classes } = result;
  const canvas = $<HTMLCanvasElement>('overlay');
  canvas.width = W;
  canvas.height = H;
  const ctx = canvas.getContext('2d') as CanvasRenderingContext2D;
  const px = ctx.createImageData(W, H);
  const lut = Array.from({ length: 256 }, (_, k) => classColour(k));
  for (let i = 0; i < classes.length; i++) {
    const c = lut[classes[i]];
    if (!c) continue;
    px.data.set([c[0], c[1], c[2], 255], 4 * i);
  }
  ctx.putImageData(px, 0, 0);
  canvas.style.opacity = $<HTMLInputElement>('opacity').value;
  if (maskUrl) URL.revokeObjectURL(maskUrl);
  maskUrl = URL.createObjectURL(new Blob([maskPng(classes, W, H, info.mask_values) as Uint8Array<ArrayBuffer>], { type: 'image/png' }));
  const a = $<HTMLAnchorElement>('download');
  a.href = maskUrl;
  a.download = `${result.name.replace(/\.[^.]*$/, '')}_OUT.png`;
  a.hidden = false;
}

let lastFile: File | undefined;

async function handle(file: File | undefined): Promise<void> {
  if (!file) return;
  lastFile = file;
  try {
    await predict(file);
  } catch (e) {
    showError(e instanceof InputError ? `${file.name}: ${e.message}` : `${file.name}: prediction failed: ${(e as Error).message}`);
  }
}

function wire(): void {
  const input = $<HTMLInputElement>('file');
  input.addEventListener('change', () => void handle(input.files?.[0]));
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    void handle(e.dataTransfer?.files[0]);
  });
  // A new --tta choice predicts the shown image again.
  $<HTMLSelectElement>('tta').addEventListener('change', () => void handle(lastFile));
  $<HTMLInputElement>('opacity').addEventListener('input', (e) => {
    $('overlay').style.opacity = (e.target as HTMLInputElement).value;
  });
  $<HTMLInputElement>('threshold').addEventListener('input', () => {
    $('threshold-value').textContent = threshold().toFixed(2);
    if (result && info.n_classes === 1) {
      result.classes = classify(result.logits, 1, result.width * result.height, threshold());
      renderMask();
    }
  });
}

/** `unet bench --predict --web`: median ms of `steps` forward passes on a random [1, C, h, w] input. */
async function bench(h: number, w: number, steps: number, warmup: number): Promise<number> {
  if (h < MIN_SIDE || w < MIN_SIDE) throw new InputError(`${w}x${h} is below the UNet's minimum of ${MIN_SIDE}x${MIN_SIDE}`);
  const x = new Float32Array(info.n_channels * h * w).map(() => Math.random());
  const times: number[] = [];
  for (let i = 0; i < warmup + steps; i++) {
    const t0 = performance.now();
    const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', x, [1, info.n_channels, h, w]) });
    if (i >= warmup) times.push(performance.now() - t0);
    for (const t of Object.values(out)) t.dispose();
  }
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
}
(window as unknown as { unetBench: typeof bench }).unetBench = bench;

wire();
loadModel().catch((e: Error) => showError(`cannot load the model: ${e.message}`));
