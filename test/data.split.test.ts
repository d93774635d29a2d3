/** Seeded generator, train/validation split and shuffling. */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { mulberry32, randomSplit, Rng, shuffle } from '../src/data/index.js';

/** The published mulberry32 one-liner, as a cross-check of the class. */
function reference(a: number): () => number {
  return () => {
    let t = (a += 0x6d2b79f5);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('Rng (mulberry32)', () => {
  test('matches the reference mulberry32 sequence', () => {
    for (const seed of [0, 1, 42, 0xdeadbeef]) {
      const ref = reference(seed);
      const ours = mulberry32(seed);
      for (let i = 0; i < 1000; i++) assert.equal(ours(), ref(), `seed ${seed}, draw ${i}`);
    }
  });

  test('stateDict/loadStateDict resumes the sequence exactly; a bad state is refused', () => {
    const a = new Rng(7);
    for (let i = 0; i < 10; i++) a.next();
    const saved = a.stateDict();
    const expected = Array.from({ length: 5 }, () => a.next());
    const b = new Rng(123);
    b.loadStateDict(saved);
    assert.deepEqual(
      Array.from({ length: 5 }, () => b.next()),
      expected,
    );
    for (const bad of [{ state: -1 }, { state: 1.5 }, { state: 2 ** 32 }, {} as { state: number }]) assert.throws(() => b.loadStateDict(bad), /'state' must be an integer/);
  });

  test('int(n) stays in [0, n) and covers it', () => {
    const r = new Rng(1);
    const seen = new Set<number>();
    for (let i = 0; i < 1000; i++) {
      const v = r.int(6);
      assert.ok(v >= 0 && v < 6 && Number.isInteger(v));
      seen.add(v);
    }
    assert.equal(seen.size, 6);
  });
});

describe('randomSplit', () => {
  for (const [n, pct, nVal] of [
    [30, 10, 3],
    [5, 10, 0],
    [101, 10, 10],
    [7, 50, 3],
    [1000, 12.5, 125],
  ] as const) {
    test(`n=${n}, ${pct}% -> ${nVal} validation samples (floor)`, () => {
      const { train, val } = randomSplit(n, pct, 0);
      assert.equal(val.length, nVal);
      assert.equal(train.length, n - nVal);
      assert.deepEqual(
        [...train, ...val].sort((a, b) => a - b),
        Array.from({ length: n }, (_, i) => i),
      );
    });
  }

  test('fixed for a seed, different for another', () => {
    assert.deepEqual(randomSplit(50, 20, 0), randomSplit(50, 20, 0));
    assert.notDeepEqual(randomSplit(50, 20, 0).val, randomSplit(50, 20, 1).val);
  });

  test('rejects percentages outside 0..100', () => {
    assert.throws(() => randomSplit(10, 120), RangeError);
  });
});

describe('shuffle', () => {
  test('is a permutation, deterministic for a seed', () => {
    const a = shuffle(
      Array.from({ length: 20 }, (_, i) => i),
      new Rng(3),
    );
    const b = shuffle(
      Array.from({ length: 20 }, (_, i) => i),
      new Rng(3),
    );
    assert.deepEqual(a, b);
    assert.deepEqual(
      [...a].sort((x, y) => x - y),
      Array.from({ length: 20 }, (_, i) => i),
    );
    assert.notDeepEqual(
      a,
      Array.from({ length: 20 }, (_, i) => i),
    );
  });
});
