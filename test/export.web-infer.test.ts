// The page's pre- and post-processing (src/predictor-page/infer.ts, resample.ts) against the reference's
// numerics: the bicubic resize is byte-equal to Pillow's `Image.resize(..., BICUBIC)` on 8-bit
// planes (down and up, odd sizes), the logit resize equals torch's F.interpolate(bilinear,
// align_corners=False), and argmax/threshold follow predict's rules. Skips without python3-torch.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as E from '../src/engine/index.js';
import { InputError, classify, preprocessRgba, resizeLogits, scaledSize } from '../src/predictor-page/infer.js';
import { withoutOrientation } from '../src/predictor-page/exif.js';
import { resizeBicubicU8 } from '../src/predictor-page/resample.js';
import { NO_TORCH, hasTorch, maxDiff, runPython } from './helpers/python.js';

/** A plane with edges and noise, so every rounding path is exercised. */
const plane = (w: number, h: number, seed: number) => Uint8Array.from({ length: w * h }, (_, i) => ((i % w) * 9 + Math.floor(i / w) * 5 + ((i * 2654435761 + seed) >>> 27) * 17) & 255);

test('bicubic resize = Pillow BICUBIC on 8-bit planes', { skip: hasTorch() ? false : NO_TORCH }, () => {
  const cases: [number, number, number, number][] = [
    [512, 512, 256, 256],
    [61, 93, 30, 46],
    [101, 37, 25, 9],
    [40, 30, 93, 61],
    [64, 48, 64, 20],
    [33, 17, 33, 17],
  ];
  const req = cases.map(([w, h, nw, nh], i) => ({ w, h, nw, nh, data: Array.from(plane(w, h, i)) }));
  const py = runPython<number[][]>(
    `import sys, json
from PIL import Image
out = []
for c in json.load(sys.stdin):
    im = Image.frombytes('L', (c['w'], c['h']), bytes(c['data']))
    out.append(list(im.resize((c['nw'], c['nh']), resample=Image.BICUBIC).tobytes()))
print(json.dumps(out))`,
    req,
  );
  req.forEach((c, i) => {
    const ours = resizeBicubicU8(Uint8Array.from(c.data), c.w, c.h, c.nw, c.nh);
    let differ = 0;
    for (let k = 0; k < ours.length; k++) if (ours[k] !== py[i][k]) differ++;
    assert.equal(differ, 0, `${c.w}x${c.h} -> ${c.nw}x${c.nh}: ${differ} of ${ours.length} bytes differ from Pillow`);
  });
});

test('logits resize = F.interpolate(bilinear, align_corners=False); argmax and sigmoid threshold', { skip: hasTorch() ? false : NO_TORCH }, () => {
  const [k, h, w, H, W] = [3, 23, 31, 61, 93];
  const logits = E.randn([1, k, h, w]);
  const data = logits.data() as Float32Array;
  logits.dispose();
  const py = runPython<{ up: number[]; down: number[] }>(
    `import sys, json, torch
import torch.nn.functional as F
r = json.load(sys.stdin)
x = torch.tensor(r['x']).reshape(1, r['k'], r['h'], r['w'])
up = F.interpolate(x, (r['H'], r['W']), mode='bilinear')
down = F.interpolate(x, (r['h'] // 2, r['w'] // 3), mode='bilinear')
print(json.dumps({'up': up.flatten().tolist(), 'down': down.flatten().tolist()}))`,
    { x: Array.from(data), k, h, w, H, W },
  );
  assert.ok(maxDiff(resizeLogits(data, k, h, w, H, W), py.up) < 1e-5);
  assert.ok(maxDiff(resizeLogits(data, k, h, w, Math.floor(h / 2), Math.floor(w / 3)), py.down) < 1e-5);
  assert.deepEqual([...classify(Float32Array.from([0, 5, 1, 1, 2, 3]), 2, 3)], [1, 0, 1]);
  assert.deepEqual([...classify(Float32Array.from([-1, 0.1, 3]), 1, 3, 0.5)], [0, 1, 1]);
  assert.deepEqual([...classify(Float32Array.from([-1, 0.1, 3]), 1, 3, 0.9)], [0, 0, 1]);
});

test('preprocess: scale, grey/colour checks and the 16 px minimum', () => {
  const rgba = new Uint8Array(40 * 34 * 4).fill(100);
  const x = preprocessRgba(rgba, 40, 34, 1, 0.5);
  assert.deepEqual([x.width, x.height, x.data.length], [20, 17, 20 * 17]);
  assert.ok(Math.abs(x.data[0] - 100 / 255) < 1e-7);
  assert.equal(preprocessRgba(rgba, 40, 34, 3, 1).data.length, 3 * 40 * 34);
  rgba[0] = 7;
  assert.throws(() => preprocessRgba(rgba, 40, 34, 1, 0.5), /in colour \(RGB\) but the model expects greyscale/);
  assert.throws(
    () => scaledSize(31, 100, 0.5),
    (e: Error) => e instanceof InputError && /31x100; at the model's scale 0\.5 that is 15x50, but the UNet needs at least 16x16/.test(e.message),
  );
});

test('EXIF orientation: the page decodes a copy whose tag says 1 (as stored), as predict and PIL read it', async () => {
  const { default: sharp } = await import('sharp');
  const raw = { raw: { width: 24, height: 16, channels: 3 as const } };
  const px = new Uint8Array(24 * 16 * 3).map((_, i) => i & 255);
  for (const orientation of [6, 8, 3]) {
    const jpg = new Uint8Array(await sharp(px, raw).jpeg().withMetadata({ orientation }).toBuffer());
    const out = withoutOrientation(jpg);
    assert.equal((await sharp(jpg).metadata()).orientation, orientation);
    assert.equal((await sharp(out).metadata()).orientation, 1, `orientation ${orientation} -> 1`);
    assert.equal(jpg[jpg.length - 1], out[out.length - 1]);
    assert.equal(out.length, jpg.length, 'only the tag changes');
    assert.equal(
      out.reduce((n, b, i) => n + (b !== jpg[i] ? 1 : 0), 0),
      1,
      'one byte differs',
    );
  }
  const plain = new Uint8Array(await sharp(px, raw).jpeg().toBuffer());
  assert.equal(withoutOrientation(plain), plain, 'no EXIF: the same bytes');
  const png = new Uint8Array(await sharp(px, raw).png().toBuffer());
  assert.equal(withoutOrientation(png), png, 'not a JPEG: the same bytes');
  const truncated = new Uint8Array([0xff, 0xd8, 0xff, 0xe1, 0, 40, 0x45, 0x78, 0x69, 0x66, 0, 0, 0x49, 0x49]);
  assert.equal(withoutOrientation(truncated), truncated, 'a truncated EXIF block: the same bytes, no error');
});
