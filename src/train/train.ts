/**
 * unet train: the reference trainer's recipe (milesial/Pytorch-UNet train.py) with the guide's
 * features (early stopping, best model, full checkpoints, gradient accumulation) and its bugs fixed.
 * The steps are numbered as the reference's; setup.ts, epoch.ts, validation.ts and state.ts hold
 * their details.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { OptionError, type TrainConfig, checkClassNames, checkClassWeights, classNameCount } from '../config/options.js';
import { DataError, Rng, listSome } from '../data/index.js';
import * as E from '../engine/index.js';
import { type LoadedCheckpoint, loadCheckpoint } from '../model/checkpoint.js';
import { type UNetArgs, createModel, fullEncoderArgs, hasEncoder } from '../model/index.js';
import type { RunEnd } from '../tracking/index.js';
import { GradScaler } from '../optim/index.js';
import { type EpochMark, TrainError, type TrainHooks, type TrainResult, type TrainRun, isMain } from './context.js';
import { saveAfterDistFailure } from './dist-failure.js';
import { TimeBudget, leaveBudget, stepsPerEpoch } from './budget.js';
import { EarlyStopping } from './early-stopping.js';
import { type EpochStats, disposeMark, trainEpoch } from './epoch.js';
import { resolveClassWeights } from './class-weights.js';
import { AuxHeads } from './deep-supervision.js';
import { checkEncoderFlags, loadPretrained, weightsArgs } from './freeze.js';
import { EMA_TAU, ModelEma } from './ema.js';
import { checkArgs, checkArchitecture, createRun, describeRun, loadData, wantedArgs } from './setup.js';
import { BestWeights, loadWeights, nextEpochStart, pruneCheckpoints, saveInterrupted, saveTrainingState } from './state.js';
import { type Validation, logValidation, preciseBn, validate } from './validation.js';
import { validatesAt, valLastProblem } from './cadence.js';
import { epochOf } from './progress.js';

export { TrainError, type TrainHooks, type TrainResult } from './context.js';
export { type Restorable, loadWeights, restore } from './state.js';

export const OOM_ADVICE = [
  'Out of memory. Remedies, in the order the guide gives them:',
  '  1. mixed precision:        --amp',
  '  2. a smaller batch:        -b 2 (or -b 1)',
  '  3. smaller images:         -s 0.25',
  '  4. bilinear upsampling:    --bilinear',
  '  5. gradient accumulation:  --accumulate-grad-batches 4 (keeps the effective batch)',
  'Saved checkpoints were not touched.',
].join('\n');

const isOom = (e: unknown) => (e as { code?: string })?.code === 'ERR_OUT_OF_MEMORY';

export async function train(cfg: TrainConfig, hooks: TrainHooks = {}): Promise<TrainResult> {
  checkClassNames(cfg.classNames ?? [], cfg.classes);
  checkArchitecture(cfg);
  const unscored = valLastProblem(cfg);
  if (unscored) throw new OptionError(unscored);
  checkClassWeights(cfg.classWeights, cfg.classes);
  checkEncoderFlags(cfg);
  const log = hooks.log ?? ((l: string) => console.log(l));
  const warn = hooks.warn ?? ((l: string) => console.warn(`warning: ${l}`));
  const device = E.resolveDevice(cfg.device);
  E.manualSeed(cfg.seed);
  if (device.startsWith('cuda')) E.setBackendFlags({ cudnnBenchmark: true, allowTF32: true });

  // 0. A checkpoint to resume from (read first: its mask values and model args must agree).
  const ckpt: LoadedCheckpoint | null = cfg.load ? await loadCheckpoint(cfg.load, '-f/--load') : null;
  // Without --class-names, a checkpoint's names carry over (resuming or fine-tuning keeps them).
  if (!cfg.classNames?.length) cfg = { ...cfg, classNames: ckpt?.classNames?.length === classNameCount(cfg.classes) ? ckpt.classNames : [] };

  // 1. Create dataset  2. Split into train / validation partitions (seeded)
  const data = await loadData(cfg, hooks.dist, ckpt, log, warn);
  // --class-weights auto: resolved once, recorded in config.json and the checkpoints as numbers.
  cfg = { ...cfg, classWeights: await resolveClassWeights(cfg.classWeights, cfg.classes, data, log, cfg.skipBad) };

  // The model (the checkpoint's architecture must match), AMP and its loss scaling, early stopping
  const wanted = fromCheckpoint({ ...wantedArgs(cfg, data.nChannels), ...(await weightsArgs(cfg, data.nChannels, ckpt?.modelArgs)) }, ckpt);
  const model = hooks.createModel ? hooks.createModel(wanted) : createModel(wanted);
  const modelArgs = model.args; // as built: a test's narrow createModel records its own width
  const auxHeads = cfg.deepSupervision ? new AuxHeads(modelArgs) : null; // training only, beside the model
  const ampDtype = cfg.amp ? E.ampDtypeFor(device) : null;
  if (cfg.amp && !ampDtype) warn(E.CPU_AMP_NOTE);
  const scaler = new GradScaler(hooks.gradScaler ? { device, ...hooks.gradScaler } : { enabled: ampDtype === 'float16', device });
  const dataRng = new Rng(cfg.seed + 1 + 7919 * (hooks.dist?.rank ?? 0)); // per-rank augmentation draws
  const early = new EarlyStopping(cfg.patience, cfg.minDelta);
  const release: (() => void)[] = []; // optimizer state etc.: freed when train() ends, however it ends
  try {
    if (ckpt?.modelArgs) checkArgs(ckpt, modelArgs, auxHeads !== null);
    if (ckpt) loadWeights(model, ckpt);
    if (cfg.encoderWeights) log(ckpt ? `--encoder-weights not read: the weights come from ${ckpt.path}` : `Encoder weights: ${await loadPretrained(model, cfg, data.nChannels)}`);
    // The heads a checkpoint saved (none: they start fresh, e.g. from a plain model's weights).
    if (ckpt?.auxHeads && auxHeads) loadWeights(auxHeads, ckpt, ckpt.auxHeads, 'deep_supervision_state_dict');
    // 3. Create data loaders  4. Set up the optimizer and the LR scheduler (restored when resuming),
    // and tracking: run directory, metrics, TensorBoard, optional W&B
    const run = await createRun({ cfg, hooks, log, warn, device, ampDtype, data, modelArgs, model, auxHeads, scaler, early, dataRng, ckpt }, release);
    startEma(run, ckpt, release);
    const startEpoch = ckpt?.kind === 'unet-ts' ? ckpt.epoch + 1 : 1;
    for (const line of describeRun(run, startEpoch)) log(line);
    if (run.ema)
      log(
        `  Weight EMA:      decay ${cfg.ema} (warm-up tau ${run.ema.warmup === 'auto' && cfg.timeBudget > 0 ? 'fitted to the budget' : `${Math.round(run.ema.tau)} steps`}, ${run.ema.updates} done); validation and best_model.pth use the average`,
      );
    if (hooks.budget) run.budget = hooks.budget(run);
    else if (cfg.timeBudget > 0) run.budget = new TimeBudget(cfg.timeBudget, run, startEpoch);
    else leaveBudget(run, ckpt);
    let end: RunEnd = 'failed'; // what the dashboard and the report show
    try {
      // 5. Begin training (epoch.ts: micro-batches and optimizer steps; validation.ts; state.ts: checkpoints)
      const result = await epochs(run, startEpoch, release);
      end = result.interrupted ? 'interrupted' : result.stoppedEarly ? 'stopped early' : 'finished';
      return result;
    } finally {
      await run.tracker.close(end);
    }
  } catch (e) {
    if (isOom(e)) throw new TrainError(`${(e as Error).message}\n\n${OOM_ADVICE}`, 3);
    throw e;
  } finally {
    for (const f of release) f();
    scaler.dispose();
    auxHeads?.dispose();
    model.dispose();
  }
}

/**
 * What the flags cannot say of an encoder model loaded with -f: an imported smp model's head kernel,
 * the normalisation its weights expect. The rest must match (checkArgs).
 */
function fromCheckpoint(wanted: UNetArgs, ckpt: LoadedCheckpoint | null): UNetArgs {
  const got = ckpt?.modelArgs;
  if (!got || !hasEncoder(got) || got.encoder !== wanted.encoder) return wanted;
  const { headKernel, normalize } = fullEncoderArgs(got);
  return { ...wanted, headKernel, ...(normalize ? { normalize } : {}) };
}

/**
 * --ema: the average starts from the loaded weights (a checkpoint saved with --ema holds it as
 * model_state_dict); then the training weights of such a checkpoint replace them in the model, with
 * or without --ema.
 */
function startEma(run: TrainRun, ckpt: LoadedCheckpoint | null, release: (() => void)[]): void {
  if (run.cfg.ema > 0) {
    const ema = new ModelEma(run.model, createModel(run.modelArgs), run.cfg.ema, { device: run.device, memoryFormat: run.channelsLast ? 'channels_last' : undefined }, run.hooks.emaTau ?? run.cfg.emaWarmup);
    // Under --time-budget the planned steps come later (budget.ts plans them again as it goes).
    if (!(run.cfg.timeBudget > 0)) ema.planFor(run.cfg.epochs * stepsPerEpoch(run));
    release.push(() => ema.dispose());
    run.ema = ema;
    if (ckpt?.rawModel) ema.updates = ckpt.emaUpdates;
  } else if (run.cfg.emaWarmup !== EMA_TAU) run.warn('--ema-warmup has no effect without --ema');
  // A checkpoint saved with --ema: training goes on from its raw weights, which replace the average
  // that loadWeights put into the model (with --ema the average was copied from there first).
  if (ckpt?.rawModel) loadWeights(run.model, ckpt, ckpt.rawModel, 'raw_model_state_dict');
}

/** The epoch loop: train, validate, step the scheduler, checkpoint, stop early or on a signal. */
async function epochs(run: TrainRun, startEpoch: number, release: (() => void)[]): Promise<TrainResult> {
  const { cfg, early } = run;
  const result: TrainResult = {
    epochsRun: 0,
    bestScore: early.state.best_score,
    bestEpoch: early.state.best_epoch,
    lastScore: Number.NaN,
    stoppedEarly: false,
    interrupted: false,
    checkpointDir: run.ckptDir,
    runDir: run.tracker.runDir,
    bestModel: null,
    bestModelFromEarlier: false,
    lastCheckpoint: null,
  };
  const best = new BestWeights();
  release.push(() => best.dispose()); // also when an error ends the run
  release.push(() => disposeMark(run));
  let epoch = startEpoch;
  let stopped: EpochStats | null = null;
  try {
    for (; epoch <= cfg.epochs; epoch++) {
      const stats = await trainEpoch(run, epoch);
      if (stats.aborted) {
        stopped = stats;
        break;
      }
      disposeMark(run);
      const endStart = performance.now();
      // --val-last: the budget may end the run mid-epoch, which makes this epoch the last.
      const scoring = validatesAt(epoch, cfg.epochs, cfg.valLast) || run.budget?.ended === true;
      if (await endEpoch(run, epoch, stats, result, best, scoring)) break;
      if (await run.budget?.afterEpoch(run, epoch, endStart, scoring)) {
        // Slower than planned, the budget ends the run after an unscored epoch: score it now (its end was budgeted).
        if (!scoring) await lateScore(run, epoch, stats, result);
        break;
      }
    }
  } catch (e) {
    throw await saveAfterDistFailure(run, e, epoch, result.lastScore); // a worker died or hung
  }
  if (stopped || run.hooks.signal?.aborted) {
    // One turn of the event loop first: a second Ctrl-C queued with the first stops the process
    // here, and later ones end it at once even inside the save (train/command.ts).
    await new Promise((r) => setImmediate(r));
    result.interrupted = true;
    await saveInterruptedState(run, result, stopped ? run.mark : null, epoch - 1, stopped?.dataError);
  }
  best.dispose();
  if (run.budget) result.budget = await run.budget.finish(run);
  result.bestScore = early.state.best_score;
  result.bestEpoch = early.state.best_epoch;
  // None written by this run: a continued run's best model is the one it resumed with, if kept here.
  const earlier = join(run.ckptDir, 'best_model.pth');
  if (result.bestModel === null && startEpoch > 1 && early.state.best_score !== null && existsSync(earlier)) {
    result.bestModel = earlier;
    result.bestModelFromEarlier = true;
  }
  const skipped = [...run.skipped];
  if (skipped.length > 0) run.log(`Skipped ${skipped.length} unreadable file(s) (--skip-bad), each in every epoch: ${listSome(skipped, 5)}`);
  run.tracker.record({
    type: 'final',
    bestScore: result.bestScore,
    bestEpoch: result.bestEpoch,
    epochs: result.epochsRun,
    stoppedEarly: result.stoppedEarly,
    ...(skipped.length ? { skippedFiles: skipped } : {}),
  });
  return result;
}

/**
 * INTERRUPTED.pth once this process has made an optimizer step (before that, the checkpoint it
 * started from, if any, holds the same state). A data error is reported after it, naming the file.
 */
async function saveInterruptedState(run: TrainRun, result: TrainResult, mark: EpochMark | null, completed: number, dataError?: DataError): Promise<void> {
  const path = join(run.ckptDir, 'INTERRUPTED.pth');
  const stepped = run.globalStep > run.startStep;
  if (stepped) {
    await saveInterrupted(run, path, completed, mark, result.lastScore);
    result.lastCheckpoint = path;
    const where = mark && mark.batch > 0 ? ` (epoch ${mark.epoch}, after batch ${mark.batch}, step ${run.globalStep}; --resume continues from there)` : '';
    run.log(`Interrupted: saved ${path}${where}`);
  } else {
    run.log('Interrupted before the first optimizer step: no INTERRUPTED.pth written (nothing new to save)');
  }
  if (!dataError) return;
  // One line: the problem, its hint, what was saved and the ways on.
  const problem = `${dataError.message.split('\n')[0].replace(/\.$/, '')}.${dataError.hint ? ` ${dataError.hint}` : ''}`;
  const saved = stepped ? `Saved ${path}: fix or remove the file, then continue with --resume` : 'Nothing trained yet: fix or remove the file and start again';
  throw new DataError(`${problem} ${saved}, or pass --skip-bad to skip unreadable pairs with a warning.`, { file: dataError.file });
}

/**
 * After an epoch: validation (unless --val-last leaves this epoch unscored), scheduler, early
 * stopping, checkpoints. Returns true when training stops early.
 */
async function endEpoch(run: TrainRun, epoch: number, stats: EpochStats, result: TrainResult, best: BestWeights, scoring: boolean): Promise<boolean> {
  const { cfg, tracker, optimizer, scheduler } = run;
  const imgPerSec = stats.images / stats.seconds;
  tracker.scalar('img/s', imgPerSec, run.globalStep);
  const v = scoring ? await validateEpoch(run, epoch, stats) : null;
  // The plateau scheduler steps at the validation rounds; here only when the epoch's end is the round.
  if (scheduler.interval === 'metric') {
    if (v && (run.cadence.unit === 'epoch' || run.data.split.val.length === 0)) scheduler.step(v.dice);
  } else if (scheduler.interval !== 'step') scheduler.step(); // per-step ones step in epoch.ts
  tracker.scalar('learning rate', optimizer.lr, run.globalStep);
  tracker.scalar('epoch', epoch, run.globalStep);
  const s = v ? await recordScore(run, epoch, stats, v) : null;
  if (!s) recordEpoch(run, epoch, stats, 'epoch');
  result.epochsRun++;
  result.lastScore = s ? s.score : Number.NaN; // INTERRUPTED.pth's val_score: this epoch's, if it was scored
  const validated = s ? `, validation Dice ${s.score.toFixed(4)}${s.isBest ? ' (best)' : ''}` : ` (no validation: --val-last ${cfg.valLast})`;
  run.log(`Epoch ${epochOf(epoch, cfg.epochs)}: loss ${stats.loss.toFixed(4)}${validated}, lr ${optimizer.lr.toExponential(2)}, ${imgPerSec.toFixed(1)} img/s`);

  const epochPath = epochCheckpoint(run, epoch);
  const ranks = run.dist ? await nextEpochStart(run, epoch) : undefined;
  await saveTrainingState(run, epochPath, epoch, stats.loss, s?.score ?? Number.NaN, ranks);
  result.lastCheckpoint = epochPath;
  if (s?.isBest) {
    await saveBest(run, epoch, stats, s.score, result, ranks);
    if (cfg.patience > 0) best.snapshot(run.ema?.model ?? run.model);
  }
  if (cfg.keepLast > 0 && isMain(run)) await pruneCheckpoints(run.ckptDir, cfg.keepLast);
  await tracker.flush();
  if (!run.cuda) E.mallocTrim(); // hand freed activation memory back to the OS between epochs
  if (!s?.stop) return false;
  run.log(`Early stopping: no Dice gain of ${cfg.minDelta} for ${cfg.patience} epochs; restoring the best weights (epoch ${run.early.state.best_epoch}).`);
  best.restoreInto(run.ema?.model ?? run.model);
  result.stoppedEarly = true;
  return true;
}

/** Precise BN, then the validation set's score (without one: minus the training loss). */
async function validateEpoch(run: TrainRun, epoch: number, stats: EpochStats): Promise<Validation> {
  await preciseBn(run); // also without a validation set: the checkpoint gets the recomputed statistics
  return run.data.split.val.length > 0 ? await validate(run, epoch, true) : { dice: -stats.loss, metrics: null, sample: null };
}

/** A validated epoch's logging and early stopping's verdict. */
async function recordScore(run: TrainRun, epoch: number, stats: EpochStats, v: Validation, type: 'epoch' | 'validation' = 'epoch'): Promise<{ score: number; isBest: boolean; stop: boolean }> {
  const score = v.dice;
  await logValidation(run, score, v.sample);
  const names = run.cfg.classNames.length ? { classNames: run.cfg.classNames } : {};
  const perClass = v.metrics ? { perClassDice: v.metrics.perClassDice, perClassIoU: v.metrics.perClassIoU, ...names } : {};
  recordEpoch(run, epoch, stats, type, score, perClass);
  return { score, ...run.early.update(score, epoch) };
}

/** An epoch's metrics.jsonl record; `valDice` and the per-class scores only where it was validated. */
function recordEpoch(run: TrainRun, epoch: number, stats: EpochStats, type: 'epoch' | 'validation', valDice?: number, perClass: object = {}): void {
  const scored = valDice === undefined ? {} : { valDice };
  run.tracker.record({ type, epoch, step: run.globalStep, loss: stats.loss, ...scored, lr: run.optimizer.lr, seconds: stats.seconds, imgPerSec: stats.images / stats.seconds, ...perClass });
}

const epochCheckpoint = (run: TrainRun, epoch: number) => join(run.ckptDir, `checkpoint_epoch${epoch}.pth`);

async function saveBest(run: TrainRun, epoch: number, stats: EpochStats, score: number, result: TrainResult, ranks?: Awaited<ReturnType<typeof nextEpochStart>>): Promise<void> {
  const bestPath = join(run.ckptDir, 'best_model.pth');
  await saveTrainingState(run, bestPath, epoch, stats.loss, score, ranks);
  result.bestModel = bestPath;
}

/**
 * The last epoch's score when the budget ended the run after an epoch --val-last left unscored: its
 * checkpoint is written again with the score (and precise BN's statistics), its record is a
 * validation record beside the epoch's.
 */
async function lateScore(run: TrainRun, epoch: number, stats: EpochStats, result: TrainResult): Promise<void> {
  const s = await recordScore(run, epoch, stats, await validateEpoch(run, epoch, stats), 'validation');
  result.lastScore = s.score;
  run.log(`Epoch ${epoch} was the last the budget allowed: validation Dice ${s.score.toFixed(4)}${s.isBest ? ' (best)' : ''}`);
  const ranks = run.dist ? await nextEpochStart(run, epoch) : undefined;
  await saveTrainingState(run, epochCheckpoint(run, epoch), epoch, stats.loss, s.score, ranks);
  if (s.isBest) await saveBest(run, epoch, stats, s.score, result, ranks);
  await run.tracker.flush();
}
