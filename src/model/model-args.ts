/**
 * The model arguments of checkpoints: written as model_args, read back checked against the
 * weights, or inferred from the weights for files without them (the reference's).
 */
import type { PyValue, RawTensor } from '../io/pth.js';
import { CheckpointError, num } from './checkpoint-error.js';
import { checkEncoderArgs, encoderArgsToPy, inferEncoderArgs, isEncoderWeights, storedEncoderArgs } from './encoder-args.js';
import { MAX_WIDTH, REFERENCE_BASE_CHANNELS, REFERENCE_DEPTH, type UNetArgs, fullArgs, hasEncoder } from './unet.js';

export { CheckpointError, num };

/**
 * model_args as Python sees them. Exports (`always` false) name depth and base_channels only where
 * they differ from the reference, so its `UNet(**model_args)` still reads a reference-shaped model.
 */
export function modelArgsToPy(a: UNetArgs, always = false): Record<string, PyValue> {
  const f = fullArgs(a);
  const out: Record<string, PyValue> = { n_channels: f.nChannels, n_classes: f.nClasses, bilinear: f.bilinear };
  if (hasEncoder(a)) return { ...out, ...encoderArgsToPy(a) }; // an smp-style Unet: depth and base channels do not apply
  if (always || f.depth !== REFERENCE_DEPTH || f.baseChannels !== REFERENCE_BASE_CHANNELS) Object.assign(out, { depth: f.depth, base_channels: f.baseChannels });
  return out;
}

/** Infers (channels, classes, bilinear, depth, base channels) from UNet weights with the reference key names. */
export function inferModelArgs(model: Map<string, RawTensor>, path = 'checkpoint'): UNetArgs {
  if (isEncoderWeights(model)) return inferEncoderArgs(model, path); // an smp Unet's state dict (-f / -m import)
  const inc = model.get('inc.double_conv.0.weight');
  const out = model.get('outc.conv.weight');
  if (!inc || !out) {
    const some = [...model.keys()].slice(0, 5).join(', ');
    throw new CheckpointError(`${path} does not hold UNet weights (no inc.double_conv.0.weight / outc.conv.weight; keys start with: ${some})`);
  }
  // The shapes the UNet's first and last layers have: a UNet is built from these numbers before the
  // weights are loaded, so [64, 10^9, 0, 0] (no data, a huge model) must not get through.
  const [o, c, kh, kw] = inc.shape;
  const [k, ci, oh, ow] = out.shape;
  if (inc.shape.length !== 4 || !(o >= 1) || kh !== 3 || kw !== 3 || !(c >= 1) || out.shape.length !== 4 || ci !== o || oh !== 1 || ow !== 1 || !(k >= 1)) {
    throw new CheckpointError(`${path} does not hold UNet weights of the expected shapes (inc.double_conv.0.weight [${inc.shape}], outc.conv.weight [${out.shape}]; expected [64, channels, 3, 3] and [classes, 64, 1, 1])`);
  }
  let depth = 0;
  while (model.has(`down${depth + 1}.maxpool_conv.1.double_conv.0.weight`)) depth++;
  // No down stage: not a UNet our code builds; the reference's depth, so loading names the missing keys.
  const problem = architectureProblem(depth || REFERENCE_DEPTH, o);
  if (problem) throw new CheckpointError(`${path} holds UNet weights of a size that cannot be built (${problem})`);
  return { nChannels: c, nClasses: k, bilinear: !model.has('up1.up.weight'), depth: depth || REFERENCE_DEPTH, baseChannels: o };
}

/** Why depth and base channels cannot build a model (null: they can): the options' and the checkpoint reader's rule. */
export function architectureProblem(depth: number, base: number): string | null {
  if (!Number.isInteger(depth) || depth < 1 || depth > 10) return `depth ${depth} is not a whole number from 1 to 10`;
  if (!Number.isInteger(base) || base < 1) return `base channels ${base} is not a positive whole number`;
  if (base * 2 ** depth > MAX_WIDTH) return `base channels ${base} x 2^depth ${depth} = ${base * 2 ** depth} channels at the bottleneck, over the limit of ${MAX_WIDTH}`;
  return null;
}

/**
 * model_args as stored, checked against the weights: a UNet is built from them before the weights
 * are loaded, so a damaged or hostile file must not ask for a model of billions of parameters.
 */
export function checkedArgs(args: Record<string, PyValue>, model: Map<string, RawTensor>, path: string): UNetArgs {
  const channels = { nChannels: num(args.n_channels) ?? 3, nClasses: num(args.n_classes) ?? 2, bilinear: args.bilinear === true };
  const withEncoder = storedEncoderArgs(args, channels, path);
  if (withEncoder) return checkEncoderArgs(withEncoder, model, path);
  // Files written before --depth / --base-channels have neither: the reference's 4 and 64.
  const stored: UNetArgs = { ...channels, depth: num(args.depth) ?? REFERENCE_DEPTH, baseChannels: num(args.base_channels) ?? REFERENCE_BASE_CHANNELS };
  const inc = model.get('inc.double_conv.0.weight');
  const out = model.get('outc.conv.weight');
  const shapeProblem = architectureProblem(stored.depth as number, stored.baseChannels as number);
  if (!inc || !out) {
    if (shapeProblem) throw new CheckpointError(`${path} is damaged: model_args ask for a UNet that cannot be built (${shapeProblem}); use another checkpoint`);
    return stored; // not UNet weights: loading them reports the missing keys
  }
  const fromWeights = inferModelArgs(model, path);
  // Narrow test models of older files record 64 but hold fewer: their weights say which.
  if (args.base_channels === undefined) stored.baseChannels = fromWeights.baseChannels;
  const ok =
    [stored.nChannels, stored.nClasses].every((n) => Number.isInteger(n) && n >= 1) &&
    !shapeProblem &&
    stored.nChannels === fromWeights.nChannels &&
    stored.nClasses === fromWeights.nClasses &&
    stored.bilinear === fromWeights.bilinear &&
    stored.depth === fromWeights.depth &&
    stored.baseChannels === fromWeights.baseChannels;
  if (!ok) {
    throw new CheckpointError(`${path} is damaged: model_args ${JSON.stringify(stored)} do not match its weights (${JSON.stringify(fromWeights)}); use another checkpoint (e.g. best_model.pth or an earlier epoch)`);
  }
  return stored;
}
