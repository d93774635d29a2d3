/**
 * The shared inference core of `unet predict` and `unet evaluate`: load a checkpoint (ours, the
 * reference trainer's flat state_dict + mask_values, or the fork's nested format) into a UNet on a
 * device, preprocess images exactly like training (`floor(scale*w) x floor(scale*h)`, bicubic,
 * [C,H,W] in 0..1), run the forward pass, and turn logits into class maps.
 *
 * As the reference's predict.py, logits are resized to the input's FULL size with bilinear
 * interpolation (align_corners=False) *before* the argmax / threshold.
 */
import { UserError } from '../config/errors.js';
import * as E from '../engine/index.js';
import type { Device, Tensor } from '../engine/index.js';
import { DataError, MIN_SIDE, minScale, readImage } from '../data/index.js';
import { type SegmentationModel, type UNetArgs, createModel } from '../model/index.js';
import { minSideOf } from '../model/limits.js';
import { type CheckpointKind, loadCheckpoint, weightsToTensors } from '../model/checkpoint.js';
import { type ModelCard, modelCard } from '../model/card.js';
import { type TtaMode, averagedLogits } from './tta.js';

export class PredictError extends UserError {}

export interface LoadModelOptions {
  /** auto, cpu, cuda or cuda:N */
  device?: string;
  /** Mixed precision: float16 on CUDA, bfloat16 on CPU. */
  amp?: boolean;
  /** Test-time augmentation (tta.ts); default none. */
  tta?: TtaMode;
}

/** What the checkpoint says about its model comes from its card (model/card.ts). */
export interface Predictor extends Pick<ModelCard, 'args' | 'maskValues' | 'maskValuesSource' | 'trainingScale'> {
  path: string;
  kind: CheckpointKind;
  /** The card's class names, one per mask value; null or absent: none. */
  classNames?: string[] | null;
  /** --ignore-index of the training run: a mask value that is no class (evaluate leaves its pixels out); predictions never hold it. */
  ignoreValue?: number | null;
  /** The classes the checkpoint records for --postprocess auto (a cross-validation's decision); null or absent: none. */
  postprocess?: number[] | null;
  /** Notes for the user (defaulted/padded mask values). */
  notes: string[];
  device: Device;
  /** Autocast dtype under --amp (float16 on CUDA, bfloat16 on CPUs with native bf16); null: fp32. */
  ampDtype: E.AutocastDtype | null;
  /** The (first) model. */
  model: SegmentationModel;
  /** Every model of an ensemble (several -m), `model` first; absent: [model]. */
  models?: SegmentationModel[];
  /** The views each forward pass averages over (tta.ts); absent: none. */
  tta?: TtaMode;
  epoch: number;
  valScore: number | null;
  dispose(): void;
}

/** Loads a checkpoint into an eval-mode UNet on the requested device. */
export async function loadPredictor(path: string, opts: LoadModelOptions = {}): Promise<Predictor> {
  const ckpt = await loadCheckpoint(path);
  let device: Device;
  try {
    device = E.resolveDevice(opts.device ?? 'auto');
  } catch (e) {
    throw new PredictError((e as Error).message);
  }
  const card = modelCard(ckpt);
  const { args } = card;
  if (args.nClasses > 256) throw new PredictError(`${path}: ${args.nClasses} classes; at most 256 classes are supported for prediction`);
  const notes = [...card.notes];
  const upright = ckpt.config?.upright === true && ckpt.config?.augment === true;
  if (upright && (opts.tta === 'flip' || opts.tta === 'd4')) notes.push(`the model was trained upright (--upright: no upside-down or turned views); --tta ${opts.tta} adds views it never saw, --tta hflip averages the ones it knows`);
  const model = createModel(args); // the architecture as recorded (older files and smp imports: read from the weights)
  try {
    const weights = weightsToTensors(ckpt.model);
    try {
      model.loadStateDict(weights);
    } finally {
      E.dispose([...weights.values()]);
    }
    model.eval();
    model.to({ device, memoryFormat: device.startsWith('cuda') ? 'channels_last' : undefined });
  } catch (e) {
    model.dispose();
    const msg = (e as Error).message;
    throw new PredictError(`${path}: cannot load the weights into UNet(channels=${args.nChannels}, classes=${args.nClasses}, bilinear=${args.bilinear}): ${msg}`);
  }
  const ampDtype = opts.amp ? E.ampDtypeFor(device) : null;
  if (opts.amp && !ampDtype) notes.push(E.CPU_AMP_NOTE);
  return {
    path,
    kind: ckpt.kind,
    args,
    maskValues: card.maskValues,
    maskValuesSource: card.maskValuesSource,
    classNames: card.classNames,
    ignoreValue: ckpt.ignoreValue,
    postprocess: ckpt.postprocess,
    notes,
    device,
    ampDtype,
    model,
    models: [model],
    tta: opts.tta ?? 'none',
    epoch: ckpt.epoch,
    valScore: ckpt.valScore,
    trainingScale: card.trainingScale,
    dispose: () => model.dispose(),
  };
}

/** Checks -c/--classes and --bilinear (only when given on the command line) against the checkpoint. */
export function checkGivenArgs(p: Pick<Predictor, 'args' | 'path'>, given: { classes?: number; bilinear?: boolean }): void {
  const a = p.args;
  const desc = `UNet(channels=${a.nChannels}, classes=${a.nClasses}, bilinear=${a.bilinear})`;
  if (given.classes !== undefined && given.classes !== a.nClasses) {
    throw new PredictError(
      `--classes ${given.classes} was given, but the checkpoint ${p.path} has ${a.nClasses} class(es) (${desc}). ` +
        'The model arguments are read from the checkpoint: drop -c/--classes, or pass the checkpoint trained with that many classes.',
    );
  }
  if (given.bilinear !== undefined && given.bilinear !== a.bilinear) {
    throw new PredictError(
      `--bilinear was ${given.bilinear ? 'given' : 'not set'}, but the checkpoint ${p.path} uses ${a.bilinear ? 'bilinear upsampling' : 'transposed convolutions (no --bilinear)'} (${desc}). ` +
        'The model arguments are read from the checkpoint: drop --bilinear.',
    );
  }
}

// ------------------------------------------------------------------------------------------------
// Preprocessing

/** A predict/evaluate config once -s is resolved (chooseScale: -s, else the checkpoint's training scale, else 0.5). */
export type Scaled<T extends { scale?: number }> = T & { scale: number };

export interface Preprocessed {
  path: string;
  /** [C, h, w] float32 in 0..1 at the scaled size */
  data: Float32Array;
  channels: number;
  width: number;
  height: number;
  /** The input's full size (what predictions are resized back to). */
  fullWidth: number;
  fullHeight: number;
  warnings: string[];
}

const smallImageHint = (side: number, min = MIN_SIDE) => {
  const s = minScale(side, min);
  return s === null ? `It is smaller than ${min} px even at -s 1: use a larger image.` : `Use -s/--scale ${s} or more, or a larger image.`;
};
export { MIN_SIDE };

const kind = (c: number) => (c === 1 ? 'greyscale' : c === 3 ? 'colour (RGB)' : `${c}-channel`);

/**
 * Checks an image's channel count against the model's: a greyscale image fed to a 3-channel model
 * is replicated to RGB (as PIL's convert('RGB')) and the warning to print is returned; any other
 * mismatch is an error naming the file. null: the counts match.
 */
export function checkChannels(path: string, channels: number, nChannels: number): string | null {
  if (channels === nChannels) return null;
  if (channels === 1 && nChannels === 3) return `${path}: greyscale image given to an RGB model; the grey channel was copied to R, G and B`;
  throw new DataError(`image has ${channels} channel(s) (${kind(channels)}) but the model expects ${nChannels} (${kind(nChannels)})`, {
    file: path,
    hint: nChannels === 1 ? 'The model was trained on greyscale images: convert this image to greyscale.' : `Convert the image to ${kind(nChannels)}.`,
  });
}

/** One grey plane [H*W] -> three identical planes [3, H, W]. */
export function greyToRgb(plane: Float32Array): Float32Array {
  const rgb = new Float32Array(plane.length * 3);
  rgb.set(plane, 0);
  rgb.set(plane, plane.length);
  rgb.set(plane, 2 * plane.length);
  return rgb;
}

/**
 * Reads an image like training does: `floor(scale*w) x floor(scale*h)` bicubic, [C,H,W] in 0..1.
 * A greyscale image fed to a 3-channel model is replicated to RGB (as PIL's convert('RGB')),
 * with a warning; any other channel mismatch is an error naming the file. `maxPixels`: the
 * decoder's limit (default its 178,956,970; 0 = none).
 */
export async function preprocess(path: string, scale: number, nChannels: number, maxPixels?: number, model: UNetArgs | null = null): Promise<Preprocessed> {
  const raw = await readImage(path, { scale, maxPixels });
  const min = minSideOf(model ?? {});
  const depth = Math.log2(min);
  if (raw.width < min || raw.height < min) {
    throw new DataError(`image is ${raw.sourceWidth}x${raw.sourceHeight}; at scale ${scale} that is ${raw.width}x${raw.height}, but the UNet needs at least ${min}x${min} pixels (it halves the size ${depth} times)`, {
      file: path,
      hint: smallImageHint(Math.min(raw.sourceWidth, raw.sourceHeight), min),
    });
  }
  const warnings = [...raw.warnings];
  let data = raw.data;
  const note = checkChannels(path, raw.channels, nChannels);
  if (note) {
    data = greyToRgb(data);
    warnings.push(note);
  }
  const channels = nChannels;
  return { path, data, channels, width: raw.width, height: raw.height, fullWidth: raw.sourceWidth, fullHeight: raw.sourceHeight, warnings };
}

/** Images that can share a forward pass: same scaled size, same full size. */
export const batchKey = (p: Preprocessed): string => `${p.channels}:${p.width}x${p.height}:${p.fullWidth}x${p.fullHeight}`;

// ------------------------------------------------------------------------------------------------
// Forward

/** Logits [N, K, h, w] float32 on the model's device for same-size images (caller disposes). */
export function forwardLogits(p: Predictor, items: readonly Preprocessed[]): Tensor {
  if (items.length === 0) throw new Error('forwardLogits: no images');
  const { channels: c, width: w, height: h } = items[0];
  for (const it of items) {
    if (it.channels !== c || it.width !== w || it.height !== h) throw new Error('forwardLogits: images of one batch must have the same size');
  }
  const plane = c * h * w;
  const buf = new Float32Array(plane * items.length);
  items.forEach((it, i) => buf.set(it.data, i * plane));
  return E.tidy(() => forwardTensor(p, E.tensor(buf, [items.length, c, h, w])));
}

/** The part of a Predictor a forward pass needs (training's validation has one too: no TTA, one model). */
export type ForwardModel = Pick<Predictor, 'model' | 'device' | 'ampDtype'> & Partial<Pick<Predictor, 'models' | 'tta' | 'args'>>;

/**
 * Logits [N, K, h, w] float32 on the model's device for a CPU batch x [N, C, h, w] (caller
 * disposes). With --tta or an ensemble: the log of the mean probabilities (tta.ts), which
 * everything downstream treats as logits.
 */
export function forwardTensor(p: ForwardModel, x: Tensor): Tensor {
  const cuda = p.device.startsWith('cuda');
  return E.inferenceMode(() =>
    E.tidy(() => {
      const input = cuda ? x.to({ device: p.device }) : x;
      const forwards = (p.models ?? [p.model]).map((m) => (v: Tensor) => E.autocastOn(p.device, p.ampDtype, () => m.forward(cuda ? v.contiguous('channels_last') : v)).float());
      return averagedLogits(input, forwards, p.tta ?? 'none', p.args?.nClasses ?? p.model.args.nClasses);
    }),
  );
}

export interface Prediction {
  /** [H, W] class indices at the input's full size */
  classes: Uint8Array;
  width: number;
  height: number;
  /**
   * Per-class probabilities scaled to 0..65535 ([H, W] each), when asked for: softmax over the
   * classes, or for a 1-output (binary) model one map, the sigmoid = P(class 1).
   */
  probs?: Uint16Array[];
}

/**
 * Logits [N, K, H, W] -> class indices [N, H, W] uint8 (argmax, or for a 1-output model
 * sigmoid > threshold) and, when asked, probabilities 0..65535 [N, K', H, W] int32, both on the CPU.
 * Call inside tidy().
 */
export function classesAndProbs(logits: Tensor, K: number, threshold: number, withProbs: boolean): { classes: Tensor; probs: Tensor | null } {
  const cls = K === 1 ? logits.squeeze(1).sigmoid().gt(threshold) : logits.argmax(1);
  const classes = cls.to({ dtype: 'uint8' }).to({ device: 'cpu' }).contiguous();
  let probs: Tensor | null = null;
  if (withProbs) {
    const pr = K === 1 ? logits.sigmoid() : logits.softmax(1);
    // Round to 16 bits on the device; int32 carries 0..65535 exactly.
    probs = pr.mul(65535).round().clamp(0, 65535).to({ dtype: 'int32' }).to({ device: 'cpu' }).contiguous();
  }
  return { classes, probs };
}

/**
 * Class maps at full size: logits resized (bilinear) to the input's size, then argmax, or for a
 * 1-output model sigmoid > threshold.
 */
export function predictBatch(p: Predictor, items: readonly Preprocessed[], opts: { threshold?: number; probs?: boolean } = {}): Prediction[] {
  const threshold = opts.threshold ?? 0.5;
  const { fullWidth: W, fullHeight: H, width: w, height: h } = items[0];
  for (const it of items) {
    if (it.fullWidth !== W || it.fullHeight !== H) throw new Error('predictBatch: images of one batch must have the same full size');
  }
  const K = p.args.nClasses;
  const { classes, probs } = E.inferenceMode(() =>
    E.tidy(() => {
      let logits = forwardLogits(p, items);
      if (W !== w || H !== h) logits = E.interpolate(logits, [H, W], 'bilinear', false);
      return classesAndProbs(logits, K, threshold, opts.probs === true);
    }),
  );
  const plane = H * W;
  const cdata = classes.disposeAfter((t) => t.data() as Uint8Array);
  const pdata = probs ? probs.disposeAfter((t) => t.data() as Int32Array) : null;
  const nOut = K === 1 ? 1 : K;
  return items.map((_, i) => ({
    classes: cdata.slice(i * plane, (i + 1) * plane),
    width: W,
    height: H,
    probs: pdata ? Array.from({ length: nOut }, (_, k) => Uint16Array.from(pdata.subarray((i * nOut + k) * plane, (i * nOut + k + 1) * plane))) : undefined,
  }));
}
