/** The `unet` command line: train, predict, evaluate, export, demo, bench, dashboard. */
import { existsSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { type EvaluateConfig, type OptionSpec, type PredictConfig, type TrainConfig, defaults, evaluateOptions, predictOptions, trainOptions } from './options.js';
import { type Report, reportError } from './errors.js';

/** Adds every option of a table to a command; returns nothing, values come back via opts(). */
function addOptions(cmd: Command, table: Record<string, OptionSpec<unknown>>): Command {
  for (const [key, spec] of Object.entries(table)) {
    const opt = new Option(spec.flags, spec.help);
    if (spec.parse) {
      const parse = spec.parse;
      const flag = /--[a-z0-9-]+/.exec(spec.flags)?.[0] ?? key;
      opt.argParser((raw: string, prev: unknown) => {
        try {
          const v = parse(raw, flag);
          return spec.variadic ? [...(Array.isArray(prev) && prev !== spec.default ? prev : []), v] : v;
        } catch (e) {
          throw new InvalidArgumentError((e as Error).message.replace(`${flag} `, ''));
        }
      });
    }
    if (!spec.flags.includes('--no-')) {
      const show = Array.isArray(spec.default) ? undefined : spec.default === '' ? undefined : JSON.stringify(spec.default);
      opt.default(spec.default, show);
    }
    opt.attributeName = () => key;
    cmd.addOption(opt);
  }
  return cmd;
}

function values<T extends Record<string, OptionSpec<unknown>>>(cmd: Command, table: T) {
  const base = defaults(table);
  const out = { ...base, ...cmd.opts() } as Record<string, unknown>;
  // commander reads `--no-save` as the negation of `save`; our key `noSave` means "given".
  for (const [key, spec] of Object.entries(table)) {
    if (key.startsWith('no') && spec.flags.includes('--no-')) out[key] = cmd.getOptionValueSource(key) === 'cli';
  }
  return out as typeof base;
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
  train: (cfg: TrainConfig) => Promise<number>;
  predict: (cfg: PredictConfig, classesGiven: boolean, bilinearGiven: boolean) => Promise<number>;
  evaluate: (cfg: EvaluateConfig) => Promise<number>;
}

const realHandlers: Handlers = {
  train: async (cfg) => (await import('../train/cli.js')).trainCommand(cfg),
  predict: async (cfg, c, b) => (await import('../predict/cli.js')).predictCommand(cfg, c, b),
  evaluate: async (cfg) => (await import('../predict/evaluate-cli.js')).evaluateCommand(cfg),
};

/** Builds the parser; tests pass their own handlers to check parsing without running anything. */
export function buildProgram(handlers: Handlers = realHandlers, opts: { exitOverride?: boolean; writeErr?: (s: string) => void } = {}): Command {
const program = new Command('unet')
  .description('UNet image segmentation: train, predict and evaluate (libtorch engine)')
  .showSuggestionAfterError(true)
  .showHelpAfterError('(run with --help for usage)')
  .configureOutput({ outputError: (s, write) => (opts.writeErr ?? write)(s) });
if (opts.exitOverride) program.exitOverride();

addOptions(program.command('train').description('train a UNet on data/imgs + data/masks'), trainOptions).action(async (_o, cmd: Command) =>
  run(() => handlers.train(values(cmd, trainOptions))),
);

addOptions(program.command('predict').description('predict masks for images with a trained model'), predictOptions).action(async (_o, cmd: Command) =>
  run(() => handlers.predict(values(cmd, predictOptions), cmd.getOptionValueSource('classes') === 'cli', cmd.getOptionValueSource('bilinear') === 'cli')),
);

addOptions(program.command('evaluate').description('per-class Dice/IoU, pixel accuracy and confusion matrix on a labelled set'), evaluateOptions).action(
  async (_o, cmd: Command) => run(() => handlers.evaluate(values(cmd, evaluateOptions))),
);

program
  .command('export')
  .description('export model weights for other tools')
  .requiredOption('-m, --model <path>', 'checkpoint to export')
  .option('--format <format>', 'safetensors or pth-state-dict', 'safetensors')
  .requiredOption('-o, --output <file>', 'output file')
  .action(async (o: { model: string; format: string; output: string }) => run(async () => (await import('../predict/export.js')).exportCommand(o)));

program
  .command('demo')
  .description('make a small synthetic dataset (when data/ is absent) and train on it for a few epochs on CPU')
  .option('--dir <dir>', 'where the demo data goes', 'data')
  .option('-e, --epochs <n>', 'epochs', '3')
  .action(async (o: { dir: string; epochs: string }) => run(async () => (await import('./demo.js')).demoCommand(o)));

program
  .command('bench')
  .description('time training steps on synthetic data; optionally against PyTorch (unet_reference.py)')
  .option('--device <device>', 'auto, cpu, cuda', 'auto')
  .option('-b, --batch <n>', 'batch size', '2')
  .option('--height <n>', 'image height', '256')
  .option('--width <n>', 'image width', '256')
  .option('--channels <n>', 'input channels', '3')
  .option('--classes <n>', 'classes', '2')
  .option('--amp', 'mixed precision', false)
  .option('--bilinear', 'bilinear upsampling', false)
  .option('--steps <n>', 'timed steps', '10')
  .option('--warmup <n>', 'untimed steps first', '3')
  .option('--predict', 'time inference (images/s) instead of training steps', false)
  .option('--conv', 'time one UNet-sized 3x3 conv layer forward+backward instead', false)
  .option('--data [dir]', 'time the data loader instead (decode + resize per CPU core, vs PIL with --reference); without dir: synthetic 1918x1280 JPEG/GIF pairs')
  .option('--count <n>', 'pairs to generate for --data', '200')
  .option('-s, --scale <x>', 'image scale for --data', '0.5')
  .option('-e, --epochs <n>', 'epochs for --data (epoch 2+ should decode nothing)', '2')
  .option('--reference <path>', 'also run this unet_reference.py with the same settings and print the ratio')
  .option('--python <path>', 'python with torch for --reference', '/usr/bin/python3')
  .action(async (o: Record<string, string | boolean>) => run(async () => (await import('../train/bench.js')).benchCommand(o)));

program
  .command('dashboard')
  .description('serve the live training dashboard (localhost only by default)')
  .option('--logdir <dir>', 'runs directory', 'runs')
  .option('--port <n>', 'port', '6006')
  .option('--host <host>', 'address to bind (127.0.0.1 keeps it private)', '127.0.0.1')
  .action(async (o: { logdir: string; port: string; host: string }) =>
    run(async () => {
      const { startDashboard } = await import('../tracking/index.js');
      if (!existsSync(o.logdir)) console.warn(`note: ${o.logdir} does not exist yet; runs appear once training starts`);
      const d = await startDashboard({ logdir: o.logdir, port: Number(o.port), host: o.host });
      console.log(`Dashboard: ${d.url} (Ctrl-C to stop)`);
      await new Promise<void>((res) => process.once('SIGINT', () => res()));
      await d.close();
      return 0;
    }),
  );

return program;
}
