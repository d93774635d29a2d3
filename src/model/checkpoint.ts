/**
 * Checkpoints: PyTorch .pth files in the layout of the guide's trainer (model_state_dict,
 * optimizer_state_dict, scheduler_state_dict, epoch, loss, val_score, mask_values), plus what an
 * exact resume needs. Python reads them with torch.load(path, weights_only=True).
 *
 * Also reads the reference trainer's files (a flat state_dict plus mask_values) and the fork's
 * nested files as weights only.
 */
import { existsSync, statSync } from 'node:fs';
import { readdir, rm, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import { makeDirs } from '../io/dirs.js';
import { errnoWords } from '../io/files.js';
import { processAlive } from '../io/lock.js';
import { defineKey } from '../io/own.js';
import { type PyValue, PyFloat, type RawTensor, loadPth, rawTensor, savePth } from '../io/pth.js';
import { CheckpointError, checkedArgs, inferModelArgs, modelArgsToPy, num } from './model-args.js';
import { dropUnusedEncoderKeys } from './encoder-args.js';
import type { UNetArgs } from './unet.js';

export { CheckpointError, architectureProblem, inferModelArgs } from './model-args.js';

export const FORMAT = 'unet-ts/1';

export type MaskValues = number[] | [number, number, number][];

// ------------------------------------------------------------------------------------------------
// Tensor <-> RawTensor, and engine-side trees <-> Python values

export function toRaw(t: Tensor): RawTensor {
  return rawTensor(t.dtype, t.shape, t.bytes());
}

export function fromRaw(r: RawTensor): Tensor {
  return E.tensor(r.data, r.shape, { dtype: r.dtype });
}

export const isRaw = (v: unknown): v is RawTensor => typeof v === 'object' && v !== null && (v as RawTensor).kind === 'tensor';

/** Converts a tree holding engine Tensors (and numbers marked as floats) into Python values. */
export function toPy(v: unknown, floatKeys: ReadonlySet<string> = FLOAT_KEYS, key = ''): PyValue {
  if (v instanceof E.Tensor) return toRaw(v);
  if (v === null || v === undefined) return null;
  if (typeof v === 'number') return floatKeys.has(key) ? new PyFloat(v) : v;
  if (typeof v === 'string' || typeof v === 'boolean' || typeof v === 'bigint') return v;
  if (v instanceof PyFloat) return v;
  if (Array.isArray(v)) return v.map((x) => toPy(x, floatKeys, key));
  if (v instanceof Map) {
    const m = new Map<string | number, PyValue>();
    for (const [k, x] of v) m.set(k, toPy(x, floatKeys, String(k)));
    return m;
  }
  if (typeof v === 'object') {
    const o: Record<string, PyValue> = {};
    for (const [k, x] of Object.entries(v)) defineKey(o, k, toPy(x, floatKeys, k));
    return o;
  }
  throw new CheckpointError(`cannot store a ${typeof v} in a checkpoint`);
}

/** Converts Python values back, turning RawTensors into engine Tensors (caller disposes them). */
export function fromPy(v: PyValue): unknown {
  if (isRaw(v)) return fromRaw(v);
  if (v instanceof PyFloat) return v.value;
  if (Array.isArray(v)) return v.map(fromPy);
  if (v instanceof Map) {
    const m = new Map<string | number, unknown>();
    for (const [k, x] of v) m.set(k, fromPy(x));
    return m;
  }
  if (v !== null && typeof v === 'object') {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) defineKey(o, k, fromPy(x as PyValue)); // a stored "__proto__" stays a key
    return o;
  }
  return v;
}

/** Keys whose numbers Python must see as floats (lr = 1 must stay 1.0). */
const FLOAT_KEYS = new Set([
  'lr',
  'initial_lr',
  'alpha',
  'eps',
  'weight_decay',
  'momentum',
  'dampening',
  'betas',
  'loss',
  'val_score',
  'best_score',
  'factor',
  'threshold',
  'min_lrs',
  'best',
  'scale',
  'growth_factor',
  'backoff_factor',
  'min_delta',
  '_last_lr',
  'eta_min',
  'base_lrs',
  'learning_rate',
  'scale_factor',
  'patience_best',
  'mode_worse',
]);

// ------------------------------------------------------------------------------------------------
// Saving

export interface CheckpointData {
  model: Map<string, Tensor>;
  optimizer?: unknown;
  scheduler?: unknown;
  gradScaler?: unknown;
  earlyStopping?: unknown;
  epoch: number;
  globalStep: number;
  loss: number;
  valScore: number;
  maskValues: MaskValues;
  /** --class-names: one per mask value; absent or empty: none given. */
  classNames?: readonly string[];
  /** --ignore-index: the mask value that is no class (evaluate leaves its pixels out); absent or null: none. */
  ignoreValue?: number | null;
  modelArgs: UNetArgs;
  /** --deep-supervision's auxiliary heads: training state only, never part of `model`. */
  auxHeads?: Map<string, Tensor> | null;
  /** --ema: `model` is then the average and these the training weights, with the number of updates averaged. */
  rawModel?: Map<string, Tensor> | null;
  emaUpdates?: number;
  config: Record<string, unknown>;
  runDir?: string;
  rng?: { torch: Tensor; data: unknown };
  /** Set in an INTERRUPTED.pth saved mid-epoch: where that epoch continues. */
  position?: EpochPosition | null;
}

/** A mid-epoch stop: the epoch in progress, its sample order and next batch, and its running sums. */
export interface EpochPosition {
  /** The epoch in progress (`epoch` of the checkpoint + 1). */
  epoch: number;
  /** Batches of the epoch done (at an optimizer step boundary). */
  batch: number;
  /** The epoch's sample order (dataset indices); empty for data-parallel runs, whose shards follow from --seed and the epoch. */
  order: number[];
  batchSize: number;
  accumulate: number;
  worldSize: number;
  /** Each rank's data generator (shuffles, augmentation) where the next batch's draws start. */
  dataRng: unknown[];
  /** The epoch's loss sum so far (over all ranks), images seen and seconds spent (rank 0). */
  lossSum: number;
  seen: number;
  seconds: number;
  /** Precise BatchNorm statistics were recomputed since the last optimizer step (the next round reuses them). */
  bnFresh: boolean;
}

/** Writes atomically (temp file, fsync, rename): a crash never leaves a half-written checkpoint. */
export async function saveCheckpoint(path: string, c: CheckpointData): Promise<void> {
  const value: Record<string, PyValue> = {
    format: FORMAT,
    model_state_dict: toPy(c.model),
    optimizer_state_dict: toPy(c.optimizer ?? null),
    scheduler_state_dict: toPy(c.scheduler ?? null),
    grad_scaler_state_dict: toPy(c.gradScaler ?? null),
    early_stopping: toPy(c.earlyStopping ?? null),
    epoch: c.epoch,
    global_step: c.globalStep,
    loss: new PyFloat(c.loss),
    val_score: new PyFloat(c.valScore),
    mask_values: c.maskValues as PyValue,
    class_names: c.classNames?.length ? [...c.classNames] : null,
    ignore_value: c.ignoreValue ?? null,
    model_args: modelArgsToPy(c.modelArgs, true),
    deep_supervision_state_dict: c.auxHeads ? toPy(c.auxHeads) : null,
    raw_model_state_dict: c.rawModel ? toPy(c.rawModel) : null,
    ema_updates: c.rawModel ? (c.emaUpdates ?? 0) : null,
    config: toPy(c.config, new Set(['learningRate', 'scale', 'validation', 'minDelta', 'weightDecay', 'momentum', 'gradClip'])),
    run_dir: c.runDir ?? null,
    rng_state: c.rng ? { torch: toRaw(c.rng.torch), data: toPy(c.rng.data) } : null,
    epoch_position: c.position ? toPy(c.position, new Set(['lossSum', 'seconds'])) : null,
  };
  await savePth(path, value);
}

/** Model weights only, as the reference trainer writes them (flat state_dict + mask_values). */
export async function saveReferenceStateDict(path: string, model: Map<string, Tensor>, maskValues: MaskValues): Promise<void> {
  const value: Record<string, PyValue> = {};
  for (const [k, t] of model) value[k] = toRaw(t);
  value.mask_values = maskValues as PyValue;
  await savePth(path, value);
}

/**
 * Records in one of our checkpoints the classes --postprocess auto cleans (a cross-validation's
 * decision), rewriting it atomically with everything else as it was.
 */
export async function recordPostprocess(path: string, classes: readonly number[]): Promise<void> {
  const rec = asRecord(await loadPth(path));
  if (!rec || rec.format !== FORMAT) throw new CheckpointError(`${path} is not a unet-ts checkpoint; cannot record its post-processing`);
  rec.postprocess_largest_component = [...classes];
  await savePth(path, rec);
}

/**
 * Left behind when a writer is killed: temp files of writeFileAtomic (`.<name>.<pid>.<hex>.tmp`)
 * and prepareCheckpointDir's write probe (`.write-test.<pid>.tmp`).
 */
const TEMP_FILE = /^\..+\.(\d+)\.[0-9a-f]{8}\.tmp$|^\.write-test\.(\d+)\.tmp$/;

/** Why a write into the checkpoint folder failed, in words (the error's own message otherwise). */
const writeProblem = (e: unknown): string => errnoWords(e) ?? (e as Error).message;

/**
 * A checkpoint write that failed during training (a full disk, a folder made read-only) as one
 * message naming the file, its folder and how to go on (the temp file is already gone, earlier
 * checkpoints are intact); other errors are returned as they are.
 */
export function checkpointWriteError(path: string, e: unknown): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  if (typeof code !== 'string' || !code.startsWith('E')) return e;
  const dir = dirname(path);
  const fix = code === 'ENOSPC' || code === 'EDQUOT' ? `Free space in ${dir}` : `Make ${dir} writable`;
  return new CheckpointError(
    `cannot write the checkpoint ${path}: ${writeProblem(e)}. ${fix} (or choose another folder with --checkpoint-dir DIR), ` +
      `then resume with --resume or --load an earlier checkpoint; the checkpoints already written in ${dir} are intact.`,
  );
}

/**
 * Creates the checkpoint folder and proves it is writable before any training (a read-only or
 * blocked folder would otherwise fail only after the first epoch), and removes the temp files
 * that a killed run left behind (they can be as big as a checkpoint). Errors name the folder and
 * the flag.
 */
export async function prepareCheckpointDir(dir: string): Promise<void> {
  const fail = (e: unknown): never => {
    throw new CheckpointError(`cannot write checkpoints to ${dir}: ${writeProblem(e)}. Choose a writable folder with --checkpoint-dir DIR.`);
  };
  await makeDirs(dir).catch(fail);
  const probe = join(dir, `.write-test.${process.pid}.tmp`);
  try {
    await writeFile(probe, 'unet');
  } catch (e) {
    await unlink(probe).catch(() => {}); // a full disk can create the file and then fail to write it
    fail(e);
  }
  await unlink(probe).catch(() => {});
  for (const f of await readdir(dir).catch(() => [] as string[])) {
    const m = TEMP_FILE.exec(f);
    if (m && !processAlive(Number(m[1] ?? m[2]))) await rm(join(dir, f), { force: true }).catch(() => {});
  }
}

// ------------------------------------------------------------------------------------------------
// Loading

export type CheckpointKind = 'unet-ts' | 'fork' | 'reference';

export interface LoadedCheckpoint {
  kind: CheckpointKind;
  path: string;
  model: Map<string, RawTensor>;
  maskValues: MaskValues | null;
  /** Names of the classes (class_names, from --class-names); null: the file has none (older files, the reference's). */
  classNames: string[] | null;
  /** ignore_value (--ignore-index): a mask value that is no class; null: none (older files, the reference's). */
  ignoreValue: number | null;
  /** postprocess_largest_component: the classes `predict --postprocess auto` cleans (train --folds decides); null: none recorded. */
  postprocess: number[] | null;
  modelArgs: UNetArgs | null; // null: infer from the weights
  /** --deep-supervision's auxiliary heads (deep_supervision_state_dict); null: trained without. */
  auxHeads: Map<string, RawTensor> | null;
  /** Saved with --ema (raw_model_state_dict, ema_updates): the training weights (`model` is their average); null: without. */
  rawModel: Map<string, RawTensor> | null;
  emaUpdates: number;
  epoch: number;
  globalStep: number;
  loss: number | null;
  valScore: number | null;
  optimizer: PyValue;
  scheduler: PyValue;
  gradScaler: PyValue;
  earlyStopping: PyValue;
  config: Record<string, unknown> | null;
  rng: { torch: RawTensor; data: unknown } | null;
  runDir: string | null;
  /** Unchecked as read (train/state.ts checks it against the run). */
  position: EpochPosition | null;
}

const asRecord = (v: PyValue): Record<string, PyValue> | null => (v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Map) && !isRaw(v) && !(v instanceof PyFloat) ? (v as Record<string, PyValue>) : null);

function weightsOf(v: PyValue, path: string, where: string): Map<string, RawTensor> {
  const rec = asRecord(v);
  if (!rec) throw new CheckpointError(`${path}: ${where} is not a state dict`);
  const out = new Map<string, RawTensor>();
  for (const [k, t] of Object.entries(rec)) {
    if (k === 'mask_values') continue;
    if (!isRaw(t)) throw new CheckpointError(`${path}: ${where} entry '${k}' is not a tensor; is this a UNet checkpoint?`);
    out.set(k, t);
  }
  if (out.size === 0) throw new CheckpointError(`${path}: ${where} holds no weights`);
  return out;
}

function parseMaskValues(v: PyValue | undefined): MaskValues | null {
  if (!Array.isArray(v)) return null;
  const flat = v.map((x) => (Array.isArray(x) ? x.map((y) => num(y as PyValue) ?? 0) : (num(x) ?? 0)));
  return flat as MaskValues;
}

/** class_names when it is a list of strings; anything else counts as none. */
function parseClassNames(v: PyValue | undefined): string[] | null {
  return Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'string') ? (v as string[]) : null;
}

/**
 * Reads any of the three checkpoint kinds, with errors that name the file (and `flag`, the option
 * that gave it) and say what to do. The one place a checkpoint path is checked.
 */
export async function loadCheckpoint(path: string, flag = '-m/--model'): Promise<LoadedCheckpoint> {
  return checkedRead(path, flag, true);
}

/** What a checkpoint says about its run (epoch, scores, config, run directory), without its tensors' data. */
export type CheckpointInfo = Omit<LoadedCheckpoint, 'model' | 'rng' | 'optimizer'>;

/** loadCheckpoint's checks and errors, reading only the metadata (no tensor is materialised). */
export async function readCheckpointInfo(path: string, flag = '-m/--model'): Promise<CheckpointInfo> {
  const { model: _m, rng: _r, optimizer: _o, ...info } = await checkedRead(path, flag, false);
  return info;
}

async function checkedRead(path: string, flag: string, withData: boolean): Promise<LoadedCheckpoint> {
  if (!path) throw new CheckpointError(`no model given: pass the checkpoint with ${flag} (e.g. ${flag.replace(/\/.*/, '')} checkpoints/best_model.pth)`);
  if (!existsSync(path)) throw new CheckpointError(`checkpoint ${path} does not exist; check the path, or pass a checkpoint written by \`unet train\` (e.g. checkpoints/best_model.pth) or a reference .pth with ${flag}`);
  if (statSync(path).isDirectory()) throw new CheckpointError(`checkpoint ${path} is a folder; pass a checkpoint file inside it (e.g. ${join(path, 'best_model.pth')})`);
  try {
    return await readCheckpoint(path, withData);
  } catch (e) {
    if (e instanceof CheckpointError) throw new CheckpointError(`${e.message.replace(/\.$/, '')}. Is ${path} a UNet checkpoint (.pth from \`unet train\` or the reference trainer)?`);
    throw e;
  }
}

async function readCheckpoint(path: string, withData: boolean): Promise<LoadedCheckpoint> {
  let value: PyValue;
  try {
    value = await loadPth(path, withData);
  } catch (e) {
    throw new CheckpointError(`cannot read ${path} as a PyTorch checkpoint: ${(e as Error).message.replace(`${path}: `, '')}`);
  }
  const rec = asRecord(value);
  if (!rec) throw new CheckpointError(`${path} is a PyTorch file but not a checkpoint dictionary`);
  const base = {
    path,
    optimizer: null as PyValue,
    scheduler: null as PyValue,
    gradScaler: null as PyValue,
    earlyStopping: null as PyValue,
    config: null,
    rng: null,
    runDir: null,
    globalStep: 0,
    classNames: null as string[] | null,
    ignoreValue: null as number | null,
    postprocess: null as number[] | null,
    position: null,
    rawModel: null,
    emaUpdates: 0,
  };
  if (Object.hasOwn(rec, 'model_state_dict')) {
    const model = weightsOf(rec.model_state_dict, path, 'model_state_dict');
    const ours = rec.format === FORMAT;
    const args = asRecord(rec.model_args ?? null);
    const rng = asRecord(rec.rng_state ?? null);
    const aux = ours ? asRecord(rec.deep_supervision_state_dict ?? null) : null;
    const raw = ours ? asRecord(rec.raw_model_state_dict ?? null) : null;
    return {
      ...base,
      kind: ours ? 'unet-ts' : 'fork',
      model,
      maskValues: parseMaskValues(rec.mask_values),
      classNames: parseClassNames(rec.class_names),
      ignoreValue: num(rec.ignore_value),
      postprocess: Array.isArray(rec.postprocess_largest_component) ? rec.postprocess_largest_component.map((c) => Number(c)).filter(Number.isInteger) : null,
      modelArgs: dropUnusedEncoderKeys(model, args ? checkedArgs(args, model, path) : inferModelArgs(model, path)),
      auxHeads: aux ? weightsOf(aux, path, 'deep_supervision_state_dict') : null,
      rawModel: raw ? weightsOf(raw, path, 'raw_model_state_dict') : null,
      emaUpdates: num(rec.ema_updates) ?? 0,
      epoch: num(rec.epoch) ?? 0,
      globalStep: num(rec.global_step) ?? 0,
      loss: num(rec.loss),
      valScore: num(rec.val_score),
      optimizer: ours ? (rec.optimizer_state_dict ?? null) : null,
      scheduler: ours ? (rec.scheduler_state_dict ?? null) : null,
      gradScaler: ours ? (rec.grad_scaler_state_dict ?? null) : null,
      earlyStopping: ours ? (rec.early_stopping ?? null) : null,
      config: ours ? (fromPy(rec.config ?? null) as Record<string, unknown> | null) : null,
      rng: ours && rng && isRaw(rng.torch) ? { torch: rng.torch, data: fromPy(rng.data ?? null) } : null,
      runDir: typeof rec.run_dir === 'string' ? rec.run_dir : null,
      position: ours && asRecord(rec.epoch_position ?? null) ? (plain(rec.epoch_position) as EpochPosition) : null,
    };
  }
  // The reference trainer: a flat state_dict with mask_values beside the weights.
  const model = weightsOf(rec, path, 'the file');
  return {
    ...base,
    kind: 'reference',
    model,
    maskValues: parseMaskValues(rec.mask_values),
    modelArgs: dropUnusedEncoderKeys(model, inferModelArgs(model, path)),
    auxHeads: null,
    epoch: 0,
    loss: null,
    valScore: null,
  };
}

/** Numbers, strings, lists and records of a Python value; anything else (tensors) becomes null. */
function plain(v: PyValue): unknown {
  if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof PyFloat) return v.value;
  if (Array.isArray(v)) return v.map(plain);
  const rec = asRecord(v);
  return rec ? Object.fromEntries(Object.entries(rec).map(([k, x]) => [k, plain(x)])) : null;
}

/** RawTensors -> engine tensors (caller disposes). */
export function weightsToTensors(model: Map<string, RawTensor>): Map<string, Tensor> {
  const out = new Map<string, Tensor>();
  for (const [k, r] of model) out.set(k, fromRaw(r));
  return out;
}
