/** What one training run shares between its steps (train.ts builds it; epoch.ts and validation.ts use it). */
import { UserError } from '../config/errors.js';
import type { TrainConfig } from '../config/options.js';
import type { DataError, DataLoader, Pair, Rng, RngStateDict, SegmentationDataset } from '../data/index.js';
import type { DistContext } from '../distributed/index.js';
import type { AutocastDtype, Device, Tensor } from '../engine/index.js';
import type { EpochPosition, MaskValues } from '../model/checkpoint.js';
import type { SegmentationModel, UNetArgs } from '../model/index.js';
import type { GradScaler, GradScalerOptions, LRScheduler, Optimizer } from '../optim/index.js';
import type { EncoderFreeze } from './freeze.js';
import type { Tracker } from '../tracking/index.js';
import type { Cadence } from './cadence.js';
import type { AuxHeads } from './deep-supervision.js';
import type { ModelEma } from './ema.js';
import type { EarlyStopping } from './early-stopping.js';

export class TrainError extends UserError {}

export interface TrainHooks {
  log?: (line: string) => void;
  warn?: (line: string) => void;
  /** Set by the CLI on SIGINT/SIGTERM: the loop stops between steps and saves INTERRUPTED.pth. */
  signal?: AbortSignal;
  /** Called once the run directory exists (the dashboard uses it). */
  onRunDir?: (dir: string) => void;
  /** Builds the model instead of `createModel(args)` (tests: a narrow UNet with the same layout, for long runs). */
  createModel?: (args: UNetArgs) => SegmentationModel;
  /** Data-parallel run: this process's rank, collectives and shards (src/distributed). */
  dist?: DistContext;
  /** Sees the split and every training batch, in order (tests: feed the same data to PyTorch). */
  onSplit?: (split: { train: string[]; val: string[] }) => void;
  onTrainBatch?: (epoch: number, ids: string[]) => void;
  /** Replaces each measured validation Dice (tests: score sequences that improve, drop and plateau). */
  validationScore?: (measured: number, at: { epoch: number; step: number }) => number;
  /** A GradScaler with these options whatever the device (tests: its skip and backoff logic on CPU, in fp32). */
  gradScaler?: GradScalerOptions;
  /** --ema's warm-up constant instead of 2000 (tests: an average that differs from the weights within a few steps). */
  emaTau?: number;
  /** Stands in for --time-budget's planner (tests: a budget that ends the run after a chosen epoch). */
  budget?: (run: TrainRun) => RunBudget;
}

export interface TrainResult {
  epochsRun: number;
  bestScore: number | null;
  bestEpoch: number;
  lastScore: number;
  stoppedEarly: boolean;
  interrupted: boolean;
  checkpointDir: string;
  runDir: string;
  /** best_model.pth written by this run, or by the run it continues (then bestModelFromEarlier). */
  bestModel: string | null;
  bestModelFromEarlier: boolean;
  /** The last checkpoint this run wrote. */
  lastCheckpoint: string | null;
  /** --time-budget's account of the run. */
  budget?: BudgetSummary;
}

/** The data side of a run: steps 1 and 2 of the recipe. */
export interface TrainData {
  pairs: Pair[];
  maskSuffix: string;
  maskValues: MaskValues;
  nChannels: number;
  dataset: SegmentationDataset;
  /** Indices into `pairs`. */
  split: { train: number[]; val: number[] };
}

export interface TrainRun {
  cfg: TrainConfig;
  hooks: TrainHooks;
  log: (line: string) => void;
  warn: (line: string) => void;
  device: Device;
  cuda: boolean;
  /** NHWC convolutions: the fast path on GPUs (tensor cores). */
  channelsLast: boolean;
  ampDtype: AutocastDtype | null;
  dist: DistContext | undefined;
  worldSize: number;
  data: TrainData;
  modelArgs: UNetArgs;
  model: SegmentationModel;
  /** --deep-supervision's auxiliary heads (train/deep-supervision.ts); null without. */
  auxHeads: AuxHeads | null;
  params: Tensor[];
  /** --class-weights resolved: the loss's per-class weights on the device (null: none). */
  classWeights: Tensor | null;
  optimizer: Optimizer;
  scheduler: LRScheduler;
  /** --freeze-encoder (train/freeze.ts); null without. */
  freeze: EncoderFreeze | null;
  scaler: GradScaler;
  early: EarlyStopping;
  /** Shuffling and augmentation draws (per rank); saved in checkpoints. */
  dataRng: Rng;
  tracker: Tracker;
  ckptDir: string;
  /** --exist-ok: removes the replaced run's checkpoints (once, before this run's first checkpoint). */
  replaceOtherRun: () => Promise<void>;
  cadence: Cadence;
  /** preciseBn: a fresh loader for each recomputation (with --patch-size: the same random patches every time). */
  loaders: { train: DataLoader; val: DataLoader; preciseBn: (() => DataLoader) | null };
  /** Optimizer steps so far (the x axis of every logged value). */
  globalStep: number;
  /** Precise BN statistics recomputed since the last optimizer step. */
  bnFresh: boolean;
  /** The last loss read (NaN before the first). */
  lastLoss: number;
  /** Non-finite losses in a row (the guard in epoch.ts). */
  nonFinite: number;
  /** globalStep when this process started: no INTERRUPTED.pth before it has stepped. */
  startStep: number;
  /** The last optimizer step of the epoch in progress: where an INTERRUPTED.pth continues. */
  mark: EpochMark | null;
  /** Resuming mid-epoch (checked against this run): the epoch's position. */
  resumeAt: EpochPosition | null;
  /** --skip-bad: skips an unreadable training pair with a warning; `skipped` holds the files. */
  onBadSample?: (err: DataError, index: number) => void;
  skipped: Set<string>;
  /** --ema's average of the weights (ema.ts): validated and saved as the model; absent without. */
  ema?: ModelEma;
  /** --time-budget's planner (budget.ts); absent without a budget. */
  budget?: RunBudget;
}

/** --time-budget's hooks in the training loop (budget.ts): each true result stops the run at that point. */
export interface RunBudget {
  afterStep(run: TrainRun): Promise<boolean>;
  roundDone(run: TrainRun, from: number): Promise<void>;
  afterEpoch(run: TrainRun, epoch: number, from: number, scored?: boolean): Promise<boolean>;
  /** The budget has ended the run: the epoch in progress is its last. */
  readonly ended: boolean;
  finish(run: TrainRun): Promise<BudgetSummary>;
}

/** How a --time-budget run used its budget (the summary, --json and config.json show it). */
export interface BudgetSummary {
  seconds: number;
  /** Seconds from the command's start to the end of the final checkpoint. */
  used: number;
  /** The optimizer step the schedule was last planned to end at. */
  plannedSteps: number | null;
  steps: number;
  /** Whether the budget ended the run (rather than -e, early stopping or Ctrl-C). */
  endedByBudget: boolean;
}

/** An optimizer-step boundary inside an epoch (epoch.ts sets it, train.ts saves it). */
export interface EpochMark {
  epoch: number;
  /** Batches of the epoch done. */
  batch: number;
  /** The epoch's sample order; null before its first batch (the shuffle is still to come). */
  order: readonly number[] | null;
  /** The data generator where the next batch's draws start (before the shuffle when `batch` is 0). */
  rng: RngStateDict;
  /** The epoch's loss sum so far (this rank's, on the run's device). */
  loss: Tensor;
  seen: number;
  seconds: number;
  /**
   * What moves between optimizer steps besides the gradients: BatchNorm statistics (copies) and,
   * through validation rounds, the scheduler and the learning rate. Restored before a stop inside
   * an accumulation window is saved (its micro-batches run again on resume).
   */
  buffers: Map<string, Tensor>;
  scheduler: unknown;
  /** Every parameter group's lr (--encoder-lr: two). */
  lrs: number[];
  bnFresh: boolean;
}

/** Only rank 0 writes checkpoints, logs and draws progress bars. */
export const isMain = (run: Pick<TrainRun, 'dist'>): boolean => !run.dist || run.dist.isMain;
