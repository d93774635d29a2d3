// The habits of ML command lines: --version, env, --config, --resume, --json, the exit-code table,
// and flag errors as one line. Parsing is checked with handlers that only record the config; the
// rest runs the real command on a tiny dataset (32x32 images, one epoch).
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { EXIT, EXIT_CODES_HELP } from '../src/cli/errors.js';
import { EXIT_CODES } from '../src/config/errors.js';
import { type PredictConfig, type TrainConfig, defaults, trainOptions } from '../src/config/options.js';
import type { Output } from '../src/config/options.js';
import { type Handlers, buildProgram } from '../src/cli/program.js';
import { ROOT, assertCleanFailure, quickTrainArgs, runCli } from './helpers/cli.js';
import { writePairs } from './helpers/fixtures.js';
import { tempDir } from './helpers/workdir.js';

const dir = tempDir('cli');

interface Parsed {
  train?: TrainConfig;
  predict?: PredictConfig;
  out?: Output;
  classesGiven?: boolean;
  error?: string;
}

/** Parses a command line with handlers that only record what they were given. */
async function parse(argv: string[]): Promise<Parsed> {
  const got: Parsed = {};
  let err = '';
  const handlers: Handlers = {
    train: async (c, out) => ((got.train = c), (got.out = out), 0),
    predict: async (c, classesGiven, _b, out) => ((got.predict = c), (got.classesGiven = classesGiven), (got.out = out), 0),
    evaluate: async () => 0,
  };
  const errors: string[] = [];
  const origError = console.error;
  console.error = (s: string) => errors.push(s);
  try {
    await buildProgram(handlers, { exitOverride: true, writeErr: (s) => (err += s) }).parseAsync(argv, { from: 'user' });
  } catch (e) {
    got.error = err || (e as Error).message;
  } finally {
    console.error = origError;
    process.exitCode = 0; // run() sets it for a failed action; this process is the test runner
  }
  // Errors inside an action are reported by run(): one line on stderr, process.exitCode set.
  if (errors.length) got.error = errors.join('\n');
  return got;
}

const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe('--config', () => {
  test('YAML with flag-style keys; the command line overrides the file', async () => {
    const f = file('train.yaml', 'epochs: 7\nbatch-size: 4\nlearning_rate: 1e-4\nbilinear: true\ntensorboard: false\n');
    const r = await parse(['train', '--config', f, '-b', '2']);
    assert.ok(r.train, r.error);
    assert.equal(r.train.epochs, 7);
    assert.equal(r.train.batchSize, 2, 'the flag wins over the file');
    assert.equal(r.train.learningRate, 1e-4);
    assert.equal(r.train.bilinear, true);
    assert.equal(r.train.tensorboard, false);
    assert.equal(r.train.scale, 0.5, 'defaults stay for keys the file does not set');
  });

  test("a run's config.json replays that run (its recorded facts are ignored)", async () => {
    const recorded = {
      ...defaults(trainOptions),
      epochs: 3,
      scale: 0.25,
      device: 'cpu',
      maskSuffix: '_mask',
      maskValues: [0, 255],
      nChannels: 1,
      trainImages: 9,
      valImages: 1,
      versions: { unetTs: '0.1.0' },
    };
    const f = file('config.json', JSON.stringify(recorded, null, 2));
    const r = await parse(['train', '--config', f]);
    assert.ok(r.train, r.error);
    const { maskValues: _a, nChannels: _b, trainImages: _c, valImages: _d, versions: _e, ...options } = recorded;
    assert.deepEqual(r.train, options);
  });

  test('predict reads the file too; -c in the file counts as given', async () => {
    const f = file('predict.json', JSON.stringify({ model: 'm.pth', input: ['a.png', 'b.png'], scale: 1, classes: 3 }));
    const r = await parse(['predict', '--config', f]);
    assert.ok(r.predict, r.error);
    assert.deepEqual(r.predict.input, ['a.png', 'b.png']);
    assert.deepEqual(r.predict.model, ['m.pth'], 'a variadic key from a file is a list');
    assert.equal(r.classesGiven, true);
  });

  test('predict: -m repeated is an ensemble, --tta takes none|hflip|flip|d4 and refuses anything else', async () => {
    let r = await parse(['predict', '-m', 'a.pth', '-m', 'b.pth', '-i', 'x.png', '--tta', 'd4']);
    assert.ok(r.predict, r.error);
    assert.deepEqual(r.predict.model, ['a.pth', 'b.pth']);
    assert.equal(r.predict.tta, 'd4');
    r = await parse(['predict', '-i', 'x.png']);
    assert.equal(r.predict?.model, 'checkpoints/best_model.pth');
    assert.equal(r.predict?.tta, 'none');
    r = await parse(['predict', '-i', 'x.png', '--tta', 'flips']);
    assert.match(r.error ?? '', /--tta.*must be one of none, hflip, flip, d4; got 'flips'/);
  });

  test('unknown keys, bad values and bad files are refused naming the key and the file', async () => {
    const unknown = file('bad-key.yaml', 'epochs: 2\nepoch: 3\n');
    let r = await parse(['train', '--config', unknown]);
    assert.match(r.error ?? '', /bad-key\.yaml: unknown key 'epoch' \(did you mean 'epochs'\?\)/);
    r = await parse(['train', '--config', file('bad-value.yaml', 'scale: 1.5\n')]);
    assert.match(r.error ?? '', /bad-value\.yaml: scale: --scale must be in \(0, 1\]/);
    r = await parse(['train', '--config', file('bad-bool.json', '{"amp": "yes"}')]);
    assert.match(r.error ?? '', /bad-bool\.json: amp \(--amp\) must be true or false/);
    r = await parse(['train', '--config', file('broken.json', '{"epochs": ')]);
    assert.match(r.error ?? '', /broken\.json: not valid JSON/);
    r = await parse(['train', '--config', file('list.yaml', '- 1\n- 2\n')]);
    assert.match(r.error ?? '', /list\.yaml: expected a mapping/);
    r = await parse(['evaluate', '--config', join(dir, 'missing.yaml')]);
    assert.match(r.error ?? '', /missing\.yaml: file not found/);
    r = await parse(['predict', '--config', file('train-keys.yaml', 'epochs: 3\n')]);
    assert.match(r.error ?? '', /train-keys\.yaml: unknown key 'epochs'/, 'a predict config takes only predict options');
  });

  test('--class-names on the command line, as a list, or as a classes map in the file', async () => {
    let r = await parse(['train', '--class-names', 'background, sky ,building', '-c', '3']);
    assert.deepEqual(r.train?.classNames, ['background', 'sky', 'building']);
    assert.deepEqual((await parse(['train'])).train?.classNames, []);
    r = await parse(['train', '--config', file('names.yaml', 'class-names: [bg, fg]\n')]);
    assert.deepEqual(r.train?.classNames, ['bg', 'fg']);
    r = await parse(['train', '--config', file('map.yaml', 'classes:\n  0: background\n  1: sky\n  2: building\n')]);
    assert.equal(r.train?.classes, 3);
    assert.deepEqual(r.train?.classNames, ['background', 'sky', 'building']);
    r = await parse(['train', '--config', file('map.json', '{"classes": {"0": "background", "2": "sky"}}')]);
    assert.match(r.error ?? '', /map\.json: classes is a number, or a map of class indices 0\.\.n-1 to names/);
    r = await parse(['train', '--class-names', 'a,,b']);
    assert.match(r.error ?? '', /--class-names.*expects names separated by commas/);
  });

  test("Object's own names (toString, constructor, __proto__, ...) are unknown keys, not options", async () => {
    for (const key of ['toString', 'constructor', 'hasOwnProperty', 'valueOf', '__proto__', 'has-own-property']) {
      for (const cmd of ['train', 'predict']) {
        const f = file('proto.json', `{"${key}": true}`);
        const r = await parse(cmd === 'predict' ? ['predict', '-i', 'x.png', '--config', f] : ['train', '--config', f]);
        assert.match(r.error ?? '', new RegExp(`proto\\.json: unknown key '${key}'`), `${cmd}: ${key}`);
      }
    }
    const r = await parse(['predict', '-i', 'x.png', '--config', file('empty.json', '{}')]);
    assert.equal(r.classesGiven, false);
  });
});

describe('--resume', () => {
  test('without a path: the furthest epoch checkpoint, not the newest file; an unreadable INTERRUPTED.pth is passed over, said in one line', async () => {
    // (Real checkpoints, where INTERRUPTED.pth wins by progress: train.resume.test.ts.)
    const ck = join(dir, 'resume-ckpts');
    mkdirSync(ck);
    const t = Date.now() / 1000;
    for (const [name, age] of [
      ['checkpoint_epoch2.pth', 300],
      ['checkpoint_epoch1.pth', 200],
      ['INTERRUPTED.pth', 100],
      ['best_model.pth', 0],
    ] as const) {
      writeFileSync(join(ck, name), 'x');
      utimesSync(join(ck, name), t - age, t - age);
    }
    const r = await parse(['train', '--resume', '--checkpoint-dir', ck]);
    assert.equal(r.train?.load, join(ck, 'checkpoint_epoch2.pth'), r.error);
    // What went to stderr (parse() collects it as `error`).
    assert.match(r.error ?? '', /INTERRUPTED\.pth cannot be read as one of our checkpoints; passing it over/);
    assert.match(r.error ?? '', /^Resuming from .*checkpoint_epoch2\.pth \(the INTERRUPTED\.pth or epoch checkpoint in .* that trained furthest\)$/m);
  });

  test('with a path it is --load; with --load too, or nothing to resume from, it says so', async () => {
    assert.equal((await parse(['train', '--resume', 'a/INTERRUPTED.pth'])).train?.load, 'a/INTERRUPTED.pth');
    assert.match((await parse(['train', '--resume', 'a.pth', '--load', 'b.pth'])).error ?? '', /--resume and --load both name a checkpoint/);
    const empty = join(dir, 'empty-ckpts');
    mkdirSync(empty);
    assert.match((await parse(['train', '--resume', '--checkpoint-dir', empty])).error ?? '', /no INTERRUPTED\.pth or checkpoint_epoch<N>\.pth in .*empty-ckpts/);
    assert.match((await parse(['train', '--resume', '--checkpoint-dir', join(dir, 'nope')])).error ?? '', /checkpoint folder .*nope does not exist/);
  });
});

test('--json reaches the handlers of train and predict', async () => {
  assert.deepEqual((await parse(['train', '--json'])).out, { json: true });
  assert.deepEqual((await parse(['train'])).out, { json: false });
  assert.deepEqual((await parse(['predict', '-i', 'x.png', '--json'])).out, { json: true });
});

test('the exit-code table is in every --help and in the README', async () => {
  const program = buildProgram(undefined, { exitOverride: true });
  for (const name of ['train', 'plan', 'predict', 'evaluate', 'export', 'serve', 'demo', 'bench', 'dashboard', 'env']) {
    let out = '';
    const cmd = program.commands.find((c) => c.name() === name);
    assert.ok(cmd, name);
    cmd.configureOutput({ writeOut: (s) => (out += s) });
    assert.throws(() => cmd.parse(['--help'], { from: 'user' }));
    assert.ok(out.includes(EXIT_CODES_HELP), `${name} --help has the exit codes`);
  }
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  // README's table says the same as the one table in src/config/errors.ts, row by row.
  for (const { code, meaning } of EXIT_CODES) assert.ok(readme.includes(`| \`${code}\` | ${meaning} |`), `README row for exit code ${code}: ${meaning}`);
});

test('every --help line shows at most one default and never an empty one; --amp says what runs on CPU', async () => {
  const program = buildProgram(undefined, { exitOverride: true });
  assert.equal(program.commands.length, 10);
  for (const cmd of program.commands) {
    let out = '';
    cmd.configureOutput({ writeOut: (s) => (out += s), getOutHelpWidth: () => 1000 });
    assert.throws(() => cmd.parse(['--help'], { from: 'user' }));
    const lines = out.split('\n').filter((l) => l.trimStart().startsWith('-'));
    assert.ok(lines.length > 0, cmd.name());
    for (const line of lines) {
      assert.ok((line.match(/\(default[:s]/g) ?? []).length <= 1, `${cmd.name()}: doubled default: ${line}`);
      assert.doesNotMatch(line, /\(default: (""|\[\]|undefined)\)/, `${cmd.name()}: empty default: ${line}`);
    }
    if (cmd.name() === 'train') {
      assert.match(out, /--name <name> +run name \(default: a timestamp\)\n/);
      assert.match(out, /-f, --load <path> +[^\n(]+\n/);
    }
    const amp = lines.find((l) => l.includes('--amp'));
    if (amp) assert.match(amp, /fp32 on other CPUs|else fp32/, `${cmd.name()} --amp`);
  }
});

// ------------------------------------------------------------------------------------------------
// The real command

describe('the real command', { concurrency: 1 }, () => {
  let data: string;
  let work: string;
  before(async () => {
    data = join(dir, 'data');
    work = join(dir, 'work');
    await writePairs(
      data,
      4,
      { width: 32, height: 32, channels: 1, name: (i) => `${i}.png` },
      (p, i) => ((p * (i + 3)) % 251) & 255,
      (p, i) => ((p % 32) + i > 16 ? 255 : 0),
    );
  });

  test('--version prints the package version; usage errors exit with 64 in one line', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    const v = await runCli(['--version']);
    assert.equal(v.code, 0, v.stderr);
    assert.equal(v.stdout.trim(), pkg.version);
    const port = await runCli(['dashboard', '--port', 'abc']);
    assertCleanFailure(port, [/^error: option '--port <n>' argument 'abc' is invalid\. expects an integer >= 0, got 'abc'$/m], 'dashboard --port abc', EXIT.usage);
    assert.equal(port.stderr.split('\n')[0].includes('--port'), true);
    assertCleanFailure(await runCli(['train', '--epoch', '3']), [/unknown option '--epoch'/], '--epoch', EXIT.usage);
    assertCleanFailure(await runCli(['train', '--config', join(dir, 'bad-key.yaml')]), [/bad-key\.yaml: unknown key 'epoch'/], 'config', EXIT.usage);
  });

  test('env names what a bug report needs', async () => {
    const r = await runCli(['env', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const env = JSON.parse(r.stdout);
    assert.equal(env.addon.built, true);
    assert.equal(env.addon.path, join(ROOT, 'build', 'unet_torch.node'));
    assert.match(env.libtorch.version, /^\d+\.\d+/);
    assert.ok(env.libtorch.source && env.libtorch.lib, 'where libtorch came from');
    assert.match(env.node, /^v\d+/);
    assert.ok(env.threads.intraOp >= 1);
    assert.match(env.sharp.libvips, /^\d+\.\d+/);
    assert.equal(typeof env.distributed.gloo, 'boolean', 'the libtorch libraries were probed');
    assert.ok(Array.isArray(env.blas.loaded));
    const human = await runCli(['env']);
    for (const k of ['unet-ts', 'Node.js', 'addon', 'libtorch', 'CUDA', 'cuDNN', 'devices', 'BLAS', 'threads', 'sharp', 'distributed']) assert.match(human.stdout, new RegExp(`^${k} `, 'm'));
  });

  test('train --json, --resume without a path, predict --json and evaluate --json', async () => {
    const args = quickTrainArgs(data, work, ['-b', '2', '--base-channels', '16']); // narrow: the output is the point
    const first = await runCli([...args, '--json']);
    assert.equal(first.code, 0, first.stderr);
    const summary = JSON.parse(first.stdout);
    assert.equal(first.stdout.trim().split('\n').length, 1, 'stdout carries only the summary line');
    assert.equal(summary.status, 'finished');
    assert.equal(summary.exitCode, 0);
    assert.match(summary.lastCheckpoint, /checkpoint_epoch1\.pth$/);
    assert.match(first.stderr, /Starting training/, 'human output went to stderr');
    // The real config.json of that run parses back to the options it records.
    const recorded = JSON.parse(readFileSync(join(summary.runDir, 'config.json'), 'utf8')) as Record<string, unknown>;
    const replay = await parse(['train', '--config', join(summary.runDir, 'config.json')]);
    assert.ok(replay.train, replay.error);
    for (const [k, v] of Object.entries(replay.train)) assert.deepEqual(v, recorded[k], k);
    assert.equal(replay.train.epochs, 1);

    const resumed = await runCli([...args, '-e', '2', '--resume', '--json']); // the last -e wins
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /^Resuming from .*checkpoint_epoch1\.pth \(the INTERRUPTED\.pth or epoch checkpoint in .* that trained furthest\)/m);
    assert.match(resumed.stderr, /\(resuming at 2\)/);
    assert.match(JSON.parse(resumed.stdout).lastCheckpoint, /checkpoint_epoch2\.pth$/);

    const model = join(work, 'checkpoints', 'checkpoint_epoch2.pth');
    const out = join(dir, 'pred');
    const p = await runCli(['predict', '-m', model, '-i', join(data, 'imgs'), join(dir, 'missing.png'), '--output-dir', out, '-s', '1', '--device', 'cpu', '--json']);
    assert.equal(p.code, EXIT.partial, p.stderr);
    const lines = p.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(lines.length, 5, 'one line per input');
    assert.deepEqual(
      lines.filter((l) => l.error).map((l) => l.input),
      [join(dir, 'missing.png')],
    );
    assert.deepEqual(
      lines
        .filter((l) => l.mask)
        .map((l) => l.mask)
        .sort(),
      readdirSync(out)
        .map((n) => join(out, n))
        .sort(),
    );

    const ev = await runCli(['evaluate', '-m', model, '--imgs', join(data, 'imgs'), '--masks', join(data, 'masks'), '-s', '1', '--device', 'cpu', '--surface-tol', '1.5', '--json']);
    assert.equal(ev.code, 0, ev.stderr);
    const metrics = JSON.parse(ev.stdout);
    assert.equal(metrics.images, 4);
    assert.equal(metrics.surfaceTol, 1.5);
    assert.equal(metrics.perClass.length, metrics.nClasses === 1 ? 2 : metrics.nClasses);
    for (const c of metrics.perClass) assert.ok(c.nsd === null || (c.nsd >= 0 && c.nsd <= 1), JSON.stringify(c));
    assert.match(ev.stderr, /Confusion matrix/, 'the table went to stderr');
  });

  test('bench --json: every stdout line is JSON', async () => {
    const r = await runCli(['bench', '--conv', '--steps', '1', '--warmup', '0', '--height', '16', '--width', '16', '-b', '1', '--json']);
    assert.equal(r.code, 0, r.stderr);
    for (const l of r.stdout.trim().split('\n')) assert.doesNotThrow(() => JSON.parse(l), l);
  });
});
