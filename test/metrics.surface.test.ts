/**
 * HD95 and normalised surface Dice (src/metrics/surface.ts) against scipy's exact Euclidean
 * distance transform and binary erosion (test/reference/surface.py, Debian python3-scipy), per
 * class, on random blobs of several sizes and the edge cases: empty prediction, empty truth, both
 * empty, single pixels, masks touching the image border, non-square and one-row images,
 * anisotropic spacing, several classes and ignored truth labels.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { type SurfaceScore, SurfaceMeter, distanceTransform, surfaceScores } from '../src/metrics/surface.js';
import { prng } from './helpers/fixtures.js';

const PY = process.env.UNET_TEST_PYTHON ?? '/usr/bin/python3';
const SCRIPT = join(import.meta.dirname, 'reference', 'surface.py');
const hasScipy = existsSync(PY) && spawnSync(PY, ['-c', 'import scipy.ndimage, numpy'], { stdio: 'ignore' }).status === 0;

interface Case {
  name: string;
  h: number;
  w: number;
  k: number;
  pred: number[];
  truth: number[];
  spacing: [number, number];
  tol: number;
}

/** A label map of `blobs` random ellipses (labels 1..k-1) on 0, plus `flips` random single pixels. */
function blobs(r: () => number, w: number, h: number, k: number, n: number, maxR: number, flips = 0): number[] {
  const m = new Array<number>(w * h).fill(0);
  for (let b = 0; b < n; b++) {
    const cx = r() * w;
    const cy = r() * h;
    const rx = 1 + r() * maxR;
    const ry = 1 + r() * maxR;
    const lab = 1 + Math.floor(r() * (k - 1));
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1) m[y * w + x] = lab;
  }
  for (let f = 0; f < flips; f++) m[Math.floor(r() * w * h)] = Math.floor(r() * k);
  return m;
}

const fill = (w: number, h: number, f: (x: number, y: number) => number) => Array.from({ length: w * h }, (_, i) => f(i % w, Math.floor(i / w)));

function cases(): Case[] {
  const r = prng(23);
  const out: Case[] = [];
  const add = (name: string, w: number, h: number, pred: number[], truth: number[], o: Partial<Case> = {}) => out.push({ name, w, h, k: 2, pred, truth, spacing: [1, 1], tol: 2, ...o });
  // random blobs, several sizes and tolerances
  const sizes: [number, number, number, number][] = [
    [16, 16, 3, 4],
    [32, 24, 5, 6],
    [48, 48, 8, 10],
    [64, 40, 4, 15],
    [96, 96, 12, 20],
    [37, 53, 6, 9],
  ];
  for (const [w, h, n, maxR] of sizes) {
    add(`blobs ${w}x${h}`, w, h, blobs(r, w, h, 2, n, maxR, 3), blobs(r, w, h, 2, n, maxR), { tol: [0, 1, 1.5, 2, 3, 5][out.length % 6] });
  }
  const truth = blobs(r, 40, 30, 2, 5, 8);
  add('prediction = truth', 40, 30, truth, truth);
  add(
    'prediction = truth plus noise',
    40,
    30,
    truth.map((v) => (r() < 0.05 ? 1 - v : v)),
    truth,
    { tol: 1 },
  );
  add('empty prediction', 40, 30, new Array(1200).fill(0), truth);
  add('empty truth', 40, 30, truth, new Array(1200).fill(0));
  add('both empty', 40, 30, new Array(1200).fill(0), new Array(1200).fill(0));
  add(
    'one pixel each, apart',
    20,
    20,
    fill(20, 20, (x, y) => +(x === 3 && y === 4)),
    fill(20, 20, (x, y) => +(x === 15 && y === 11)),
  );
  add(
    'one pixel each, same place',
    20,
    20,
    fill(20, 20, (x, y) => +(x === 3 && y === 4)),
    fill(20, 20, (x, y) => +(x === 3 && y === 4)),
  );
  add(
    'one pixel vs a blob',
    25,
    25,
    fill(25, 25, (x, y) => +(x === 0 && y === 24)),
    fill(25, 25, (x, y) => +((x - 12) ** 2 + (y - 12) ** 2 < 40)),
  );
  add(
    'whole image vs touching the border',
    30,
    20,
    new Array(600).fill(1),
    fill(30, 20, (x, y) => +(x < 12 || y > 15)),
    { tol: 3 },
  );
  add(
    'non-square, touching borders',
    70,
    9,
    fill(70, 9, (x, y) => +(x + y < 30)),
    fill(70, 9, (x, y) => +(x + 2 * y < 33 || x > 65)),
  );
  add(
    'one row',
    50,
    1,
    fill(50, 1, (x) => +(x > 10 && x < 30)),
    fill(50, 1, (x) => +(x > 14 && x < 41)),
  );
  add(
    'one column',
    1,
    40,
    fill(1, 40, (_, y) => +(y < 7)),
    fill(1, 40, (_, y) => +(y > 3 && y < 20)),
  );
  add('anisotropic spacing [2, 1] (scale 0.5 in y)', 40, 30, blobs(r, 40, 30, 2, 4, 9), blobs(r, 40, 30, 2, 4, 9), { spacing: [2, 1], tol: 4 });
  add('anisotropic spacing [0.5, 1.5]', 33, 45, blobs(r, 33, 45, 2, 4, 9, 4), blobs(r, 33, 45, 2, 4, 9), { spacing: [0.5, 1.5], tol: 1.5 });
  add('3 classes', 50, 40, blobs(r, 50, 40, 3, 8, 9, 6), blobs(r, 50, 40, 3, 8, 9), { k: 3 });
  add('4 classes, one absent from both', 45, 45, blobs(r, 45, 45, 3, 7, 10), blobs(r, 45, 45, 3, 7, 10, 5), { k: 4, tol: 1 });
  const t2 = blobs(r, 40, 32, 3, 6, 8);
  add(
    'ignored truth pixels (label 255)',
    40,
    32,
    blobs(r, 40, 32, 3, 6, 8, 4),
    t2.map((v, i) => (i % 40 > 30 || (i > 300 && i < 420) ? 255 : v)),
    { k: 3 },
  );
  return out;
}

function ours(c: Case): SurfaceScore[] {
  return surfaceScores(Int32Array.from(c.pred), Int32Array.from(c.truth), c.w, c.h, c.k, c.tol, c.spacing);
}

describe('HD95 and surface Dice equal scipy', { skip: hasScipy ? false : `${PY} with scipy and numpy not found (Debian: python3-scipy)` }, () => {
  test('random blobs and edge cases, every class', () => {
    const all = cases();
    assert.ok(all.length >= 20);
    const r = spawnSync(PY, [SCRIPT], { input: JSON.stringify({ cases: all }), encoding: 'utf8', maxBuffer: 1 << 26 });
    assert.equal(r.status, 0, `surface.py failed: ${r.stderr}`);
    const golden = JSON.parse(r.stdout.trim().split('\n').pop() as string) as { hd95: number | null; nsd: number }[][];
    let oneEmpty = 0;
    let compared = 0;
    all.forEach((c, i) => {
      const got = ours(c);
      assert.equal(got.length, golden[i].length);
      golden[i].forEach((g, k) => {
        const where = `${c.name}, class ${k}: ours ${JSON.stringify(got[k])}, scipy ${JSON.stringify(g)}`;
        if (g.hd95 === null) {
          oneEmpty++;
          assert.ok(Number.isNaN(got[k].hd95), where);
        } else assert.ok(Math.abs(got[k].hd95 - g.hd95) <= 1e-6, where);
        assert.ok(Math.abs(got[k].nsd - g.nsd) <= 1e-6, where);
        compared++;
      });
    });
    assert.ok(oneEmpty >= 3 && compared === 50, `${oneEmpty} one-empty, ${compared} compared`);
  });
});

describe('surface conventions', () => {
  test('empty masks: both empty 0 / 1, one empty NaN / 0; the meter skips the NaN cases', () => {
    const e = new Int32Array(12);
    const one = Int32Array.from(e, (_, i) => +(i === 5));
    const [bg, fg] = surfaceScores(e, one, 4, 3, 2, 2);
    assert.ok(Number.isNaN(fg.hd95));
    assert.equal(fg.nsd, 0);
    assert.equal(bg.nsd, 1); // pred background = whole image; truth background = all but one pixel
    assert.deepEqual(surfaceScores(e, e, 4, 3, 2, 2)[1], { hd95: 0, nsd: 1, predEmpty: true, truthEmpty: true });
    const m = new SurfaceMeter(2);
    m.add(surfaceScores(e, one, 4, 3, 2, 2)); // one empty: NSD 0 counts, HD95 skipped
    m.add(surfaceScores(e, e, 4, 3, 2, 2)); // both empty: skipped
    m.add(surfaceScores(one, one, 4, 3, 2, 2)); // equal: HD95 0, NSD 1
    assert.deepEqual(m.read()[1], { hd95: 0, nsd: 0.5, oneEmpty: 1 });
    assert.deepEqual(new SurfaceMeter(1).read(), [{ hd95: null, nsd: null, oneEmpty: 0 }]);
  });

  test('the distance transform is exact on a 2048x2048 image', () => {
    const w = 2048;
    const sites = new Uint8Array(w * w);
    const pts = [
      [5, 7],
      [2000, 1500],
      [1024, 30],
    ];
    for (const [x, y] of pts) sites[y * w + x] = 1;
    const t0 = performance.now();
    const d = distanceTransform(sites, w, w);
    const ms = performance.now() - t0;
    const r = prng(7);
    for (let n = 0; n < 2000; n++) {
      const x = Math.floor(r() * w);
      const y = Math.floor(r() * w);
      const exact = Math.min(...pts.map(([px, py]) => Math.hypot(px - x, py - y)));
      assert.ok(Math.abs(d[y * w + x] - exact) < 1e-9, `(${x}, ${y}): ${d[y * w + x]} vs ${exact}`);
    }
    assert.ok(ms < 10_000, `${ms} ms`);
  });
});
