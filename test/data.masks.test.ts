/** Mask values (scan, union, order), class mapping and its inverse, the classes check. */

import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { encode as encodePng } from 'fast-png';
import sharp from 'sharp';
import { checkClasses, classIndexToMaskValues, encodeGifIndices, maskToClassIndex, mergeMaskValues, scanMaskValues, uniqueMaskValues } from '../src/data/index.js';
import { tempDir } from './helpers/workdir.js';

const dir = tempDir('data-masks');

async function greyPng(name: string, values: number[], width = values.length) {
  const f = join(dir, name);
  await sharp(Uint8Array.from(values), { raw: { width, height: values.length / width, channels: 1 } })
    .toColourspace('b-w')
    .png()
    .toFile(f);
  return f;
}
async function rgbPng(name: string, pixels: [number, number, number][]) {
  const f = join(dir, name);
  await sharp(Uint8Array.from(pixels.flat()), { raw: { width: pixels.length, height: 1, channels: 3 } })
    .png()
    .toFile(f);
  return f;
}

describe('uniqueMaskValues / mergeMaskValues', () => {
  test('greyscale, 16-bit and RGB', () => {
    assert.deepEqual(uniqueMaskValues({ data: Uint8Array.from([255, 0, 0, 255]), channels: 1 }), [0, 255]);
    assert.deepEqual(uniqueMaskValues({ data: Uint16Array.from([1000, 7, 1000]), channels: 1 }), [7, 1000]);
    assert.deepEqual(uniqueMaskValues({ data: Uint8Array.from([0, 0, 255, 255, 0, 0, 0, 0, 255]), channels: 3 }), [
      [0, 0, 255],
      [255, 0, 0],
    ]);
  });

  test('union is sorted; greyscale mixed with colour becomes [v, v, v]', () => {
    assert.deepEqual(mergeMaskValues([[0, 4], [2], [4, 1]]), [0, 1, 2, 4]);
    assert.deepEqual(mergeMaskValues([[0, 255], [[255, 0, 0]]]), [
      [0, 0, 0],
      [255, 0, 0],
      [255, 255, 255],
    ]);
  });
});

describe('scanMaskValues (reference semantics)', () => {
  test('0/255 masks -> [0, 255]', async () => {
    const files = [await greyPng('a.png', [0, 255, 255, 0]), await greyPng('b.png', [0, 0, 0, 0])];
    assert.deepEqual(await scanMaskValues(files), [0, 255]);
  });

  test('class-id masks 0..4 over several files', async () => {
    const files = [await greyPng('c.png', [0, 1, 2, 2]), await greyPng('d.png', [4, 3, 0, 0])];
    assert.deepEqual(await scanMaskValues(files, { workers: 2 }), [0, 1, 2, 3, 4]);
  });

  test('RGB colours, sorted lexicographically like sorted(np.unique(axis=0).tolist())', async () => {
    const files = [
      await rgbPng('e.png', [
        [0, 0, 0],
        [255, 0, 0],
        [0, 255, 0],
      ]),
      await rgbPng('f.png', [
        [0, 0, 255],
        [0, 0, 0],
        [0, 255, 0],
      ]),
    ];
    assert.deepEqual(await scanMaskValues(files), [
      [0, 0, 0],
      [0, 0, 255],
      [0, 255, 0],
      [255, 0, 0],
    ]);
  });

  test('palette masks give indices (PNG and GIF)', async () => {
    const png = join(dir, 'p.png');
    await writeFile(
      png,
      encodePng({
        width: 4,
        height: 1,
        channels: 1,
        depth: 8,
        data: Uint8Array.from([0, 3, 3, 1]),
        palette: [
          [0, 0, 0],
          [128, 0, 0],
          [0, 128, 0],
          [128, 128, 0],
        ],
      }),
    );
    const gif = join(dir, 'p.gif');
    await writeFile(
      gif,
      encodeGifIndices(Uint8Array.from([2, 0, 0, 0]), 4, 1, [
        [0, 0, 0],
        [128, 0, 0],
        [0, 128, 0],
        [128, 128, 0],
      ]),
    );
    assert.deepEqual(await scanMaskValues([png, gif]), [0, 1, 2, 3]);
  });
});

describe('maskToClassIndex', () => {
  test('value -> position in maskValues; unknown values -> 0', () => {
    const mask = { data: Uint8Array.from([0, 255, 255, 7]), channels: 1 as const };
    assert.deepEqual(Array.from(maskToClassIndex(mask, [0, 255])), [0, 1, 1, 0]);
  });

  test('16-bit values', () => {
    const mask = { data: Uint16Array.from([100, 60000, 7]), channels: 1 as const };
    assert.deepEqual(Array.from(maskToClassIndex(mask, [7, 100, 60000])), [1, 2, 0]);
  });

  test('RGB masks by colour', () => {
    const mask = { data: Uint8Array.from([255, 0, 0, 0, 0, 0, 0, 0, 255, 9, 9, 9]), channels: 3 as const };
    assert.deepEqual(
      Array.from(
        maskToClassIndex(mask, [
          [0, 0, 0],
          [0, 0, 255],
          [255, 0, 0],
        ]),
      ),
      [2, 0, 1, 0],
    );
  });

  test('greyscale mask against colour values (mixed dataset)', () => {
    const mask = { data: Uint8Array.from([0, 255]), channels: 1 as const };
    assert.deepEqual(
      Array.from(
        maskToClassIndex(mask, [
          [0, 0, 0],
          [255, 0, 0],
          [255, 255, 255],
        ]),
      ),
      [0, 2],
    );
  });
});

describe('classIndexToMaskValues (predict output)', () => {
  test('round trip for greyscale values', () => {
    const values = [0, 127, 255];
    const mask = Uint8Array.from([0, 127, 255, 255, 0]);
    const classes = maskToClassIndex({ data: mask, channels: 1 }, values);
    const back = classIndexToMaskValues(classes, values);
    assert.equal(back.channels, 1);
    assert.ok(back.data instanceof Uint8Array);
    assert.deepEqual(Array.from(back.data), Array.from(mask));
  });

  test('values above 255 give Uint16Array', () => {
    const back = classIndexToMaskValues(Uint8Array.from([1, 0]), [0, 1000]);
    assert.ok(back.data instanceof Uint16Array);
    assert.deepEqual(Array.from(back.data), [1000, 0]);
  });

  test('colour values give [H, W, 3]', () => {
    const back = classIndexToMaskValues(Uint8Array.from([1, 0]), [
      [0, 0, 0],
      [10, 20, 30],
    ]);
    assert.equal(back.channels, 3);
    assert.deepEqual(Array.from(back.data), [10, 20, 30, 0, 0, 0]);
  });
});

describe('checkClasses', () => {
  test('matching counts and the binary case pass', () => {
    assert.equal(checkClasses([0, 255], 2), null);
    assert.equal(checkClasses([0, 255], 1), null);
    assert.equal(checkClasses([0, 1, 2], 3), null);
  });

  test('mismatch names the values and the -c to use', () => {
    const msg = checkClasses([0, 1, 2, 3, 4], 2);
    assert.ok(msg);
    assert.match(msg, /5 distinct values \[0, 1, 2, 3, 4\], but --classes is 2/);
    assert.match(msg, /-c 5/);
    const rgb = checkClasses(
      [
        [0, 0, 0],
        [255, 0, 0],
        [0, 255, 0],
      ],
      2,
    )!;
    assert.match(rgb, /\[255, 0, 0\]/);
    assert.match(rgb, /-c 3/);
    assert.match(checkClasses([0, 255], 3)!, /-c 2.*or `-c 1`/);
  });

  test('JPEG masks: explains compression artifacts', () => {
    const values = Array.from({ length: 40 }, (_, i) => (i < 20 ? i : 235 + i - 20));
    const msg = checkClasses(values, 2, { maskFiles: ['a_mask.jpg', 'b_mask.jpg'] })!;
    assert.match(msg, /40 distinct values/);
    assert.match(msg, /JPEG compression is lossy/);
    assert.match(msg, /Save masks as PNG/);
    assert.match(msg, /… \(40 in total\)/);
  });

  test('many values without JPEG: interpolation hint; a single value: nothing to learn', () => {
    assert.match(
      checkClasses(
        Array.from({ length: 30 }, (_, i) => i * 8),
        2,
      )!,
      /nearest-neighbour/,
    );
    assert.match(checkClasses([0], 2)!, /only the value 0/);
  });
});
