// When validation rounds run (and step the plateau scheduler): --val-every auto / N / 0.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { trainOptions } from '../src/config/options.js';
import { roundDue, validationCadence } from '../src/train/cadence.js';

const parseValEvery = (raw: string) => trainOptions.valEvery.parse(raw, '--val-every');

const rounds = (c: ReturnType<typeof validationCadence>, batchesPerEpoch: number, epochs: number, accum: number) => {
  const out: [number, number][] = []; // [epoch, batch within the epoch]
  let step = 0;
  for (let e = 1; e <= epochs; e++) {
    for (let b = 1; b <= batchesPerEpoch; b++) {
      const stepped = b % accum === 0;
      if (stepped) step++;
      if (roundDue(c, (e - 1) * batchesPerEpoch + b, step, stepped)) out.push([e, b]);
    }
    if (batchesPerEpoch % accum !== 0) step++; // the flushed remainder
  }
  return out;
};

test("auto is the reference's division_step over all epochs; N counts optimizer steps; 0 and tiny sets fall back to the epoch's end", () => {
  // 23 images, batch 1: every 23 // 5 = 4 batches, positions drifting from epoch to epoch.
  assert.deepEqual(validationCadence('auto', 23, 1), { unit: 'batches', every: 4 });
  assert.deepEqual(rounds(validationCadence('auto', 23, 1), 23, 2, 1).slice(4, 8), [
    [1, 20],
    [2, 1],
    [2, 5],
    [2, 9],
  ]);
  // batch 2 over 23 images: 23 // 10 = 2 batches; accumulation does not change the unit.
  assert.deepEqual(
    rounds(validationCadence('auto', 23, 2), 12, 1, 3).map(([, b]) => b),
    [2, 4, 6, 8, 10, 12],
  );
  // Fewer than 5 batches: the reference never validates; we do at the epoch's end.
  assert.deepEqual(validationCadence('auto', 9, 2), { unit: 'epoch' });
  assert.deepEqual(rounds(validationCadence('auto', 9, 2), 5, 3, 1), []);
  assert.deepEqual(validationCadence(0, 1000, 1), { unit: 'epoch' });
  // N: after optimizer steps 3, 6, ... only (never mid-window).
  assert.deepEqual(rounds(validationCadence(3, 10, 1), 10, 2, 2), [
    [1, 6],
    [2, 2],
    [2, 8],
  ]);
  assert.equal(parseValEvery('auto'), 'auto');
  assert.equal(parseValEvery('0'), 0);
  assert.throws(() => parseValEvery('often'), /--val-every expects an integer >= 0/);
});
