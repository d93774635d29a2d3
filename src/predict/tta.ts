/**
 * Test-time augmentation and ensembles (`--tta hflip|flip|d4`, several `-m`): the mean of the softmax
 * (sigmoid for a 1-output model) over the views of the input and over the models.
 *
 * The views are the 4 flips (identity, horizontal, vertical, both) or the 8 symmetries of the
 * square (the flips, each with and without transposing H and W: rotations by 90 degrees times
 * transposition). A transposed view of an H x W input is W x H; its output is transposed back.
 *
 * The mean comes back as log-probabilities (for 1 output: the logit of the mean probability),
 * so everything downstream that takes logits (window blending, the bilinear resize back to full
 * size, argmax / threshold, --probs, evaluate's metrics) is unchanged, and softmax (sigmoid) of
 * the result is the mean. With one view and one model nothing changes: the logits pass through.
 */
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import { type TtaMode, type View, ttaViews } from './views.js';

export { type TtaMode, type View, ttaViews };

/** Probabilities below this count as it (a log of 0 would turn the bilinear resize's 0 x -inf into NaN). */
const TINY = 1e-30;

function flip(x: Tensor, dim: number): Tensor {
  const n = x.size(dim);
  const idx = E.tensor(Int32Array.from({ length: n }, (_, i) => n - 1 - i)).to({ device: x.device, dtype: 'int64' });
  return x.indexSelect(dim, idx);
}

/** x [N, C, H, W] as the view sees it. */
export function applyView(x: Tensor, v: View): Tensor {
  let y = x;
  if (v.flipH) y = flip(y, 3);
  if (v.flipV) y = flip(y, 2);
  return v.transpose ? y.transpose(2, 3) : y;
}

/** A view's output [N, K, h, w] back in the input's orientation. */
export function invertView(y: Tensor, v: View): Tensor {
  let x = v.transpose ? y.transpose(2, 3) : y;
  if (v.flipV) x = flip(x, 2);
  if (v.flipH) x = flip(x, 3);
  return x;
}

/**
 * log(mean softmax) (K > 1) or logit(mean sigmoid) (K = 1) of `forwards` (one per model, each
 * x -> float32 logits) over the views of `mode`. Each view runs and is freed before the next,
 * so memory is one forward pass plus two [N, K, H, W] sums.
 */
export function averagedLogits(x: Tensor, forwards: readonly ((x: Tensor) => Tensor)[], mode: TtaMode, nClasses: number): Tensor {
  const views = ttaViews(mode);
  if (views.length === 1 && forwards.length === 1) return forwards[0](x);
  let p: Tensor | null = null; // sum of the probabilities
  let q: Tensor | null = null; // K = 1: sum of 1 - p, kept apart so that p near 1 keeps its precision
  try {
    for (const fwd of forwards) {
      for (const v of views) {
        const next: [Tensor, Tensor | null] = E.tidy(() => {
          const logits = invertView(fwd(applyView(x, v)), v);
          const pv = nClasses === 1 ? logits.sigmoid() : logits.softmax(1);
          const qv = nClasses === 1 ? logits.neg().sigmoid() : null;
          return [p ? p.add(pv) : pv, qv ? (q ? q.add(qv) : qv) : null];
        });
        E.dispose([p, q]);
        [p, q] = next;
      }
    }
    const sumP = p as Tensor;
    const sumQ = q;
    return E.tidy(() => {
      const logP = sumP.clamp(TINY * views.length * forwards.length).log();
      return sumQ ? logP.sub(sumQ.clamp(TINY * views.length * forwards.length).log()) : logP.sub(Math.log(views.length * forwards.length));
    });
  } finally {
    E.dispose([p, q]);
  }
}
