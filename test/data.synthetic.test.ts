/** Synthetic datasets: determinism, mask levels, Carvana-like layout; end-to-end through the loader. */

import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { DataLoader, demoMaskLevel, listPairs, makeDemoDataset, makeJpegDataset, randomSplit, readImage, readMask, Rng, SegmentationDataset } from '../src/data/index.js';
import { tempDir } from './helpers/workdir.js';

const dir = tempDir('data-synth');

async function filesOf(d: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const sub of ['imgs', 'masks']) for (const f of (await readdir(join(d, sub))).sort()) out.set(`${sub}/${f}`, await readFile(join(d, sub, f)));
  return out;
}

describe('makeDemoDataset', () => {
  test('writes NNN.png pairs: RGB images, greyscale masks with levels 0, 127, 255', async () => {
    const d = join(dir, 'demo');
    const { ids, imgsDir, masksDir } = await makeDemoDataset(d, { count: 6, size: 64, seed: 1 });
    assert.deepEqual(ids, ['000', '001', '002', '003', '004', '005']);
    const img = await readImage(join(imgsDir, '000.png'));
    assert.deepEqual([img.channels, img.height, img.width], [3, 64, 64]);
    const mask = await readMask(join(masksDir, '000.png'));
    assert.equal(mask.channels, 1);
    const { pairs } = await listPairs({ imgsDir, masksDir });
    const ds = new SegmentationDataset(pairs);
    assert.deepEqual(await ds.scan(), [0, 127, 255]);
  });

  test('deterministic for a seed, different for another', async () => {
    await makeDemoDataset(join(dir, 'a'), { count: 3, size: 32, seed: 5 });
    await makeDemoDataset(join(dir, 'b'), { count: 3, size: 32, seed: 5 });
    await makeDemoDataset(join(dir, 'c'), { count: 3, size: 32, seed: 6 });
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((s) => filesOf(join(dir, s))));
    assert.deepEqual(a, b);
    assert.notDeepEqual(a.get('imgs/000.png'), c.get('imgs/000.png'));
  });

  test('classes = 5: evenly spaced grey levels', async () => {
    assert.deepEqual(
      [0, 1, 2, 3, 4].map((k) => demoMaskLevel(k, 5)),
      [0, 63, 127, 191, 255],
    );
    const { imgsDir, masksDir } = await makeDemoDataset(join(dir, 'five'), { count: 12, size: 64, classes: 5, seed: 2 });
    const ds = new SegmentationDataset((await listPairs({ imgsDir, masksDir })).pairs);
    assert.deepEqual(await ds.scan(), [0, 63, 127, 191, 255]);
  });

  test('end to end: split, dataset, augmenting loader', async () => {
    const { imgsDir, masksDir } = await makeDemoDataset(join(dir, 'e2e'), { count: 10, size: 64, seed: 3 });
    const ds = new SegmentationDataset((await listPairs({ imgsDir, masksDir })).pairs, { scale: 0.5, channels: 3 });
    await ds.scan();
    const { train, val } = randomSplit(ds.length, 20, 0);
    assert.deepEqual([train.length, val.length], [8, 2]);
    const loader = new DataLoader(ds, train, { batchSize: 4, shuffle: true, rng: new Rng(0), augment: true });
    let seen = 0;
    for await (const b of loader) {
      assert.deepEqual([b.n, b.c, b.h, b.w], [4, 3, 32, 32]);
      assert.ok(b.masks.every((v) => v < 3));
      assert.ok(b.images.every((v) => v >= 0 && v <= 1));
      seen += b.n;
    }
    assert.equal(seen, 8);
  });
});

describe('makeJpegDataset', () => {
  test('Carvana-like <id>.jpg + <id>_mask.gif with indices {0, 1}', async () => {
    const { imgsDir, masksDir, ids } = await makeJpegDataset(join(dir, 'carvana'), { count: 3, width: 96, height: 64, seed: 1 });
    assert.equal(ids.length, 3);
    assert.match(ids[0], /^[0-9a-f]{12}_01$/);
    const { pairs, maskSuffix } = await listPairs({ imgsDir, masksDir });
    assert.equal(maskSuffix, '_mask');
    assert.equal(pairs.length, 3);
    const ds = new SegmentationDataset(pairs, { scale: 0.5 });
    assert.deepEqual(await ds.scan(), [0, 1]);
    const s = await ds.get(0);
    assert.deepEqual([s.channels, s.height, s.width], [3, 32, 48]);
    const car = s.mask.reduce((a, v) => a + v, 0) / s.mask.length;
    assert.ok(car > 0.1 && car < 0.6, `car fraction ${car}`);
  });
});
