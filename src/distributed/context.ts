/**
 * The data-parallel side of one training process: the process group, DDP's gradient
 * synchronisation, sharding and the reductions the trainer needs. train() receives one of these as
 * `dist` and stays single-process code with a few delimited calls.
 */
import { UserError } from '../config/errors.js';
import { createHash } from 'node:crypto';
import * as E from '../engine/index.js';
import type { Backend, Device, Tensor } from '../engine/index.js';
import type { Module } from '../nn/index.js';
import { BatchNorm2d } from '../nn/index.js';
import type { WorkerEnv } from './env.js';
import { shardForEpoch, strided } from './sampler.js';

/** A collective failed: a peer died, disagreed, or the timeout passed. Exit code 1, one line. */
export class DistError extends UserError {}

export interface JoinOptions {
  backend: 'auto' | Backend;
  timeoutSeconds: number;
  device: Device;
}

/** The backend `auto` picks: NCCL for CUDA when the libtorch has it, Gloo otherwise. */
export function pickBackend(want: 'auto' | Backend, device: Device): Backend {
  const info = E.processGroupInfo();
  const cuda = device.startsWith('cuda');
  if (want === 'auto') return cuda && info.nccl ? 'nccl' : 'gloo';
  if (want === 'nccl' && !info.nccl) throw new DistError('--backend nccl: this libtorch was built without NCCL; use --backend gloo (or auto)');
  if (want === 'nccl' && !cuda) throw new DistError('--backend nccl needs CUDA tensors; use --device cuda or --backend gloo');
  if (want === 'gloo' && !info.gloo) throw new DistError('--backend gloo: this libtorch was built without Gloo (Debian: apt-get install libgloo-dev, then npm run build)');
  return want;
}

export class DistContext {
  readonly isMain: boolean;
  private stopRequested = false;
  private readonly stopCtrl = new AbortController();
  /** The model's buffers and their values at the last optimizer step (see restoreStepBuffers). */
  private stepBuffers: { live: Tensor; copy: Tensor }[] = [];

  private constructor(
    readonly worker: WorkerEnv,
    readonly backend: Backend,
    /** Device of the tensors collectives run on (NCCL: the GPU). */
    private readonly commDevice: Device,
    private readonly timeoutSeconds: number,
  ) {
    this.isMain = worker.rank === 0;
  }

  get rank(): number {
    return this.worker.rank;
  }
  get worldSize(): number {
    return this.worker.worldSize;
  }
  /** Aborted when the ranks have agreed to stop (a signal reached any of them): see agreeOnStop(). */
  get signal(): AbortSignal {
    return this.stopCtrl.signal;
  }

  /** Rendezvous with the other workers; one clear error, within the timeout, when it cannot. */
  static async join(worker: WorkerEnv, o: JoinOptions): Promise<DistContext> {
    const backend = pickBackend(o.backend, o.device);
    const where = `${worker.masterAddr}:${worker.masterPort}`;
    try {
      await E.initProcessGroup({ ...worker, timeoutMs: o.timeoutSeconds * 1000, backend });
    } catch (e) {
      const msg = (e as Error).message;
      if (/in use|EADDRINUSE|errno: 98/i.test(msg)) throw new DistError(`rank ${worker.rank}: the master port ${where} is already in use (another run?); pick a free one with --master-port`);
      throw new DistError(
        `rank ${worker.rank}: the workers did not all meet at ${where} within ${o.timeoutSeconds}s (${firstLine(msg)}). Check --master-addr/--master-port (MASTER_ADDR/MASTER_PORT), that the master is reachable, and that every worker has the same world size (this one: ${worker.worldSize}).`,
      );
    }
    return new DistContext(worker, backend, backend === 'nccl' ? o.device : 'cpu', o.timeoutSeconds);
  }

  /** Turns a failed collective into one line naming this rank. */
  private async guard<T>(what: string, p: () => Promise<T>): Promise<T> {
    try {
      return await p();
    } catch (e) {
      throw this.asFailure(e, what) ?? e;
    }
  }

  /**
   * A collective's failure (a DistError, or a raw ERR_DIST such as sync-BN's forward throws) as one
   * line: a peer that stopped answering within --dist-timeout, or one whose connection closed (it
   * died; our launcher names it). The backend's own text (Gloo's "pair.cc ... Connection reset by
   * peer") only with UNET_DEBUG set. Null for any other error.
   */
  asFailure(e: unknown, what = 'computing BatchNorm statistics (sync-BN)'): DistError | null {
    if (e instanceof DistError) return e;
    if ((e as { code?: string })?.code !== 'ERR_DIST') return null;
    const raw = firstLine((e as Error).message);
    const why = /timed? ?out/i.test(raw)
      ? `no answer from the other workers within --dist-timeout ${this.timeoutSeconds}s while ${what} (a worker hung or cannot be reached)`
      : `lost the connection to the other workers while ${what} (a worker stopped or died)`;
    return new DistError(`rank ${this.rank}: ${why}${process.env.UNET_DEBUG ? ` [${this.backend}: ${raw}]` : ''}`);
  }

  /** Equal values of `text` on every rank, or an error naming what differs (data, configuration). */
  async checkSame(what: string, text: string): Promise<void> {
    const h = Number.parseInt(createHash('sha256').update(text).digest('hex').slice(0, 12), 16);
    const [max, negMin] = await this.reduce([h, -h], 'max', `comparing ${what}`);
    if (max !== -negMin) throw new DistError(`rank ${this.rank}: the workers do not agree on ${what}; every worker must see the same data and flags`);
  }

  /** Element-wise reduction of numbers over the ranks (float64). */
  async reduce(values: number[], op: E.ReduceOp = 'sum', what = 'reducing values'): Promise<number[]> {
    const t = E.tensor(Float64Array.from(values), [values.length], { dtype: 'float64' }).to({ device: this.commDevice });
    try {
      await this.guard(what, () => E.allreduce([t], op));
      return t.toArray();
    } finally {
      t.dispose();
    }
  }

  /** Sums a tensor over the ranks, in place. */
  async reduceTensor(t: Tensor): Promise<void> {
    await this.guard('reducing values', () => E.allreduce([t], 'sum'));
  }

  /**
   * DDP's set-up: rank 0's parameters and buffers everywhere, the gradient Reducer on the
   * parameters, and (syncBn) BatchNorm statistics over all ranks.
   */
  async wrapModel(model: Module, syncBn: boolean): Promise<void> {
    const tensors = [...model.parameters(), ...model.namedBuffers().map(([, b]) => b)];
    await this.guard('broadcasting the weights', () => E.broadcast(tensors, 0));
    E.createReducer(model.parameters());
    this.stepBuffers = model.namedBuffers().map(([, b]) => ({ live: b, copy: b.clone().keep() }));
    if (syncBn) for (const m of model.modules()) if (m instanceof BatchNorm2d) m.syncStats = true;
  }

  /**
   * Rank 0's BatchNorm running statistics everywhere (DDP's broadcast_buffers), before validation:
   * without sync-BN each rank's statistics follow its own batches, and sharded validation must
   * score rank 0's model (the one that is saved) on every shard.
   */
  async syncBuffers(model: Module): Promise<void> {
    const buffers = model.namedBuffers().map(([, b]) => b);
    if (buffers.length) await this.guard('broadcasting the BatchNorm statistics', () => E.broadcast(buffers, 0));
  }

  /** backward() with gradients averaged over the ranks (sync) or accumulated locally (no_sync). */
  async backward(loss: Tensor, sync: boolean): Promise<void> {
    await this.guard('synchronising gradients', () => E.backwardSynced(loss, sync));
    // A synchronised backward is followed by the (synchronous) optimizer step: these are the
    // buffers of that step, whatever forwards run before the next one.
    if (sync) for (const b of this.stepBuffers) b.copy.copy_(b.live);
  }

  /**
   * The model's buffers (BatchNorm running statistics) back to their values at the last optimizer
   * step, after a failed collective: the forwards since then updated them, the weights did not
   * change. With the weights and optimizer state, a consistent point to save.
   */
  restoreStepBuffers(): void {
    for (const b of this.stepBuffers) b.live.copy_(b.copy);
  }

  /** This rank's training samples for an epoch (DistributedSampler). */
  shard(indices: readonly number[], epoch: number, seed: number): number[] {
    return shardForEpoch(indices, epoch, seed, this.rank, this.worldSize);
  }
  /** This rank's validation samples (no padding: sums are reduced). */
  shardValidation(indices: readonly number[]): number[] {
    return strided(indices, this.rank, this.worldSize);
  }

  /** A local Ctrl-C/SIGTERM: the ranks stop together at the next agreeOnStop(). */
  requestStop(): void {
    this.stopRequested = true;
  }
  /** Called before every batch: when any rank asked to stop, all abort `signal` at the same step. */
  async agreeOnStop(): Promise<void> {
    if (this.stopCtrl.signal.aborted) return;
    const [any] = await this.reduce([this.stopRequested ? 1 : 0], 'max');
    if (any > 0) this.stopCtrl.abort();
  }

  async close(): Promise<void> {
    await this.guard('waiting at the final barrier', () => E.barrier());
    await E.destroyProcessGroup();
    E.dispose(this.stepBuffers.map((b) => b.copy));
    this.stepBuffers = [];
  }
}

const firstLine = (s: string) => s.split('\n')[0];
