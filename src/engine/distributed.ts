/**
 * c10d primitives (native/distributed.cpp): one process group per process, as torch.distributed's
 * default group. Everything that communicates returns a Promise: it runs off Node's thread and
 * rejects (code ERR_DIST) when a peer is gone or the group's timeout passes.
 */
import type { ProcessGroupState } from './native-contract.js';
import { N } from './native.js';
import { type Tensor, wrap } from './tensor.js';

export type Backend = 'gloo' | 'nccl';
export type ReduceOp = 'sum' | 'max' | 'min';

export interface ProcessGroupOptions {
  rank: number;
  worldSize: number;
  masterAddr: string;
  masterPort: number;
  timeoutMs: number;
  backend: Backend;
}

/** Rendezvous through a TCPStore (rank 0 listens on masterPort), then the process group. */
export function initProcessGroup(o: ProcessGroupOptions): Promise<void> {
  return N.distInit(o);
}
export function processGroupInfo(): ProcessGroupState {
  return N.distInfo();
}
/** Rank `root`'s values into every rank's tensors (in place). */
export function broadcast(tensors: Tensor[], root = 0): Promise<void> {
  return N.distBroadcast(
    tensors.map((t) => t.h),
    root,
  );
}
/** Reduces each tensor over the ranks, in place. */
export function allreduce(tensors: Tensor[], op: ReduceOp = 'sum'): Promise<void> {
  return N.distAllreduce(
    tensors.map((t) => t.h),
    op,
  );
}
export function barrier(): Promise<void> {
  return N.distBarrier();
}
/** DDP's gradient Reducer over `params` (bucketed allreduce from autograd hooks, averaged). */
export function createReducer(params: Tensor[], bucketCapMB = 25): void {
  N.distReducer(
    params.map((t) => t.h),
    bucketCapMB,
  );
}
/**
 * loss.backward() off Node's thread. sync: gradients are averaged over the ranks during backward;
 * otherwise they only accumulate here (DDP's no_sync, for accumulation micro-steps).
 */
export function backwardSynced(loss: Tensor, sync: boolean): Promise<void> {
  return N.distBackward(loss.h, sync);
}
/**
 * Training-mode BatchNorm with statistics over all ranks (forward and backward). Its forward
 * allreduce runs here, synchronously: a failure there is a collective's (code ERR_DIST), as the
 * Promises' rejections.
 */
export function syncBatchNorm(x: Tensor, weight: Tensor, bias: Tensor, runningMean: Tensor, runningVar: Tensor, momentum: number, eps: number): Tensor {
  try {
    return wrap(N.distBatchNorm(x.h, weight.h, bias.h, runningMean.h, runningVar.h, momentum, eps));
  } catch (e) {
    if ((e as { code?: string }).code === 'ERR_TORCH') (e as { code?: string }).code = 'ERR_DIST';
    throw e;
  }
}
export function destroyProcessGroup(): Promise<void> {
  return N.distDestroy();
}
