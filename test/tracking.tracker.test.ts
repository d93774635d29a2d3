// Tracker: run directory layout, metrics.jsonl records, side files, error
// isolation (nothing may stop training), cost per step, and the W&B sink.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { readAllJsonl, Tracker, WandbSink, wandbRequested } from '../src/tracking/index.js';
import { tempDir } from './helpers/workdir.js';

const tmp = tempDir('tracker');

const tick = () => new Promise((r) => setImmediate(r));

function lines(path: string): Array<Record<string, unknown>> {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

describe('Tracker run directory', () => {
  test('layout, config.json and metrics.jsonl records', async () => {
    const warnings: string[] = [];
    const config = { options: { epochs: 2, lr: 1e-4 }, versions: { node: process.version }, device: 'cpu', dataset: { n: 30 } };
    const t = await Tracker.create({ logdir: join(tmp, 'runs'), name: 'my run', config, onWarning: (m) => warnings.push(m) });
    assert.match(basename(t.runDir), /^\d{8}-\d{6}-my_run$/);
    assert.deepEqual(JSON.parse(readFileSync(join(t.runDir, 'config.json'), 'utf8')), config);

    t.scalar('train loss', 0.9, 1);
    t.scalar('learning rate', 1e-4, 1);
    await tick();
    t.scalars({ 'train loss': 0.8, 'learning rate': 1e-4, epoch: 1, 'img/s': 12.5 }, 2);
    t.scalar('train loss', Number.NaN, 3); // step change ends the step-2 record
    await tick();
    t.scalar('validation Dice', 0.5, 3); // validation later at the same step: its own record
    t.histogram('Weights/w', Float32Array.from([1, 2, 3, 4]), 3);
    t.image('pred/0', { data: new Uint8Array(4 * 2), width: 4, height: 2, channels: 1 }, 3);
    t.record({ type: 'final', perClassDice: [0.9, 0.7], perClassIoU: [0.8, 0.6] });
    await t.flush();
    const mid = lines(join(t.runDir, 'metrics.jsonl'));
    assert.equal(mid.length, 5, 'flush() writes everything logged so far');
    await t.close();
    await t.close(); // twice is fine

    const recs = lines(join(t.runDir, 'metrics.jsonl'));
    assert.deepEqual(
      recs.map((r) => [r.type, r.step, r.values]),
      [
        ['scalars', 1, { 'train loss': 0.9, 'learning rate': 1e-4 }],
        ['scalars', 2, { 'train loss': 0.8, 'learning rate': 1e-4, epoch: 1, 'img/s': 12.5 }],
        ['scalars', 3, { 'train loss': 'NaN' }],
        ['scalars', 3, { 'validation Dice': 0.5 }],
        ['final', undefined, undefined],
        ['end', undefined, undefined],
      ],
    );
    assert.deepEqual(recs[4]?.perClassDice, [0.9, 0.7]);
    for (const r of recs) assert.equal(typeof r.time, 'number');

    const hist = lines(join(t.runDir, 'histograms.jsonl'));
    assert.equal(hist.length, 1);
    assert.equal(hist[0]?.tag, 'Weights/w');
    assert.equal(hist[0]?.num, 4);
    assert.equal(hist[0]?.mean, 2.5);
    assert.equal(
      (hist[0]?.counts as number[] | undefined)?.reduce((a, b) => a + b, 0),
      4,
    );

    const media = lines(join(t.runDir, 'media.jsonl'));
    assert.deepEqual(
      media.map((m) => [m.step, m.tag, m.file, m.width, m.height, m.channels]),
      [[3, 'pred/0', 'media/3-pred_0.png', 4, 2, 1]],
    );
    assert.ok(existsSync(join(t.runDir, 'media', '3-pred_0.png')));
    assert.ok(t.eventFile && existsSync(t.eventFile));
    assert.deepEqual(warnings, []);
    // calls after close are ignored, not errors
    t.scalar('train loss', 1, 99);
  });

  test('two runs started in the same second get separate directories; tensorboard can be off', async () => {
    const logdir = join(tmp, 'same');
    const a = await Tracker.create({ logdir, name: 'x', config: {}, tensorboard: false });
    const b = await Tracker.create({ logdir, name: 'x', config: {} });
    assert.notEqual(a.runDir, b.runDir);
    assert.equal(a.eventFile, null);
    await Promise.all([a.close(), b.close()]);
  });

  test('queued records reach the disk even if the process exits without close()', () => {
    const dir = join(tmp, 'exit');
    const script = join(tmp, 'exit.mts');
    const src = resolve(fileURLToPath(new URL('../src/tracking/index.ts', import.meta.url)));
    writeFileSync(
      script,
      `import { Tracker } from ${JSON.stringify(src)};
const t = await Tracker.create({ logdir: ${JSON.stringify(dir)}, name: 'e', config: {} });
for (let s = 1; s <= 5; s++) t.scalar('train loss', s, s);
console.log(t.runDir);
process.exit(0);
`,
    );
    const r = spawnSync(process.execPath, ['--import', 'tsx', script], { encoding: 'utf8', cwd: process.cwd() });
    assert.equal(r.status, 0, r.stderr);
    const recs = lines(join(r.stdout.trim(), 'metrics.jsonl'));
    assert.deepEqual(
      recs.map((x) => x.step),
      [1, 2, 3, 4, 5],
    );
  });
});

describe('Tracker never stops training', () => {
  test('unusable logdir: one warning, every call is a no-op', async () => {
    const file = join(tmp, 'not-a-dir');
    writeFileSync(file, 'x');
    const warnings: string[] = [];
    const t = await Tracker.create({ logdir: file, config: {}, onWarning: (m) => warnings.push(m) });
    assert.equal(t.enabled, false);
    t.scalar('train loss', 1, 1);
    t.histogram('Weights/a', new Float32Array(3), 1);
    t.image('x', { data: new Uint8Array(1), width: 1, height: 1, channels: 1 }, 1);
    t.record({ type: 'final' });
    await t.flush();
    await t.close();
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] as string, /cannot create run directory/);
  });

  test('write errors and bad inputs are reported once each and never thrown', async () => {
    const warnings: string[] = [];
    const t = await Tracker.create({
      logdir: join(tmp, 'errs'),
      config: {},
      onWarning: (m) => {
        warnings.push(m);
        throw new Error('a throwing callback is swallowed too');
      },
    });
    // metrics.jsonl cannot be opened for appending if it is a directory
    mkdirSync(join(t.runDir, 'metrics.jsonl'));
    for (let s = 0; s < 100; s++) t.scalar('train loss', s, s);
    await t.flush();
    for (let s = 100; s < 200; s++) t.scalar('train loss', s, s);
    // wrong image size, twice
    t.image('bad', { data: new Uint8Array(3), width: 4, height: 4, channels: 1 }, 1);
    t.image('bad', { data: new Uint8Array(3), width: 4, height: 4, channels: 1 }, 2);
    t.histogram('Weights/nan', Float32Array.from([Number.NaN]), 1);
    await t.close();
    assert.equal(warnings.filter((w) => w.includes('metrics.jsonl')).length, 1, warnings.join('\n'));
    assert.equal(warnings.filter((w) => w.includes('image()')).length, 1, warnings.join('\n'));
    assert.equal(warnings.filter((w) => w.includes('Weights/nan')).length, 1, warnings.join('\n'));
    assert.equal(warnings.length, 3, warnings.join('\n'));
  });

  test('per-step logging is cheap', async () => {
    const t = await Tracker.create({ logdir: join(tmp, 'speed'), config: {}, onWarning: (m) => assert.fail(m) });
    const steps = 20_000;
    const t0 = performance.now();
    for (let s = 0; s < steps; s++) {
      t.scalar('train loss', 1 / (s + 1), s);
      t.scalar('learning rate', 1e-4, s);
      t.scalar('img/s', 100, s);
    }
    const perStepUs = ((performance.now() - t0) * 1000) / steps;
    await t.close();
    const recs = await readAllJsonl<{ type: string }>(join(t.runDir, 'metrics.jsonl'));
    assert.equal(recs.filter((r) => r.type === 'scalars').length, steps);
    // A training step takes milliseconds; the tracker must stay far below that.
    assert.ok(perStepUs < 200, `${perStepUs.toFixed(1)} µs per step`);
  });
});

describe('W&B sink', () => {
  const key = { WANDB_API_KEY: 'test-key' };

  test('wandbRequested: --wandb, or --tracker wandb with a key', () => {
    assert.equal(wandbRequested({ wandb: true }, {}), true);
    assert.equal(wandbRequested({ tracker: 'wandb' }, {}), false);
    assert.equal(wandbRequested({ tracker: 'wandb' }, key), true);
    assert.equal(wandbRequested({ tracker: 'tensorboard' }, key), false);
    assert.equal(wandbRequested({ wandb: true }, { WANDB_MODE: 'disabled' }), false);
  });

  test('@wandb/sdk not installed: one warning with the sync hint, training goes on', async () => {
    const warnings: string[] = [];
    const t = await Tracker.create({ logdir: join(tmp, 'wb'), config: {}, wandb: true, env: key, onWarning: (m) => warnings.push(m) });
    for (let s = 1; s <= 50; s++) t.scalar('train loss', 1 / s, s);
    await t.wandb?.whenSettled();
    for (let s = 51; s <= 100; s++) t.scalar('train loss', 1 / s, s);
    await t.close();
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0] as string, /@wandb\/sdk/);
    assert.ok((warnings[0] as string).includes(`wandb sync --sync-tensorboard ${t.runDir}`));
    const recs = await readAllJsonl<{ type: string }>(join(t.runDir, 'metrics.jsonl'));
    assert.equal(recs.filter((r) => r.type === 'scalars').length, 100);
  });

  test('no API key: says so once and never loads the SDK', async () => {
    const warnings: string[] = [];
    let loaded = false;
    const sink = new WandbSink({
      env: {},
      onWarning: (m) => warnings.push(m),
      load: async () => {
        loaded = true;
        return {};
      },
    });
    sink.scalar('a', 1, 1);
    await sink.whenSettled();
    sink.scalar('a', 2, 2);
    await sink.close();
    assert.equal(loaded, false);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] as string, /WANDB_API_KEY/);
  });

  test('with an SDK: one log() per step, queued while init runs, finish() on close', async () => {
    const logged: Array<[Record<string, unknown>, number | undefined]> = [];
    let initOpts: Record<string, unknown> | undefined;
    let finished = false;
    let releaseInit: () => void = () => {};
    const fakeSdk = {
      default: {
        init: async (o: Record<string, unknown>) => {
          initOpts = o;
          await new Promise<void>((r) => {
            releaseInit = r;
          });
          return {
            log: (d: Record<string, unknown>, s?: number) => logged.push([{ ...d }, s]),
            finish: async () => {
              finished = true;
            },
          };
        },
      },
    };
    const warnings: string[] = [];
    const t = await Tracker.create({
      logdir: join(tmp, 'wb2'),
      name: 'wb',
      config: { lr: 0.1 },
      wandb: true,
      env: key,
      wandbLoader: async () => fakeSdk,
      onWarning: (m) => warnings.push(m),
    });
    t.scalar('train loss', 0.5, 1);
    t.scalar('learning rate', 0.1, 1);
    t.scalar('train loss', 0.4, 2);
    await tick();
    releaseInit();
    await t.wandb?.whenSettled();
    t.scalar('validation Dice', 0.7, 2);
    t.scalar('train loss', 0.3, 3);
    await t.close();
    assert.deepEqual(warnings, []);
    assert.equal((initOpts?.config as { lr: number } | undefined)?.lr, 0.1);
    assert.equal(initOpts?.name, basename(t.runDir));
    assert.deepEqual(logged, [
      [{ 'train loss': 0.5, 'learning rate': 0.1 }, 1],
      [{ 'train loss': 0.4, 'validation Dice': 0.7 }, 2],
      [{ 'train loss': 0.3 }, 3],
    ]);
    assert.equal(finished, true);
  });

  test('init fails (no network) or hangs: one warning, close() does not wait long', async () => {
    const warnings: string[] = [];
    const failing = new WandbSink({
      env: key,
      onWarning: (m) => warnings.push(m),
      load: async () => ({ init: async () => Promise.reject(new Error('getaddrinfo ENOTFOUND api.wandb.ai')) }),
    });
    failing.scalar('a', 1, 1);
    await failing.whenSettled();
    failing.scalar('a', 2, 2);
    await failing.close();
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] as string, /ENOTFOUND/);

    const hangWarnings: string[] = [];
    const hanging = new WandbSink({
      env: key,
      closeTimeoutMs: 50,
      onWarning: (m) => hangWarnings.push(m),
      load: async () => ({ init: () => new Promise(() => {}) }),
    });
    hanging.scalar('a', 1, 1);
    const t0 = Date.now();
    await hanging.close();
    assert.ok(Date.now() - t0 < 2000);
    assert.equal(hangWarnings.length, 1);
    assert.match(hangWarnings[0] as string, /did not finish/);
  });
});
