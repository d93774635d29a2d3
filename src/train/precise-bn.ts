/**
 * Precise BatchNorm (fvcore/detectron2's update_bn_stats): BatchNorm's running statistics are
 * exponential averages (momentum 0.1) of batches seen while the weights kept moving, so with fast
 * optimizers (RMSprop with momentum 0.999) they lag behind the weights and eval-mode predictions
 * are worse than the weights are. This recomputes them for the current weights as the exact
 * average over N training batches (momentum=None-style cumulative average; no gradient, weights,
 * RNGs and num_batches_tracked untouched). Training-mode forwards never read them, so training
 * itself is unchanged: only validation, the scheduler's decisions and saved checkpoints see them.
 */
import * as E from '../engine/index.js';
import { BatchNorm2d, type Module } from '../nn/index.js';

/** Runs `forward` (training-mode forward of one batch) on up to `maxBatches` batches; returns how many ran. */
export async function recomputeBatchNorm<B>(model: Module, batches: AsyncIterable<B>, maxBatches: number, forward: (b: B) => void): Promise<number> {
  const bns = model.modules().filter((m): m is BatchNorm2d => m instanceof BatchNorm2d);
  if (bns.length === 0 || maxBatches <= 0) return 0;
  const bufs = bns.map((bn) => new Map(bn.namedBuffers()));
  const saved = bns.map((bn, i) => ({ momentum: bn.momentum, tracked: (bufs[i].get('num_batches_tracked') as E.Tensor).item() }));
  const wasTraining = model.training;
  model.train();
  E.noGrad(() => {
    bns.forEach((bn, i) => {
      for (const k of ['running_mean', 'running_var', 'num_batches_tracked']) (bufs[i].get(k) as E.Tensor).zero_();
      bn.momentum = null; // batch k (from 1) is weighted 1/k: the plain mean over the batches
    });
  });
  let n = 0;
  try {
    for await (const b of batches) {
      if (n >= maxBatches) break;
      E.tidy(() => E.noGrad(() => forward(b)));
      n++;
    }
  } finally {
    bns.forEach((bn, i) => {
      bn.momentum = saved[i].momentum;
      (bufs[i].get('num_batches_tracked') as E.Tensor).fill_(saved[i].tracked);
    });
    model.train(wasTraining);
  }
  return n;
}
