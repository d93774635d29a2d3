/**
 * The views of test-time augmentation (`--tta`), shared by predict (tta.ts, on tensors) and the
 * browser page (web/infer.ts, on arrays): no engine here, so the page's bundle can take it.
 */

/** --tta's values (the options table lists them too: the page's bundle cannot import it). */
export type TtaMode = 'none' | 'hflip' | 'flip' | 'd4';

/** One view: flips of W (horizontal) and H (vertical), then H and W swapped. */
export interface View {
  flipH: boolean;
  flipV: boolean;
  transpose: boolean;
}

/** [flipH, flipV] of each mode's views; d4 adds the transposed ones to flip's. */
const FLIPS: Record<Exclude<TtaMode, 'd4'>, [boolean, boolean][]> = {
  none: [[false, false]],
  hflip: [
    [false, false],
    [true, false],
  ],
  flip: [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ],
};

/**
 * The views of a mode, identity first: 1, 2 (the horizontal flip: images with an up, models
 * trained with --upright), 4 (the flips) or 8 (the flips, each with and without transposition: the
 * 8 symmetries of the square, rotations by 90 degrees times transposition).
 */
export function ttaViews(mode: TtaMode): View[] {
  const flips = FLIPS[mode === 'd4' ? 'flip' : mode];
  const transposes = mode === 'd4' ? [false, true] : [false];
  return transposes.flatMap((transpose) => flips.map(([flipH, flipV]) => ({ flipH, flipV, transpose })));
}
