// The patch sampler (--patch-size): patches stay inside the image (padding where it is smaller),
// the foreground share holds over many draws, and a fixed seed gives the same patches.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DataLoader, PAD_CLASS, type PatchDraw, Rng, type StoredSample, cropInto, drawPatch, placePatch } from '../src/data/index.js';

/** An RGB sample whose pixel (y, x) of channel c holds (y * 7 + x * 3 + c * 50) % 256; mask from `label`. */
function sample(id: string, h: number, w: number, label: (y: number, x: number) => number = () => 0): StoredSample {
  const image = new Uint8Array(h * w * 3);
  const mask = new Uint8Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < 3; c++) image[(y * w + x) * 3 + c] = (y * 7 + x * 3 + c * 50) % 256;
      mask[y * w + x] = label(y, x);
    }
  }
  return { id, image, layout: 'hwc', divisor: 255, mask, channels: 3, height: h, width: w };
}

const pixel = (s: StoredSample, c: number, y: number, x: number) => s.image[(y * s.width + x) * 3 + c] / 255;

test('patches stay inside the image and copy its pixels and labels', () => {
  const rng = new Rng(1);
  const s = sample('a', 50, 70, (y, x) => (y > 20 && x > 40 ? 2 : y < 5 ? 1 : 0));
  const size = [32, 48] as const;
  for (let i = 0; i < 300; i++) {
    const at = placePatch(drawPatch(rng, 0.5), s.mask, s.height, s.width, size);
    assert.ok(at.y0 >= 0 && at.y0 <= 50 - 32 && at.x0 >= 0 && at.x0 <= 70 - 48, JSON.stringify(at));
    const images = new Float32Array(3 * 32 * 48);
    const masks = new Uint8Array(32 * 48);
    assert.equal(cropInto(s, at, size, images, 0, masks, 0), false);
    for (const [c, y, x] of [
      [0, 0, 0],
      [2, 31, 47],
      [1, 17, 5],
    ]) {
      assert.equal(images[(c * 32 + y) * 48 + x], Math.fround(pixel(s, c, at.y0 + y, at.x0 + x)));
      assert.equal(masks[y * 48 + x], s.mask[(at.y0 + y) * 70 + at.x0 + x]);
    }
  }
});

test('an image smaller than the patch is padded: image 0, mask PAD_CLASS (-100 on the device), whole image inside', () => {
  const rng = new Rng(2);
  const s = sample('small', 20, 40, () => 1); // 20 rows < 32; 40 columns > 32
  for (let i = 0; i < 100; i++) {
    const at = placePatch(drawPatch(rng, 0.5), s.mask, s.height, s.width, [32, 32]);
    assert.ok(at.y0 <= 0 && at.y0 >= 20 - 32, `rows: the patch covers all 20 (${at.y0})`);
    assert.ok(at.x0 >= 0 && at.x0 <= 40 - 32, `columns: inside (${at.x0})`);
    const images = new Float32Array(3 * 32 * 32).fill(9);
    const masks = new Uint8Array(32 * 32).fill(9);
    assert.equal(cropInto(s, at, [32, 32], images, 0, masks, 0), true);
    for (let y = 0; y < 32; y++) {
      const inside = y + at.y0 >= 0 && y + at.y0 < 20;
      assert.equal(masks[y * 32 + 3], inside ? 1 : PAD_CLASS, `row ${y}`);
      assert.equal(images[(2 * 32 + y) * 32 + 3], inside ? Math.fround(pixel(s, 2, y + at.y0, at.x0 + 3)) : 0, `row ${y}`);
    }
    assert.equal(masks.filter((m) => m === 1).length, 20 * 32); // every image row is in the patch
  }
});

test('the foreground share holds over many draws, spread over the classes present', () => {
  // 96x96: class 1 a 10x10 square, class 2 a 2x2 square (4 pixels: 0.04% of the image), far from the borders.
  const s = sample('fg', 96, 96, (y, x) => (y >= 30 && y < 40 && x >= 30 && x < 40 ? 1 : y >= 60 && y < 62 && x >= 70 && x < 72 ? 2 : 0));
  for (const share of [0.33, 0.8]) {
    const rng = new Rng(3);
    const n = 4000;
    const centred = new Map<number | null, number>();
    for (let i = 0; i < n; i++) {
      const at = placePatch(drawPatch(rng, share), s.mask, 96, 96, [32, 32]);
      centred.set(at.centredOn, (centred.get(at.centredOn) ?? 0) + 1);
      if (at.centredOn !== null) assert.equal(s.mask[(at.y0 + 16) * 96 + at.x0 + 16], at.centredOn, 'the patch centre is on the class');
    }
    const fg = (centred.get(1) ?? 0) + (centred.get(2) ?? 0);
    assert.ok(Math.abs(fg / n - share) < 0.03, `share ${share}: ${fg / n}`);
    // Classes are drawn among those present, not by area: the 4-pixel class gets half of them.
    assert.ok(Math.abs((centred.get(2) ?? 0) / fg - 0.5) < 0.05, `class 2: ${(centred.get(2) ?? 0) / fg}`);
  }
  // No foreground (only background and padding labels): placed uniformly.
  const bg = sample('bg', 64, 64, (y) => (y < 8 ? PAD_CLASS : 0));
  const always: PatchDraw = { fg: true, cls: 0.5, pixel: 0.5, y: 0.99, x: 0 };
  assert.deepEqual(placePatch(always, bg.mask, 64, 64, [32, 32]), { y0: 32, x0: 0, centredOn: null });
});

/** The loader's patch batches of a dataset of mixed sizes, as [ids, images, masks] per batch. */
async function epochs(seed: number, augment: boolean, count = 2) {
  const data = [sample('a', 48, 64, (y) => (y > 30 ? 1 : 0)), sample('b', 64, 48, (_y, x) => (x < 4 ? 2 : 0)), sample('c', 40, 40), sample('d', 56, 56, () => 1)];
  const source = { load: async (i: number) => data[i] };
  const loader = new DataLoader(source, [0, 1, 2, 3], { batchSize: 2, shuffle: true, rng: new Rng(seed), augment, patch: { size: [32, 32], oversampleFg: 0.5 } });
  const out: [string[], number[], number[]][] = [];
  for (let e = 0; e < count; e++) {
    for await (const b of loader) {
      assert.deepEqual([b.n, b.c, b.h, b.w], [2, 3, 32, 32]); // images of different sizes share a batch
      out.push([b.ids, Array.from(b.images), Array.from(b.masks)]);
    }
  }
  return out;
}

test('a fixed seed gives the same patches (with and without --augment); another seed others', async () => {
  for (const augment of [false, true]) {
    const a = await epochs(7, augment);
    assert.equal(a.length, 4); // one patch per image per epoch: 4 images, -b 2, 2 epochs
    assert.deepEqual(await epochs(7, augment), a);
    assert.notDeepEqual(await epochs(8, augment), a);
  }
});
