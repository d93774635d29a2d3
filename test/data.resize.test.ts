/**
 * Image resize against Pillow 9.4 (Debian's python3-pil, run through test/reference/pil_resize.py):
 * decoded + bicubic-resized pixels must be byte-equal to `np.asarray(Image.open(f).resize(size,
 * Image.BICUBIC))`, the reference loader's preprocessing, for grey, RGB and 16-bit images, and
 * for JPEGs Pillow wrote.
 */

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { encode as encodePng } from 'fast-png';
import { bicubicBands, parseNpy, readImageRaw, resizeBicubic, Rng } from '../src/data/index.js';
import { tempDir } from './helpers/workdir.js';

const PY = process.env.UNET_TEST_PYTHON ?? '/usr/bin/python3';
const SCRIPT = join(import.meta.dirname, 'reference', 'pil_resize.py');
const hasPil = existsSync(PY) && spawnSync(PY, ['-c', 'import PIL, numpy'], { stdio: 'ignore' }).status === 0;

const dir = tempDir('data-resize');

interface Job {
  file: string;
  size: [number, number];
  out: string;
  convert?: 'L' | 'RGB';
}
interface PilInfo {
  mode: string;
  dtype: string;
  shape: number[];
}

/** Runs PIL's resize on every job (one python process) and returns the arrays it produced. */
async function pilResize(jobs: Job[]): Promise<{ info: PilInfo; data: ArrayLike<number> }[]> {
  const r = spawnSync(PY, [SCRIPT], { input: JSON.stringify({ jobs }), encoding: 'utf8', maxBuffer: 1 << 26 });
  assert.equal(r.status, 0, `pil_resize.py failed: ${r.stderr}`);
  const info = JSON.parse(r.stdout.trim().split('\n').pop() as string) as PilInfo[];
  return Promise.all(jobs.map(async (j, i) => ({ info: info[i], data: parseNpy(await readFile(j.out)).data })));
}

function countDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

type Kind = 'grey' | 'rgb' | 'grey16';
const CHANNELS: Record<Kind, 1 | 3> = { grey: 1, rgb: 3, grey16: 1 };

/**
 * Half noise, half smooth gradient with a hard edge through the middle: noise exercises every
 * rounding, the edge makes bicubic overshoot (clipping for 8-bit, out-of-range values for 16-bit).
 */
function testImage(kind: Kind, width: number, height: number, seed: number): Uint8Array | Uint16Array {
  const c = CHANNELS[kind];
  const max = kind === 'grey16' ? 65535 : 255;
  const rng = new Rng(seed);
  const a = kind === 'grey16' ? new Uint16Array(width * height) : new Uint8Array(width * height * c);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let ch = 0; ch < c; ch++) {
        const i = (y * width + x) * c + ch;
        if (y < height / 2) a[i] = rng.int(max + 1);
        else a[i] = x < width / 2 ? Math.round((max * ((x + 3 * y + 50 * ch) % width)) / width) : x % 7 < 3 ? max : 0;
      }
    }
  }
  return a;
}

async function writePng(name: string, kind: Kind, data: Uint8Array | Uint16Array, width: number, height: number): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, encodePng({ width, height, data, channels: CHANNELS[kind], depth: kind === 'grey16' ? 16 : 8 }));
  return file;
}

describe('bicubic resize is byte-equal to Pillow', { skip: hasPil ? false : `${PY} with PIL and numpy not found` }, () => {
  test('grey, RGB and 16-bit PNGs at scales 0.5, 0.25, 0.33, 0.1, 1.0, odd sizes, one side only, upscaling', async () => {
    const sources: [number, number][] = [
      [257, 193],
      [101, 67],
      [64, 48],
      [17, 5],
    ];
    const jobs: (Job & { kind: Kind; w: number; h: number })[] = [];
    let seed = 1;
    for (const kind of ['grey', 'rgb', 'grey16'] as const) {
      for (const [w, h] of sources) {
        const file = await writePng(`${kind}-${w}x${h}.png`, kind, testImage(kind, w, h, seed++), w, h);
        const sizes = new Set<string>();
        for (const s of [0.5, 0.25, 0.33, 0.1, 1.0]) {
          const nw = Math.floor(s * w),
            nh = Math.floor(s * h);
          if (nw > 0 && nh > 0) sizes.add(`${nw},${nh}`);
        }
        sizes.add(`${w},${Math.floor(h / 3)}`); // vertical pass only
        sizes.add(`${Math.floor(w / 3)},${h}`); // horizontal pass only
        sizes.add(`${w * 2 + 1},${h + 3}`); // upscaling (predict may resize up)
        for (const key of sizes) {
          const [nw, nh] = key.split(',').map(Number);
          jobs.push({ kind, w, h, file, size: [nw, nh], out: join(dir, `${kind}-${w}x${h}-${nw}x${nh}.npy`) });
        }
      }
    }
    const pil = await pilResize(jobs);
    for (const [i, job] of jobs.entries()) {
      const what = `${job.kind} ${job.w}×${job.h} -> ${job.size.join('×')}`;
      const ours = await readImageRaw(job.file, { size: { width: job.size[0], height: job.size[1] }, layout: 'hwc' });
      const ref = pil[i];
      // PIL opens 8-bit PNGs as "L"/"RGB" and 16-bit greyscale PNGs as "I" (int32, resized unclipped).
      assert.equal(ref.info.mode, { grey: 'L', rgb: 'RGB', grey16: 'I' }[job.kind], what);
      assert.deepEqual(ref.info.shape.slice(0, 2), [job.size[1], job.size[0]], what);
      if (job.kind === 'grey16') {
        assert.deepEqual(Array.from(ours.data), Array.from(ref.data), what);
      } else {
        assert.ok(ours.data instanceof Uint8Array, what);
        const diff = countDiff(ours.data, ref.data);
        assert.equal(diff, 0, `${what}: ${diff} of ${ref.data.length} samples differ`);
      }
    }
    // The 16-bit edge overshoots like PIL's int32 result: values outside 0..65535 must occur.
    const g16 = pil.filter((_, i) => jobs[i].kind === 'grey16').flatMap((r) => Array.from(r.data));
    assert.ok(g16.some((v) => v < 0) && g16.some((v) => v > 65535), 'the test images make bicubic overshoot');
  });

  test("channel conversion equals PIL's convert('L') / convert('RGB') followed by the resize", async () => {
    const w = 101,
      h = 67;
    const rgb = await writePng('conv-rgb.png', 'rgb', testImage('rgb', w, h, 11), w, h);
    const grey = await writePng('conv-grey.png', 'grey', testImage('grey', w, h, 12), w, h);
    const jobs: (Job & { channels: 1 | 3 })[] = [];
    for (const [nw, nh] of [
      [50, 33],
      [w, h],
      [33, 22],
    ] as const) {
      jobs.push({ file: rgb, size: [nw, nh], out: join(dir, `conv-L-${nw}.npy`), convert: 'L', channels: 1 });
      jobs.push({ file: grey, size: [nw, nh], out: join(dir, `conv-RGB-${nw}.npy`), convert: 'RGB', channels: 3 });
    }
    const pil = await pilResize(jobs);
    for (const [i, job] of jobs.entries()) {
      const ours = await readImageRaw(job.file, { size: { width: job.size[0], height: job.size[1] }, layout: 'hwc', channels: job.channels });
      assert.equal(ours.channels, job.channels);
      assert.equal(countDiff(ours.data, pil[i].data), 0, `${job.convert} ${job.size.join('×')}`);
    }
  });
});

describe('JPEG decode + resize is byte-equal to Pillow', { skip: hasPil ? false : `${PY} with PIL and numpy not found` }, () => {
  test('baseline 4:2:0 and 4:4:4, progressive, optimised tables, greyscale, odd sizes, at several scales', async () => {
    const variants = [
      { name: 'rgb420.jpg', size: [257, 193], mode: 'RGB', subsampling: 2 },
      { name: 'rgb444.jpg', size: [101, 67], mode: 'RGB', subsampling: 0, quality: 95 },
      { name: 'rgb422-prog.jpg', size: [98, 61], mode: 'RGB', subsampling: 1, progressive: true },
      { name: 'rgb-opt.jpg', size: [64, 48], mode: 'RGB', quality: 75, optimize: true },
      { name: 'grey.jpg', size: [131, 77], mode: 'L' },
      { name: 'grey-prog.jpg', size: [17, 9], mode: 'L', progressive: true },
    ];
    const made = spawnSync(PY, [join(import.meta.dirname, 'reference', 'pil_jpeg.py')], { input: JSON.stringify({ dir, seed: 3, jobs: variants }), encoding: 'utf8' });
    assert.equal(made.status, 0, made.stderr);
    const jobs: (Job & { channels: number })[] = [];
    for (const v of variants) {
      const [w, h] = v.size;
      for (const s of [1, 0.5, 0.33, 0.25]) {
        const size: [number, number] = [Math.max(1, Math.floor(w * s)), Math.max(1, Math.floor(h * s))];
        jobs.push({ file: join(dir, v.name), size, out: join(dir, `${v.name}-${size.join('x')}.npy`), channels: v.mode === 'L' ? 1 : 3 });
      }
    }
    const pil = await pilResize(jobs);
    for (const [i, job] of jobs.entries()) {
      const what = `${job.file} -> ${job.size.join('×')}`;
      const ours = await readImageRaw(job.file, { size: { width: job.size[0], height: job.size[1] }, layout: 'hwc' });
      assert.equal(ours.channels, job.channels, what);
      const diff = countDiff(ours.data, pil[i].data);
      assert.equal(diff, 0, `${what}: ${diff} of ${pil[i].data.length} samples differ`);
    }
  });

  test('a JPEG cut inside its scan is refused, naming the file, as Pillow refuses it ("image file is truncated")', async () => {
    const good = await readFile(join(dir, 'rgb420.jpg'));
    const file = join(dir, 'cut.jpg');
    await writeFile(file, good.subarray(0, good.length >> 1));
    await assert.rejects(readImageRaw(file), (e: Error) => e.message.includes(file));
  });
});

describe('resizeBicubic', () => {
  test('a flat image stays flat at every depth (weights sum to one)', async () => {
    for (const [src, v] of [
      [new Uint8Array(37 * 23 * 3).fill(200), 200],
      [new Uint16Array(37 * 23 * 3).fill(40000), 40000],
      [new Float32Array(37 * 23 * 3).fill(0.25), 0.25],
    ] as const) {
      const out = await resizeBicubic(src, 37, 23, 3, 12, 7);
      assert.equal(out.length, 12 * 7 * 3);
      assert.ok(
        out.every((x) => x === v),
        `${src.constructor.name}`,
      );
    }
  });

  test('the same size returns the input unchanged', async () => {
    const src = Uint8Array.from({ length: 30 }, (_, i) => i);
    assert.equal(await resizeBicubic(src, 5, 6, 1, 5, 6), src);
  });

  test('8-bit data is clipped to 0..255 (a hard edge overshoots)', async () => {
    const src = Uint8Array.from({ length: 16 }, (_, i) => (i < 8 ? 0 : 255)); // 16×1: a step
    const up = await resizeBicubic(src, 16, 1, 1, 40, 1);
    assert.ok(up.some((v) => v === 0) && up.some((v) => v === 255), 'both ends reached');
    const u16 = await resizeBicubic(
      Uint16Array.from(src, (v) => v * 257),
      16,
      1,
      1,
      40,
      1,
    );
    assert.ok(u16.some((v) => v < 0) && u16.some((v) => v > 65535), '16-bit (PIL "I") is not clipped');
  });

  test('by bands of output rows, from only the input rows their taps reach: equal to the whole-image resize', async () => {
    const rng = new Rng(5);
    const [w, h] = [61, 47];
    for (const [c, make] of [
      [1, Uint8Array],
      [3, Uint8Array],
      [1, Uint16Array],
      [3, Float32Array],
    ] as const) {
      const max = make === Uint16Array ? 65536 : make === Uint8Array ? 256 : 1;
      const src = make.from(Array.from({ length: w * h * c }, () => (max === 1 ? rng.next() : Math.floor(rng.next() * max))));
      // Down by odd ratios, one side kept, up, and the same size.
      for (const [nw, nh] of [
        [22, 17],
        [61, 20],
        [23, 47],
        [90, 70],
        [61, 47],
      ]) {
        const whole = await resizeBicubic(src, w, h, c, nw, nh);
        const bands = bicubicBands(w, h, c, nw, nh);
        const parts: number[] = [];
        for (let y0 = 0; y0 < nh; y0 += 6) {
          const y1 = Math.min(nh, y0 + 6);
          const [i0, i1] = bands.inputRows(y0, y1);
          assert.ok(i1 - i0 < h, `rows ${y0}..${y1} need input rows ${i0}..${i1}`);
          parts.push(...(await bands.resize(src.subarray(i0 * w * c, i1 * w * c), i0, y0, y1)));
        }
        assert.deepEqual(parts, Array.from(whole), `${make.name} ×${c} ${w}x${h} -> ${nw}x${nh}`);
      }
    }
    await assert.rejects(bicubicBands(w, h, 1, 22, 17).resize(new Uint8Array(w * 3), 0, 5, 10), /need input rows/);
  });
});
