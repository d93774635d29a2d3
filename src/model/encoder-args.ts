/**
 * The model arguments of encoder UNets in checkpoints: written as model_args (Python names), read
 * back checked against the weights, or inferred from smp-layout weights that have none (an smp
 * `Unet`'s state dict: encoder.*, decoder.blocks.*, segmentation_head.*).
 */
import * as E from '../engine/index.js';
import type { PyValue, RawTensor } from '../io/pth.js';
import { encoderArgsProblem, fullEncoderArgs } from './encoder-unet.js';
import { ENCODERS, type Encoder, MAX_ENCODER_DEPTH } from './encoders/index.js';
import { CheckpointError, num } from './checkpoint-error.js';
import { MAX_WIDTH, type UNetArgs, hasEncoder } from './unet.js';

/** Whether the weights are an encoder UNet's (smp's layout). */
export const isEncoderWeights = (model: Map<string, RawTensor>): boolean => model.has('segmentation_head.0.weight') || model.has('decoder.blocks.0.conv1.0.weight');

/** The encoder fields of model_args as Python sees them. */
export function encoderArgsToPy(a: UNetArgs): Record<string, PyValue> {
  const f = fullEncoderArgs(a);
  const out: Record<string, PyValue> = { encoder: f.encoder, encoder_depth: f.encoderDepth, decoder_channels: [...f.decoderChannels], head_kernel: f.headKernel };
  if (f.normalize) Object.assign(out, { normalize_mean: [...f.normalize.mean], normalize_std: [...f.normalize.std] }); // JSON in exports: plain numbers
  return out;
}

const numbers = (v: PyValue | undefined): number[] | null => (Array.isArray(v) && v.every((x) => num(x) !== null) ? v.map((x) => num(x) as number) : null);

/** The encoder fields stored in model_args (null: none stored, a plain UNet's). */
export function storedEncoderArgs(args: Record<string, PyValue>, base: UNetArgs, path: string): UNetArgs | null {
  if (args.encoder === undefined || args.encoder === null || args.encoder === 'plain') return null;
  const a: UNetArgs = { ...base, encoder: String(args.encoder), encoderDepth: num(args.encoder_depth) ?? MAX_ENCODER_DEPTH, headKernel: num(args.head_kernel) ?? 1 };
  const dec = numbers(args.decoder_channels);
  if (dec) a.decoderChannels = dec;
  else if (args.decoder_channels !== undefined) throw new CheckpointError(`${path} is damaged: model_args decoder_channels is not a list of numbers; use another checkpoint`);
  const mean = numbers(args.normalize_mean);
  const std = numbers(args.normalize_std);
  if (mean && std) a.normalize = { mean, std };
  const n = a.normalize;
  if (
    (args.normalize_mean !== undefined || args.normalize_std !== undefined) &&
    (!n || n.mean.length !== a.nChannels || n.std.length !== a.nChannels || !n.std.every((s) => s !== 0 && Number.isFinite(s)) || !n.mean.every(Number.isFinite))
  ) {
    throw new CheckpointError(`${path} is damaged: model_args normalize_mean / normalize_std are not ${a.nChannels} finite numbers each (std non-zero); use another checkpoint`);
  }
  return a;
}

const shapeOf = (model: Map<string, RawTensor>, key: string): number[] | null => model.get(key)?.shape ?? null;

/**
 * Infers an encoder UNet's args from smp-layout weights: the depth from the decoder's blocks, their
 * widths and the head's kernel from shapes, the encoder from its keys and shapes (each registered
 * encoder whose first convolution is there is built at that depth and compared). Checks every size
 * before anything is built, so a damaged or hostile file cannot ask for a huge model.
 */
export function inferEncoderArgs(model: Map<string, RawTensor>, path: string): UNetArgs {
  const bad = (why: string) => new CheckpointError(`${path} does not hold the weights of an smp-style encoder UNet (${why})`);
  let depth = 0;
  while (depth <= MAX_ENCODER_DEPTH && model.has(`decoder.blocks.${depth}.conv1.0.weight`)) depth++;
  if (depth < 3 || depth > MAX_ENCODER_DEPTH) throw bad(`${depth} decoder blocks, expected 3 to ${MAX_ENCODER_DEPTH}`);
  const decoderChannels: number[] = [];
  const inputs: number[] = [];
  for (let i = 0; i < depth; i++) {
    const s = shapeOf(model, `decoder.blocks.${i}.conv1.0.weight`) as number[];
    if (s.length !== 4 || s[2] !== 3 || s[3] !== 3 || !(s[0] >= 1 && s[0] <= MAX_WIDTH) || !(s[1] >= 1)) throw bad(`decoder.blocks.${i}.conv1.0.weight has shape [${s}]`);
    decoderChannels.push(s[0]);
    inputs.push(s[1]);
  }
  const head = shapeOf(model, 'segmentation_head.0.weight');
  if (head?.length !== 4 || head[1] !== decoderChannels[depth - 1] || head[2] !== head[3] || !(head[0] >= 1 && head[0] <= MAX_WIDTH)) throw bad(`segmentation_head.0.weight [${head ?? 'missing'}]`);
  const base = { nClasses: head[0], bilinear: false, encoderDepth: depth, decoderChannels, headKernel: head[2] };
  for (const [name, spec] of Object.entries(ENCODERS)) {
    const first = shapeOf(model, `encoder.${spec.firstConv}`);
    if (first?.length !== 4 || !(first[1] >= 1 && first[1] <= 64)) continue;
    const args: UNetArgs = { ...base, nChannels: first[1], encoder: name };
    if (encoderArgsProblem(args)) throw bad(encoderArgsProblem(args) as string);
    if (encoderFits(model, spec.build, first[1], depth, (k) => spec.unused(k, depth), inputs, decoderChannels)) return args;
  }
  throw bad(`its encoder.* keys and shapes are none of ${Object.keys(ENCODERS).join(', ')}`);
}

/** Whether an encoder built by `build` has exactly the file's encoder keys and shapes (its unused ones aside), and the decoder's inputs fit its features. */
function encoderFits(model: Map<string, RawTensor>, build: (c: number, d: number) => Encoder, c: number, depth: number, unused: (k: string) => boolean, inputs: number[], dec: number[]): boolean {
  const enc = build(c, depth);
  try {
    const own = enc.stateDict('encoder.');
    const theirs = [...model.keys()].filter((k) => k.startsWith('encoder.') && !unused(k.slice('encoder.'.length)));
    if (theirs.length !== own.size) return false;
    for (const k of theirs) {
      const t = own.get(k);
      const s = model.get(k)?.shape ?? [];
      if (!t || t.shape.length !== s.length || t.shape.some((v, i) => v !== s[i])) return false;
    }
    const rev = [...enc.outChannels].reverse();
    return inputs.every((n, i) => n === (i === 0 ? rev[0] : dec[i - 1]) + (rev[i + 1] ?? 0));
  } finally {
    E.noGrad(() => enc.dispose());
  }
}

/** The file's keys an encoder UNet of these args does not hold (an smp file's stages past its depth): dropped before loading. */
export function dropUnusedEncoderKeys(model: Map<string, RawTensor>, a: UNetArgs): UNetArgs {
  const f = fullEncoderArgs(a);
  const spec = ENCODERS[f.encoder];
  if (!hasEncoder(a) || !spec) return a;
  for (const k of [...model.keys()]) if (k.startsWith('encoder.') && spec.unused(k.slice('encoder.'.length), f.encoderDepth)) model.delete(k);
  return a;
}

/** Stored encoder args checked against what the weights say. */
export function checkEncoderArgs(stored: UNetArgs, model: Map<string, RawTensor>, path: string): UNetArgs {
  const problem = encoderArgsProblem(stored);
  if (problem || !(Number.isInteger(stored.nChannels) && stored.nChannels >= 1 && stored.nChannels <= 64) || !(Number.isInteger(stored.nClasses) && stored.nClasses >= 1 && stored.nClasses <= MAX_WIDTH)) {
    throw new CheckpointError(`${path} is damaged: model_args ask for a model that cannot be built (${problem ?? `${stored.nChannels} channels, ${stored.nClasses} classes`}); use another checkpoint`);
  }
  if (!isEncoderWeights(model)) return stored; // not these weights: loading them reports the missing keys
  const w = inferEncoderArgs(model, path);
  const s = fullEncoderArgs(stored);
  const same = w.encoder === s.encoder && w.encoderDepth === s.encoderDepth && w.headKernel === s.headKernel && w.nChannels === s.nChannels && w.nClasses === s.nClasses && String(w.decoderChannels) === String(s.decoderChannels);
  if (!same) {
    const show = (a: UNetArgs) => JSON.stringify({ encoder: a.encoder, encoderDepth: a.encoderDepth, decoderChannels: a.decoderChannels, headKernel: a.headKernel, nChannels: a.nChannels, nClasses: a.nClasses });
    throw new CheckpointError(`${path} is damaged: model_args ${show(s)} do not match its weights (${show(w)}); use another checkpoint (e.g. best_model.pth or an earlier epoch)`);
  }
  return stored;
}
