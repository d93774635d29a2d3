/** DataLoader: batching, shuffling, dropLast, prefetching, augmentation determinism, size errors. */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Batch, DataError, DataLoader, Rng, type SampleSource, type StoredSample } from '../src/data/index.js';

/** In-memory samples: sample i is filled with the value i (image bytes i, mask i % 4). */
class FakeSource implements SampleSource {
  loads: number[] = [];
  inFlight = 0;
  maxInFlight = 0;
  constructor(
    private readonly count: number,
    private readonly shape: (i: number) => [number, number, number] = () => [1, 4, 5],
    private readonly delay: (i: number) => number = () => 0,
  ) {}
  async load(i: number): Promise<StoredSample> {
    if (i < 0 || i >= this.count) throw new RangeError(`index ${i}`);
    this.loads.push(i);
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    await sleep(this.delay(i));
    this.inFlight--;
    const [c, h, w] = this.shape(i);
    return { id: `s${i}`, image: new Uint8Array(c * h * w).fill(i), layout: 'hwc', divisor: 255, mask: new Uint8Array(h * w).fill(i % 4), channels: c, height: h, width: w };
  }
}

async function collect(loader: AsyncIterable<Batch>): Promise<Batch[]> {
  const out: Batch[] = [];
  for await (const b of loader) out.push(b);
  return out;
}

describe('DataLoader', () => {
  test('batches [N, C, H, W] / [N, H, W] in index order', async () => {
    const loader = new DataLoader(new FakeSource(10), [0, 1, 2, 3, 4, 5, 6], { batchSize: 3 });
    assert.equal(loader.length, 3);
    const batches = await collect(loader);
    assert.deepEqual(
      batches.map((b) => b.ids),
      [['s0', 's1', 's2'], ['s3', 's4', 's5'], ['s6']],
    );
    const b = batches[1];
    assert.deepEqual([b.n, b.c, b.h, b.w, b.images.length, b.masks.length], [3, 1, 4, 5, 60, 60]);
    assert.equal(b.images[20], Math.fround(4 / 255)); // second sample of the batch is s4
    assert.equal(b.masks[40], 5 % 4);
    assert.deepEqual(b.indices, [3, 4, 5]);
  });

  test('dropLast drops the short final batch', async () => {
    const loader = new DataLoader(new FakeSource(10), [0, 1, 2, 3, 4, 5, 6], { batchSize: 3, dropLast: true });
    assert.equal(loader.length, 2);
    assert.equal((await collect(loader)).length, 2);
  });

  test('shuffle: deterministic for a seed, new order every epoch, all samples once', async () => {
    const idx = Array.from({ length: 12 }, (_, i) => i);
    const epochs = async (seed: number) => {
      const loader = new DataLoader(new FakeSource(12), idx, { batchSize: 5, shuffle: true, rng: new Rng(seed) });
      return [(await collect(loader)).flatMap((b) => b.indices), (await collect(loader)).flatMap((b) => b.indices)];
    };
    const [e1, e2] = await epochs(1);
    assert.deepEqual(await epochs(1), [e1, e2]);
    assert.notDeepEqual(e1, e2);
    assert.deepEqual(
      [...e1].sort((a, b) => a - b),
      idx,
    );
    assert.notDeepEqual(e1, idx);
  });

  test('prefetch keeps batches loading while the consumer works', async () => {
    const src = new FakeSource(20, undefined, () => 5);
    const loader = new DataLoader(
      src,
      Array.from({ length: 20 }, (_, i) => i),
      { batchSize: 2, prefetch: 2 },
    );
    let loadsWhenFirstBatchArrived = -1;
    for await (const b of loader) {
      if (loadsWhenFirstBatchArrived < 0) {
        await sleep(30); // consumer busy: the next 2 batches should load meanwhile
        loadsWhenFirstBatchArrived = src.loads.length;
        assert.equal(b.ids[0], 's0');
      }
    }
    assert.equal(loadsWhenFirstBatchArrived, 6, 'batch 0 + 2 prefetched batches');
    assert.ok(src.maxInFlight <= 3 * 2, `at most (prefetch + 1) batches in flight, saw ${src.maxInFlight} loads`);
  });

  test('prefetch 0 loads one batch at a time', async () => {
    const src = new FakeSource(6, undefined, () => 2);
    const loader = new DataLoader(src, [0, 1, 2, 3, 4, 5], { batchSize: 2, prefetch: 0 });
    for await (const b of loader) assert.equal(src.loads.length, b.indices[1] + 1);
  });

  test('augmentation is reproducible whatever order the loads finish in', async () => {
    const run = async (delay: (i: number) => number) => {
      const src = new FakeSource(8, () => [1, 6, 6], delay);
      const images: number[][] = [];
      for await (const b of new DataLoader(src, [0, 1, 2, 3, 4, 5, 6, 7], { batchSize: 2, shuffle: true, rng: new Rng(4), augment: true })) images.push(Array.from(b.images));
      return images;
    };
    const fast = await run(() => 0);
    const jittered = await run((i) => (i * 7) % 5);
    assert.deepEqual(jittered, fast);
  });

  test('different image sizes in one batch: DataError with advice, not a crash', async () => {
    const src = new FakeSource(4, (i) => (i === 2 ? [1, 8, 8] : [1, 4, 5]));
    const loader = new DataLoader(src, [0, 1, 2, 3], { batchSize: 4 });
    await assert.rejects(collect(loader), (e) => {
      assert.ok(e instanceof DataError);
      assert.match(e.message, /s0 is 1×4×5 and s2 is 1×8×8/);
      assert.match(e.hint!, /-b 1/);
      assert.match(e.hint!, /resize your data/);
      return true;
    });
    // With batch size 1 the same data is fine.
    assert.equal((await collect(new DataLoader(src, [0, 1, 2, 3], { batchSize: 1 }))).length, 4);
  });

  test('greyscale mixed with colour: the hint says to convert', async () => {
    const src = new FakeSource(2, (i) => (i === 1 ? [3, 4, 5] : [1, 4, 5]));
    await assert.rejects(collect(new DataLoader(src, [0, 1], { batchSize: 2 })), (e) => /greyscale and some colour/.test((e as DataError).hint!));
  });

  test('an error in a prefetched batch surfaces when reached; stopping early leaves no unhandled rejection', async () => {
    const src = new FakeSource(6, (i) => (i === 5 ? [1, 8, 8] : [1, 4, 5]));
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      for await (const b of new DataLoader(src, [0, 1, 2, 3, 4, 5], { batchSize: 3, prefetch: 2 })) {
        assert.equal(b.ids[0], 's0');
        break; // batch 1 (with the odd sample) is already loading and will fail
      }
      await sleep(20);
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  test('reuseBuffers recycles consumed batch arrays, fully overwritten', async () => {
    const loader = new DataLoader(new FakeSource(8), [0, 1, 2, 3, 4, 5, 6, 7], { batchSize: 2, prefetch: 1, reuseBuffers: true });
    const seen = new Set<Float32Array>();
    for await (const b of loader) {
      seen.add(b.images);
      assert.ok(b.images.every((v, k) => v === Math.fround(b.indices[Math.floor(k / 20)] / 255)));
      assert.ok(b.masks.every((v, k) => v === b.indices[Math.floor(k / 20)] % 4));
    }
    assert.ok(seen.size <= 3, `${seen.size} distinct image arrays for 4 batches`);
  });

  test('interleaved 3-channel samples come out as [N, C, H, W]', async () => {
    const src: SampleSource = {
      load: async (i) => ({ id: `s${i}`, image: Uint8Array.from([10, 20, 30, 11, 21, 31]), layout: 'hwc', divisor: 255, mask: new Uint8Array(2), channels: 3, height: 1, width: 2 }),
    };
    const [b] = await collect(new DataLoader(src, [0], {}));
    assert.deepEqual(
      Array.from(b.images, (v) => Math.round(v * 255)),
      [10, 11, 20, 21, 30, 31],
    );
  });

  test('onBadSample: unreadable samples leave their batch (an emptied batch is dropped), each reported; keepEveryBatch refuses to drop one', async () => {
    const fake = new FakeSource(6);
    const bad = new Set([1, 4, 5]);
    const src: SampleSource = { load: async (i) => (bad.has(i) ? Promise.reject(new DataError('cannot decode', { file: `f${i}.png` })) : fake.load(i)) };
    const reported: string[] = [];
    const onBadSample = (e: DataError, i: number) => reported.push(`${i}:${e.file}`);
    const got = await collect(new DataLoader(src, [0, 1, 2, 3, 4, 5], { batchSize: 2, onBadSample }));
    assert.deepEqual(
      got.map((b) => b.indices),
      [[0], [2, 3]],
    );
    assert.deepEqual(
      got.map((b) => b.batch),
      [0, 1],
      'batch numbers count the dropped one too',
    );
    assert.deepEqual(reported, ['1:f1.png', '4:f4.png', '5:f5.png']);
    await assert.rejects(collect(new DataLoader(src, [0, 1, 2, 3, 4, 5], { batchSize: 2, onBadSample, keepEveryBatch: true })), /every sample of a batch is unreadable \(f4\.png, f5\.png\)/);
  });

  test('epoch({ order, batch }) continues an epoch: the same batches and augmentation as the rest of the whole epoch', async () => {
    const opts = { batchSize: 2, shuffle: true, augment: true } as const;
    const whole = await collect(new DataLoader(new FakeSource(8), [0, 1, 2, 3, 4, 5, 6, 7], { ...opts, rng: new Rng(5) }));
    const rng = new Rng(0);
    rng.loadStateDict(whole[1].rngAfter);
    const rest: Batch[] = [];
    for await (const b of new DataLoader(new FakeSource(8), [], { ...opts, rng }).epoch({ order: whole[0].order, batch: 2 })) rest.push(b);
    assert.deepEqual(
      rest.map((b) => [b.indices, Array.from(b.images), Array.from(b.masks)]),
      whole.slice(2).map((b) => [b.indices, Array.from(b.images), Array.from(b.masks)]),
    );
  });

  test('bad options are rejected', () => {
    assert.throws(() => new DataLoader(new FakeSource(1), [0], { batchSize: 0 }), RangeError);
    assert.throws(() => new DataLoader(new FakeSource(1), [0], { prefetch: -1 }), RangeError);
  });
});
