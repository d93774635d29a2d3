/** --folds: k-fold splits by file (disjoint, covering, seeded) and the post-processing decision rule. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { OptionError } from '../src/config/options.js';
import { decidePostprocess } from '../src/train/cross-validation.js';
import { foldConfig, foldSplit, kFolds } from '../src/train/folds.js';

describe('kFolds / foldSplit', () => {
  test('folds are disjoint, cover 0..n-1, differ in size by at most one, and are stable for a seed', () => {
    for (const [n, k] of [
      [10, 5],
      [7, 3],
      [2, 2],
      [23, 4],
    ]) {
      const folds = kFolds(n, k, 42);
      assert.equal(folds.length, k);
      const all = folds.flat().sort((a, b) => a - b);
      assert.deepEqual(
        all,
        Array.from({ length: n }, (_, i) => i),
        `n=${n} k=${k}: disjoint and covering`,
      );
      const sizes = folds.map((f) => f.length);
      assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `sizes ${sizes}`);
      assert.deepEqual(kFolds(n, k, 42), folds, 'same seed, same folds');
    }
    assert.notDeepEqual(kFolds(23, 4, 1), kFolds(23, 4, 2), 'another seed, other folds');
  });

  test('fold I validates, the other folds train: together every file exactly once per role', () => {
    const n = 11;
    const k = 3;
    const seen = new Array<number>(n).fill(0);
    for (let i = 0; i < k; i++) {
      const s = foldSplit(n, k, i, 7);
      assert.deepEqual(s.val, kFolds(n, k, 7)[i]);
      assert.equal(s.train.length + s.val.length, n);
      assert.ok(
        s.val.every((v) => !s.train.includes(v)),
        'no file both trains and validates',
      );
      for (const v of s.val) seen[v]++;
    }
    assert.deepEqual(seen, new Array<number>(n).fill(1), 'each file is held out by exactly one fold');
  });

  test('too few pairs, --fold without --folds and --fold out of range are usage errors naming the flag', () => {
    assert.throws(
      () => foldSplit(3, 5, 0),
      (e) => e instanceof OptionError && /--folds 5 needs at least 5/.test(e.message),
    );
    assert.throws(
      () => foldConfig({ folds: 0, fold: 1, checkpointDir: 'c' }),
      (e) => e instanceof OptionError && /--fold 1 needs --folds/.test(e.message),
    );
    assert.throws(
      () => foldConfig({ folds: 2, fold: 2, checkpointDir: 'c' }),
      (e) => e instanceof OptionError && /--fold 2 must be below --folds 2/.test(e.message),
    );
    assert.equal(foldConfig({ folds: 2, fold: 1, checkpointDir: 'c' }).checkpointDir, 'c/fold1');
    assert.equal(foldConfig({ folds: 2, checkpointDir: 'c' }).checkpointDir, 'c');
  });
});

describe('decidePostprocess (nnU-Net per-class rule)', () => {
  test('a class is cleaned only when its out-of-fold Dice strictly rises; the chosen mean never falls below none', () => {
    const d = decidePostprocess([1, 2, 3], [0.9, 0.5, 0.6, 0.7], [0.8, 0.55, 0.6, 0.65]);
    assert.deepEqual(d.classes, [1], 'class 1 improves, class 2 ties (kept as none), class 3 drops');
    assert.deepEqual(
      d.perClass.map((c) => c.largestComponent),
      [true, false, false],
    );
    assert.ok(Math.abs(d.meanDice - (0.55 + 0.6 + 0.7) / 3) < 1e-12);
    assert.ok(d.meanDice >= (0.5 + 0.6 + 0.7) / 3);
  });
});

describe('--time-budget over --folds', () => {
  test('shareBudget: an equal share of what is left for the folds still to run, at least 1 s', async () => {
    const { shareBudget } = await import('../src/train/cross-validation.js');
    const quiet = () => {};
    const now = 1_000_000;
    assert.equal(shareBudget(120, now - 20_000, 4, quiet, now), 25); // 100 s left for 4 folds
    assert.equal(shareBudget(120, now - 60_000, 3, quiet, now), 20); // the first took 40 s: 60 s left for 3
    assert.equal(shareBudget(120, now - 130_000, 2, quiet, now), 1); // over: still one step's chance, and a clear line
  });

  test('crossValidate gives each fold its share, counted from its own start', async () => {
    const { crossValidate } = await import('../src/train/cross-validation.js');
    const { COMMAND_START_ENV } = await import('../src/distributed/index.js');
    const { defaults, trainOptions } = await import('../src/config/options.js');
    const saved = process.env[COMMAND_START_ENV];
    process.env[COMMAND_START_ENV] = String(performance.timeOrigin + performance.now() - 20_000); // 100 s of 120 left
    const seen: { budget: number; start: number }[] = [];
    const log = console.log;
    console.log = () => {};
    try {
      const code = await crossValidate({ ...defaults(trainOptions), folds: 4, timeBudget: 120 }, { json: false }, async (c) => {
        seen.push({ budget: c.timeBudget, start: Number(process.env[COMMAND_START_ENV]) });
        return c.fold === 3 ? 1 : 0; // stop before the summary (it would evaluate real checkpoints)
      });
      assert.equal(code, 1);
    } finally {
      console.log = log;
      if (saved === undefined) delete process.env[COMMAND_START_ENV];
      else process.env[COMMAND_START_ENV] = saved;
    }
    // instant folds: ~100 s stay left, shared by 4, 3, 2, 1 folds
    seen.forEach((s, i) => assert.ok(Math.abs(s.budget - 100 / (4 - i)) <= 1, `fold ${i}: ${s.budget} s`));
    const now = performance.timeOrigin + performance.now();
    for (const s of seen) assert.ok(now - s.start < 5_000, 'each fold counts from its own start');
  });
});
