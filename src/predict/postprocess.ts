/**
 * --postprocess: nnU-Net's "remove all but the largest component", per foreground class. A class's
 * pixels are split into 4-connected components (edge neighbours only, as scipy.ndimage.label's
 * default structure that nnU-Net uses: diagonal contacts do not join two blobs, the conservative
 * choice); all but the largest become background (class 0). Ties: the component met first in
 * raster order stays. The background class is never touched.
 */
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import { predictClasses } from '../metrics/confusion.js';
import type { PostprocessMode } from '../config/options.js';

/** The foreground classes of a model with `nClasses` outputs (1 output: binary, class 1). */
export const foregroundClasses = (nClasses: number): number[] => (nClasses === 1 ? [1] : Array.from({ length: nClasses - 1 }, (_, i) => i + 1));

/** The classes a mode post-processes: none, every foreground class, or those the checkpoint records (none recorded: none). */
export function postprocessClasses(mode: PostprocessMode, recorded: readonly number[] | null | undefined, nClasses: number): number[] {
  if (mode === 'largest-component') return foregroundClasses(nClasses);
  if (mode === 'auto') return [...(recorded ?? [])];
  return [];
}

/** Keeps only the largest 4-connected component of each class in `classes` (in place); returns `mask`. */
export function keepLargestComponent(mask: Uint8Array, width: number, height: number, classes: readonly number[]): Uint8Array {
  if (classes.length === 0) return mask;
  const wanted = new Set(classes);
  const label = new Int32Array(mask.length).fill(-1);
  const stack = new Int32Array(mask.length);
  const best = new Map<number, { label: number; size: number }>();
  let next = 0;
  for (let start = 0; start < mask.length; start++) {
    const c = mask[start];
    if (!wanted.has(c) || label[start] >= 0) continue;
    // Flood fill from `start` over edge neighbours of the same class.
    let top = 0;
    let size = 0;
    stack[top++] = start;
    label[start] = next;
    while (top > 0) {
      const p = stack[--top];
      size++;
      const x = p % width;
      const visit = (q: number) => {
        if (mask[q] === c && label[q] < 0) {
          label[q] = next;
          stack[top++] = q;
        }
      };
      if (x > 0) visit(p - 1);
      if (x < width - 1) visit(p + 1);
      if (p >= width) visit(p - width);
      if (p < width * (height - 1)) visit(p + width);
    }
    const b = best.get(c);
    if (!b || size > b.size) best.set(c, { label: next, size }); // strictly larger: ties keep the first
    next++;
  }
  for (let i = 0; i < mask.length; i++) {
    if (label[i] >= 0 && best.get(mask[i])?.label !== label[i]) mask[i] = 0;
  }
  return mask;
}

/**
 * Logits [N, K, H, W] -> logits whose argmax (sigmoid > threshold for K = 1) is the post-processed
 * prediction: one-hot scores, so evaluate's meter and surface metrics score the cleaned masks.
 * Call inside tidy().
 */
export function postprocessLogits(logits: Tensor, nClasses: number, threshold: number, classes: readonly number[]): Tensor {
  if (classes.length === 0) return logits;
  const [n, , h, w] = logits.shape;
  const pred = predictClasses(logits, nClasses, threshold).to({ dtype: 'uint8' }).to({ device: 'cpu' }).contiguous();
  const data = Uint8Array.from(pred.data() as Uint8Array);
  for (let i = 0; i < n; i++) keepLargestComponent(data.subarray(i * h * w, (i + 1) * h * w), w, h, classes);
  const cleaned = E.tensor(data, [n, h, w]).to({ device: logits.device }).long();
  if (nClasses === 1) return cleaned.unsqueeze(1).float().mul(40).sub(20); // +-20: sigmoid 0 or 1 at any threshold in (0, 1)
  return E.oneHot(cleaned, nClasses).permute([0, 3, 1, 2]).float();
}
