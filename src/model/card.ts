/**
 * A checkpoint's model card: what a checkpoint says about its model (arguments, mask values,
 * class names, training scale, smallest input side, the Python-named model_args exports carry),
 * worked out once here so predict, export, the web page, serve and the dashboard's "try it" agree.
 */
import type { PyValue } from '../io/pth.js';
import type { CheckpointInfo, MaskValues } from './checkpoint.js';
import { CheckpointError } from './checkpoint-error.js';
import { minSideOf } from './limits.js';
import { modelArgsToPy } from './model-args.js';
import type { UNetArgs } from './unet.js';

export interface ModelCard {
  path: string;
  /** The architecture as recorded (older files and smp imports: read from the weights); encoder UNets carry normalize. */
  args: UNetArgs;
  /** Class i is written as maskValues[i]. */
  maskValues: MaskValues;
  /** Where maskValues came from; 'default' = the file had none ([0, 1] like the reference). */
  maskValuesSource: 'checkpoint' | 'default';
  /** One name per mask value (--class-names); null: none, or not one per value. */
  classNames: string[] | null;
  /** The scale it was trained at (config.scale); null when the file records none (chooseScale then falls back). */
  trainingScale: number | null;
  /** The smallest height/width the network accepts (2^depth, 2^encoder depth). */
  minSide: number;
  /** model_args with Python names, as exported files carry them (depth/base channels only where not the reference's). */
  modelArgs: Record<string, PyValue>;
  /** Notes for the user (defaulted, cut or padded mask values). */
  notes: string[];
}

/** The metadata every exported file carries (safetensors __metadata__, ONNX metadata_props, model.json). */
export interface CardMetadata {
  /** JSON of the card's modelArgs: {"n_channels","n_classes","bilinear", ...} */
  model_args: string;
  /** JSON list: class i is written as mask_values[i] */
  mask_values: string;
  /** JSON list of the class names (train --class-names), when the checkpoint has one per mask value */
  class_names?: string;
}

/** What a runnable export (ONNX, web) carries besides: the scale it resizes by and its smallest input side. */
export interface RunnableMetadata extends CardMetadata {
  /** the training scale (or --scale): images are resized by it before the forward pass */
  scale: string;
  /** the smallest height/width the network accepts */
  min_size: string;
}

/** How many distinct mask values a model with `nClasses` outputs predicts (1 output = binary). */
const valueCount = (nClasses: number): number => (nClasses === 1 ? 2 : nClasses);

/**
 * The checkpoint's mask values, checked against the number of classes. Files without them get
 * [0, 1] like the reference's `state_dict.pop('mask_values', [0, 1])` (0..C-1 for more classes,
 * where [0, 1] would lose classes).
 */
export function resolveMaskValues(found: MaskValues | null, nClasses: number, notes: string[]): { values: MaskValues; source: 'checkpoint' | 'default' } {
  const n = valueCount(nClasses);
  const show = JSON.stringify;
  if (!found || found.length === 0) {
    const values = n === 2 ? [0, 1] : Array.from({ length: n }, (_, i) => i);
    notes.push(`the checkpoint has no mask_values; classes are written as ${show(values)} (as the reference's predict.py)`);
    return { values, source: 'default' };
  }
  if (found.length === n) return { values: found, source: 'checkpoint' };
  if (found.length > n) {
    notes.push(`the checkpoint lists ${found.length} mask values ${show(found)} for a ${n}-class model; only the first ${n} are used`);
    return { values: found.slice(0, n) as MaskValues, source: 'checkpoint' };
  }
  // Fewer values than classes: pad with the class index (grey) so every class has a value.
  const rgb = Array.isArray(found[0]);
  const padded = [...found] as (number | [number, number, number])[];
  for (let i = found.length; i < n; i++) padded.push(rgb ? [i, i, i] : i);
  notes.push(`the checkpoint lists ${found.length} mask values ${show(found)} for a ${n}-class model; classes ${found.length}..${n - 1} are written as their index`);
  return { values: padded as MaskValues, source: 'checkpoint' };
}

/** The scale a checkpoint was trained at (our checkpoints' config.scale), or null when it records none. */
function trainingScale(ckpt: Pick<CheckpointInfo, 'config'>): number | null {
  const s = ckpt.config?.scale;
  return typeof s === 'number' && s > 0 && s <= 1 ? s : null;
}

/** The card of a read checkpoint (loadCheckpoint or readCheckpointInfo). */
export function modelCard(ckpt: Pick<CheckpointInfo, 'path' | 'modelArgs' | 'maskValues' | 'classNames' | 'config'>): ModelCard {
  const args = ckpt.modelArgs;
  if (!args) throw new CheckpointError(`${ckpt.path}: cannot tell the model's channels/classes from the checkpoint`);
  const notes: string[] = [];
  const mv = resolveMaskValues(ckpt.maskValues, args.nClasses, notes);
  return {
    path: ckpt.path,
    args,
    maskValues: mv.values,
    maskValuesSource: mv.source,
    classNames: ckpt.classNames?.length === mv.values.length ? ckpt.classNames : null,
    trainingScale: trainingScale(ckpt),
    minSide: minSideOf(args),
    modelArgs: modelArgsToPy(args),
    notes,
  };
}

const classNamesMeta = (c: ModelCard): { class_names?: string } => (c.classNames ? { class_names: JSON.stringify(c.classNames) } : {});

/** The metadata strings of an export of the card's model. */
export const cardMetadata = (c: ModelCard): CardMetadata => ({ model_args: JSON.stringify(c.modelArgs), mask_values: JSON.stringify(c.maskValues), ...classNamesMeta(c) });

/** cardMetadata plus the scale the export resizes by and its smallest input side (an ensemble's: its members' largest). */
export const runnableMetadata = (c: ModelCard, scale: number, minSide = c.minSide): RunnableMetadata => ({
  model_args: JSON.stringify(c.modelArgs),
  mask_values: JSON.stringify(c.maskValues),
  scale: String(scale),
  min_size: String(minSide),
  ...classNamesMeta(c),
});
