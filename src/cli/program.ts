/** The `unet` command line: train, plan, predict, evaluate, export, serve, demo, bench, dashboard, env. */
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { stringify } from 'yaml';
import { RUN_RECORD_KEYS, readConfigFile } from './config-file.js';
import { EXIT, EXIT_CODES_HELP, type Report, reportError } from './errors.js';
import {
  type EvaluateConfig,
  type OptionSpec,
  type Output,
  type PredictConfig,
  type TrainConfig,
  NO_EPOCH_CAP,
  benchOptions,
  dashboardOptions,
  defaults,
  demoOptions,
  envOptions,
  evaluateOptions,
  exportOptions,
  planOptions,
  predictOptions,
  serveOptions,
  trainOptions,
} from '../config/options.js';
import { applyPlan, checkNesterov } from './plan-file.js';
import { keptLoss, resolveResume } from './resume.js';
import { foldConfig } from '../train/folds.js';

/** A table parser as a commander argParser: its message without the flag (commander names it). */
function argParser<T>(parse: (raw: string, flag: string) => T, flag: string, variadicDefault?: unknown) {
  return (raw: string, prev: unknown) => {
    try {
      const v = parse(raw, flag);
      return variadicDefault !== undefined ? [...(Array.isArray(prev) && prev !== variadicDefault ? prev : []), v] : v;
    } catch (e) {
      throw new InvalidArgumentError((e as Error).message.replace(`${flag} `, ''));
    }
  };
}

/** Whether --help appends the default: not for negations, empty values ('', []), or a help text that names its own. */
export function showsDefault(spec: OptionSpec<unknown>): boolean {
  const d = spec.default;
  const empty = d === undefined || d === '' || (Array.isArray(d) && d.length === 0);
  return !spec.flags.includes('--no-') && !empty && !/\(default:/.test(spec.help);
}

/** Adds every option of a table to a command; returns nothing, values come back via opts(). */
function addOptions(cmd: Command, table: Record<string, OptionSpec<unknown>>): Command {
  for (const [key, spec] of Object.entries(table)) {
    const opt = new Option(spec.flags, spec.help);
    if (showsDefault(spec)) opt.default(spec.default);
    if (spec.preset !== undefined) opt.preset(spec.preset);
    // The alias writes the same value; it has no default of its own and does not show in --help.
    const alias = spec.alias ? new Option(spec.alias, spec.help).hideHelp() : undefined;
    for (const o of alias ? [opt, alias] : [opt]) {
      if (spec.parse) o.argParser(argParser(spec.parse, /--[a-z0-9-]+/.exec(o.flags)?.[0] ?? key, spec.variadic ? spec.default : undefined));
      o.attributeName = () => key;
      cmd.addOption(o);
    }
  }
  return cmd;
}

/** The --config file's values (none without --config). */
function fileValues(cmd: Command, table: Record<string, OptionSpec<unknown>>, ignore: readonly string[] = []): Record<string, unknown> {
  const file = cmd.opts().config as string | undefined;
  return file ? readConfigFile(file, table, ignore) : {};
}

/** Option values: defaults < the --config file < the command line. */
function values<T extends Record<string, OptionSpec<unknown>>>(cmd: Command, table: T, file: Record<string, unknown> = fileValues(cmd, table)) {
  const base = defaults(table);
  const out = { ...base, ...file } as Record<string, unknown>;
  for (const [key, spec] of Object.entries(table)) {
    if (cmd.getOptionValueSource(key) !== 'cli') continue;
    // commander reads `--no-save` as the negation of `save`; our key `noSave` means "given".
    out[key] = key.startsWith('no') && spec.flags.includes('--no-') ? true : cmd.opts()[key];
  }
  return out as typeof base;
}

/** Set on the command line or in the --config file. */
const given = (cmd: Command, key: string, file: object) => cmd.getOptionValueSource(key) === 'cli' || Object.hasOwn(file, key);

const configOption = () => new Option('--config <file>', "read option values from a JSON or YAML file (flags given here override it); a run's runs/<run>/config.json replays that run");
const jsonOption = (what: string) => new Option('--json', what).default(false);
const printConfigOption = () => new Option('--print-config', 'print the resolved options (built-in values < --plan < --config < flags) as YAML, which --config reads back, and exit without running');

/** --print-config: the options as YAML on stdout (undefined values left out), nothing run. */
function printConfig(cfg: object): number {
  process.stdout.write(stringify(cfg));
  return EXIT.ok;
}

async function run(fn: () => Promise<number | undefined>): Promise<void> {
  try {
    process.exitCode = (await fn()) ?? 0;
  } catch (e) {
    const r: Report = reportError(e);
    console.error(r.message);
    process.exitCode = r.exitCode;
  }
}

export interface Handlers {
  train: (cfg: TrainConfig, out?: Output) => Promise<number>;
  predict: (cfg: PredictConfig, classesGiven: boolean, bilinearGiven: boolean, out?: Output) => Promise<number>;
  evaluate: (cfg: EvaluateConfig) => Promise<number>;
}

const realHandlers: Handlers = {
  train: async (cfg, out) => (await import('../train/command.js')).trainCommand(cfg, out),
  predict: async (cfg, c, b, out) => (await import('../predict/command.js')).predictCommand(cfg, c, b, out),
  evaluate: async (cfg) => (await import('../predict/evaluate-command.js')).evaluateCommand(cfg),
};

const version = (): string => (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const SERVE_HELP = `
Endpoints (every one needs "Authorization: Bearer <token>" with --token-file):
  GET  /v2/health/live, /v2/health/ready, /v2, /v2/models/{name}, /v2/models/{name}/ready
  POST /v2/models/{name}/infer     JSON tensors: FP32 [N, C, H, W] in; "logits" FP32 [N, K, H, W], "mask" UINT8 [N, H, W] out
  POST /v2/models/{name}/segment   a PNG/JPEG/TIFF body; the mask PNG unet predict writes (?overlay=1: the overlay)
  GET  /metrics                    Prometheus text: requests by code, latency, batch sizes, queue depth, inference time
Example:
  unet serve -m checkpoints/best_model.pth --port 8000
  curl --data-binary @image.png http://127.0.0.1:8000/v2/models/best_model/segment -o mask.png`;

/** `unet train`'s values: defaults < --plan < --config < flags, then --resume's checkpoint and loss. */
async function trainAction(cmd: Command, handlers: Handlers): Promise<number> {
  const file = fileValues(cmd, trainOptions, RUN_RECORD_KEYS);
  const o = cmd.opts() as { resume?: string | true; json: boolean };
  const explicit = new Set(Object.keys(trainOptions).filter((k) => given(cmd, k, file)));
  const say = o.json ? (l: string) => console.error(l) : (l: string) => console.log(l);
  const { cfg, planned } = await applyPlan(values(cmd, trainOptions, file), explicit, cmd.getOptionValueSource('plan') === 'cli', say);
  checkNesterov(cfg, (l) => console.error(l));
  // A plan shapes the plain UNet (depth, width, deep supervision): with --encoder only its patch, batch, loss and schedule apply.
  if ((cfg.encoder ?? 'plain') !== 'plain') for (const k of ['depth', 'baseChannels', 'deepSupervision'] as const) if (planned.has(k)) (cfg as Record<typeof k, unknown>)[k] = trainOptions[k].default;
  // --time-budget plans the epochs: -e caps them only when given (flag, --config or --plan).
  const budgetPlansEpochs = cfg.timeBudget > 0 && !explicit.has('epochs') && !planned.has('epochs');
  if (cmd.opts().printConfig) {
    // epochs left out when the budget plans them: read back, a value would cap them
    const { epochs, ...rest } = cfg;
    return printConfig(budgetPlansEpochs ? rest : cfg);
  }
  if (budgetPlansEpochs) cfg.epochs = NO_EPOCH_CAP;
  // --fold I resumes from its own folder, <checkpoint-dir>/fold<I>.
  if (o.resume !== undefined) cfg.load = await resolveResume(o.resume, cfg.load, foldConfig(cfg).checkpointDir, (l) => console.error(l));
  if (cfg.load && !given(cmd, 'loss', file)) cfg.loss = await keptLoss(cfg.load, cfg.loss, (l) => console.error(l));
  return handlers.train(cfg, { json: o.json });
}

/** Builds the parser; tests pass their own handlers to check parsing without running anything. */
export function buildProgram(handlers: Handlers = realHandlers, opts: { exitOverride?: boolean; writeErr?: (s: string) => void } = {}): Command {
  const program = new Command('unet')
    .description('UNet image segmentation: train, predict and evaluate (libtorch engine)')
    .showSuggestionAfterError(true)
    .showHelpAfterError('(run with --help for usage)')
    .version(version(), '-V, --version', 'print the version')
    .configureOutput({ outputError: (s, write) => (opts.writeErr ?? write)(s) })
    .addHelpText('afterAll', `\n${EXIT_CODES_HELP}`)
    // Usage errors (unknown flag, bad value) exit with EXIT.usage; set before the subcommands, which inherit it.
    .exitOverride((err) => {
      if (opts.exitOverride) throw err;
      process.exit(err.exitCode === 0 ? 0 : EXIT.usage);
    });

  addOptions(program.command('train').description('train a UNet on data/imgs + data/masks'), trainOptions)
    .option('--resume [path]', 'continue from our checkpoint PATH, or without PATH from the newest INTERRUPTED.pth or checkpoint_epoch<N>.pth in --checkpoint-dir')
    .addOption(configOption())
    .addOption(jsonOption('print the final summary as one JSON line on stdout (everything else goes to stderr)'))
    .addOption(printConfigOption())
    .action(async (_o, cmd: Command) => run(() => trainAction(cmd, handlers)));

  addOptions(program.command('plan').description('fingerprint a dataset and plan the training (patch, batch, depth, width, recipe, epochs for a time budget): a table with reasons and plan.json for train --plan'), planOptions).action(
    async (_o, cmd: Command) => run(async () => (await import('../plan/command.js')).planCommand(values(cmd, planOptions))),
  );

  addOptions(program.command('predict').description('predict masks for images with a trained model'), predictOptions)
    .addOption(configOption())
    .addOption(jsonOption('print one JSON line per input file on stdout (everything else goes to stderr)'))
    .addOption(printConfigOption())
    .action(async (_o, cmd: Command) =>
      run(async () => {
        const file = fileValues(cmd, predictOptions);
        if (cmd.opts().printConfig) return printConfig(values(cmd, predictOptions, file));
        return handlers.predict(values(cmd, predictOptions, file), given(cmd, 'classes', file), given(cmd, 'bilinear', file), { json: cmd.opts().json === true });
      }),
    );

  addOptions(program.command('evaluate').description('per-class Dice/IoU, pixel accuracy and confusion matrix on a labelled set'), evaluateOptions)
    .addOption(configOption())
    .addOption(printConfigOption())
    .action(async (_o, cmd: Command) => run(async () => (cmd.opts().printConfig ? printConfig(values(cmd, evaluateOptions)) : handlers.evaluate(values(cmd, evaluateOptions)))));

  addOptions(program.command('export').description('export the model for other tools: safetensors, PyTorch, ONNX, or a web page that predicts in the browser'), exportOptions).action(async (_o, cmd: Command) =>
    run(async () => {
      const o = values(cmd, exportOptions);
      return (await import('../export/command.js')).exportCommand({ ...o, scale: o.scale || undefined });
    }),
  );

  addOptions(program.command('serve').description('serve models over HTTP (Open Inference Protocol v2, /segment for images, /metrics) with dynamic batching'), serveOptions)
    .addHelpText('after', SERVE_HELP)
    .action(async (_o, cmd: Command) => run(async () => (await import('../serve/command.js')).serveCommand(values(cmd, serveOptions), { version: version() })));

  addOptions(program.command('demo').description('make a small synthetic dataset (when data/ is absent) and train on it for a few epochs on CPU'), demoOptions).action(async (_o, cmd: Command) =>
    run(async () => (await import('./demo.js')).demoCommand(values(cmd, demoOptions))),
  );

  addOptions(program.command('bench').description('time training steps on synthetic data; optionally against PyTorch (unet_reference.py)'), benchOptions).action(async (_o, cmd: Command) =>
    run(async () => (await import('../bench/command.js')).benchCommand(values(cmd, benchOptions))),
  );

  addOptions(program.command('dashboard').description('serve the live training dashboard (localhost only by default)'), dashboardOptions).action(async (_o, cmd: Command) =>
    run(async () => (await import('./dashboard.js')).dashboardCommand(values(cmd, dashboardOptions))),
  );

  addOptions(program.command('env').description('print what a bug report needs: versions, libtorch, CUDA, BLAS, threads, addon, distributed backends'), envOptions).action(async (_o, cmd: Command) =>
    run(async () => (await import('./env.js')).envCommand(values(cmd, envOptions))),
  );

  return program;
}
