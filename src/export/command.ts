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
 * Several -m (onnx, web): an ensemble, one graph whose output `probabilities` is the mean of the
 * models' softmax (sigmoid for 1 output); metadata_props also carry `output` and `models`.
 */
import { existsSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import * as E from '../engine/index.js';
import { ENSEMBLE_OUTPUT_NAME, OPSET, type OnnxMetadata, writeOnnx, writeOnnxEnsemble } from './onnx.js';
import { writeWebSite } from './web.js';
import { makeDirs } from '../io/dirs.js';
import { writeFailure } from '../io/files.js';
import { removeTempsOnSignals } from '../io/temp-files.js';
import { saveSafetensors } from '../io/safetensors.js';
import { hasEncoder } from '../model/index.js';
import { type ModelCard, cardMetadata, modelCard, runnableMetadata } from '../model/card.js';
import { type LoadedCheckpoint, loadCheckpoint, saveReferenceStateDict, weightsToTensors } from '../model/checkpoint.js';
import { chooseScale } from '../model/scale.js';
import { checkMembers, modelPaths } from '../predict/ensemble.js';
import { PredictError } from '../predict/predictor.js';

export const EXPORT_FORMATS = ['safetensors', 'pth-state-dict', 'onnx', 'web'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ExportOptions {
  /** One checkpoint, or (onnx, web) the checkpoints of an ensemble. */
  model: string | string[];
  format: string;
  output: string;
  /** The scale images are resized by before the forward pass (onnx, web); default: the checkpoint's training scale. */
  scale?: number;
  /** Normal output; default console.log. */
  log?: (line: string) => void;
}

/** A checkpoint to export, read and checked (args and maskValues: its card's, for checkMembers). */
interface Member extends Pick<ModelCard, 'args' | 'maskValues'> {
  path: string;
  ckpt: LoadedCheckpoint;
  card: ModelCard;
}

/** Writes the export; returns what was exported, in words. */
async function writeExport(o: ExportOptions, members: Member[]): Promise<string> {
  const { ckpt, args, card } = members[0];
  if (o.format === 'safetensors') {
    await saveSafetensors(o.output, Object.fromEntries(ckpt.model), { format: 'pt', ...cardMetadata(card) });
    return `${ckpt.model.size} tensors`;
  }
  if (o.format === 'pth-state-dict') {
    const tensors = weightsToTensors(ckpt.model);
    try {
      await saveReferenceStateDict(o.output, tensors, card.maskValues);
    } finally {
      E.dispose([...tensors.values()]);
    }
    return `${ckpt.model.size} tensors`;
  }
  const { scale, source, warning } = chooseScale(card.trainingScale, o.scale);
  console.error(`${warning ? `warning: ${warning}` : `note: the exported model resizes images by scale ${scale} (${source})`}`);
  const meta: OnnxMetadata = { ...runnableMetadata(card, scale, Math.max(...members.map((m) => m.card.minSide))), ...(members.length > 1 ? ensembleMeta(members) : {}) };
  const weights = members.map((m) => ({ weights: m.ckpt.model, args: m.args }));
  const label = members.map((m) => `${basename(m.path)}${m.ckpt.epoch ? ` (epoch ${m.ckpt.epoch}${m.ckpt.valScore !== null ? `, validation Dice ${m.ckpt.valScore.toFixed(3)}` : ''})` : ''}`).join(' + ');
  const r = o.format === 'onnx' ? (members.length > 1 ? await writeOnnxEnsemble(o.output, weights, meta) : await writeOnnx(o.output, ckpt.model, args, meta)) : await writeWebSite(o.output, weights, meta, label);
  const what = members.length > 1 ? `an ensemble of ${members.length} UNets (output '${ENSEMBLE_OUTPUT_NAME}', their mean ${args.nClasses === 1 ? 'sigmoid' : 'softmax'}; ` : 'the UNet (';
  return `${what}${r.nodes} ONNX nodes, opset ${OPSET}, ${r.initializers} initializers, scale ${scale})`;
}

/** An ensemble's metadata: what its output is and which checkpoints it averages. */
function ensembleMeta(members: Member[]): Pick<OnnxMetadata, 'output' | 'models'> {
  const k = members[0].args.nClasses;
  return {
    output: `${ENSEMBLE_OUTPUT_NAME}: float32 [batch, ${k}, height, width], the mean over the ${members.length} models of ${k === 1 ? 'the sigmoid of their logit (P(class 1); threshold it)' : 'the softmax over the classes (argmax it)'}`,
    models: JSON.stringify(members.map((m) => basename(m.path))),
  };
}

export async function exportCommand(o: ExportOptions): Promise<number> {
  removeTempsOnSignals();
  const log = o.log ?? ((l: string) => console.log(l));
  if (!(EXPORT_FORMATS as readonly string[]).includes(o.format)) {
    throw new PredictError(`--format must be one of ${EXPORT_FORMATS.join(', ')}; got '${o.format}'`);
  }
  if (!o.output) throw new PredictError(`no output ${o.format === 'web' ? 'folder' : 'file'}: pass -o/--output ${o.format === 'web' ? 'DIR' : 'FILE'}`);
  if (o.format === 'web' && statSync(o.output, { throwIfNoEntry: false })?.isFile()) throw new PredictError(`-o ${o.output} is a file; --format web writes a folder: pass a folder name (e.g. -o site/)`);
  if (o.format !== 'web' && (/[\\/]$/.test(o.output) || statSync(o.output, { throwIfNoEntry: false })?.isDirectory()))
    throw new PredictError(`-o ${o.output} is a folder; pass a file name (e.g. -o ${o.output.replace(/\/$/, '')}/model.${o.format === 'onnx' ? 'onnx' : o.format === 'safetensors' ? 'safetensors' : 'pth'})`);
  const paths = modelPaths(o.model);
  if (paths.length > 1 && o.format !== 'onnx' && o.format !== 'web')
    throw new PredictError(`an ensemble (${paths.length} -m) exports as --format onnx or web (one graph averaging the models); export each checkpoint to ${o.format} on its own`);
  for (const path of paths) if (resolve(o.output) === resolve(path)) throw new PredictError(`-o ${o.output} is the model file itself; choose another output name`);
  const members: Member[] = [];
  for (const path of paths) {
    const ckpt = await loadCheckpoint(path);
    const card = modelCard(ckpt);
    for (const n of card.notes) console.error(`note: ${paths.length > 1 ? `${path}: ` : ''}${n}`);
    members.push({ path, ckpt, args: card.args, maskValues: card.maskValues, card });
  }
  checkMembers(members);
  const [{ ckpt, args, card }] = members;
  if (new Set(members.map((m) => m.card.trainingScale)).size > 1) console.error(`note: the models were trained at different scales; the export resizes by ${o.scale ?? `the first model's (${card.trainingScale ?? 'unknown'})`}`);
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
  const what = await writeExport(o, members).catch((e) => {
    throw failed(e, web ? o.output : dirname(o.output));
  });
  const bytes = o.format === 'web' ? statSync(join(o.output, 'model.onnx')).size : statSync(o.output).size;
  log(
    `Exported ${what} of ${paths.join(' + ')} (${ckpt.kind}; UNet channels=${args.nChannels} classes=${args.nClasses} ${hasEncoder(args) ? `encoder=${args.encoder}` : `bilinear=${args.bilinear}`}; ` +
      `mask values ${JSON.stringify(card.maskValues)}) to ${o.output} as ${o.format} (${(bytes / 1e6).toFixed(1)} MB${o.format === 'web' ? ' model' : ''})`,
  );
  if (o.format === 'pth-state-dict') {
    log(
      `  reference: python predict.py -m ${o.output} -i IMAGE -c ${args.nClasses}${args.bilinear ? ' --bilinear' : ''} (its UNet has n_channels=3; edit it for ${args.nChannels === 3 ? 'other inputs' : `${args.nChannels}-channel input`})`,
    );
  }
  if (o.format === 'web') log(`  serve the folder with any static file server, e.g. \`cd ${o.output} && python3 -m http.server\`, and open http://127.0.0.1:8000/`);
  return 0;
}
