/** Augmentation keeps image and mask aligned; exact small cases for each transform. */

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { type AugmentParams, augment, augmentInto, Rng, sampleAugment } from '../src/data/index.js';

const none: AugmentParams = { hflip: false, vflip: false, rot: 0, scale: 1, shiftY: 0.5, shiftX: 0.5, brightness: 1 };

/** Applies params to a 1-channel H×W image whose values are 0..H*W-1; returns the image as rows. */
function run(h: number, w: number, p: Partial<AugmentParams>): number[][] {
  const image = Float32Array.from({ length: h * w }, (_, i) => i);
  const mask = Uint8Array.from({ length: h * w }, (_, i) => i);
  const outImg = new Float32Array(h * w);
  const outMask = new Uint8Array(h * w);
  augmentInto({ image, mask, channels: 1, height: h, width: w }, { ...none, ...p }, outImg, 0, outMask, 0);
  assert.deepEqual(Array.from(outMask), Array.from(outImg), 'mask follows the image');
  return Array.from({ length: h }, (_, y) => Array.from(outImg.subarray(y * w, (y + 1) * w)));
}

describe('exact transforms', () => {
  test('horizontal and vertical flips', () => {
    assert.deepEqual(run(2, 3, { hflip: true }), [
      [2, 1, 0],
      [5, 4, 3],
    ]);
    assert.deepEqual(run(2, 3, { vflip: true }), [
      [3, 4, 5],
      [0, 1, 2],
    ]);
    assert.deepEqual(run(2, 3, { hflip: true, vflip: true }), [
      [5, 4, 3],
      [2, 1, 0],
    ]);
  });

  test('rotation by 90° counter-clockwise, like np.rot90', () => {
    // np.rot90([[0,1,2],[3,4,5],[6,7,8]]) == [[2,5,8],[1,4,7],[0,3,6]]
    assert.deepEqual(run(3, 3, { rot: 1 }), [
      [2, 5, 8],
      [1, 4, 7],
      [0, 3, 6],
    ]);
    assert.deepEqual(run(3, 3, { rot: 2 }), [
      [8, 7, 6],
      [5, 4, 3],
      [2, 1, 0],
    ]);
    assert.deepEqual(run(3, 3, { rot: 3 }), [
      [6, 3, 0],
      [7, 4, 1],
      [8, 5, 2],
    ]);
  });

  test('non-square images keep their shape: quarter turns become 0° / 180°', () => {
    assert.deepEqual(run(2, 3, { rot: 1 }), run(2, 3, {}));
    assert.deepEqual(run(2, 3, { rot: 3 }), [
      [5, 4, 3],
      [2, 1, 0],
    ]);
  });

  test('scale 1 with brightness: image scaled and clamped, mask untouched', () => {
    const image = Float32Array.from([0.2, 0.5, 0.95, 1]);
    const mask = Uint8Array.from([0, 1, 2, 3]);
    const out = new Float32Array(4);
    const outMask = new Uint8Array(4);
    augmentInto({ image, mask, channels: 1, height: 2, width: 2 }, { ...none, brightness: 1.1 }, out, 0, outMask, 0);
    assert.deepEqual(Array.from(out), [0.2 * 1.1, 0.5 * 1.1, 1, 1].map(Math.fround));
    assert.deepEqual(Array.from(outMask), [0, 1, 2, 3]);
  });

  test('8-bit sources are scaled by their divisor', () => {
    const r = augment({ image: Uint8Array.from([0, 255, 51, 102]), divisor: 255, mask: new Uint8Array(4), channels: 1, height: 2, width: 2 }, new Rng(0), { scale: false, brightness: false });
    assert.deepEqual(
      [...r.image].map((v) => Math.round(v * 255)).sort((a, b) => a - b),
      [0, 51, 102, 255],
    );
  });
});

describe('image/mask alignment', () => {
  const K = 4; // classes
  const H = 48,
    W = 48,
    C = 3;
  /** Blocky class map and an image that encodes the class in every channel: image = class / (K-1). */
  function sample(seed: number) {
    const rng = new Rng(seed);
    const mask = new Uint8Array(H * W);
    const blocks = Array.from({ length: (H / 8) * (W / 8) }, () => rng.int(K));
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) mask[y * W + x] = blocks[(y >> 3) * (W / 8) + (x >> 3)];
    const image = new Float32Array(C * H * W);
    for (let c = 0; c < C; c++) for (let i = 0; i < H * W; i++) image[c * H * W + i] = mask[i] / (K - 1);
    return { image, mask, channels: C, height: H, width: W };
  }
  const consistency = (img: Float32Array, mask: Uint8Array) => {
    let ok = 0;
    for (let c = 0; c < C; c++) for (let i = 0; i < H * W; i++) if (Math.round(img[c * H * W + i] * (K - 1)) === mask[i]) ok++;
    return ok / (C * H * W);
  };

  test('flips and rotations: every pixel stays consistent', () => {
    const rng = new Rng(11);
    for (let k = 0; k < 40; k++) {
      const s = sample(k);
      const out = augment(s, rng, { scale: false, brightness: false });
      assert.equal(consistency(out.image, out.mask), 1);
    }
  });

  test('with scale jitter: consistent except on interpolated block edges', () => {
    const rng = new Rng(12);
    let changed = 0;
    for (let k = 0; k < 40; k++) {
      const s = sample(100 + k);
      const out = augment(s, rng, { brightness: false, scale: [0.8, 1.2] });
      assert.ok(consistency(out.image, out.mask) > 0.9, `sample ${k}: ${consistency(out.image, out.mask)}`);
      if (out.mask.some((v, i) => v !== s.mask[i])) changed++;
      // Class histogram roughly kept (mirror padding, no invented classes).
      assert.ok(out.mask.every((v) => v < K));
    }
    assert.ok(changed > 30, 'augmentation actually changes samples');
  });
});

describe('sampleAugment', () => {
  test('deterministic, and always the same number of draws', () => {
    assert.deepEqual(sampleAugment(new Rng(5)), sampleAugment(new Rng(5)));
    const a = new Rng(9),
      b = new Rng(9);
    sampleAugment(a, {});
    sampleAugment(b, { hflip: false, scale: false, brightness: false, rotate90: false });
    assert.deepEqual(a.stateDict(), b.stateDict());
  });

  test('disabled options give identity parameters', () => {
    const p = sampleAugment(new Rng(1), { hflip: false, vflip: false, rotate90: false, scale: false, brightness: false });
    assert.deepEqual({ ...p, shiftX: 0.5, shiftY: 0.5 }, none);
  });
});
