/**
 * `unet export`: model weights for other tools.
 *
 * - safetensors: the state_dict tensors (reference key names) with `__metadata__`
 *   { format: "pt", model_args: '{"n_channels":..,"n_classes":..,"bilinear":..}', mask_values: '[...]' }.
 * - pth-state-dict: the reference trainer's checkpoint format, a flat state_dict plus
 *   `mask_values`, which the reference's predict.py loads (`state_dict.pop('mask_values', [0, 1])`
 *   then `load_state_dict`).
 */
import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import * as E from '../engine/index.js';
import { saveSafetensors } from '../io/safetensors.js';
import { CheckpointError, loadCheckpoint, saveReferenceStateDict, weightsToTensors } from '../train/checkpoint.js';
import { PredictError, resolveMaskValues } from './predictor.js';

export const EXPORT_FORMATS = ['safetensors', 'pth-state-dict'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ExportOptions {
  model: string;
  format: string;
  output: string;
  /** Normal output; default console.log. */
  log?: (line: string) => void;
}

export async function exportCommand(o: ExportOptions): Promise<number> {
  const log = o.log ?? ((l: string) => console.log(l));
  if (!(EXPORT_FORMATS as readonly string[]).includes(o.format)) {
    throw new PredictError(`--format must be one of ${EXPORT_FORMATS.join(', ')}; got '${o.format}'`);
  }
  if (!o.output) throw new PredictError('no output file: pass -o/--output FILE');
  if (resolve(o.output) === resolve(o.model)) throw new PredictError(`-o ${o.output} is the model file itself; choose another output name`);
  let ckpt;
  try {
    if (statSync(o.model, { throwIfNoEntry: false })?.isDirectory()) throw new CheckpointError(`${o.model} is a folder, not a checkpoint file`);
    ckpt = await loadCheckpoint(o.model);
  } catch (e) {
    if (e instanceof CheckpointError) throw new PredictError(e.message);
    throw e;
  }
  const args = ckpt.modelArgs;
  if (!args) throw new PredictError(`${o.model}: cannot tell the model's channels/classes from the checkpoint`);
  const notes: string[] = [];
  const mv = resolveMaskValues(ckpt.maskValues, args.nClasses, notes);
  for (const n of notes) console.error(`note: ${n}`);
  try {
    mkdirSync(dirname(o.output), { recursive: true });
  } catch (e) {
    throw new PredictError(`cannot create the folder for ${o.output}: ${(e as Error).message}`);
  }
  const modelArgs = { n_channels: args.nChannels, n_classes: args.nClasses, bilinear: args.bilinear };
  if (o.format === 'safetensors') {
    await saveSafetensors(o.output, Object.fromEntries(ckpt.model), {
      format: 'pt',
      model_args: JSON.stringify(modelArgs),
      mask_values: JSON.stringify(mv.values),
    });
  } else {
    const tensors = weightsToTensors(ckpt.model);
    try {
      await saveReferenceStateDict(o.output, tensors, mv.values);
    } finally {
      E.dispose([...tensors.values()]);
    }
  }
  const bytes = statSync(o.output).size;
  log(
    `Exported ${ckpt.model.size} tensors of ${o.model} (${ckpt.kind}; UNet channels=${args.nChannels} classes=${args.nClasses} bilinear=${args.bilinear}; ` +
      `mask values ${JSON.stringify(mv.values)}) to ${o.output} as ${o.format} (${(bytes / 1e6).toFixed(1)} MB)`,
  );
  if (o.format === 'pth-state-dict') {
    log(`  reference: python predict.py -m ${o.output} -i IMAGE -c ${args.nClasses}${args.bilinear ? ' --bilinear' : ''} (its UNet has n_channels=3; edit it for ${args.nChannels === 3 ? 'other inputs' : `${args.nChannels}-channel input`})`);
  }
  return 0;
}
