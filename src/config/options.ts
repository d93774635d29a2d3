/**
 * The typed options tables: one entry per flag drives the CLI parser, --help, the run's
 * config.json and the checkpoint's `config`. Values are validated at the boundary by parsers.ts.
 */
import {
  type ClassWeights, LOSSES, type LossName, MAX_PIXELS, OptionError, type OptionSpec, type Parser, type TileSetting, autoOrNonNegInt, autoOrPosInt, channels, choice, classNamesParser, classWeightsParser, defaultWorkers, decoderChannelsParser, depthParser, device, encoderDepthParser, encoderName, durationParser, emaDecayParser, foldsParser, ignoreValueParser, nonNegFloat, nonNegInt, overlapParser, patchSizeParser, percent, port, posFloat, posInt, scaleParser, str, tileParser, unit,
} from './parsers.js';

// Everything the tables' users need from the parsers (OptionError, posInt, TileSetting, ...).
export * from './parsers.js';

// ------------------------------------------------------------------------------------------------
// Fragments shared by several commands' tables (the same flag, help and default everywhere)

const deviceOption = { flags: '--device <device>', help: 'auto, cpu, cuda or cuda:N', default: 'auto', parse: device } satisfies OptionSpec<string>;
const workersOption = { flags: '--workers <n>', help: 'parallel image decoders', default: defaultWorkers, parse: posInt } satisfies OptionSpec<number>;
const maskThresholdOption = { flags: '-t, --mask-threshold <p>', help: 'probability threshold for binary (1-class) models', default: 0.5, parse: unit } satisfies OptionSpec<number>;
const ampInferenceOption = { flags: '--amp', help: 'mixed precision inference: fp16 on CUDA; bf16 on CPUs with native bf16 (AVX512-BF16/AMX), fp32 on other CPUs', default: false as boolean } satisfies OptionSpec<boolean>;
const hostOption = { flags: '--host <host>', help: 'address to bind (127.0.0.1 keeps it private)', default: '127.0.0.1', parse: str } satisfies OptionSpec<string>;

// ------------------------------------------------------------------------------------------------
// unet train (defaults as in the guide and the reference trainer)

/** --freeze-encoder: a number of epochs, or 'all'. */
const freezeParser: Parser<number | 'all'> = (raw, flag) => (raw === 'all' ? 'all' : nonNegInt(raw, flag));

export const trainOptions = {
  epochs: { flags: '-e, --epochs <n>', help: 'number of epochs', default: 5, parse: posInt },
  batchSize: { flags: '-b, --batch-size <n>', help: 'images per batch', default: 1, parse: posInt },
  learningRate: { flags: '-l, --learning-rate <lr>', help: 'learning rate', default: 1e-5, parse: posFloat },
  scale: { flags: '-s, --scale <s>', help: 'downscaling factor of the images, in (0, 1]', default: 0.5, parse: scaleParser },
  validation: { flags: '-v, --validation <percent>', help: 'percent of the data used for validation', default: 10, parse: percent },
  classes: { flags: '-c, --classes <n>', help: 'number of classes incl. background (1 = binary with sigmoid)', default: 2, parse: posInt },
  load: { flags: '-f, --load <path>', help: 'resume from our checkpoint, or start from reference weights', default: '', parse: str },
  classNames: { flags: '--class-names <names>', help: "class names incl. background, comma-separated (e.g. background,sky,building; 2 for -c 1), stored in the checkpoint and shown instead of class numbers; in --config also a 'classes' map {0: background, 1: sky, ...}", default: [] as string[], parse: classNamesParser },
  bilinear: { flags: '--bilinear', help: 'bilinear upsampling instead of transposed convolutions', default: false },
  amp: { flags: '--amp', help: 'mixed precision: fp16 + GradScaler on CUDA; bf16 on CPUs with native bf16 (AVX512-BF16/AMX), fp32 on other CPUs (UNET_CPU_AMP=bf16 forces bf16)', default: false },
  accumulateGradBatches: { flags: '--accumulate-grad-batches <n>', help: 'step the optimizer every n batches', default: 1, parse: posInt },
  imgs: { flags: '--imgs <dir>', help: 'directory of input images', default: 'data/imgs', parse: str },
  masks: { flags: '--masks <dir>', help: 'directory of masks (same base names)', default: 'data/masks', parse: str },
  maskSuffix: { flags: '--mask-suffix <suffix>', help: "mask name = image name + suffix ('auto' detects _mask)", default: 'auto', parse: (r: string) => r },
  checkpointDir: { flags: '--checkpoint-dir <dir>', help: 'where checkpoints are written', default: 'checkpoints', parse: str },
  existOk: { flags: '--exist-ok', help: "replace another run's checkpoints in --checkpoint-dir (removed when this run writes its first checkpoint); without it such a folder is refused", default: false },
  device: deviceOption,
  seed: { flags: '--seed <n>', help: 'random seed (split, shuffling, initialisation)', default: 0, parse: nonNegInt },
  patience: { flags: '--patience <n>', help: 'early stopping: epochs without improvement (0 = off)', default: 10, parse: nonNegInt },
  minDelta: { flags: '--min-delta <d>', help: 'early stopping: smallest Dice gain that counts', default: 1e-3, parse: nonNegFloat },
  optimizer: { flags: '--optimizer <name>', help: 'rmsprop, adam, adamw or sgd', default: 'rmsprop' as 'rmsprop' | 'adam' | 'adamw' | 'sgd', parse: choice('rmsprop', 'adam', 'adamw', 'sgd') },
  scheduler: { flags: '--scheduler <name>', help: 'plateau, cosine, poly or none', default: 'plateau' as 'plateau' | 'cosine' | 'poly' | 'none', parse: choice('plateau', 'cosine', 'poly', 'none') },
  weightDecay: { flags: '--weight-decay <wd>', help: 'weight decay', default: 1e-8, parse: nonNegFloat },
  momentum: { flags: '--momentum <m>', help: 'momentum (RMSprop, SGD)', default: 0.999, parse: unit },
  gradClip: { flags: '--grad-clip <norm>', help: 'clip the gradient norm (0 = off)', default: 1.0, parse: nonNegFloat },
  augment: { flags: '--augment', help: 'random flips, 90-degree rotations, scale and brightness jitter', default: false },
  upright: { flags: '--upright', help: 'with --augment: the images have an up (photos, road scenes): horizontal flips, scale and brightness only, no vertical flips or 90-degree rotations', default: false },
  workers: workersOption,
  channels: { flags: '--channels <n>', help: "input channels ('auto' from the data)", default: 'auto' as 'auto' | number, parse: channels },
  valEvery: { flags: '--val-every <steps>', help: "validation rounds that step the plateau scheduler: 'auto' = the reference's, every n_train // (5 x batch) batches; N = every N optimizer steps; 0 = end of epoch only", default: 'auto' as 'auto' | number, parse: autoOrNonNegInt },
  valLast: { flags: '--val-last <n>', help: "validate (and write best_model.pth) only at the first epoch's end and the last N epochs' ends (0 = every epoch): for schedules that decay to their planned end (poly, cosine, --time-budget), where the last epoch scores best; needs --val-every 0, --patience 0 and a scheduler other than plateau", default: 0, parse: nonNegInt },
  lrPatience: { flags: '--lr-patience <n>', help: 'plateau scheduler: validation rounds without improvement before the lr is divided by 10', default: 5, parse: nonNegInt },
  preciseBn: { flags: '--precise-bn <batches>', help: 'recompute BatchNorm statistics over this many training batches before each validation and checkpoint (0 = off)', default: 0, parse: nonNegInt },
  keepLast: { flags: '--keep-last <k>', help: 'keep only the last K epoch checkpoints (0 = all)', default: 0, parse: nonNegInt },
  skipUnpaired: { flags: '--skip-unpaired', help: 'skip images without masks (and masks without images) with a warning', default: false },
  skipBad: { flags: '--skip-bad', help: 'skip image/mask pairs that cannot be decoded (damaged files) with a warning naming each, instead of stopping', default: false },
  maxPixels: { flags: '--max-pixels <n>', help: 'refuse images larger than this many pixels', default: MAX_PIXELS, parse: posInt },
  logdir: { flags: '--logdir <dir>', help: 'where run directories (metrics, TensorBoard files, report) go', default: 'runs', parse: str },
  name: { flags: '--name <name>', help: 'run name (default: a timestamp)', default: '', parse: (r: string) => r },
  tensorboard: { flags: '--no-tensorboard', help: 'do not write TensorBoard event files', default: true },
  dashboard: { flags: '--dashboard', help: 'serve the live dashboard while training', default: false },
  port: { flags: '--port <n>', help: 'dashboard port', default: 6006, parse: port },
  wandb: { flags: '--wandb', help: 'also log to Weights & Biases (needs @wandb/sdk, WANDB_API_KEY, network)', default: false },
  loss: { flags: '--loss <name>', help: 'ce+dice (the reference), focal+dice, tversky or lovasz; with -c 1 their binary forms', default: 'ce+dice' as LossName, parse: choice(...LOSSES) },
  timeBudget: { flags: '--time-budget <duration>', help: "train for this long, counted from the command's start (with --resume: from the resumed command's): 90s, 15m, 1h, 1h30m or seconds; plans the poly/cosine schedule (stepped per optimizer step) and the epochs for it and ends by it with validation, checkpoint and best model; -e then only caps the epochs when given (0 = off)", default: 0, parse: durationParser },
  patchSize: { flags: '--patch-size <HxW>', help: "train on random patches of HxW scaled pixels (N = NxN, multiples of 16); validation predicts as predict's --tile auto: whole images, or by sliding windows of the patch where a whole image would not fit --max-memory (always on CUDA) (default: whole images, as the reference)", default: null as [number, number] | null, parse: patchSizeParser },
  maxMemory: { flags: '--max-memory <MiB>', help: "with --patch-size: memory for validating a whole image on a CPU, as predict's (0 = half the available memory)", default: 0, parse: nonNegInt },
  oversampleFg: { flags: '--oversample-fg <fraction>', help: 'with --patch-size: share of patches centred on a pixel of a random non-background class present in the image', default: 0.33, parse: unit },
  nesterov: { flags: '--nesterov', help: 'SGD: Nesterov momentum (nnU-Net\'s recipe)', default: false },
  plan: { flags: '--plan <file>', help: 'a plan.json written by `unet plan`: its values as defaults, flags and --config override', default: '', parse: str },
  auto: { flags: '--auto', help: 'plan from --imgs/--masks (and --time-budget) as `unet plan` does, print the plan, then train with it', default: false },
  depth: { flags: '--depth <n>', help: 'number of down-sampling stages of the UNet (the reference: 4); images need at least 2^n pixels per side', default: 4, parse: depthParser },
  baseChannels: { flags: '--base-channels <n>', help: 'channels of the first stage, doubled per stage (the reference: 64); at most 2048 at the bottleneck (n x 2^depth)', default: 64, parse: posInt },
  encoder: { flags: '--encoder <name>', help: 'plain: the reference UNet; or an encoder under an smp-style UNet decoder: resnet18, resnet34, resnet50 (README lists every encoder)', default: 'plain', parse: encoderName },
  encoderDepth: { flags: '--encoder-depth <n>', help: 'with --encoder: encoder stages the decoder uses, 3 to 5; images need at least 2^n pixels per side', default: 5, parse: encoderDepthParser },
  decoderChannels: { flags: '--decoder-channels <a,b,...>', help: "with --encoder: the decoder's widths, deepest first, one per stage (default: 256,128,64,32,16, the first --encoder-depth of them)", default: null as number[] | null, parse: decoderChannelsParser },
  deepSupervision: { flags: '--deep-supervision', help: "auxiliary outputs at 1/2, 1/4, ... resolution add their losses with nnU-Net's weighting (training only; needs --depth 3 or more)", default: false },
  ignoreIndex: { flags: '--ignore-index <value>', help: "a mask value (as stored in the mask files, e.g. CamVid's void 11) whose pixels count in neither the loss nor any metric; not a class (default: none)", default: null as number | null, parse: ignoreValueParser },
  classWeights: { flags: '--class-weights <auto|w0,w1,...>', help: "per-class weights of the CE term (BCE for -c 1: background,foreground): one per class, or 'auto' from the training masks' class frequencies", default: 'none' as ClassWeights, parse: classWeightsParser },
  ema: { flags: '--ema [decay]', help: "average the weights (Ultralytics' ModelEMA, decay warmed up over the first steps; the flag alone: 0.9999): validation, best_model.pth and predict/export use the average (0 = off)", default: 0, parse: emaDecayParser, preset: '0.9999' },
  emaWarmup: { flags: '--ema-warmup <steps|auto>', help: "with --ema: tau of the decay's warm-up d = decay x (1 - exp(-steps/tau)); Ultralytics' 2000 suits runs of many thousand steps, 'auto' fits it to the run's planned optimizer steps T (T / ln(T/10): at its end the average spans about the last tenth of the run)", default: 2000 as number | 'auto', parse: autoOrPosInt },
  folds: { flags: '--folds <k>', help: 'k-fold cross-validation: a seeded split of the pairs by file into K folds; fold I validates (-v is not used), the rest trains; without --fold all K run one after another into <checkpoint-dir>/fold<I>/, then cv-summary.json scores the out-of-fold predictions and records the --postprocess auto decision (0 = off)', default: 0, parse: foldsParser },
  fold: { flags: '--fold <i>', help: 'with --folds: train only fold I (0 .. K-1) into <checkpoint-dir>/fold<I>/', default: undefined as number | undefined, parse: nonNegInt },
  // A pretrained encoder (with --encoder NAME; model/encoder-weights.ts, train/freeze.ts)
  encoderWeights: { flags: '--encoder-weights <file|dir|name>', help: "the encoder's pretrained weights: a torchvision .pth or a .safetensors file, a timm/smp hub folder (model.safetensors or pytorch_model.bin), or a torchvision file name (e.g. resnet34-b627a593.pth) or 'imagenet', looked up in the torch hub cache; never downloaded. Records the weights' mean/std as the model's input normalisation", default: '', parse: str },
  freezeEncoder: { flags: '--freeze-encoder [epochs]', help: "the encoder's parameters get no updates for the first EPOCHS epochs (the flag alone: all of them); its BatchNorm statistics keep adapting to the data (0 = off)", default: 0 as number | 'all', parse: freezeParser, preset: 'all' },
  encoderLr: { flags: '--encoder-lr <factor>', help: "the encoder's learning rate is -l x FACTOR (its own optimizer parameter group; schedulers scale both)", default: 1, parse: posFloat },
  // Data-parallel training (torchrun's flags; -b is the batch per process)
  nprocPerNode: { flags: '--nproc-per-node <n>', help: 'worker processes on this machine (data-parallel)', default: 1, parse: posInt },
  nnodes: { flags: '--nnodes <n>', help: 'machines taking part', default: 1, parse: posInt },
  nodeRank: { flags: '--node-rank <n>', help: 'index of this machine, 0 .. nnodes-1', default: 0, parse: nonNegInt },
  masterAddr: { flags: '--master-addr <host>', help: 'address of the machine with rank 0', default: '127.0.0.1', parse: str },
  masterPort: { flags: '--master-port <n>', help: 'rendezvous TCP port on the master', default: 29500, parse: port },
  backend: { flags: '--backend <name>', help: 'auto (NCCL on CUDA when available, else Gloo), gloo or nccl', default: 'auto' as 'auto' | 'gloo' | 'nccl', parse: choice('auto', 'gloo', 'nccl') },
  syncBn: { flags: '--sync-bn', help: 'BatchNorm statistics over all processes', default: false },
  distTimeout: { flags: '--dist-timeout <seconds>', help: 'how long a worker waits for the others before failing', default: 1800, parse: posInt },
} satisfies Record<string, OptionSpec<unknown>>;

// ------------------------------------------------------------------------------------------------
// unet plan

/** A --time-budget that must be set (plan fits the training into it). */
const positiveDuration: Parser<number> = (raw, flag) => {
  const v = durationParser(raw, flag);
  if (!(v > 0)) throw new OptionError(`${flag} expects a duration such as 90s, 15m, 1h or 1h30m (above 0), got '${raw}'`);
  return v;
};
/** `80G`, `512M` or bare GiB -> bytes. */
const memorySize: Parser<number> = (raw, flag) => {
  const m = /^(\d+(?:\.\d+)?)\s*([GM]i?B?)?$/i.exec(raw.trim());
  if (!m || !(Number(m[1]) > 0)) throw new OptionError(`${flag} expects a memory size such as 80G or 512M, got '${raw}'`);
  return Number(m[1]) * 2 ** (m[2]?.[0].toUpperCase() === 'M' ? 20 : 30);
};

export const planOptions = {
  imgs: trainOptions.imgs,
  masks: trainOptions.masks,
  maskSuffix: trainOptions.maskSuffix,
  timeBudget: { flags: '--time-budget <duration>', help: 'how long training may take: 90s, 15m, 1h, 1h30m or seconds (default: 30m)', default: 1800, parse: positiveDuration },
  device: { flags: '--device <device>', help: 'plan for auto, cpu, cuda or cuda:N (timed there when it is here)', default: 'auto', parse: device },
  assumeMemory: { flags: '--assume-memory <size>', help: 'plan for this much device memory (e.g. 80G) instead of measuring; with --device cuda on a machine without one, step times are estimated (default: measured)', default: 0, parse: memorySize },
  validation: trainOptions.validation,
  folds: { ...trainOptions.folds, help: 'plan for train --folds K: the K folds share the budget, each trains on (K-1)/K of the images and validates the rest (-v is not used; 0 = one run)' },
  ignoreIndex: trainOptions.ignoreIndex,
  workers: trainOptions.workers,
  encoder: { ...trainOptions.encoder, help: 'plan for this encoder under the UNet (its training step is timed): plain (the reference UNet), resnet18, resnet34, ...' },
  encoderDepth: trainOptions.encoderDepth,
  output: { flags: '-o, --output <file>', help: 'where the plan is written', default: 'plan.json', parse: str },
} satisfies Record<string, OptionSpec<unknown>>;

// ------------------------------------------------------------------------------------------------
// Tiled (sliding-window) inference, shared by predict and evaluate

const tilingOptions = {
  tile: { flags: '--tile <size>', help: "sliding-window prediction: window size in scaled pixels (multiple of 16), 'auto' (only images over the memory budget) or 'off'", default: 'off' as TileSetting, parse: tileParser },
  overlap: { flags: '--overlap <f>', help: 'with --tile: fraction of a window shared with its neighbour, in [0, 1)', default: 0.25, parse: overlapParser },
  blend: { flags: '--blend <mode>', help: 'with --tile: window weights, gaussian (sigma = window/8) or constant', default: 'gaussian' as 'gaussian' | 'constant', parse: choice('gaussian', 'constant') },
  maxMemory: { flags: '--max-memory <MiB>', help: 'memory budget for --tile auto and region-by-region reading/writing (0 = half the available memory)', default: 0, parse: nonNegInt },
} satisfies Record<string, OptionSpec<unknown>>;

/** predict/evaluate -s: unset = the scale the checkpoint was trained at (src/model/scale.ts chooseScale). */
const inferenceScaleOption = {
  flags: '-s, --scale <s>',
  help: "downscaling factor of the images, in (0, 1] (default: the checkpoint's training scale, else 0.5 as the reference)",
  default: undefined as number | undefined,
  parse: scaleParser,
} satisfies OptionSpec<number | undefined>;

/**
 * predict/evaluate -m: repeated, an ensemble (src/predict/ensemble.ts). One path from a config
 * file or a program stays a string.
 */
const ensembleModelOption = (what: string) =>
  ({
    flags: '-m, --model <path>',
    help: `${what}; repeat -m for an ensemble: the mean of the models' softmax (sigmoid for -c 1); they must share classes, mask values and input channels, and all run at -s, else the first model's training scale (default: checkpoints/best_model.pth)`,
    default: 'checkpoints/best_model.pth' as string | string[],
    parse: str,
    variadic: true,
  }) satisfies OptionSpec<string | string[]>;

/** --tta: the views whose softmax is averaged (src/predict/tta.ts). */
export const TTA_MODES = ['none', 'hflip', 'flip', 'd4'] as const;
export type TtaMode = (typeof TTA_MODES)[number];
const ttaOption = {
  flags: '--tta <mode>',
  help: "test-time augmentation: none, hflip (mean softmax of the image and its mirror: images with an up, models trained with --upright), flip (the 4 flips) or d4 (the 8 symmetries of the square: flips x 90-degree rotations); per window with --tile",
  default: 'none' as TtaMode,
  parse: choice(...TTA_MODES),
} satisfies OptionSpec<TtaMode>;

/** --postprocess: largest component per class (src/predict/postprocess.ts). */
export const POSTPROCESS_MODES = ['none', 'largest-component', 'auto'] as const;
export type PostprocessMode = (typeof POSTPROCESS_MODES)[number];
const postprocessOption = {
  flags: '--postprocess <mode>',
  help: "none; largest-component: per foreground class only its largest 4-connected component stays (the rest becomes background); auto: the classes a `train --folds` run found better so, recorded in the checkpoint (none recorded: none). Masks only, not --probs",
  default: 'none' as PostprocessMode,
  parse: choice(...POSTPROCESS_MODES),
} satisfies OptionSpec<PostprocessMode>;

// ------------------------------------------------------------------------------------------------
// unet predict

export const predictOptions = {
  model: ensembleModelOption('checkpoint to use'),
  input: { flags: '-i, --input <files...>', help: 'input images, directories or globs', default: [] as string[], parse: str, variadic: true },
  output: { flags: '-o, --output <files...>', help: 'output file names, one per input (.png, or .tif for a TIFF mask)', default: [] as string[], parse: str, variadic: true },
  outputDir: { flags: '--output-dir <dir>', help: 'write masks into this directory (same names)', default: '', parse: str },
  viz: { flags: '-v, --viz', help: 'also write an overlay image (input with coloured classes and a legend)', default: false },
  noSave: { flags: '-n, --no-save', help: 'do not save the output masks', default: false },
  maskThreshold: maskThresholdOption,
  scale: inferenceScaleOption,
  probs: { flags: '--probs', help: 'also save per-class probability maps (16-bit PNG)', default: false },
  device: deviceOption,
  amp: ampInferenceOption,
  batchSize: { flags: '-b, --batch-size <n>', help: 'images per forward pass (same-size images only), or --tile windows', default: 1, parse: posInt },
  bilinear: { flags: '--bilinear', help: 'accepted for compatibility; checked against the checkpoint', default: false },
  classes: { flags: '-c, --classes <n>', help: 'accepted for compatibility; checked against the checkpoint', default: 0, parse: posInt },
  workers: workersOption,
  maxPixels: { flags: '--max-pixels <n>', help: 'refuse images larger than this many pixels, with or without --tile (0 = no limit: huge images you trust, with --tile auto)', default: MAX_PIXELS, parse: nonNegInt },
  tta: ttaOption,
  postprocess: postprocessOption,
  ...tilingOptions,
} satisfies Record<string, OptionSpec<unknown>>;

// ------------------------------------------------------------------------------------------------
// unet evaluate

export const evaluateOptions = {
  model: ensembleModelOption('checkpoint to evaluate'),
  imgs: { flags: '--imgs <dir>', help: 'directory of images', default: 'data/imgs', parse: str },
  masks: { flags: '--masks <dir>', help: 'directory of ground-truth masks', default: 'data/masks', parse: str },
  maskSuffix: { flags: '--mask-suffix <suffix>', help: "mask name = image name + suffix ('auto' detects _mask)", default: 'auto', parse: (r: string) => r },
  scale: inferenceScaleOption,
  maskThreshold: maskThresholdOption,
  json: { flags: '--json [file]', help: 'write the metrics as JSON to file, or without file print only them on stdout (the table goes to stderr)', default: '' as string | true, parse: str },
  surfaceTol: { flags: '--surface-tol <px>', help: 'tolerance of the normalised surface Dice (NSD), in pixels of the original image', default: 2, parse: nonNegFloat },
  device: deviceOption,
  amp: ampInferenceOption,
  batchSize: { flags: '-b, --batch-size <n>', help: 'images (or --tile windows) per forward pass', default: 1, parse: posInt },
  workers: workersOption,
  tta: ttaOption,
  postprocess: postprocessOption,
  ...tilingOptions,
} satisfies Record<string, OptionSpec<unknown>>;

// ------------------------------------------------------------------------------------------------
// unet export

export const exportOptions = {
  model: { flags: '-m, --model <path>', help: "checkpoint to export; onnx/web: repeat -m for an ensemble, one graph whose output 'probabilities' is the mean of the models' softmax (sigmoid for -c 1) (default: checkpoints/best_model.pth)", default: 'checkpoints/best_model.pth' as string | string[], parse: str, variadic: true },
  format: { flags: '--format <format>', help: 'safetensors, pth-state-dict, onnx, or web (a static folder that predicts in the browser)', default: 'safetensors', parse: str },
  output: { flags: '-o, --output <path>', help: 'output file (a folder for --format web)', default: '', parse: str },
  scale: { flags: '-s, --scale <s>', help: "onnx/web: the scale images are resized by before the forward pass (0 = the checkpoint's training scale)", default: 0, parse: (raw: string, flag: string) => (raw === '0' ? 0 : scaleParser(raw, flag)) },
} satisfies Record<string, OptionSpec<unknown>>;

// ------------------------------------------------------------------------------------------------
// unet bench (absent = that mode is off)

const benchTile: Parser<number> = (raw, flag) => {
  const v = posInt(raw, flag);
  if (v % 16 !== 0) throw new OptionError(`${flag} must be a multiple of 16, got '${raw}'`);
  return v;
};

export const benchOptions = {
  device: deviceOption,
  batchSize: { flags: '-b, --batch-size <n>', help: 'batch size', default: 2, parse: posInt, alias: '--batch <n>' },
  height: { flags: '--height <n>', help: 'image height', default: 256, parse: posInt },
  width: { flags: '--width <n>', help: 'image width', default: 256, parse: posInt },
  channels: { flags: '--channels <n>', help: 'input channels', default: 3, parse: posInt },
  classes: { flags: '--classes <n>', help: 'classes', default: 2, parse: posInt },
  amp: { flags: '--amp', help: 'mixed precision as train --amp (fp16 on CUDA; bf16 on CPUs with native bf16, else fp32)', default: false },
  bilinear: { flags: '--bilinear', help: 'bilinear upsampling', default: false },
  steps: { flags: '--steps <n>', help: 'timed steps', default: 10, parse: posInt },
  warmup: { flags: '--warmup <n>', help: 'untimed steps first', default: 3, parse: nonNegInt },
  predict: { flags: '--predict', help: 'time inference (images/s) instead of training steps', default: false },
  tta: { ...ttaOption, help: 'with --predict: time test-time augmentation (none, flip: 4 views, d4: 8 views) as predict --tta does it' },
  tile: { flags: '--tile <n>', help: 'with --predict: tiled prediction of one large grey image, file to mask PNG, region by region (MP/s, peak RSS)', default: undefined as number | undefined, parse: benchTile },
  overlap: { flags: '--overlap <f>', help: 'window overlap for --tile', default: 0.25, parse: overlapParser },
  image: { flags: '--image <file>', help: 'image for --predict --tile (default: a synthetic --width x --height grey PNG)', default: undefined as string | undefined, parse: str },
  encoder: { flags: '--encoder <name>', help: 'time the encoder UNet of train --encoder (--reference test/reference/bench.py times the same smp-style model in PyTorch)', default: 'plain', parse: encoderName },
  encoderDepth: { flags: '--encoder-depth <n>', help: 'with --encoder: as train --encoder-depth', default: 5, parse: encoderDepthParser },
  widthDivisor: { flags: '--width-divisor <n>', help: 'narrow UNet (training and inference steps, --nproc-per-node, --predict --tile): every width divided by n (1 = full)', default: 1, parse: posInt },
  onnx: { flags: '--onnx', help: 'with --predict: also time the same model exported to ONNX in onnxruntime-node (CPU)', default: false },
  web: { flags: '--web', help: 'with --predict: time the exported model in headless Chromium (onnxruntime-web, wasm, 1 thread)', default: false },
  conv: { flags: '--conv', help: 'time one UNet-sized 3x3 conv layer forward+backward instead', default: false },
  data: { flags: '--data [dir]', help: 'time the data loader instead (decode + resize per CPU core, vs PIL with --reference); without dir: synthetic 1918x1280 JPEG/GIF pairs', default: undefined as string | true | undefined, parse: str },
  count: { flags: '--count <n>', help: 'pairs to generate for --data', default: 200, parse: posInt },
  scale: { flags: '-s, --scale <x>', help: 'image scale for --data and --predict --tile', default: 0.5, parse: scaleParser },
  epochs: { flags: '-e, --epochs <n>', help: 'epochs for --data (epoch 2+ should decode nothing)', default: 2, parse: posInt },
  reference: { flags: '--reference <path>', help: 'also run this unet_reference.py with the same settings and print the ratio', default: undefined as string | undefined, parse: str },
  nprocPerNode: { flags: '--nproc-per-node <n>', help: 'data-parallel: N workers on batch/N each vs one process with N times the threads on the whole batch', default: undefined as number | undefined, parse: posInt },
  masterPort: { flags: '--master-port <n>', help: 'rendezvous port for --nproc-per-node', default: 29500, parse: port },
  python: { flags: '--python <path>', help: 'python with torch for --reference', default: '/usr/bin/python3', parse: str },
  json: { flags: '--json', help: 'accepted for symmetry: bench always prints JSON lines (one per measurement) on stdout', default: false },
} satisfies Record<string, OptionSpec<unknown>>;

// ------------------------------------------------------------------------------------------------
// unet demo, unet dashboard, unet env

export const demoOptions = {
  dir: { flags: '--dir <dir>', help: 'where the demo data goes', default: 'data', parse: str },
  epochs: { flags: '-e, --epochs <n>', help: 'epochs', default: 3, parse: posInt },
} satisfies Record<string, OptionSpec<unknown>>;

export const dashboardOptions = {
  logdir: { flags: '--logdir <dir>', help: 'runs directory', default: 'runs', parse: str },
  port: { flags: '--port <n>', help: 'port', default: 6006, parse: port },
  host: hostOption,
} satisfies Record<string, OptionSpec<unknown>>;

// ------------------------------------------------------------------------------------------------
// unet serve

export const serveOptions = {
  model: { flags: '-m, --model <paths...>', help: 'checkpoint(s) to serve; repeat -m for several models', default: [] as string[], parse: str, variadic: true },
  name: { flags: '--name <names...>', help: "the models' names in the URLs, one per -m (default: each file's stem, e.g. best_model)", default: [] as string[], parse: str, variadic: true },
  host: hostOption,
  port: { flags: '--port <n>', help: 'port (0: any free one)', default: 8000, parse: port },
  maxBatch: { flags: '--max-batch <n>', help: 'images per forward pass: same-shaped requests are grouped up to this many', default: 8, parse: posInt },
  maxDelayMs: { flags: '--max-delay-ms <ms>', help: 'how long the first request of a batch waits for others', default: 5, parse: nonNegInt },
  maxQueue: { flags: '--max-queue <n>', help: 'requests waiting at most; beyond it, 503 with Retry-After', default: 64, parse: posInt },
  maxBodyMb: { flags: '--max-body-mb <n>', help: 'largest request body in MiB (413 above)', default: 64, parse: posInt },
  maxPixels: { flags: '--max-pixels <n>', help: 'largest image (or N*H*W of a tensor) in pixels (413 above)', default: 16_777_216, parse: posInt },
  timeoutS: { flags: '--timeout-s <s>', help: 'a request not answered in this many seconds gets 504', default: 30, parse: posInt },
  scale: inferenceScaleOption,
  maskThreshold: maskThresholdOption,
  device: deviceOption,
  ...tilingOptions,
  tile: { ...tilingOptions.tile, help: "/segment: sliding windows of this size in scaled pixels (multiple of 16), 'auto' (only images over the memory budget) or 'off'", default: 'auto' as TileSetting },
  tokenFile: { flags: '--token-file <file>', help: 'require `Authorization: Bearer <token>` on every request, the token being this file\'s first line', default: '', parse: str },
} satisfies Record<string, OptionSpec<unknown>>;

export const envOptions = {
  json: { flags: '--json', help: 'print it as one JSON object', default: false },
} satisfies Record<string, OptionSpec<unknown>>;

export type ValuesOf<T extends Record<string, OptionSpec<unknown>>> = { -readonly [K in keyof T]: T[K]['default'] };
export type TrainConfig = ValuesOf<typeof trainOptions>;
export type PredictConfig = ValuesOf<typeof predictOptions>;
export type EvaluateConfig = ValuesOf<typeof evaluateOptions>;
export type ExportConfig = ValuesOf<typeof exportOptions>;
export type BenchConfig = ValuesOf<typeof benchOptions>;
export type DemoConfig = ValuesOf<typeof demoOptions>;
export type DashboardConfig = ValuesOf<typeof dashboardOptions>;
export type EnvConfig = ValuesOf<typeof envOptions>;
export type ServeConfig = ValuesOf<typeof serveOptions>;
export type PlanConfig = ValuesOf<typeof planOptions>;

/** Defaults of a table, e.g. for programmatic use and tests. */
export function defaults<T extends Record<string, OptionSpec<unknown>>>(table: T): ValuesOf<T> {
  const out: Record<string, unknown> = {};
  for (const [k, spec] of Object.entries(table)) out[k] = Array.isArray(spec.default) ? [...spec.default] : spec.default;
  return out as ValuesOf<T>;
}

/** How a command reports: `json` = stdout carries only JSON, human output goes to stderr. */
export interface Output {
  json: boolean;
}
