/** Steps 1-4 of the recipe in detail: the data and its split, the optimizer and friends, tracking, the loaders. */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { EXIT } from '../config/errors.js';
import { NO_EPOCH_CAP, OptionError, type TrainConfig, trainOptions } from '../config/options.js';
import { type DataError, DataLoader, PAD_CLASS, type AugmentOptions, type PatchOptions, Rng, type RngStateDict, SegmentationDataset, checkClasses, listPairs, randomSplit, withoutIgnoreValue } from '../data/index.js';
import type { DistContext } from '../distributed/index.js';
import * as E from '../engine/index.js';
import type { AutocastDtype, Device } from '../engine/index.js';
import { type EpochPosition, type LoadedCheckpoint, type MaskValues, architectureProblem, prepareCheckpointDir } from '../model/checkpoint.js';
import { ENCODERS } from '../model/encoders/index.js';
import { DEFAULT_DECODER_CHANNELS, type SegmentationModel, type UNet, type UNetArgs, fullArgs, fullEncoderArgs, hasEncoder } from '../model/index.js';
import { minSideOf } from '../model/limits.js';
import { type GradScaler, type LRScheduler, type Optimizer, createOptimizer, createScheduler } from '../optim/index.js';
import { EncoderFreeze, encoderParameters, optimizerParams } from './freeze.js';
import { Tracker } from '../tracking/index.js';
import { budgetSchedule } from './budget.js';
import { describeCadence, describeValLast, validationCadence } from './cadence.js';
import { type AuxHeads, WithAuxHeads, deepSupervisionProblem } from './deep-supervision.js';
import { TrainError, type TrainData, type TrainHooks, type TrainRun, isMain } from './context.js';
import type { EarlyStopping } from './early-stopping.js';
import { foldSplit } from './folds.js';
import { claimCheckpointDir } from './run-folder.js';
import { restore, resumePosition } from './state.js';
import { versions } from './versions.js';

type Log = (line: string) => void;

/** 1. The dataset (pairs, mask values scanned, classes checked) and 2. its seeded train/validation split. */
export async function loadData(cfg: TrainConfig, dist: DistContext | undefined, ckpt: LoadedCheckpoint | null, log: Log, warn: Log): Promise<TrainData> {
  const { pairs, maskSuffix, warnings } = await listPairs({ imgsDir: cfg.imgs, masksDir: cfg.masks, maskSuffix: cfg.maskSuffix, skipUnpaired: cfg.skipUnpaired });
  for (const w of warnings) warn(w);
  const dataset = new SegmentationDataset(pairs, {
    scale: cfg.scale,
    workers: cfg.workers,
    maxPixels: cfg.maxPixels,
    channels: cfg.channels === 'auto' ? undefined : cfg.channels,
    minSide: minSideOf(cfg), // 2^depth (2^encoder depth), checked by scan() before training starts
    ignoreValue: cfg.ignoreIndex ?? null,
    onWarning: warn,
  });
  log(`Scanning ${pairs.length} masks to determine their values...`);
  const found = (await dataset.scan()) as MaskValues;
  const ignore = cfg.ignoreIndex ?? null;
  const maskValues = ignore === null ? found : classValues(found, ignore, cfg.classes);
  dataset.maskValues = maskValues;
  const classProblem = checkClasses(maskValues, cfg.classes, { maskFiles: pairs.map((p) => p.mask) });
  if (classProblem) throw new TrainError(classProblem);
  if (!cfg.patchSize && cfg.oversampleFg !== trainOptions.oversampleFg.default) warn('--oversample-fg has no effect without --patch-size (whole images are trained on)');
  if (cfg.patchSize && cfg.classes > PAD_CLASS) throw new TrainError(`--patch-size marks padding with class ${PAD_CLASS}, so it allows at most ${PAD_CLASS} classes (-c ${cfg.classes}); train on whole images (no --patch-size)`, EXIT.usage);
  await dist?.checkSame('the data (image count and mask values)', JSON.stringify([pairs.length, maskValues]));
  if (ckpt?.maskValues && JSON.stringify(ckpt.maskValues) !== JSON.stringify(maskValues) && ckpt.kind === 'unet-ts') {
    warn(`the checkpoint was trained on mask values ${JSON.stringify(ckpt.maskValues)}, this data has ${JSON.stringify(maskValues)}`);
  }
  if (ckpt?.kind === 'unet-ts' && ckpt.ignoreValue !== ignore) {
    warn(`the checkpoint was trained with --ignore-index ${ckpt.ignoreValue ?? 'none'}, this run uses ${ignore ?? 'none'}`);
  }
  const first = await dataset.load(0);
  const nChannels = cfg.channels === 'auto' ? first.channels : cfg.channels;

  // Seeded: the same split across runs with the same seed (--folds: fold --fold validates, -v unused).
  const split = cfg.folds > 0 ? foldSplit(pairs.length, cfg.folds, cfg.fold ?? 0, cfg.seed) : randomSplit(pairs.length, cfg.validation, cfg.seed);
  if (split.train.length === 0) throw new TrainError(`no training images left: ${pairs.length} pairs with -v ${cfg.validation}% held out; lower -v/--validation`);
  if (split.val.length === 0) warn(`validation set is empty (${pairs.length} pairs x ${cfg.validation}%): validation Dice, best model and early stopping use the training loss instead`);
  return { pairs, maskSuffix, maskValues, nChannels, dataset, split };
}

/** --patch-size as the loader takes it (undefined: whole images, the reference). */
export function patchOptions(cfg: TrainConfig): PatchOptions | undefined {
  return cfg.patchSize ? { size: cfg.patchSize, oversampleFg: cfg.oversampleFg } : undefined;
}

/** Offset of the seed the precise-BN patches are drawn from (apart from the training draws). */
const PRECISE_BN_SEED = 104729;

/**
 * The batches --precise-bn recomputes the statistics over: the training images in split order,
 * unaugmented; with --patch-size, patches where training draws them (random places, foreground
 * share) from a seed of their own, so every recomputation sees the same ones and resuming stays
 * exact. Centre crops would leave out what lies at the edges (a road scene's sky).
 */
export function preciseBnLoader(dataset: SegmentationDataset, indices: number[], o: { batchSize: number; seed: number; patch?: PatchOptions; onBadSample?: (e: DataError, i: number) => void }): DataLoader {
  return new DataLoader(dataset, indices, { batchSize: o.batchSize, shuffle: false, rng: new Rng(o.seed + PRECISE_BN_SEED), patch: o.patch, onBadSample: o.onBadSample });
}

/** --augment, and --upright's subset of it (configs made before --upright have none). */
export function augmentOptions(cfg: Pick<TrainConfig, 'augment' | 'upright'>): boolean | AugmentOptions {
  return cfg.augment && cfg.upright ? { vflip: false, rotate90: false } : cfg.augment;
}

/** The model the flags and data ask for: the reference UNet, or --encoder's (depth and widths filled in). */
export function wantedArgs(cfg: TrainConfig, nChannels: number): UNetArgs {
  const base = { nChannels, nClasses: cfg.classes, bilinear: cfg.bilinear };
  if ((cfg.encoder ?? 'plain') === 'plain') return { ...base, depth: cfg.depth, baseChannels: cfg.baseChannels }; // configs made before --encoder have none
  return { ...base, encoder: cfg.encoder, encoderDepth: cfg.encoderDepth, decoderChannels: cfg.decoderChannels ?? DEFAULT_DECODER_CHANNELS.slice(0, cfg.encoderDepth) };
}

/** --encoder and the flags of the reference UNet's shape, which it replaces (usage errors). */
function checkEncoder(cfg: Pick<TrainConfig, 'depth' | 'baseChannels' | 'deepSupervision' | 'encoder' | 'encoderDepth' | 'decoderChannels' | 'bilinear'>): void {
  if ((cfg.encoder ?? 'plain') === 'plain') return;
  const names = ['plain', ...Object.keys(ENCODERS)];
  if (!names.includes(cfg.encoder)) throw new OptionError(`--encoder must be one of ${names.join(', ')}; got '${cfg.encoder}'`);
  if (cfg.deepSupervision) throw new OptionError("--deep-supervision is not supported with --encoder (its heads sit on the reference UNet's decoder); leave one of them out");
  const other = [cfg.depth !== trainOptions.depth.default && `--depth ${cfg.depth}`, cfg.baseChannels !== trainOptions.baseChannels.default && `--base-channels ${cfg.baseChannels}`, cfg.bilinear && '--bilinear'].filter(Boolean);
  if (other.length) throw new OptionError(`${other.join(' and ')} only shape the plain UNet: they do not apply to --encoder ${cfg.encoder}; use --encoder-depth / --decoder-channels instead`);
  if (cfg.decoderChannels && cfg.decoderChannels.length !== cfg.encoderDepth)
    throw new OptionError(`--decoder-channels has ${cfg.decoderChannels.length} widths, --encoder-depth ${cfg.encoderDepth} needs one per stage (${cfg.encoderDepth})`);
}

/** --depth, --base-channels, --encoder and --deep-supervision together (usage errors). */
export function checkArchitecture(cfg: Pick<TrainConfig, 'depth' | 'baseChannels' | 'deepSupervision' | 'encoder' | 'encoderDepth' | 'decoderChannels' | 'bilinear'>): void {
  checkEncoder(cfg);
  const shape = architectureProblem(cfg.depth, cfg.baseChannels);
  if (shape) throw new OptionError(`--depth ${cfg.depth} --base-channels ${cfg.baseChannels}: ${shape}; choose a smaller --depth or --base-channels`);
  const ds = cfg.deepSupervision ? deepSupervisionProblem(cfg.depth) : null;
  if (ds) throw new OptionError(ds);
}

/** --ignore-index: the class values (the scanned ones without it), or the flag's one-line refusal. */
function classValues(found: MaskValues, ignoreValue: number, classes: number): MaskValues {
  const r = withoutIgnoreValue(found, ignoreValue, classes);
  if (r.problem !== null) throw new TrainError(r.problem); // as -c against the data: exit 1
  return r.values;
}

/** The refusal of a checkpoint whose architecture differs from the one the flags and data ask for. */
export function checkArgs(ckpt: LoadedCheckpoint, wanted: UNetArgs, deepSupervision = false): void {
  const got = fullArgs(ckpt.modelArgs as UNetArgs);
  const want = fullArgs(wanted);
  const diffs: string[] = [];
  if (got.nChannels !== want.nChannels) diffs.push(`input channels: checkpoint ${got.nChannels}, data/--channels ${want.nChannels}`);
  if (got.nClasses !== want.nClasses) diffs.push(`classes: checkpoint ${got.nClasses}, -c/--classes ${want.nClasses}`);
  if (got.bilinear !== want.bilinear) diffs.push(`upsampling: checkpoint ${got.bilinear ? 'bilinear' : 'transposed conv'}, flags ${want.bilinear ? '--bilinear' : 'no --bilinear'}`);
  if (got.depth !== want.depth && !hasEncoder(got) && !hasEncoder(want)) diffs.push(`depth: checkpoint ${got.depth}, --depth ${want.depth}`);
  if (got.baseChannels !== want.baseChannels && !hasEncoder(got) && !hasEncoder(want)) diffs.push(`base channels: checkpoint ${got.baseChannels}, --base-channels ${want.baseChannels}`);
  diffs.push(...encoderDiffs(got, want));
  // Our checkpoints' optimizer state covers the auxiliary heads' parameters exactly when they have them.
  if (ckpt.kind === 'unet-ts' && (ckpt.auxHeads !== null) !== deepSupervision) diffs.push(`deep supervision: checkpoint ${ckpt.auxHeads ? 'with' : 'without'}, flags ${deepSupervision ? '--deep-supervision' : 'no --deep-supervision'}`);
  const shapeFlags = hasEncoder(got) ? encoderFlags(got) : `${got.bilinear ? ' --bilinear' : ''}${got.depth !== 4 ? ` --depth ${got.depth}` : ''}${got.baseChannels !== 64 ? ` --base-channels ${got.baseChannels}` : ''}`;
  const flags = `-c ${got.nClasses}${shapeFlags}${ckpt.kind === 'unet-ts' && ckpt.auxHeads ? ' --deep-supervision' : ''}`;
  if (diffs.length) throw new TrainError(`${ckpt.path} was trained with another architecture:\n  ${diffs.join('\n  ')}\nPass matching flags (e.g. ${flags}) or start without --load.`);
}

/** Encoder, encoder depth and decoder widths of a checkpoint against the flags. */
function encoderDiffs(got: UNetArgs, want: UNetArgs): string[] {
  const g = fullEncoderArgs(got);
  const w = fullEncoderArgs(want);
  const diffs: string[] = [];
  if (g.encoder !== w.encoder) diffs.push(`encoder: checkpoint ${g.encoder}, --encoder ${w.encoder}`);
  else if (hasEncoder(g) && g.encoderDepth !== w.encoderDepth) diffs.push(`encoder depth: checkpoint ${g.encoderDepth}, --encoder-depth ${w.encoderDepth}`);
  else if (hasEncoder(g) && String(g.decoderChannels) !== String(w.decoderChannels)) diffs.push(`decoder channels: checkpoint ${g.decoderChannels}, --decoder-channels ${w.decoderChannels}`);
  return diffs;
}

const encoderFlags = (a: UNetArgs): string => {
  const f = fullEncoderArgs(a);
  return ` --encoder ${f.encoder}${f.encoderDepth !== 5 ? ` --encoder-depth ${f.encoderDepth}` : ''}${String(f.decoderChannels) !== String(DEFAULT_DECODER_CHANNELS.slice(0, f.encoderDepth)) ? ` --decoder-channels ${f.decoderChannels}` : ''}`;
};

export interface RunParts {
  cfg: TrainConfig;
  hooks: TrainHooks;
  log: Log;
  warn: Log;
  device: Device;
  ampDtype: AutocastDtype | null;
  data: TrainData;
  modelArgs: UNetArgs;
  model: SegmentationModel;
  /** --deep-supervision's heads (trained with the model, saved beside it); null without. */
  auxHeads: AuxHeads | null;
  scaler: GradScaler;
  early: EarlyStopping;
  dataRng: Rng;
  ckpt: LoadedCheckpoint | null;
}

/**
 * 3. The optimizer and scheduler (with the checkpoint's training state when resuming), 4. tracking
 * and the checkpoint folder, and the loaders. `release` gets what train() frees however it ends.
 */
export async function createRun(p: RunParts, release: (() => void)[]): Promise<TrainRun> {
  const { cfg, hooks, log, ckpt, data, model } = p;
  const dist = hooks.dist;
  const cuda = p.device.startsWith('cuda');
  const trainable = p.auxHeads ? new WithAuxHeads(model as UNet, p.auxHeads) : model; // one set of parameters to step and synchronise
  trainable.to({ device: p.device, memoryFormat: cuda ? 'channels_last' : undefined });
  await dist?.wrapModel(trainable, cfg.syncBn);
  const params = trainable.parameters();
  const weights = cfg.classWeights;
  const classWeights = Array.isArray(weights) ? E.tidy(() => E.tensor(Float32Array.from(weights), [weights.length]).to({ device: p.device })) : null;
  if (classWeights) release.push(() => classWeights.dispose());
  const encoder = encoderParameters(model);
  const groups = optimizerParams(params, encoder, cfg.learningRate, cfg.encoderLr);
  const optimizer = createOptimizer(cfg.optimizer, groups, { lr: cfg.learningRate, weightDecay: cfg.weightDecay, momentum: cfg.momentum, nesterov: cfg.nesterov });
  release.push(() => optimizer.dispose());
  const freeze = cfg.freezeEncoder !== 0 && encoder.length > 0 ? new EncoderFreeze(encoder, cfg.freezeEncoder) : null;
  const scheduler = createScheduler(cfg.scheduler, optimizer, { epochs: cfg.epochs, mode: 'max', patience: cfg.lrPatience, ...budgetSchedule(cfg, data.split.train.length, dist?.worldSize ?? 1) });
  const worldSize = dist?.worldSize ?? 1;
  const { globalStep, resumeAt } = resumeTraining(p, optimizer, scheduler);

  const ckptDir = resolve(cfg.checkpointDir);
  let replaceOtherRun = async (): Promise<void> => {};
  if (isMain({ dist })) {
    // Before the run directory exists (a refused start leaves none): writable, stale temp files of
    // a killed run removed, this run its only writer (the lock is released however train() ends).
    await prepareCheckpointDir(ckptDir);
    const claim = await claimCheckpointDir(cfg, ckptDir, log);
    release.push(claim.release);
    replaceOtherRun = claim.replaceOtherRun;
  }
  const { split } = data;
  const config = { ...cfg, device: p.device, maskSuffix: data.maskSuffix, maskValues: data.maskValues, nChannels: data.nChannels, trainImages: split.train.length, valImages: split.val.length, worldSize, versions: versions() };
  // Continuing one of our checkpoints: its run directory's curves go on (the rest of an interrupted
  // epoch dropped), unless it holds later epochs (a branch: a new run directory).
  const continued = ckpt?.kind === 'unet-ts' && ckpt.runDir && existsSync(ckpt.runDir) ? { runDir: ckpt.runDir, step: globalStep, epoch: ckpt.epoch } : undefined;
  const tracker = isMain({ dist })
    ? await Tracker.create({ logdir: cfg.logdir, name: cfg.name || undefined, config, tensorboard: cfg.tensorboard, wandb: cfg.wandb, onWarning: p.warn, continueRun: continued })
    : Tracker.disabled(resolve(cfg.logdir));
  hooks.onRunDir?.(tracker.runDir);
  log(continued && tracker.runDir === continued.runDir ? `Run directory: ${tracker.runDir} (continued after step ${globalStep})` : `Run directory: ${tracker.runDir}`);
  if (continued) tracker.record({ type: 'resume', step: globalStep, epoch: ckpt?.epoch, checkpoint: ckpt?.path });

  const { loaders, onBadSample, skipped } = createLoaders(p);
  hooks.onSplit?.({ train: split.train.map((i) => data.pairs[i].id), val: split.val.map((i) => data.pairs[i].id) });
  // Per rank under data parallelism: every rank validates at the same batches (evaluation is collective).
  const cadence = validationCadence(cfg.valEvery, Math.ceil(split.train.length / worldSize), cfg.batchSize);
  return {
    ...p,
    dist,
    worldSize,
    cuda,
    channelsLast: cuda,
    params,
    classWeights,
    optimizer,
    scheduler,
    freeze,
    tracker,
    ckptDir,
    replaceOtherRun,
    cadence,
    loaders,
    globalStep,
    bnFresh: freshBn(ckpt, cfg, resumeAt),
    lastLoss: Number.NaN,
    nonFinite: 0,
    startStep: globalStep,
    mark: null,
    resumeAt,
    onBadSample,
    skipped,
  };
}

/** A checkpoint of ours restores the training state (and says where the run continues); another kind only gave weights. */
function resumeTraining(p: RunParts, optimizer: Optimizer, scheduler: LRScheduler): { globalStep: number; resumeAt: EpochPosition | null } {
  const { cfg, hooks, log, ckpt, data } = p;
  const dist = hooks.dist;
  if (ckpt?.kind !== 'unet-ts') {
    if (ckpt) log(`Loaded weights only from ${ckpt.path} (${ckpt.kind === 'reference' ? 'reference trainer' : 'nested fork'} format); training starts at epoch 1`);
    return { globalStep: 0, resumeAt: null };
  }
  restore(ckpt, { optimizer, scheduler, scaler: p.scaler, early: p.early, dataRng: p.dataRng });
  const globalStep = ckpt.globalStep;
  const resumeAt = resumePosition(ckpt, { cfg, worldSize: dist?.worldSize ?? 1, data, dist });
  // Each rank's own data generator, where its next batch's draws start.
  if (resumeAt) p.dataRng.loadStateDict(resumeAt.dataRng[dist?.rank ?? 0] as RngStateDict);
  const where = resumeAt && resumeAt.batch > 0 ? `; epoch ${resumeAt.epoch} continues at batch ${resumeAt.batch + 1}` : '';
  log(`Resuming from ${ckpt.path} (epoch ${ckpt.epoch} done, step ${globalStep}${where}): weights, optimizer, scheduler, scaler, early stopping and RNG restored`);
  return { globalStep, resumeAt };
}

/** The train, validation and precise-BN loaders, and --skip-bad's record of the files it left out. */
function createLoaders(p: RunParts) {
  const { cfg, data, hooks } = p;
  const { dataset, split } = data;
  const dist = hooks.dist;
  const batchSize = cfg.batchSize;
  // --skip-bad: an unreadable pair is left out of its batch, with one warning per file.
  const skipped = new Set<string>();
  const onBadSample = cfg.skipBad
    ? (e: DataError, i: number) => {
        const file = e.file ?? data.pairs[i].image;
        if (!skipped.has(file)) p.warn(`--skip-bad: skipping ${e.message.split('\n')[0]}`);
        skipped.add(file);
      }
    : undefined;
  // --patch-size: validation images one at a time (sizes may differ), each whole or by sliding windows (validation.ts).
  const patch = patchOptions(cfg);
  const loaders = {
    train: new DataLoader(dataset, split.train, { batchSize, shuffle: true, rng: p.dataRng, augment: augmentOptions(cfg), patch, onBadSample }),
    val: new DataLoader(dataset, dist ? dist.shardValidation(split.val) : split.val, { batchSize: patch ? 1 : batchSize, shuffle: false, onBadSample }),
    preciseBn: cfg.preciseBn > 0 ? () => preciseBnLoader(dataset, split.train, { batchSize, seed: cfg.seed, patch, onBadSample }) : null,
  };
  return { loaders, onBadSample, skipped };
}

/**
 * Whether precise BatchNorm statistics are current when resuming (the next validation round then
 * reuses them, as the uninterrupted run does): as saved mid-epoch; after an epoch's end they were
 * recomputed when the checkpoint's run used the same --precise-bn.
 */
function freshBn(ckpt: LoadedCheckpoint | null, cfg: TrainConfig, at: EpochPosition | null): boolean {
  if (at) return at.bnFresh === true;
  return ckpt?.kind === 'unet-ts' && cfg.preciseBn > 0 && ckpt.config?.preciseBn === cfg.preciseBn;
}

/** The architecture for the summary: upsampling, depth and base channels where they differ from the reference's; or the encoder's. */
function shape(run: TrainRun): string {
  if (hasEncoder(run.modelArgs)) {
    const f = fullEncoderArgs(run.modelArgs);
    return `encoder ${f.encoder}, encoder depth ${f.encoderDepth}, decoder ${f.decoderChannels.join(',')}`;
  }
  const { depth, baseChannels, bilinear } = fullArgs(run.modelArgs);
  return `${bilinear ? 'bilinear' : 'transposed conv'}${depth === 4 && baseChannels === 64 ? '' : `, depth ${depth}, base ${baseChannels} channels`}`;
}

/** The reference's "Starting training" summary, then the validation schedule: two log lines. */
export function describeRun(run: TrainRun, startEpoch: number): [string, string] {
  const { cfg, dist, data, worldSize } = run;
  const validation = `Validation: ${data.split.val.length > 0 ? (cfg.valLast > 0 ? describeValLast(cfg.valLast, startEpoch) : describeCadence(run.cadence)) : 'none (empty validation set)'}${cfg.preciseBn > 0 ? `; precise BatchNorm statistics over ${cfg.preciseBn} training batches before each` : ''}`;
  const batch = `${cfg.batchSize}${cfg.accumulateGradBatches > 1 ? ` x ${cfg.accumulateGradBatches} accumulated` : ''}${dist ? ` per process x ${worldSize} processes = ${cfg.batchSize * cfg.accumulateGradBatches * worldSize} per optimizer step (${dist.backend}${cfg.syncBn ? ', sync-BN' : ''})` : ''}`;
  const summary = [
    'Starting training:',
    `  Epochs:          ${cfg.timeBudget > 0 && cfg.epochs === NO_EPOCH_CAP ? 'as many as the time budget allows' : cfg.epochs}${startEpoch > 1 ? ` (resuming at ${startEpoch})` : ''}`,
    `  Batch size:      ${batch}`,
    `  Learning rate:   ${cfg.learningRate}`,
    `  Training size:   ${data.split.train.length}`,
    `  Validation size: ${data.split.val.length}`,
    `  Images scaling:  ${cfg.scale}`,
    ...(cfg.patchSize
      ? [
          `  Patches:         ${cfg.patchSize.join('x')}, ${Math.round(cfg.oversampleFg * 100)}% centred on a foreground class; validation of whole images${run.device === 'cpu' ? ' (sliding windows where one would not fit --max-memory)' : ' by sliding windows'}`,
        ]
      : []),
    `  Model:           UNet(${data.nChannels} channels, ${cfg.classes} classes, ${shape(run)}) ${run.model.numParameters().toLocaleString('en')} parameters${run.auxHeads ? `, deep supervision (${run.auxHeads.heads.length} auxiliary heads)` : ''}`,
    `  Device:          ${run.device}${run.ampDtype ? ` (AMP ${run.ampDtype})` : ''}, ${E.getNumThreads()} threads`,
  ].join('\n');
  return [summary, validation];
}
