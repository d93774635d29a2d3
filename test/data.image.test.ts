/** Reading images and masks: formats, depths, palettes, .npy, resizing, broken files, PIL parity. */

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { encode as encodePng } from 'fast-png';
import sharp, { type Sharp } from 'sharp';
import { DataError, DEFAULT_MAX_PIXELS, encodeGifIndices, encodeNpy, readHeader, readImage, readImageRaw, readMask, sniffFormat, resampleBicubicFloat, resizeNearest, Rng } from '../src/data/index.js';
import { tempDir } from './helpers/workdir.js';

const dir = tempDir('data-image');
const p = (name: string) => join(dir, name);

const W = 7;
const H = 5;
/** [H, W, C] test pattern with distinct values per pixel and channel. */
function pattern(c: number, max = 255): Uint8Array | Uint16Array {
  const a = max > 255 ? new Uint16Array(W * H * c) : new Uint8Array(W * H * c);
  for (let i = 0; i < a.length; i++) a[i] = (i * 37 + 11) % (max + 1);
  return a;
}
/** Value of [H, W, C] data at (y, x, c). */
const at = (a: ArrayLike<number>, c: number, y: number, x: number, ch: number) => a[(y * W + x) * c + ch];
/** Value of [C, H, W] data at (c, y, x). */
const chw = (a: ArrayLike<number>, ch: number, y: number, x: number) => a[ch * H * W + y * W + x];

async function writeRaw(name: string, data: Uint8Array | Uint16Array, channels: 1 | 2 | 3 | 4, fmt: (s: Sharp) => Sharp) {
  let s = sharp(data, { raw: { width: W, height: H, channels } });
  if (channels === 1) s = s.toColourspace(data instanceof Uint16Array ? 'grey16' : 'b-w');
  if (channels === 3 && data instanceof Uint16Array) s = s.toColourspace('rgb16');
  await fmt(s).toFile(p(name));
  return p(name);
}

function assertDataError(err: unknown, file: string, pattern?: RegExp): true {
  assert.ok(err instanceof DataError, `expected DataError, got ${err}`);
  assert.equal(err.file, file);
  assert.ok(err.message.includes(file), `message should name the file: ${err.message}`);
  assert.ok(err.hint && err.hint.length > 10, 'a hint says what to do');
  if (pattern) assert.match(err.message, pattern);
  return true;
}

describe('readImage formats', () => {
  test('greyscale PNG: 1 channel, v / 255 exactly', async () => {
    const src = pattern(1);
    const f = await writeRaw('g.png', src, 1, (s) => s.png());
    const img = await readImage(f);
    assert.deepEqual([img.channels, img.height, img.width, img.bitDepth], [1, H, W, 8]);
    assert.deepEqual(
      Array.from(img.data),
      Array.from(src, (v) => Math.fround(v / 255)),
    );
    assert.deepEqual(img.warnings, []);
  });

  test('RGB PNG: 3 channels, planar [C, H, W]', async () => {
    const src = pattern(3);
    const img = await readImage(await writeRaw('rgb.png', src, 3, (s) => s.png()));
    assert.equal(img.channels, 3);
    for (const [c, y, x] of [
      [0, 0, 0],
      [1, 2, 3],
      [2, 4, 6],
      [0, 3, 5],
    ]) {
      assert.equal(chw(img.data, c, y, x), Math.fround(at(src, 3, y, x, c) / 255));
    }
  });

  test('RGBA PNG: alpha dropped with a warning', async () => {
    const src = pattern(4);
    const img = await readImage(await writeRaw('rgba.png', src, 4, (s) => s.png()));
    assert.equal(img.channels, 3);
    assert.equal(chw(img.data, 2, 1, 1), Math.fround(at(src, 4, 1, 1, 2) / 255));
    assert.equal(img.warnings.length, 1);
    assert.match(img.warnings[0], /alpha/);
  });

  test('grey + alpha PNG: 1 channel', async () => {
    await writeFile(p('ga.png'), encodePng({ width: W, height: H, channels: 2, depth: 8, data: pattern(2) as Uint8Array }));
    const img = await readImage(p('ga.png'));
    assert.equal(img.channels, 1);
    assert.match(img.warnings[0], /alpha/);
  });

  test('16-bit greyscale PNG is exact, divided by 65535', async () => {
    const src = pattern(1, 65535);
    const img = await readImage(await writeRaw('g16.png', src, 1, (s) => s.png()));
    assert.deepEqual([img.channels, img.bitDepth], [1, 16]);
    assert.deepEqual(
      Array.from(img.data),
      Array.from(src, (v) => Math.fround(v / 65535)),
    );
  });

  test('16-bit RGB PNG is exact', async () => {
    const src = pattern(3, 65535);
    const img = await readImage(await writeRaw('rgb16.png', src, 3, (s) => s.png()));
    assert.deepEqual([img.channels, img.bitDepth], [3, 16]);
    assert.equal(chw(img.data, 1, 3, 2), Math.fround(at(src, 3, 3, 2, 1) / 65535));
  });

  test('JPEG colour and greyscale', async () => {
    const src = pattern(3);
    const img = await readImage(await writeRaw('c.jpg', src, 3, (s) => s.jpeg({ quality: 100 })));
    assert.equal(img.channels, 3);
    const grey = await readImage(await writeRaw('g.jpeg', pattern(1), 1, (s) => s.jpeg()));
    assert.equal(grey.channels, 1);
  });

  test('CMYK JPEG becomes RGB with a warning', async () => {
    const f = p('cmyk.jpg');
    await sharp(pattern(3), { raw: { width: W, height: H, channels: 3 } })
      .toColourspace('cmyk')
      .jpeg()
      .toFile(f);
    const img = await readImage(f);
    assert.equal(img.channels, 3);
    assert.match(img.warnings.join(), /CMYK/);
  });

  test('GIF images expand the palette (grey palette -> 1 channel)', async () => {
    const idx = Uint8Array.from({ length: W * H }, (_, i) => i % 3);
    const colour = p('c.gif');
    await writeFile(
      colour,
      encodeGifIndices(idx, W, H, [
        [10, 20, 30],
        [200, 100, 0],
        [0, 255, 0],
      ]),
    );
    const img = await readImage(colour);
    assert.equal(img.channels, 3);
    assert.deepEqual(
      [0, 1, 2].map((c) => Math.round(chw(img.data, c, 0, 1) * 255)),
      [200, 100, 0],
    );
    const greyF = p('g.gif');
    await writeFile(
      greyF,
      encodeGifIndices(idx, W, H, [
        [0, 0, 0],
        [128, 128, 128],
        [255, 255, 255],
      ]),
    );
    const grey = await readImage(greyF);
    assert.equal(grey.channels, 1);
    assert.equal(Math.round(chw(grey.data, 0, 0, 1) * 255), 128);
  });

  test('TIFF (lossless) and WebP (lossless) are exact', async () => {
    const src = pattern(3);
    for (const f of [await writeRaw('c.tif', src, 3, (s) => s.tiff({ compression: 'lzw' })), await writeRaw('c.webp', src, 3, (s) => s.webp({ lossless: true }))]) {
      const img = await readImage(f);
      assert.equal(img.channels, 3, f);
      assert.equal(chw(img.data, 2, 4, 6), Math.fround(at(src, 3, 4, 6, 2) / 255), f);
    }
    const g = await readImage(await writeRaw('g.tiff', pattern(1), 1, (s) => s.tiff({ compression: 'none' })));
    assert.equal(g.channels, 1);
  });

  test('palette PNG image: RGB, or 1 channel for a grey palette', async () => {
    const idx = Uint8Array.from({ length: W * H }, (_, i) => i % 2);
    await writeFile(
      p('pc.png'),
      encodePng({
        width: W,
        height: H,
        channels: 1,
        depth: 8,
        data: idx,
        palette: [
          [0, 0, 255],
          [255, 255, 0],
        ],
      }),
    );
    const c = await readImage(p('pc.png'));
    assert.equal(c.channels, 3);
    assert.equal(Math.round(chw(c.data, 2, 0, 0) * 255), 255);
    await writeFile(
      p('pg.png'),
      encodePng({
        width: W,
        height: H,
        channels: 1,
        depth: 8,
        data: idx,
        palette: [
          [30, 30, 30],
          [90, 90, 90],
        ],
      }),
    );
    const g = await readImage(p('pg.png'));
    assert.equal(g.channels, 1);
    assert.deepEqual(
      [chw(g.data, 0, 0, 0), chw(g.data, 0, 0, 1)].map((v) => Math.round(v * 255)),
      [30, 90],
    );
  });

  test('BMP gives a clear unsupported-format error', async () => {
    // A valid 2×1 24-bit BMP: libvips in sharp has no BMP reader.
    const bmp = Buffer.alloc(62);
    bmp.write('BM', 0, 'latin1');
    bmp.writeUInt32LE(62, 2);
    bmp.writeUInt32LE(54, 10);
    bmp.writeUInt32LE(40, 14);
    bmp.writeInt32LE(2, 18);
    bmp.writeInt32LE(1, 22);
    bmp.writeUInt16LE(1, 26);
    bmp.writeUInt16LE(24, 28);
    await writeFile(p('x.bmp'), bmp);
    await assert.rejects(readImage(p('x.bmp')), (e) => assertDataError(e, p('x.bmp'), /BMP files are not supported/));
    await assert.rejects(readMask(p('x.bmp')), DataError);
  });

  test('a PNG named .jpg still loads (format from content)', async () => {
    const f = await writeRaw('really-png.jpg', pattern(1), 1, (s) => s.png());
    assert.equal((await readImage(f)).channels, 1);
  });
});

describe('header parsing (skips a sharp metadata call)', () => {
  test('PNG and JPEG headers agree with sharp.metadata()', async () => {
    const files: [string, Buffer][] = [
      [
        'grey',
        await sharp(pattern(1), { raw: { width: W, height: H, channels: 1 } })
          .toColourspace('b-w')
          .png()
          .toBuffer(),
      ],
      [
        'grey16',
        await sharp(pattern(1, 65535), { raw: { width: W, height: H, channels: 1 } })
          .toColourspace('grey16')
          .png()
          .toBuffer(),
      ],
      [
        'rgb',
        await sharp(pattern(3), { raw: { width: W, height: H, channels: 3 } })
          .png()
          .toBuffer(),
      ],
      [
        'rgb16',
        await sharp(pattern(3, 65535), { raw: { width: W, height: H, channels: 3 } })
          .toColourspace('rgb16')
          .png()
          .toBuffer(),
      ],
      [
        'rgba',
        await sharp(pattern(4), { raw: { width: W, height: H, channels: 4 } })
          .png()
          .toBuffer(),
      ],
      ['ga', Buffer.from(encodePng({ width: W, height: H, channels: 2, depth: 8, data: pattern(2) as Uint8Array }))],
      ['palette', Buffer.from(encodePng({ width: W, height: H, channels: 1, depth: 8, data: new Uint8Array(W * H), palette: [[1, 2, 3]] }))],
      ['palette+tRNS', Buffer.from(encodePng({ width: W, height: H, channels: 1, depth: 8, data: new Uint8Array(W * H), palette: [[1, 2, 3, 0]] }))],
      [
        'jpeg',
        await sharp(pattern(3), { raw: { width: W, height: H, channels: 3 } })
          .jpeg()
          .toBuffer(),
      ],
      [
        'jpeg grey',
        await sharp(pattern(1), { raw: { width: W, height: H, channels: 1 } })
          .toColourspace('b-w')
          .jpeg()
          .toBuffer(),
      ],
      [
        'jpeg progressive',
        await sharp(pattern(3), { raw: { width: W, height: H, channels: 3 } })
          .jpeg({ progressive: true })
          .toBuffer(),
      ],
      [
        'jpeg cmyk',
        await sharp(pattern(3), { raw: { width: W, height: H, channels: 3 } })
          .toColourspace('cmyk')
          .jpeg()
          .toBuffer(),
      ],
    ];
    for (const [name, bytes] of files) {
      const ours = readHeader(bytes, sniffFormat(bytes));
      assert.ok(ours, name);
      const m = await sharp(bytes).metadata();
      assert.deepEqual([ours.width, ours.height, ours.space, ours.depth, ours.hasAlpha, ours.isPalette], [m.width, m.height, m.space, m.depth, m.hasAlpha, m.isPalette], name);
    }
  });

  test("layout 'hwc' gives sharp's interleaved order", async () => {
    const f = await writeRaw('hwc.png', pattern(3), 3, (s) => s.png());
    const raw = await readImageRaw(f, { layout: 'hwc' });
    assert.equal(raw.layout, 'hwc');
    assert.deepEqual(Array.from(raw.data), Array.from(pattern(3)));
    const chwRaw = await readImageRaw(f);
    assert.equal(chwRaw.layout, 'chw');
    assert.equal(chw(chwRaw.data, 2, 3, 4), at(pattern(3), 3, 3, 4, 2));
  });
});

describe('readImage .npy', () => {
  test('uint8 (H, W) and uint16 (H, W, 3)', async () => {
    const a = pattern(1) as Uint8Array;
    await writeFile(p('a.npy'), encodeNpy(a, [H, W]));
    const img = await readImage(p('a.npy'));
    assert.deepEqual([img.channels, img.bitDepth], [1, 8]);
    assert.deepEqual(
      Array.from(img.data),
      Array.from(a, (v) => Math.fround(v / 255)),
    );
    const b = pattern(3, 65535) as Uint16Array;
    await writeFile(p('b.npy'), encodeNpy(b, [H, W, 3]));
    const img16 = await readImage(p('b.npy'));
    assert.deepEqual([img16.channels, img16.bitDepth], [3, 16]);
    assert.equal(chw(img16.data, 1, 2, 3), Math.fround(at(b, 3, 2, 3, 1) / 65535));
  });

  test('float32 keeps 0..1 data; > 1 is divided by 255 (reference rule)', async () => {
    const f = Float32Array.from({ length: W * H }, (_, i) => i / (W * H));
    await writeFile(p('f.npy'), encodeNpy(f, [H, W]));
    assert.deepEqual(Array.from((await readImage(p('f.npy'))).data), Array.from(f));
    const g = Float32Array.from({ length: W * H }, (_, i) => i * 7);
    await writeFile(p('f255.npy'), encodeNpy(g, [H, W]));
    const img = await readImage(p('f255.npy'));
    assert.equal(img.data[5], Math.fround(35 / 255));
  });

  test('int32 / int64 / bool arrays', async () => {
    await writeFile(
      p('i32.npy'),
      encodeNpy(
        Int32Array.from({ length: W * H }, (_, i) => i),
        [H, W],
      ),
    );
    assert.equal((await readImage(p('i32.npy'))).data[34], Math.fround(34 / 255));
    // int64 written by hand: encodeNpy has no BigInt64Array support on purpose.
    const i64 = Buffer.from(
      encodeNpy(
        Float64Array.from({ length: W * H }, (_, i) => i % 3),
        [H, W],
      ),
    );
    const hdr = i64.indexOf('<f8');
    i64.write('<i8', hdr, 'latin1');
    const dv = new DataView(i64.buffer, i64.byteOffset, i64.byteLength);
    const start = i64.length - W * H * 8;
    for (let i = 0; i < W * H; i++) dv.setBigInt64(start + 8 * i, BigInt(i % 3), true);
    await writeFile(p('i64.npy'), i64);
    const m = await readMask(p('i64.npy'));
    assert.ok(m.data instanceof Uint8Array);
    assert.deepEqual(Array.from(m.data.subarray(0, 6)), [0, 1, 2, 0, 1, 2]);
    await writeFile(
      p('b.npy'),
      encodeNpy(
        Uint8Array.from({ length: W * H }, (_, i) => i % 2),
        [H, W],
        { dtype: 'bool' },
      ),
    );
    const b = await readImage(p('b.npy'));
    assert.deepEqual(Array.from(b.data.subarray(0, 4)), [0, 1, 0, 1]);
  });

  test('channels-first (C, H, W) arrays get a transpose hint', async () => {
    await writeFile(p('chw.npy'), encodeNpy(new Uint8Array(3 * H * W), [3, H, W]));
    await assert.rejects(readImage(p('chw.npy')), (e) => assertDataError(e, p('chw.npy'), /shape \(3, 5, 7\)/) && /transpose/.test((e as DataError).hint!));
  });

  test('Fortran order, unsupported dtype and truncated data are DataErrors', async () => {
    const ok = Buffer.from(encodeNpy(new Uint8Array(W * H), [H, W]));
    await writeFile(p('fo.npy'), Buffer.from(ok.toString('latin1').replace("'fortran_order': False", "'fortran_order': True "), 'latin1'));
    await assert.rejects(readImage(p('fo.npy')), (e) => assertDataError(e, p('fo.npy'), /Fortran/));
    await writeFile(p('c8.npy'), Buffer.from(ok.toString('latin1').replace("'|u1'", "'<c8'"), 'latin1'));
    await assert.rejects(readImage(p('c8.npy')), (e) => assertDataError(e, p('c8.npy'), /dtype/));
    await writeFile(p('cut.npy'), ok.subarray(0, ok.length - 10));
    await assert.rejects(readImage(p('cut.npy')), (e) => assertDataError(e, p('cut.npy'), /truncated/));
  });
});

describe('readMask', () => {
  test('greyscale keeps raw values; 16-bit stays 16-bit', async () => {
    const g = await readMask(await writeRaw('m.png', pattern(1), 1, (s) => s.png()));
    assert.deepEqual([g.channels, g.palette], [1, undefined]);
    assert.deepEqual(Array.from(g.data), Array.from(pattern(1)));
    const m16 = await readMask(await writeRaw('m16.png', pattern(1, 65535), 1, (s) => s.png()));
    assert.ok(m16.data instanceof Uint16Array);
    assert.deepEqual(Array.from(m16.data), Array.from(pattern(1, 65535)));
  });

  test('RGB masks are [H, W, 3] interleaved; RGBA drops alpha', async () => {
    const rgb = await readMask(await writeRaw('mc.png', pattern(3), 3, (s) => s.png()));
    assert.equal(rgb.channels, 3);
    assert.deepEqual(Array.from(rgb.data), Array.from(pattern(3)));
    const rgba = await readMask(await writeRaw('mca.png', pattern(4), 4, (s) => s.png()));
    assert.equal(rgba.channels, 3);
    assert.match(rgba.warnings.join(), /alpha/);
  });

  test('palette PNG masks give indices like PIL "P" (same colour, different index)', async () => {
    const idx = Uint8Array.from({ length: W * H }, (_, i) => i % 3);
    // Indices 1 and 2 share a colour: sharp would merge them, PIL (and we) keep them apart.
    await writeFile(
      p('pal.png'),
      encodePng({
        width: W,
        height: H,
        channels: 1,
        depth: 8,
        data: idx,
        palette: [
          [0, 0, 0],
          [255, 0, 0],
          [255, 0, 0],
        ],
      }),
    );
    const m = await readMask(p('pal.png'));
    assert.deepEqual([m.channels, m.palette], [1, true]);
    assert.deepEqual(Array.from(m.data), Array.from(idx));
  });

  test('2-bit palette PNG indices are unpacked', async () => {
    const idx = Uint8Array.from({ length: W * H }, (_, i) => i % 4);
    const packed = new Uint8Array(Math.ceil((W * 2) / 8) * H);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) packed[y * 2 + (x >> 2)] |= idx[y * W + x] << (6 - 2 * (x % 4));
    await writeFile(
      p('pal2.png'),
      encodePng({
        width: W,
        height: H,
        channels: 1,
        depth: 2,
        data: packed,
        palette: [
          [0, 0, 0],
          [1, 1, 1],
          [2, 2, 2],
          [3, 3, 3],
        ],
      }),
    );
    assert.deepEqual(Array.from((await readMask(p('pal2.png'))).data), Array.from(idx));
  });

  test('1-bit PNG masks are 0/1 (PIL mode "1"), GIF masks are indices', async () => {
    const packed = new Uint8Array(H).fill(0b10100000); // one byte per 7-pixel row
    await writeFile(p('b1.png'), encodePng({ width: W, height: H, channels: 1, depth: 1, data: packed }));
    assert.deepEqual(Array.from((await readMask(p('b1.png'))).data.subarray(0, W)), [1, 0, 1, 0, 0, 0, 0]);
    const idx = Uint8Array.from({ length: W * H }, (_, i) => (i % 5 === 0 ? 1 : 0));
    await writeFile(
      p('m.gif'),
      encodeGifIndices(idx, W, H, [
        [0, 0, 0],
        [255, 255, 255],
      ]),
    );
    const g = await readMask(p('m.gif'));
    assert.deepEqual([g.palette, Array.from(g.data)], [true, Array.from(idx)]);
  });

  test('scale resizes masks with PIL-exact nearest', async () => {
    const big = Uint8Array.from({ length: 64 * 48 }, (_, i) => (i * 7) % 5);
    const f = p('big.png');
    await sharp(big, { raw: { width: 64, height: 48, channels: 1 } })
      .toColourspace('b-w')
      .png()
      .toFile(f);
    const m = await readMask(f, { scale: 0.37 });
    assert.deepEqual([m.width, m.height, m.sourceWidth, m.sourceHeight], [23, 17, 64, 48]);
    assert.deepEqual(Array.from(m.data), Array.from(resizeNearest(big, 64, 48, 1, 23, 17)));
  });
});

describe('resizing', () => {
  test('readImage scale: floor(scale * size), bicubic', async () => {
    const f = p('r.png');
    await sharp(new Uint8Array(101 * 61 * 3).fill(128), { raw: { width: 101, height: 61, channels: 3 } })
      .png()
      .toFile(f);
    const img = await readImage(f, { scale: 0.5 });
    assert.deepEqual([img.width, img.height, img.sourceWidth, img.sourceHeight], [50, 30, 101, 61]);
    assert.ok(
      img.data.every((v) => Math.abs(v - 128 / 255) < 1e-6),
      'a flat image stays flat',
    );
  });

  test('a scale that makes the image empty is a DataError', async () => {
    const f = p('r.png');
    await assert.rejects(readImage(f, { scale: 0.001 }), (e) => assertDataError(e, f, /0×0|×0|0×/));
  });

  test('resizeNearest on RGB keeps pixels whole', () => {
    const src = Uint8Array.from({ length: 4 * 2 * 3 }, (_, i) => i);
    const out = resizeNearest(src, 4, 2, 3, 2, 1);
    // PIL picks source pixel floor((x + 0.5) * in/out): x = 1, 3 and y = 1.
    assert.deepEqual(Array.from(out), [15, 16, 17, 21, 22, 23]);
  });
});

describe('broken files give DataError naming the file', () => {
  test('zero-byte file', async () => {
    await writeFile(p('empty.png'), '');
    await assert.rejects(readImage(p('empty.png')), (e) => assertDataError(e, p('empty.png'), /empty \(0 bytes\)/));
    await assert.rejects(readMask(p('empty.png')), (e) => assertDataError(e, p('empty.png')));
  });

  test('truncated PNG, JPEG and GIF', async () => {
    const src = Uint8Array.from({ length: 64 * 64 * 3 }, (_, i) => (i * 31) % 256);
    const png = await sharp(src, { raw: { width: 64, height: 64, channels: 3 } })
      .png({ compressionLevel: 0 })
      .toBuffer();
    const jpg = await sharp(src, { raw: { width: 64, height: 64, channels: 3 } })
      .jpeg()
      .toBuffer();
    const gif = encodeGifIndices(
      Uint8Array.from({ length: 64 * 64 }, (_, i) => (i * 7) % 16),
      64,
      64,
      Array.from({ length: 16 }, (_, i) => [i, i, i]),
    );
    for (const [name, bytes] of [
      ['t.png', png],
      ['t.jpg', jpg],
      ['t.gif', gif],
    ] as const) {
      await writeFile(p(name), bytes.subarray(0, Math.floor(bytes.length / 2)));
      await assert.rejects(readImage(p(name)), (e) => assertDataError(e, p(name)), name);
      await assert.rejects(readMask(p(name)), (e) => assertDataError(e, p(name)), name);
    }
  });

  test('a text file named .png', async () => {
    await writeFile(p('notes.png'), 'these are my notes, not an image\n');
    await assert.rejects(readImage(p('notes.png')), (e) => assertDataError(e, p('notes.png'), /not an image file.*text "these are my not/));
  });

  test('missing file', async () => {
    await assert.rejects(readImage(p('nope.png')), (e) => assertDataError(e, p('nope.png'), /not found/));
  });

  test('pixel limit (default like PIL, overridable)', async () => {
    assert.equal(DEFAULT_MAX_PIXELS, 178_956_970);
    const f = await writeRaw('lim.png', pattern(1), 1, (s) => s.png());
    await assert.rejects(readImage(f, { maxPixels: 20 }), (e) => assertDataError(e, f, /7×5 = 35 pixels, above the limit of 20/));
    await assert.rejects(readMask(f, { maxPixels: 20 }), DataError);
    assert.equal((await readImage(f, { maxPixels: 35 })).width, W);
  });
});

// ---------------------------------------------------------------------------------------------
// Parity with PIL (Pytorch-UNet's preprocessing); skipped when python3-pil is missing.

const PY = '/usr/bin/python3';
const hasPil =
  existsSync(PY) &&
  (() => {
    try {
      execFileSync(PY, ['-c', 'import PIL, numpy'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

describe('parity with PIL', { skip: hasPil ? false : 'python3 with PIL/numpy not found' }, () => {
  const py = (code: string) => execFileSync(PY, ['-c', code], { maxBuffer: 1 << 28 });

  // Bicubic image resize against PIL: test/data.resize.test.ts (byte-equal).

  test('nearest matches PIL NEAREST exactly on many sizes (down and up)', async () => {
    const w = 257,
      h = 193;
    const rng = new Rng(3);
    const a = Uint8Array.from({ length: w * h }, () => rng.int(256));
    const f = p('near.png');
    await sharp(a, { raw: { width: w, height: h, channels: 1 } })
      .toColourspace('b-w')
      .png()
      .toFile(f);
    const sizes: [number, number][] = [
      [128, 96],
      [514, 386],
      [3, 2],
      [1, 1],
      [171, 128],
      [77, 58],
    ];
    for (let k = 0; k < 30; k++) sizes.push([1 + rng.int(600), 1 + rng.int(450)]);
    const out = py(`import sys, numpy as np; from PIL import Image
im = Image.open(${JSON.stringify(f)})
sys.stdout.buffer.write(b''.join(np.asarray(im.resize((w, h), Image.NEAREST)).tobytes() for w, h in ${JSON.stringify(sizes)}))`);
    let off = 0;
    for (const [nw, nh] of sizes) {
      const ours = resizeNearest(a, w, h, 1, nw, nh);
      assert.deepEqual(ours, new Uint8Array(out.buffer, out.byteOffset + off, nw * nh), `${nw}×${nh}`);
      off += nw * nh;
    }
  });

  test('float bicubic matches PIL "F" mode', () => {
    const w = 50,
      h = 31;
    const a = Float32Array.from({ length: w * h }, (_, i) => Math.sin(i / 3) * 2.5);
    const out = py(`import sys, numpy as np; from PIL import Image
a = np.array(${JSON.stringify(Array.from(a))}, dtype=np.float32).reshape(${h}, ${w})
sys.stdout.buffer.write(np.asarray(Image.fromarray(a).resize((23, 17), Image.BICUBIC), dtype=np.float32).tobytes())`);
    const ref = new Float32Array(out.buffer.slice(out.byteOffset, out.byteOffset + out.length));
    const ours = resampleBicubicFloat(a, w, h, 1, 23, 17);
    let max = 0;
    for (let i = 0; i < ref.length; i++) max = Math.max(max, Math.abs(ref[i] - ours[i]));
    assert.ok(max < 1e-5, `max |Δ| = ${max}`);
  });

  test('palette PNG / GIF masks give the same values as np.asarray(Image.open(f))', async () => {
    const idx = Uint8Array.from({ length: W * H }, (_, i) => (i * 3) % 4);
    await writeFile(
      p('pp.png'),
      encodePng({
        width: W,
        height: H,
        channels: 1,
        depth: 8,
        data: idx,
        palette: [
          [9, 9, 9],
          [0, 0, 0],
          [255, 0, 0],
          [0, 0, 0],
        ],
      }),
    );
    await writeFile(
      p('pp.gif'),
      encodeGifIndices(idx, W, H, [
        [9, 9, 9],
        [0, 0, 0],
        [255, 0, 0],
        [0, 0, 0],
      ]),
    );
    for (const f of [p('pp.png'), p('pp.gif')]) {
      const ref = py(`import sys, numpy as np; from PIL import Image; sys.stdout.buffer.write(np.asarray(Image.open(${JSON.stringify(f)})).astype(np.uint8).tobytes())`);
      assert.deepEqual(Array.from((await readMask(f)).data), Array.from(ref), f);
    }
  });

  test('float32 TIFF written by PIL is read exactly', async () => {
    const f = p('f.tif');
    py(`import numpy as np; from PIL import Image
Image.fromarray((np.arange(35, dtype=np.float32).reshape(5, 7) / 40)).save(${JSON.stringify(f)})`);
    const img = await readImage(f);
    assert.deepEqual([img.channels, img.bitDepth], [1, 32]);
    assert.deepEqual(
      Array.from(img.data),
      Array.from({ length: 35 }, (_, i) => Math.fround(i / 40)),
    );
    assert.ok((await readFile(f)).length > 0);
  });
});
