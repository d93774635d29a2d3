// SegmentationMeter, the one scoring loop of training validation and `unet evaluate`: hand-computed
// Dice/IoU/confusion, the same reading whatever the batching, rank sums, and no tensor left behind.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as E from '../src/engine/index.js';
import { SegmentationMeter } from '../src/metrics/meter.js';

const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) < 1e-6, `${what}: ${a} vs ${b}`);

/** Binary (1 output): image 0 predicts 1 of its 2 foreground pixels, image 1 is empty and predicted empty. */
const BINARY = {
  logits: [5, -5, -5, -5, -5, -5, -5, -5], // [2,1,2,2]
  masks: [1, 1, 0, 0, 0, 0, 0, 0], // [2,2,2]
};

function addBinary(meter: SegmentationMeter, images: number[]): void {
  E.tidy(() => {
    const pick = (xs: number[]) => images.flatMap((i) => xs.slice(i * 4, i * 4 + 4));
    const logits = E.tensor(new Float32Array(pick(BINARY.logits)), [images.length, 1, 2, 2]);
    const y = E.tensor(new Float32Array(pick(BINARY.masks)), [images.length, 2, 2]).to({ dtype: 'int64' });
    meter.add(logits, y);
  });
}

test('binary: per-image Dice as evaluate.py (an empty mask predicted empty scores 1), confusion, IoU, accuracy', () => {
  const live = E.memoryStats().liveTensors;
  for (const batches of [[[0, 1]], [[0], [1]]]) {
    const meter = new SegmentationMeter(1);
    for (const b of batches) addBinary(meter, b);
    const r = meter.read();
    meter.dispose();
    assert.equal(r.images, 2);
    close(r.dice, (2 / 3 + 1) / 2, `reference Dice, batches ${JSON.stringify(batches)}`);
    assert.deepEqual(r.confusion, [
      [6, 0],
      [1, 1],
    ]);
    close(r.meanDice, 2 / 3, 'foreground Dice');
    close(r.perClassDice[0], 12 / 13, 'background Dice');
    close(r.meanIoU, 1 / 2, 'foreground IoU');
    close(r.pixelAccuracy, 7 / 8, 'pixel accuracy');
  }
  assert.equal(E.memoryStats().liveTensors, live, 'no tensor left');
});

test('3 classes: Dice averaged over the foreground classes; a reducer sums the ranks', async () => {
  const live = E.memoryStats().liveTensors;
  const meter = new SegmentationMeter(3);
  E.tidy(() => {
    // argmax [[0,1],[2,2]] against truth [[0,1],[1,2]]: class 1 Dice 2/3, class 2 Dice 2/3
    const pred = [0, 1, 2, 2];
    const logits = new Float32Array(12);
    pred.forEach((c, i) => (logits[c * 4 + i] = 1));
    meter.add(E.tensor(logits, [1, 3, 2, 2]), E.tensor(new Float32Array([0, 1, 1, 2]), [1, 2, 2]).to({ dtype: 'int64' }));
  });
  close(meter.read().dice, 2 / 3, 'reference Dice');
  // Two ranks that saw the same image: the counts double, the mean stays.
  const twice = { reduce: async (xs: number[]) => xs.map((x) => 2 * x), reduceTensor: async (t: E.Tensor) => void t.mul_(2) };
  await meter.reduce(twice);
  const r = meter.read();
  meter.dispose();
  assert.equal(r.images, 2);
  close(r.dice, 2 / 3, 'reference Dice after the rank sum');
  assert.deepEqual(r.confusion, [
    [2, 0, 0],
    [0, 2, 2],
    [0, 0, 2],
  ]);
  close(r.meanDice, 2 / 3, 'foreground Dice from the counts');
  assert.equal(E.memoryStats().liveTensors, live, 'no tensor left');
});
