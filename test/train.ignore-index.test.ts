// --ignore-index and --class-weights in the loss and the metrics: loss and gradient against
// PyTorch's cross_entropy(weight, ignore_index) + the masked Dice (test/reference/masked_loss.py),
// and ignored pixels that change nothing: not the loss, not another pixel's gradient, not a metric.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RUN_RECORD_KEYS, readConfigFile } from '../src/cli/config-file.js';
import { checkClassWeights, trainOptions } from '../src/config/options.js';
import { IGNORE_CLASS, checkClasses, maskToClassIndex, withoutIgnoreValue } from '../src/data/index.js';
import * as E from '../src/engine/index.js';
import { IGNORE_INDEX, classTargets } from '../src/metrics/ignore.js';
import { SegmentationMeter } from '../src/metrics/meter.js';
import { medianFrequencyWeights } from '../src/train/class-weights.js';
import { segmentationLoss } from '../src/train/loss.js';
import { prng } from './helpers/fixtures.js';
import { NO_TORCH, assertClose, hasTorch, runPython } from './helpers/python.js';
import { PY_IMPORT_REFERENCE, REFERENCE_ROOT } from './helpers/reference.js';
import { tempDir } from './helpers/workdir.js';

const [N, H, W] = [2, 7, 9];

interface Case {
  name: string;
  classes: number;
  weight: number[] | null;
  /** Share of pixels ignored. */
  ignored: number;
}
const CASES: Case[] = [
  { name: '4 classes, weights and ignored pixels', classes: 4, weight: [0.5, 2, 1, 3], ignored: 0.25 },
  { name: '4 classes, ignored pixels', classes: 4, weight: null, ignored: 0.3 },
  { name: '3 classes, weights only', classes: 3, weight: [1.5, 0.25, 4], ignored: 0 },
  { name: 'binary (-c 1), weights and ignored pixels', classes: 1, weight: [0.7, 2.5], ignored: 0.25 },
  { name: 'binary (-c 1), ignored pixels', classes: 1, weight: null, ignored: 0.4 },
];

/** Logits [N,C,H,W] and targets [N,H,W] (IGNORE_INDEX on about `ignored` of the pixels), as plain arrays. */
function caseData(c: Case, seed: number): { logits: number[]; masks: number[] } {
  const r = prng(seed);
  const logits = Array.from({ length: N * c.classes * H * W }, () => (r() - 0.5) * 6);
  const k = Math.max(c.classes, 2);
  const masks = Array.from({ length: N * H * W }, () => (r() < c.ignored ? IGNORE_INDEX : Math.floor(r() * k)));
  return { logits, masks };
}

/** Our loss and d loss / d logits. */
function ours(c: Case, logits: number[], masks: number[]): { loss: number; grad: number[] } {
  return E.tidy(() => {
    const x = E.tensor(Float32Array.from(logits), [N, c.classes, H, W]).requiresGrad_(true);
    const y = E.tensor(BigInt64Array.from(masks.map(BigInt)), [N, H, W]);
    const weight = c.weight ? E.tensor(Float32Array.from(c.weight), [c.weight.length]) : undefined;
    const loss = segmentationLoss(x, y, c.classes, 'ce+dice', { weight });
    loss.backward();
    return { loss: loss.item(), grad: (x.grad as E.Tensor).toArray() };
  });
}

const PY = `${PY_IMPORT_REFERENCE}
import torch
from reference.masked_loss import masked_criterion
out = []
for c in _REQ['cases']:
    x = torch.tensor(c['logits'], dtype=torch.float32).reshape(c['shape']).requires_grad_(True)
    y = torch.tensor(c['masks'], dtype=torch.int64).reshape([c['shape'][0]] + c['shape'][2:])
    w = None if c['weight'] is None else torch.tensor(c['weight'], dtype=torch.float32)
    loss = masked_criterion(x, y, c['classes'], weight=w)
    loss.backward()
    out.append({'loss': loss.item(), 'grad': x.grad.flatten().tolist()})
print(_json.dumps(out))
`;

describe('the loss with ignored pixels and class weights equals PyTorch (ignore_index, weight)', () => {
  test('loss and gradient w.r.t. the logits, to 1e-5', { skip: !hasTorch() && NO_TORCH }, () => {
    const data = CASES.map((c, i) => ({ ...c, ...caseData(c, 100 + i), shape: [N, c.classes, H, W] }));
    const ref = runPython<{ loss: number; grad: number[] }[]>(PY, { root: REFERENCE_ROOT, cases: data });
    data.forEach((c, i) => {
      const got = ours(c, c.logits, c.masks);
      assert.ok(Math.abs(got.loss - ref[i].loss) < 1e-5, `${c.name}: loss ${got.loss} vs PyTorch ${ref[i].loss}`);
      assertClose(got.grad, ref[i].grad, 1e-7, 1e-4, `${c.name}: gradient`);
      const ignoredGrads = got.grad.filter((_, j) => c.masks[Math.floor(j / (c.classes * H * W)) * H * W + (j % (H * W))] === IGNORE_INDEX);
      if (c.ignored > 0) assert.ok(ignoredGrads.length > 0 && ignoredGrads.every((g) => g === 0), `${c.name}: ignored pixels get no gradient`);
    });
  });
});

describe('ignored pixels change nothing', () => {
  for (const c of CASES.filter((x) => x.ignored > 0)) {
    test(`${c.name}: new logits at ignored pixels leave the loss, the other pixels' gradients and the metrics as they were`, () => {
      const { logits, masks } = caseData(c, 7);
      const r = prng(99);
      const plane = H * W;
      const isIgnored = (j: number) => masks[Math.floor(j / (c.classes * plane)) * plane + (j % plane)] === IGNORE_INDEX;
      const changed = logits.map((v, j) => (isIgnored(j) ? (r() - 0.5) * 40 : v));
      assert.notDeepEqual(changed, logits);
      const a = ours(c, logits, masks);
      const b = ours(c, changed, masks);
      assert.equal(b.loss, a.loss);
      assert.deepEqual(b.grad, a.grad);
      const read = (l: number[]) =>
        E.tidy(() => {
          const meter = new SegmentationMeter(c.classes);
          try {
            meter.add(E.tensor(Float32Array.from(l), [N, c.classes, H, W]), E.tensor(BigInt64Array.from(masks.map(BigInt)), [N, H, W]));
            return meter.read();
          } finally {
            meter.dispose();
          }
        });
      const [ma, mb] = [read(logits), read(changed)];
      assert.deepEqual(mb, ma);
      const counted = masks.filter((m) => m !== IGNORE_INDEX).length;
      assert.equal(
        ma.confusion.flat().reduce((s, v) => s + v, 0),
        counted,
        'the confusion matrix counts only the counted pixels',
      );
    });
  }

  test('ignored pixels are left out of the validation Dice: a wrong prediction there scores as if absent', () => {
    // One image, 2 classes: truth 1 on the left half, ignored on the right; the prediction is 1 everywhere.
    const truth = Array.from({ length: 16 }, (_, i) => (i % 4 < 2 ? 1 : IGNORE_INDEX));
    const logits = [...new Array<number>(16).fill(-5), ...new Array<number>(16).fill(5)];
    const meter = new SegmentationMeter(2);
    try {
      E.tidy(() => meter.add(E.tensor(Float32Array.from(logits), [1, 2, 4, 4]), E.tensor(BigInt64Array.from(truth.map(BigInt)), [1, 4, 4])));
      const m = meter.read();
      assert.equal(m.dice, 1);
      assert.deepEqual(m.confusion, [
        [0, 0],
        [0, 8],
      ]);
      assert.equal(m.pixelAccuracy, 1);
    } finally {
      meter.dispose();
    }
  });
});

describe('mask values with --ignore-index', () => {
  test('the value becomes the ignore marker in the class maps and -100 in the targets; other values keep their classes', () => {
    const mask = { data: Uint8Array.from([0, 11, 5, 11, 0, 5]), channels: 1 as const };
    const classes = maskToClassIndex(mask, [0, 5], undefined, 11);
    assert.deepEqual([...classes], [0, IGNORE_CLASS, 1, IGNORE_CLASS, 0, 1]);
    const rgb = { data: Uint8Array.from([11, 11, 11, 0, 0, 0, 9, 0, 0]), channels: 3 as const };
    assert.deepEqual(
      [
        ...maskToClassIndex(
          rgb,
          [
            [0, 0, 0],
            [9, 0, 0],
          ],
          undefined,
          11,
        ),
      ],
      [IGNORE_CLASS, 0, 1],
    );
    E.tidy(() => {
      const y = classTargets(E.tensor(classes, [1, 2, 3]), IGNORE_CLASS);
      assert.equal(y.dtype, 'int64');
      assert.deepEqual(y.toArray(), [0, -100, 1, -100, 0, 1]);
      assert.deepEqual(classTargets(E.tensor(Uint8Array.from([0, 255]), [1, 1, 2]), null).toArray(), [0, 255], 'without the flag 255 is a class');
    });
  });

  test('a value in no mask, or one that leaves another class count than -c, is refused naming the flag and the values', () => {
    assert.deepEqual(withoutIgnoreValue([0, 1, 2, 11], 11, 3), { values: [0, 1, 2], problem: null });
    assert.deepEqual(withoutIgnoreValue([0, 255, 128], 128, 1), { values: [0, 255], problem: null });
    const missing = withoutIgnoreValue([0, 1, 2, 11], 7, 3).problem ?? '';
    assert.match(missing, /^--ignore-index 7: no mask holds the value 7; the masks hold \[0, 1, 2, 11\]/);
    const count = withoutIgnoreValue([0, 1, 2, 11], 11, 2).problem ?? '';
    assert.match(count, /^--ignore-index 11 leaves 3 class value\(s\) \[0, 1, 2\] of the masks' \[0, 1, 2, 11\], but --classes is 2: use -c 3/);
    assert.ok(!missing.includes('\n') && !count.includes('\n'), 'one line each');
    assert.match(checkClasses([0, 1, 2, 11], 3) ?? '', /--ignore-index VALUE/, 'one value too many suggests the flag');
  });
});

describe('--class-weights', () => {
  test('a weight per class (2 for -c 1), else an error naming the flag and -c', () => {
    checkClassWeights([1, 2, 3], 3);
    checkClassWeights([1, 2], 1);
    checkClassWeights('auto', 5);
    assert.throws(() => checkClassWeights([1, 2], 3), /^OptionError: --class-weights gives 2 weight\(s\) \(1, 2\) but -c 3 needs 3/);
    assert.throws(() => checkClassWeights([1, 2, 3], 1), /-c 1 needs 2: .*background and foreground/);
  });

  test("a run's config.json replays the resolved weights and the ignore value (--config)", () => {
    const file = join(tempDir('ignore-config'), 'config.json');
    writeFileSync(file, JSON.stringify({ classWeights: [0.5, 2, 1.25], ignoreIndex: 11, maskValues: [0, 1, 2] }));
    assert.deepEqual(readConfigFile(file, trainOptions, RUN_RECORD_KEYS), { classWeights: [0.5, 2, 1.25], ignoreIndex: 11 });
    writeFileSync(file, JSON.stringify({ classWeights: 'auto', ignoreIndex: null }));
    assert.deepEqual(readConfigFile(file, trainOptions, RUN_RECORD_KEYS), { classWeights: 'auto', ignoreIndex: null });
  });

  test('auto: median-frequency balancing, clipped to [0.1, 10]; an absent class gets 1', () => {
    // shares 0.5, 0.3, 0.2, 0.0 -> median of the present ones 0.3 -> 0.6, 1, 1.5, 1
    assert.deepEqual(medianFrequencyWeights([500, 300, 200, 0]), [0.6, 1, 1.5, 1]);
    // shares 0.998, 0.002: median 0.5 -> 0.501, 250 clipped to 10
    assert.deepEqual(medianFrequencyWeights([998, 2]), [0.501, 10]);
  });
});
