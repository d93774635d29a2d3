/**
 * The main thread's handle on the inference thread (worker.ts): starts it, waits for the models,
 * and turns jobs into promises. The messages both sides exchange are typed here.
 */
import { Worker } from 'node:worker_threads';
import type { MaskValues } from '../data/mask-values.js';
import { workerEntry } from '../io/worker-entry.js';
import type { TilingConfig } from '../predict/tiled-image.js';

export interface ThreadInit {
  models: { name: string; path: string }[];
  device: string;
  /** -s: undefined = each checkpoint's training scale (as predict). */
  scale: number | undefined;
  maskThreshold: number;
  maxPixels: number;
  /** /segment's sliding windows (as predict's --tile, --overlap, --blend, --max-memory). */
  tiling: Omit<TilingConfig, 'batchSize'>;
}

export interface LoadedModel {
  name: string;
  path: string;
  nChannels: number;
  nClasses: number;
  bilinear: boolean;
  /** The smallest input side, 2^depth (absent: the reference's 16). */
  minSide?: number;
  maskValues: MaskValues;
  device: string;
  scale: number;
  notes: string[];
}

/** One forward pass over a (batched) [N, C, H, W] input. */
export interface InferJob {
  type: 'infer';
  id: number;
  model: string;
  shape: number[];
  data: Float32Array;
  logits: boolean;
  mask: boolean;
}

/** An encoded image in, the mask (or overlay) PNG out. */
export interface SegmentJob {
  type: 'segment';
  id: number;
  model: string;
  body: Uint8Array;
  overlay: boolean;
}

export type JobReply =
  | { type: 'done'; id: number; ms: number; logits?: Float32Array; mask?: Uint8Array; png?: Uint8Array }
  | { type: 'failed'; id: number; status: number; message: string; logits?: undefined; mask?: undefined; png?: undefined };

export type JobResult = Extract<JobReply, { type: 'done' }>;

/** A job the thread refused or failed: `status` is the HTTP status to answer with. */
export class JobError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export interface InferenceThread {
  models: LoadedModel[];
  run(job: Omit<InferJob, 'id'> | Omit<SegmentJob, 'id'>): Promise<JobResult>;
  close(): Promise<void>;
}

/** Starts the thread; resolves once every model is loaded, rejects with the load error. */
export function startInferenceThread(init: ThreadInit): Promise<InferenceThread> {
  const { script, evalCode } = workerEntry('worker', import.meta.url);
  const worker = new Worker(script, { eval: evalCode, workerData: init, execArgv: [] });
  const waiting = new Map<number, { ok: (r: JobResult) => void; fail: (e: Error) => void }>();
  let nextId = 1;
  let dead: Error | null = null;
  const exited = new Promise<void>((res) => worker.once('exit', () => res()));
  const failAll = (e: Error) => {
    dead = e;
    for (const w of waiting.values()) w.fail(new JobError(`the inference thread stopped: ${e.message}`, 500));
    waiting.clear();
  };
  return new Promise((resolve, reject) => {
    worker.on('error', (e) => {
      failAll(e);
      reject(e);
    });
    void exited.then(() => {
      failAll(new Error('it exited'));
      reject(new Error('the inference thread ended before the models were loaded'));
    });
    worker.on('message', (m: JobReply | { type: 'loaded'; models: LoadedModel[] } | { type: 'error'; message: string }) => {
      if (m.type === 'error') {
        reject(new Error(m.message));
        void worker.terminate();
      } else if (m.type === 'loaded') {
        resolve({ models: m.models, run, close: async () => void (await worker.terminate()) });
      } else {
        const w = waiting.get(m.id);
        waiting.delete(m.id);
        if (m.type === 'done') w?.ok(m);
        else w?.fail(new JobError(m.message, m.status));
      }
    });
  });

  function run(job: Omit<InferJob, 'id'> | Omit<SegmentJob, 'id'>): Promise<JobResult> {
    if (dead) return Promise.reject(new JobError(`the inference thread stopped: ${(dead as Error).message}`, 500));
    const id = nextId++;
    const transfer = job.type === 'infer' ? [job.data.buffer] : [];
    return new Promise((ok, fail) => {
      waiting.set(id, { ok, fail });
      worker.postMessage({ ...job, id }, transfer as ArrayBuffer[]);
    });
  }
}
