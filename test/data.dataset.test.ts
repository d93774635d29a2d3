/** Pairing images with masks, and the dataset (scan, get, cache, checks). */

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import { DataError, listPairs, SegmentationDataset } from '../src/data/index.js';
import { tempDir } from './helpers/workdir.js';

const root = tempDir('data-dataset');

let n = 0;
/** A fresh data/imgs + data/masks pair of folders with the given files (content: tiny PNGs). */
async function layout(imgs: string[], masks: string[]): Promise<{ imgsDir: string; masksDir: string }> {
  const base = join(root, `case${n++}`);
  const imgsDir = join(base, 'imgs');
  const masksDir = join(base, 'masks');
  await mkdir(imgsDir, { recursive: true });
  await mkdir(masksDir, { recursive: true });
  const png = await sharp(new Uint8Array(4), { raw: { width: 2, height: 2, channels: 1 } })
    .toColourspace('b-w')
    .png()
    .toBuffer();
  for (const f of imgs) await writeFile(join(imgsDir, f), png);
  for (const f of masks) await writeFile(join(masksDir, f), png);
  return { imgsDir, masksDir };
}

async function rejectsData(promise: Promise<unknown>, pattern: RegExp): Promise<DataError> {
  let caught: unknown;
  await assert.rejects(promise, (e) => {
    caught = e;
    return true;
  });
  assert.ok(caught instanceof DataError, `expected DataError, got ${caught}`);
  assert.match(caught.message, pattern);
  return caught;
}

describe('listPairs', () => {
  test('same base names, any supported extension, sorted by id', async () => {
    const dirs = await layout(['b.png', 'a.jpg', 'c.npy'], ['a.png', 'b.png', 'c.png']);
    const { pairs, maskSuffix, warnings } = await listPairs(dirs);
    assert.equal(maskSuffix, '');
    assert.deepEqual(warnings, []);
    assert.deepEqual(
      pairs.map((p) => [p.id, p.image, p.mask]),
      [
        ['a', join(dirs.imgsDir, 'a.jpg'), join(dirs.masksDir, 'a.png')],
        ['b', join(dirs.imgsDir, 'b.png'), join(dirs.masksDir, 'b.png')],
        ['c', join(dirs.imgsDir, 'c.npy'), join(dirs.masksDir, 'c.png')],
      ],
    );
  });

  test("auto-detects Carvana's _mask suffix", async () => {
    const dirs = await layout(['0cdf_01.jpg', '0cdf_02.jpg'], ['0cdf_01_mask.gif', '0cdf_02_mask.gif']);
    const { pairs, maskSuffix } = await listPairs(dirs);
    assert.equal(maskSuffix, '_mask');
    assert.deepEqual(
      pairs.map((p) => p.id),
      ['0cdf_01', '0cdf_02'],
    );
  });

  test('explicit suffix', async () => {
    const dirs = await layout(['x.png'], ['x-lbl.png']);
    assert.equal((await listPairs({ ...dirs, maskSuffix: '-lbl' })).pairs.length, 1);
  });

  test('exact names: 1 never matches 10 (no prefix collisions)', async () => {
    const dirs = await layout(['1.png', '10.png', '100.png'], ['1.png', '10.png', '100.png']);
    const { pairs } = await listPairs(dirs);
    for (const p of pairs) assert.equal(resolve(p.mask), resolve(dirs.masksDir, `${p.id}.png`));
    const carvana = await layout(['1.png', '10.png'], ['1_mask.png', '10_mask.png']);
    assert.deepEqual(
      (await listPairs(carvana)).pairs.map((p) => p.mask.split('/').pop()),
      ['1_mask.png', '10_mask.png'],
    );
  });

  test('images without masks: listed (at most 10), or skipped with a warning', async () => {
    const imgs = Array.from({ length: 14 }, (_, i) => `img${String(i).padStart(2, '0')}.png`);
    const dirs = await layout(imgs, ['img00.png']);
    const err = await rejectsData(listPairs(dirs), /13 of 14 images have no mask: img01.png, .*img10.png … and 3 more/);
    assert.match(err.hint!, /--skip-unpaired/);
    const { pairs, warnings } = await listPairs({ ...dirs, skipUnpaired: true });
    assert.equal(pairs.length, 1);
    assert.match(warnings[0], /Skipped 13 of 14 images have no mask/);
  });

  test('masks without images: error, or ignored with a warning', async () => {
    const dirs = await layout(['a.png'], ['a.png', 'zz.png']);
    await rejectsData(listPairs(dirs), /1 of 2 masks have no image: zz.png/);
    const { pairs, warnings } = await listPairs({ ...dirs, skipUnpaired: true });
    assert.equal(pairs.length, 1);
    assert.match(warnings[0], /Ignored 1 of 2 masks/);
  });

  test('several masks for one image, several images for one id', async () => {
    await rejectsData(listPairs(await layout(['a.png'], ['a.png', 'a.gif'])), /several masks match one image: a: a\.(png|gif) \+ a\.(png|gif)/);
    await rejectsData(listPairs(await layout(['a.png', 'a.jpg'], ['a.png'])), /several images share one id/);
  });

  test('hidden files, sub-folders and non-image files are ignored', async () => {
    const dirs = await layout(['a.png', '.DS_Store', '._a.png'], ['a.png', '.hidden.png']);
    await mkdir(join(dirs.imgsDir, 'extra'));
    await writeFile(join(dirs.imgsDir, 'README.txt'), 'notes');
    await writeFile(join(dirs.masksDir, 'Thumbs.db'), 'x');
    const { pairs } = await listPairs(dirs);
    assert.deepEqual(
      pairs.map((p) => p.id),
      ['a'],
    );
  });

  test('symlinked files count as files', async () => {
    const dirs = await layout(['a.png'], ['a.png']);
    await symlink(join(dirs.imgsDir, 'a.png'), join(dirs.imgsDir, 'b.png'));
    await symlink(join(dirs.masksDir, 'a.png'), join(dirs.masksDir, 'b.png'));
    assert.equal((await listPairs(dirs)).pairs.length, 2);
  });

  test('missing or empty folders explain the expected layout and flags', async () => {
    const missing = await rejectsData(listPairs({ imgsDir: join(root, 'nope/imgs'), masksDir: join(root, 'nope/masks') }), /images folder does not exist/);
    assert.match(missing.hint!, /data\/imgs.*data\/masks/);
    assert.match(missing.hint!, /--imgs DIR --masks DIR/);
    const empty = await layout([], ['a.png']);
    await rejectsData(listPairs(empty), /images folder has no image files \(it is empty\)/);
    const nested = await layout([], ['a.png']);
    await mkdir(join(nested.imgsDir, 'train'));
    const err = await rejectsData(listPairs(nested), /found 1 sub-folder\(s\): train/);
    assert.match(err.hint!, /sub-folders are ignored/);
  });

  test('the same folder for images and masks is refused with the layout hint', async () => {
    const dirs = await layout(['a.png'], []);
    await rejectsData(listPairs({ imgsDir: dirs.imgsDir, masksDir: `${dirs.imgsDir}/` }), /same folder/);
  });

  test('BMP files fail early with a conversion hint', async () => {
    const err = await rejectsData(listPairs(await layout(['a.bmp'], ['a.png'])), /BMP files are not supported: a.bmp/);
    assert.match(err.hint!, /PNG/);
  });
});

describe('SegmentationDataset', () => {
  /** Greyscale images with a matching 0/255 mask: mask = image > 127. */
  async function makeSet(count: number, width: number, height: number, opts: { channels?: 1 | 3 | 4 } = {}) {
    const dirs = await layout([], []);
    for (let i = 0; i < count; i++) {
      const img = Uint8Array.from({ length: width * height }, (_, k) => (k * 13 + i * 50) % 256);
      const mask = img.map((v) => (v > 127 ? 255 : 0));
      const c = opts.channels ?? 1;
      const pix = c === 1 ? img : Uint8Array.from({ length: width * height * c }, (_, k) => (c === 4 && k % 4 === 3 ? 255 : img[Math.floor(k / c)]));
      let s = sharp(pix, { raw: { width, height, channels: c } });
      if (c === 1) s = s.toColourspace('b-w');
      await s.png().toFile(join(dirs.imgsDir, `${i}.png`));
      await sharp(mask, { raw: { width, height, channels: 1 } })
        .toColourspace('b-w')
        .png()
        .toFile(join(dirs.masksDir, `${i}.png`));
    }
    return dirs;
  }

  /** One more pair `<id>.png` (image + 0/255 mask) in an existing set; colour images repeat the grey value in R, G, B. */
  async function makeSetInto(dirs: { imgsDir: string; masksDir: string }, id: string, width: number, height: number, c: 1 | 3 = 1) {
    const img = Uint8Array.from({ length: width * height }, (_, k) => (k * 29) % 256);
    const pix = c === 1 ? img : Uint8Array.from({ length: width * height * 3 }, (_, k) => img[Math.floor(k / 3)]);
    let s = sharp(pix, { raw: { width, height, channels: c } });
    if (c === 1) s = s.toColourspace('b-w');
    await s.png().toFile(join(dirs.imgsDir, `${id}.png`));
    await sharp(
      img.map((v) => (v > 127 ? 255 : 0)),
      { raw: { width, height, channels: 1 } },
    )
      .toColourspace('b-w')
      .png()
      .toFile(join(dirs.masksDir, `${id}.png`));
  }

  test('scan + get: float image [C, H, W], class-index mask [H, W]', async () => {
    const dirs = await makeSet(3, 8, 6);
    const ds = new SegmentationDataset((await listPairs(dirs)).pairs, { scale: 1 });
    assert.deepEqual(await ds.scan(), [0, 255]);
    const s = await ds.get(1);
    assert.deepEqual([s.id, s.channels, s.height, s.width], ['1', 1, 6, 8]);
    assert.equal(s.image.length, 48);
    for (let k = 0; k < 48; k++) assert.equal(s.mask[k], s.image[k] * 255 > 127 ? 1 : 0);
    const stored = await ds.load(1);
    assert.ok(stored.image instanceof Uint8Array, '8-bit images are cached as bytes');
  });

  test('scale 0.5 resizes image (bicubic) and mask (nearest) to floor sizes', async () => {
    const dirs = await makeSet(2, 21, 11);
    const ds = new SegmentationDataset((await listPairs(dirs)).pairs, { scale: 0.5, maskValues: [0, 255] });
    const s = await ds.get(0);
    assert.deepEqual([s.height, s.width, s.image.length, s.mask.length], [5, 10, 50, 50]);
    assert.ok(s.mask.every((v) => v === 0 || v === 1));
  });

  test('the cache serves later epochs without touching the files', async () => {
    const dirs = await makeSet(3, 8, 6);
    const pairs = (await listPairs(dirs)).pairs;
    const ds = new SegmentationDataset(pairs, {});
    await ds.scan();
    const first = await Promise.all([0, 1, 2].map((i) => ds.get(i)));
    await rm(dirs.imgsDir, { recursive: true });
    await rm(dirs.masksDir, { recursive: true });
    const again = await Promise.all([0, 1, 2].map((i) => ds.get(i)));
    assert.deepEqual(again, first);
    assert.equal(ds.cacheStats().samples, 3);
    const noCache = new SegmentationDataset(pairs, { cache: false, maskValues: [0, 255] });
    await assert.rejects(noCache.get(0), DataError);
  });

  test('a too-small cache budget keeps working, just without caching', async () => {
    const dirs = await makeSet(2, 8, 6);
    const ds = new SegmentationDataset((await listPairs(dirs)).pairs, { cache: { maxBytes: 10 } });
    await ds.scan();
    assert.equal((await ds.get(1)).image.length, 48);
    assert.equal(ds.cacheStats().samples, 0);
  });

  test('image and mask of different sizes: error names both files', async () => {
    const dirs = await makeSet(1, 8, 6);
    await sharp(new Uint8Array(9 * 6), { raw: { width: 9, height: 6, channels: 1 } })
      .toColourspace('b-w')
      .png()
      .toFile(join(dirs.masksDir, '0.png'));
    const ds = new SegmentationDataset((await listPairs(dirs)).pairs, { maskValues: [0, 255] });
    const err = await rejectsData(ds.get(0), /image and mask sizes differ/);
    assert.ok(err.message.includes(join(dirs.imgsDir, '0.png')) && err.message.includes(join(dirs.masksDir, '0.png')));
    assert.match(err.message, /8×6.*9×6/);
  });

  test('image and mask of different sizes: scan refuses before any epoch, naming both files', async () => {
    const dirs = await makeSet(2, 8, 6);
    await sharp(new Uint8Array(9 * 6), { raw: { width: 9, height: 6, channels: 1 } })
      .toColourspace('b-w')
      .png()
      .toFile(join(dirs.masksDir, '1.png'));
    const ds = new SegmentationDataset((await listPairs(dirs)).pairs, {});
    const err = await rejectsData(ds.scan(), /image and mask sizes differ/);
    assert.ok(err.message.includes(join(dirs.imgsDir, '1.png')) && err.message.includes(join(dirs.masksDir, '1.png')));
    assert.equal(ds.cacheStats().decoded, 0, 'no sample was decoded');
  });

  test('images below minSide after -s: scan names the smallest and the -s that works', async () => {
    const dirs = await makeSet(1, 40, 30);
    await makeSetInto(dirs, '1', 24, 20);
    const pairs = (await listPairs(dirs)).pairs;
    const err = await rejectsData(new SegmentationDataset(pairs, { scale: 0.5, minSide: 16 }).scan(), /image is 24×20, 12×10 at scale 0\.5, but the UNet needs at least 16×16 pixels/);
    assert.equal(err.file, join(dirs.imgsDir, '1.png'));
    assert.match(err.message, /^\S+1\.png: image is .*; 1 more of the 2 images are too small: \S+0\.png/);
    assert.match(err.hint!, /Use -s\/--scale 0\.8 or more/);
    // -s 0.8 works: floor(0.8 * 20) = 16.
    assert.deepEqual(await new SegmentationDataset(pairs, { scale: 0.8, minSide: 16 }).scan(), [0, 255]);
    // Smaller than 16 px even at -s 1: no -s can help.
    await makeSetInto(dirs, '2', 12, 40);
    const tiny = await rejectsData(new SegmentationDataset((await listPairs(dirs)).pairs, { scale: 1, minSide: 16 }).scan(), /image is 12×40/);
    assert.match(tiny.hint!, /smaller than 16 px even at -s 1: remove it/);
    // Without minSide (the dataset alone, not the UNet) only an empty result is refused.
    await rejectsData(new SegmentationDataset((await listPairs(dirs)).pairs, { scale: 0.05 }).scan(), /image is 12×40, 0×2 at scale 0\.05, which is empty/);
    assert.deepEqual(await new SegmentationDataset((await listPairs(dirs)).pairs, { scale: 1 }).scan(), [0, 255]);
  });

  test('greyscale and colour images mixed: scan refuses without channels, naming files of each kind', async () => {
    const dirs = await makeSet(3, 6, 4);
    await makeSetInto(dirs, '3', 6, 4, 3);
    const pairs = (await listPairs(dirs)).pairs;
    const err = await rejectsData(new SegmentationDataset(pairs, {}).scan(), /mix greyscale and colour: 3 greyscale \(.*0\.png, .*1\.png, .*2\.png\) and 1 colour \(.*3\.png\)/);
    assert.match(err.hint!, /--channels 1 .*--channels 3/);
    await rejectsData(new SegmentationDataset(pairs, { channels: 4 }).scan(), /expects 4 input channels/);
  });

  test('greyscale and colour images mixed with channels: converted, one warning with the count', async () => {
    const dirs = await makeSet(3, 6, 4);
    await makeSetInto(dirs, '3', 6, 4, 3);
    const pairs = (await listPairs(dirs)).pairs;
    for (const channels of [3, 1] as const) {
      const seen: string[] = [];
      const ds = new SegmentationDataset(pairs, { channels, onWarning: (m) => seen.push(m) });
      await ds.scan();
      assert.equal(seen.length, 1, seen.join('\n'));
      assert.match(seen[0], channels === 3 ? /3 of 4 images are greyscale and were converted to RGB/ : /1 of 4 images are colour and were converted to greyscale/);
      for (let i = 0; i < 4; i++) assert.equal((await ds.get(i)).channels, channels);
      // Image 3 repeats its grey values in R, G and B: PIL's luma gives them back exactly.
      const expected = Array.from({ length: 24 }, (_, k) => Math.fround(((k * 29) % 256) / 255));
      const colour = await ds.get(3);
      assert.deepEqual(Array.from(colour.image.subarray(0, 24)), expected);
      if (channels === 3) {
        const grey = (await ds.get(0)).image;
        assert.deepEqual(grey.subarray(0, 24), grey.subarray(24, 48));
        assert.deepEqual(grey.subarray(0, 24), grey.subarray(48, 72));
      }
    }
  });

  test('warnings are reported once per kind', async () => {
    const dirs = await makeSet(3, 4, 4, { channels: 4 });
    const seen: string[] = [];
    const ds = new SegmentationDataset((await listPairs(dirs)).pairs, { maskValues: [0, 255], onWarning: (m) => seen.push(m) });
    const s = await ds.get(0);
    await ds.get(1);
    await ds.get(2);
    assert.equal(s.channels, 3);
    assert.equal(seen.length, 1);
    assert.match(seen[0], /alpha/);
    assert.match(ds.warnings()[0], /and 2 more files like it/);
  });

  test('get before scan without maskValues is a clear programming error', async () => {
    const dirs = await makeSet(1, 4, 4);
    const ds = new SegmentationDataset((await listPairs(dirs)).pairs);
    await assert.rejects(ds.get(0), /call scan\(\) first/);
    await assert.rejects(ds.get(5), RangeError);
  });

  test('concurrent gets of one sample decode it once', async () => {
    const dirs = await makeSet(1, 8, 8);
    const ds = new SegmentationDataset((await listPairs(dirs)).pairs, { maskValues: [0, 255], workers: 1 });
    const [a, b] = await Promise.all([ds.load(0), ds.load(0)]);
    assert.equal(a, b);
  });
});

const ISBI = resolve(import.meta.dirname, '../../shared/data/isbi2012-membranes');
describe('ISBI 2012 membranes (real data)', { skip: existsSync(join(ISBI, 'imgs')) ? false : `${ISBI} not present` }, () => {
  test('scale 0.5: 256×256, 1 channel, mask values [0, 255]', async () => {
    const { pairs } = await listPairs({ imgsDir: join(ISBI, 'imgs'), masksDir: join(ISBI, 'masks') });
    assert.equal(pairs.length, 30);
    const ds = new SegmentationDataset(pairs, { scale: 0.5, channels: 1 });
    assert.deepEqual(await ds.scan(), [0, 255]);
    const s = await ds.get(0);
    assert.deepEqual([s.channels, s.height, s.width], [1, 256, 256]);
    const interior = s.mask.reduce((a, v) => a + v, 0) / s.mask.length;
    assert.ok(interior > 0.6 && interior < 0.9, `cell interior fraction ${interior}`);
  });
});
