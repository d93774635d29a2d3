/**
 * The GIF decoder against GIFs written by Pillow 9.4 (test/reference/pil_gif.py), not only its own
 * encoder's: masks must equal `np.asarray(Image.open(f))` (palette indices for "P" images, as
 * Pytorch-UNet reads masks) and images `Image.open(f).convert('RGB')`. Files Pillow does not
 * write (a first frame off the origin, no colour table, a frame larger than the screen) are made
 * here by patching our encoder's output, and Pillow reads them as the reference.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { encodeGifIndices, parseNpy, readImageRaw, readMask } from '../src/data/index.js';
import { tempDir } from './helpers/workdir.js';

const PY = process.env.UNET_TEST_PYTHON ?? '/usr/bin/python3';
const SCRIPT = join(import.meta.dirname, 'reference', 'pil_gif.py');
const hasPil = existsSync(PY) && spawnSync(PY, ['-c', 'import PIL, numpy'], { stdio: 'ignore' }).status === 0;

const dir = tempDir('data-gif');

interface Written {
  file: string;
  mode: string;
  frames: number;
}

function pilGif(args: string[]): Written[] {
  const r = spawnSync(PY, [SCRIPT, ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, `pil_gif.py failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop() as string) as Written[];
}

const npy = async (f: string) => parseNpy(await readFile(f));

/** Our mask and image readings of `file` equal what Pillow read back (`file.npy`, `file.rgb.npy`). */
async function assertSameAsPil(file: string): Promise<void> {
  const ref = await npy(`${file}.npy`);
  const mask = await readMask(file);
  assert.deepEqual([mask.height, mask.width], ref.shape.slice(0, 2), `${file}: size`);
  assert.ok(mask.palette, `${file}: palette indices`);
  assert.deepEqual(Buffer.from(mask.data as Uint8Array), Buffer.from(ref.data as Uint8Array), `${file}: indices`);
  const rgb = await npy(`${file}.rgb.npy`);
  const image = await readImageRaw(file, { layout: 'hwc', channels: 3 });
  assert.deepEqual(Buffer.from(image.data as Uint8Array), Buffer.from(rgb.data as Uint8Array), `${file}: colours`);
}

/** Offset of the first image descriptor (0x2C) of a GIF with a global table and no extensions before it. */
function descriptorOffset(gif: Uint8Array): number {
  let p = 13 + (gif[10] & 0x80 ? 3 * (2 << (gif[10] & 7)) : 0);
  while (gif[p] === 0x21) {
    p += 2;
    while (gif[p] !== 0) p += gif[p] + 1;
    p++;
  }
  assert.equal(gif[p], 0x2c);
  return p;
}

describe('GIF decoder against Pillow', { skip: hasPil ? false : `${PY} with PIL and numpy not found` }, () => {
  test('GIFs written by Pillow: palette (interlaced or not), transparency, 256 colours, grey and RGB sources, several frames', async () => {
    const written = pilGif(['write', dir]);
    const byName = Object.fromEntries(written.map((w) => [w.file.split('/').pop()!.replace('.gif', ''), w]));
    assert.deepEqual(Object.keys(byName).sort(), ['colours_256', 'grey_L', 'interlaced', 'mask_01', 'not_interlaced', 'rgb', 'three_frames', 'tiny_13x7', 'transparent']);
    for (const w of written) assert.equal(w.mode, 'P', `${w.file}: Pillow reads it as a palette image`);
    // The cases are what their names say (so that this test keeps covering them).
    const bytes = async (name: string) => new Uint8Array(await readFile(byName[name].file));
    const interlaced = await bytes('interlaced');
    assert.ok(interlaced[descriptorOffset(interlaced) + 9] & 0x40, 'Pillow interlaced it');
    const plain = await bytes('not_interlaced');
    assert.equal(plain[descriptorOffset(plain) + 9] & 0x40, 0);
    assert.ok(Buffer.from(await bytes('transparent')).includes(Buffer.from([0x21, 0xf9, 4, 1])), 'graphic control extension with a transparent index');
    assert.equal(byName.three_frames.frames, 3);
    for (const w of written) await assertSameAsPil(w.file);
    assert.deepEqual([...new Set((await readMask(byName.mask_01.file)).data)].sort(), [0, 1], 'a Carvana-style mask gives indices 0/1');
  });

  test('GIFs Pillow does not write: a first frame off the origin, no colour table, a frame larger than the screen', async () => {
    const w = 6,
      h = 4;
    const indices = Uint8Array.from({ length: w * h }, (_, i) => 1 + (i % 3));
    const palette: [number, number, number][] = [
      [10, 20, 30],
      [200, 0, 0],
      [0, 200, 0],
      [0, 0, 200],
      [9, 9, 9],
      [77, 66, 55],
      [1, 2, 3],
      [4, 5, 6],
    ];
    const base = encodeGifIndices(indices, w, h, palette);
    const d = descriptorOffset(base);
    const put16 = (b: Uint8Array, at: number, v: number) => {
      b[at] = v & 255;
      b[at + 1] = v >> 8;
    };

    // 10×8 screen, the 6×4 frame at (3, 2), background index 5: Pillow fills the rest with 0.
    const offset = base.slice();
    put16(offset, 6, 10);
    put16(offset, 8, 8);
    offset[11] = 5;
    put16(offset, d + 1, 3);
    put16(offset, d + 3, 2);
    // The same with a transparent index (4): the rest is that index.
    const gce = Uint8Array.from([0x21, 0xf9, 4, 1, 0, 0, 4, 0]);
    const transparent = Uint8Array.from([...offset.subarray(0, d), ...gce, ...offset.subarray(d)]);
    // No global colour table: Pillow reads indices as grey levels ("L").
    const tableBytes = 3 * (2 << (base[10] & 7));
    const noTable = Uint8Array.from([...base.subarray(0, 13), ...base.subarray(13 + tableBytes)]);
    noTable[10] &= 0x7f;
    // A 4×3 screen: the 6×4 frame enlarges the image.
    const large = base.slice();
    put16(large, 6, 4);
    put16(large, 8, 3);

    const files: string[] = [];
    for (const [name, b] of [
      ['offset', offset],
      ['offset_transparent', transparent],
      ['no_table', noTable],
      ['larger_frame', large],
    ] as const) {
      files.push(join(dir, `${name}.gif`));
      await writeFile(files[files.length - 1], b);
    }
    const read = pilGif(['read', ...files]);
    assert.deepEqual(
      read.map((r) => r.mode),
      ['P', 'P', 'L', 'P'],
    );
    for (const f of files) await assertSameAsPil(f);
    const m = await readMask(files[0]);
    assert.deepEqual([m.width, m.height, m.data[0], m.data[2 * 10 + 3]], [10, 8, 0, indices[0]]);
  });
});
