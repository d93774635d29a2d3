/** --postprocess largest-component on hand-made masks: 4-connectivity, several classes, ties, background untouched. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import * as E from '../src/engine/index.js';
import { foregroundClasses, keepLargestComponent, postprocessClasses, postprocessLogits } from '../src/predict/postprocess.js';

/** Rows of digits -> a mask. */
const grid = (rows: string[]) => ({ mask: Uint8Array.from(rows.join('').split('').map(Number)), w: rows[0].length, h: rows.length });
const show = (m: Uint8Array, w: number) => Array.from({ length: m.length / w }, (_, r) => Array.from(m.subarray(r * w, (r + 1) * w)).join(''));

describe('keepLargestComponent', () => {
  test('per class, only the largest 4-connected component stays; the rest becomes background', () => {
    const g = grid([
      '1100022',
      '1100020',
      '0001000', // a lone 1 touching the big blob only diagonally: its own component
      '2000011',
      '0330000',
    ]);
    keepLargestComponent(g.mask, g.w, g.h, [1, 2, 3]);
    assert.deepEqual(show(g.mask, g.w), ['1100022', '1100020', '0000000', '0000000', '0330000']);
  });

  test('ties keep the component met first in raster order; classes not listed and the background are untouched', () => {
    const g = grid([
      '101', // two single 1s: the first (top-left) stays
      '000',
      '202', // class 2 not listed: both stay
    ]);
    keepLargestComponent(g.mask, g.w, g.h, [1]);
    assert.deepEqual(show(g.mask, g.w), ['100', '000', '202']);
    const bg = grid(['010', '101', '010']);
    keepLargestComponent(bg.mask, bg.w, bg.h, [1, 2]);
    assert.deepEqual(show(bg.mask, bg.w), ['010', '000', '000'], 'four 1s touching only diagonally: four components, the first stays; background 0 never changes');
  });

  test('a component wrapping around a row end is not joined across the edge', () => {
    const g = grid(['001', '100', '000']); // index 2 and 3 are neighbours in memory, not in the image
    keepLargestComponent(g.mask, g.w, g.h, [1]);
    assert.deepEqual(show(g.mask, g.w), ['001', '000', '000']);
  });

  test('modes: none cleans nothing, largest-component every foreground class, auto what the checkpoint records', () => {
    assert.deepEqual(foregroundClasses(1), [1]);
    assert.deepEqual(foregroundClasses(4), [1, 2, 3]);
    assert.deepEqual(postprocessClasses('none', [2], 4), []);
    assert.deepEqual(postprocessClasses('largest-component', null, 4), [1, 2, 3]);
    assert.deepEqual(postprocessClasses('auto', [2], 4), [2]);
    assert.deepEqual(postprocessClasses('auto', null, 4), []);
  });

  test('postprocessLogits: the argmax (or sigmoid > threshold for 1 output) of its result is the cleaned mask', () => {
    const g = grid(['1100', '0002', '0100', '2200']);
    const onehot = E.tidy(() =>
      E.oneHot(E.tensor(g.mask, [1, 4, 4]).long(), 3)
        .permute([0, 3, 1, 2])
        .float()
        .keep(),
    );
    const out = E.tidy(() => postprocessLogits(onehot, 3, 0.5, [1, 2]).argmax(1).to({ dtype: 'uint8' }).contiguous().data() as Uint8Array);
    assert.deepEqual(show(Uint8Array.from(out), 4), ['1100', '0000', '0000', '2200']);
    const bin = grid(['1001', '1000']);
    const logits = E.tidy(() =>
      E.tensor(
        Float32Array.from(bin.mask, (v) => (v ? 3 : -3)),
        [1, 1, 2, 4],
      ).keep(),
    );
    const cleaned = E.tidy(() => postprocessLogits(logits, 1, 0.5, [1]).squeeze(1).sigmoid().gt(0.5).to({ dtype: 'uint8' }).contiguous().data() as Uint8Array);
    assert.deepEqual(show(Uint8Array.from(cleaned), 4), ['1000', '1000']);
    E.dispose([onehot, logits]);
  });
});
