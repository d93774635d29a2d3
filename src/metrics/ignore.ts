/** Ignored pixels (--ignore-index): the targets' marker, as PyTorch's `ignore_index` default. */
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';

/** Target pixels with this class count in no loss and no metric (every loss and metric masks them). */
export const IGNORE_INDEX = -100;

/**
 * Class maps [N,H,W] (uint8, as the loaders build them) -> int64 targets on their device, with the
 * data's ignored-pixel class (`marker`, data's IGNORE_CLASS; null without --ignore-index) -> IGNORE_INDEX.
 */
export function classTargets(maps: Tensor, marker: number | null): Tensor {
  return E.tidy(() => {
    const y = maps.to({ dtype: 'int64' });
    return marker === null ? y : E.where(maps.eq(marker), IGNORE_INDEX, y);
  });
}

/** 1 where a target pixel counts, 0 where it is ignored: [N,H,W] float32. */
export const validPixels = (targets: Tensor): Tensor => targets.ne(IGNORE_INDEX).float();
