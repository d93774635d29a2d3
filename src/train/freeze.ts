/**
 * A pretrained encoder in training (train --encoder-weights, --freeze-encoder, --encoder-lr): a
 * model with an `encoder` child (model/encoder-unet.ts), whose parameters are those named `encoder.*`.
 */
import { OptionError } from '../config/parsers.js';
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import { readCheckpointInfo } from '../model/checkpoint.js';
import { loadEncoderWeights, normalizationFor, type Normalize, resolveEncoderWeights } from '../model/encoder-weights.js';
import { hasEncoder } from '../model/unet.js';
import { ENCODERS, type Encoder } from '../model/encoders/index.js';
import type { Module } from '../nn/index.js';
import type { ParamGroupInit } from '../optim/index.js';

/** The flags, as the options table types them (`encoder` is --encoder's). */
export interface EncoderFlags {
  encoder?: string;
  encoderDepth?: number;
  encoderWeights: string;
  freezeEncoder: number | 'all';
  encoderLr: number;
}

/** Usage errors: these flags need an encoder under the UNet. */
export function checkEncoderFlags(cfg: EncoderFlags): void {
  if (cfg.encoder && cfg.encoder !== 'plain') return;
  const given = [cfg.encoderWeights && `--encoder-weights ${cfg.encoderWeights}`, cfg.freezeEncoder !== 0 && '--freeze-encoder', cfg.encoderLr !== 1 && '--encoder-lr'].filter(Boolean);
  if (given.length > 0) throw new OptionError(`${given.join(', ')} needs --encoder NAME (e.g. --encoder resnet34): the plain UNet has no pretrained encoder`);
}

/** The encoder's parameters (none for a model without an `encoder`), in the model's order. */
export function encoderParameters(model: Module): Tensor[] {
  return 'encoder' in model
    ? model
        .namedParameters()
        .filter(([k]) => k.startsWith('encoder.'))
        .map(([, p]) => p)
    : [];
}

/**
 * The model args --encoder-weights adds: the weights' normalisation, applied by the model itself. A
 * checkpoint's (`saved`: resuming, or fine-tuning from it) stays, as its weights learnt with it; so
 * does that of a unet-ts checkpoint given as --encoder-weights (an encoder trained here on other
 * data: none unless it had pretrained weights itself). Other files hold ImageNet weights.
 */
export async function weightsArgs(cfg: EncoderFlags, nChannels: number, saved?: object | null): Promise<{ normalize?: Normalize }> {
  const kept = (saved as { normalize?: Normalize } | null | undefined)?.normalize;
  if (kept) return { normalize: kept };
  if (!cfg.encoderWeights || !cfg.encoder || !ENCODERS[cfg.encoder]) return {};
  const info = await readCheckpointInfo(resolveEncoderWeights(cfg.encoderWeights, ENCODERS[cfg.encoder], cfg.encoder)).catch(() => null);
  if (info?.kind === 'unet-ts' && info.modelArgs && hasEncoder(info.modelArgs)) {
    const own = info.modelArgs.normalize;
    return own ? { normalize: normalizationFor(nChannels, own) } : {}; // averaged or cycled to the channels, as the first convolution
  }
  return { normalize: normalizationFor(nChannels) };
}

/**
 * Loads --encoder-weights into the model's encoder (nothing without the flag or an encoder).
 * Returns the file read, for the log.
 */
export async function loadPretrained(model: Module, cfg: EncoderFlags, nChannels: number): Promise<string | null> {
  if (!cfg.encoderWeights || !('encoder' in model) || !cfg.encoder) return null;
  const spec = ENCODERS[cfg.encoder];
  if (!spec) throw new OptionError(`--encoder ${cfg.encoder}: no such encoder (${Object.keys(ENCODERS).join(', ')})`);
  return loadEncoderWeights(model.encoder as Encoder, cfg.encoderWeights, spec, cfg.encoder, nChannels, cfg.encoderDepth ?? 5);
}

/**
 * The optimizer's parameters: one group, or with --encoder-lr F two, the others at lr and the
 * encoder's at lr x F (PyTorch's param_groups, so the state dict keeps its layout).
 */
export function optimizerParams(all: Tensor[], encoder: Tensor[], lr: number, factor: number): Tensor[] | ParamGroupInit[] {
  if (factor === 1 || encoder.length === 0) return all;
  const enc = new Set(encoder);
  return [{ params: all.filter((p) => !enc.has(p)) }, { params: all.filter((p) => enc.has(p)), lr: lr * factor }];
}

/**
 * --freeze-encoder [EPOCHS]: the encoder's parameters get no update in epochs 1..EPOCHS (all without
 * a number). Their gradients are dropped before each optimizer step, so the optimizer skips them as
 * PyTorch skips requires_grad=False parameters: no update, no weight decay, no optimizer state until
 * they thaw (then it starts fresh). This also holds under data parallelism, where the gradients are
 * averaged during backward. The encoder's BatchNorm layers stay in training mode: their running
 * statistics keep adapting to this data (as in PyTorch with requires_grad=False), so the decoder
 * learns on the statistics the encoder will have once it thaws and at inference; only their scale
 * and shift, parameters, stay frozen.
 */
export class EncoderFreeze {
  private frozen = false;
  constructor(
    private readonly params: Tensor[],
    readonly epochs: number | 'all',
  ) {}
  /** At the start of each epoch (1-based); returns whether the encoder is frozen in it. */
  startEpoch(epoch: number): boolean {
    this.frozen = this.epochs === 'all' || epoch <= this.epochs;
    return this.frozen;
  }
  /** Before each optimizer step. */
  beforeStep(): void {
    if (this.frozen) E.clearGrads(this.params);
  }
}
