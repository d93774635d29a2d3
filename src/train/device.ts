/** A batch onto the run's device, and the forward pass under autocast (training, validation and precise BN share them). */
import { type Batch, IGNORE_CLASS } from '../data/index.js';
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import { classTargets } from '../metrics/ignore.js';
import type { SegmentationModel } from '../model/index.js';
import type { TrainRun } from './context.js';

/** Images [N,C,H,W] and masks [N,H,W] int64 on the run's device (-100 on --ignore-index pixels). */
export function toDevice(run: TrainRun, b: Batch): { x: Tensor; y: Tensor } {
  const { cuda, device } = run;
  let x = E.tensor(b.images, [b.n, b.c, b.h, b.w]);
  if (cuda) x = x.pinMemory().to({ device, nonBlocking: true });
  if (run.channelsLast) x = x.contiguous('channels_last');
  // Masks cross as uint8 (8x fewer bytes than int64) and widen on the device.
  const m = E.tensor(b.masks, [b.n, b.h, b.w]);
  // Void pixels (--ignore-index) and patch padding (--patch-size, an image smaller than the patch)
  // both arrive as class 255 and become -100, in no loss term.
  const marked = (run.cfg.ignoreIndex ?? null) !== null || b.padded ? IGNORE_CLASS : null;
  const y = classTargets(cuda ? m.pinMemory().to({ device, nonBlocking: true }) : m, marked);
  return { x, y };
}

export const forward = (run: TrainRun, x: Tensor, model: SegmentationModel = run.model): Tensor => E.autocastOn(run.device, run.ampDtype, () => model.forward(x));
