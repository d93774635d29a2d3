/**
 * `unet export`: model weights for other tools.
 *
 * - safetensors: the state_dict tensors (reference key names) with `__metadata__`
 *   { format: "pt", model_args: '{"n_channels":..,"n_classes":..,"bilinear":..}', mask_values: '[...]' }
 *   (and class_names: '[...]' when the checkpoint has --class-names; onnx and web carry them too).
 * - pth-state-dict: the reference trainer's checkpoint format, a flat state_dict plus
 *   `mask_values`, which the reference's predict.py loads (`state_dict.pop('mask_values', [0, 1])`
 *   then `load_state_dict`).
 * - onnx: the network as an ONNX graph (src/export/onnx.ts), metadata_props model_args,
 *   mask_values, scale (the training scale, or --scale) and min_size.
 * - web: a static folder that predicts in the browser (src/export/web.ts).
 */
import { existsSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import * as E from '../engine/index.js';
import { OPSET, type OnnxMetadata, writeOnnx } from './onnx.js';
import { classNamesMeta, writeWebSite } from './web.js';
import { makeDirs } from '../io/dirs.js';
import { writeFailure } from '../io/files.js';
import { removeTempsOnSignals } from '../io/temp-files.js';
import { saveSafetensors } from '../io/safetensors.js';
import { minSideFor } from '../model/limits.js';
import type { UNetArgs } from '../model/index.js';
import { type LoadedCheckpoint, type MaskValues, loadCheckpoint, modelArgsToPy, saveReferenceStateDict, weightsToTensors } from '../model/checkpoint.js';
import { chooseScale, trainingScale } from '../model/scale.js';
import { PredictError, resolveMaskValues } from '../predict/predictor.js';

export const EXPORT_FORMATS = ['safetensors', 'pth-state-dict', 'onnx', 'web'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ExportOptions {
  model: string;
  format: string;
  output: string;
  /** The scale images are resized by before the forward pass (onnx, web); default: the checkpoint's training scale. */
  scale?: number;
  /** Normal output; default console.log. */
  log?: (line: string) => void;
}

/** Writes the export; returns what was exported, in words. */
async function writeExport(o: ExportOptions, ckpt: LoadedCheckpoint, args: UNetArgs, maskValues: MaskValues): Promise<string> {
  const modelArgs = modelArgsToPy(args);
  if (o.format === 'safetensors') {
    await saveSafetensors(o.output, Object.fromEntries(ckpt.model), {
      format: 'pt',
      model_args: JSON.stringify(modelArgs),
      mask_values: JSON.stringify(maskValues),
      ...classNamesMeta(ckpt.classNames, maskValues.length),
    });
    return `${ckpt.model.size} tensors`;
  }
  if (o.format === 'pth-state-dict') {
    const tensors = weightsToTensors(ckpt.model);
    try {
      await saveReferenceStateDict(o.output, tensors, maskValues);
    } finally {
      E.dispose([...tensors.values()]);
    }
    return `${ckpt.model.size} tensors`;
  }
  const { scale, source, warning } = chooseScale(trainingScale(ckpt), o.scale);
  console.error(`${warning ? `warning: ${warning}` : `note: the exported model resizes images by scale ${scale} (${source})`}`);
  const meta: OnnxMetadata = { model_args: JSON.stringify(modelArgs), mask_values: JSON.stringify(maskValues), scale: String(scale), min_size: String(minSideFor(args.depth)), ...classNamesMeta(ckpt.classNames, maskValues.length) };
  const r =
    o.format === 'onnx'
      ? await writeOnnx(o.output, ckpt.model, args, meta)
      : await writeWebSite(o.output, ckpt.model, args, meta, `${basename(o.model)}${ckpt.epoch ? ` (epoch ${ckpt.epoch}${ckpt.valScore !== null ? `, validation Dice ${ckpt.valScore.toFixed(3)}` : ''})` : ''}`);
  return `the UNet (${r.nodes} ONNX nodes, opset ${OPSET}, ${r.initializers} initializers, scale ${scale})`;
}

export async function exportCommand(o: ExportOptions): Promise<number> {
  removeTempsOnSignals();
  const log = o.log ?? ((l: string) => console.log(l));
  if (!(EXPORT_FORMATS as readonly string[]).includes(o.format)) {
    throw new PredictError(`--format must be one of ${EXPORT_FORMATS.join(', ')}; got '${o.format}'`);
  }
  if (!o.output) throw new PredictError(`no output ${o.format === 'web' ? 'folder' : 'file'}: pass -o/--output ${o.format === 'web' ? 'DIR' : 'FILE'}`);
  if (o.format === 'web' && statSync(o.output, { throwIfNoEntry: false })?.isFile()) throw new PredictError(`-o ${o.output} is a file; --format web writes a folder: pass a folder name (e.g. -o site/)`);
  if (o.format !== 'web' && (/[\\/]$/.test(o.output) || statSync(o.output, { throwIfNoEntry: false })?.isDirectory())) throw new PredictError(`-o ${o.output} is a folder; pass a file name (e.g. -o ${o.output.replace(/\/$/, '')}/model.${o.format === 'onnx' ? 'onnx' : o.format === 'safetensors' ? 'safetensors' : 'pth'})`);
  if (resolve(o.output) === resolve(o.model)) throw new PredictError(`-o ${o.output} is the model file itself; choose another output name`);
  const ckpt = await loadCheckpoint(o.model);
  const args = ckpt.modelArgs;
  if (!args) throw new PredictError(`${o.model}: cannot tell the model's channels/classes from the checkpoint`);
  const notes: string[] = [];
  const mv = resolveMaskValues(ckpt.maskValues, args.nClasses, notes);
  for (const n of notes) console.error(`note: ${n}`);
  const web = o.format === 'web';
  const existed = existsSync(o.output);
  // A full disk or a read-only place: one line naming the file or folder. A web folder this export
  // created holds only its own partial files and is removed; an earlier file is kept as it was.
  const failed = (e: unknown, folder: string): unknown => {
    const why = writeFailure(e, o.output, folder);
    if (!why) return e;
    if (web && !existed) rmSync(o.output, { recursive: true, force: true });
    return new PredictError(`${why}; ${/full/.test(why) ? 'free space, or ' : ''}choose another place with -o${!web && existed ? ` (the existing ${o.output} is kept as it was)` : ''}`);
  };
  await makeDirs(web ? o.output : dirname(o.output)).catch((e) => {
    throw failed(e, web ? dirname(resolve(o.output)) : dirname(o.output));
  });
  const what = await writeExport(o, ckpt, args, mv.values).catch((e) => {
    throw failed(e, web ? o.output : dirname(o.output));
  });
  const bytes = o.format === 'web' ? statSync(join(o.output, 'model.onnx')).size : statSync(o.output).size;
  log(
    `Exported ${what} of ${o.model} (${ckpt.kind}; UNet channels=${args.nChannels} classes=${args.nClasses} bilinear=${args.bilinear}; ` +
      `mask values ${JSON.stringify(mv.values)}) to ${o.output} as ${o.format} (${(bytes / 1e6).toFixed(1)} MB${o.format === 'web' ? ' model' : ''})`,
  );
  if (o.format === 'pth-state-dict') {
    log(`  reference: python predict.py -m ${o.output} -i IMAGE -c ${args.nClasses}${args.bilinear ? ' --bilinear' : ''} (its UNet has n_channels=3; edit it for ${args.nChannels === 3 ? 'other inputs' : `${args.nChannels}-channel input`})`);
  }
  if (o.format === 'web') log(`  serve the folder with any static file server, e.g. \`cd ${o.output} && python3 -m http.server\`, and open http://127.0.0.1:8000/`);
  return 0;
}
