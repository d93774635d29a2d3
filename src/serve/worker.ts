/**
 * The inference thread of `unet serve`: owns the models (libtorch) and runs every forward pass,
 * so the main thread's event loop only does HTTP. One job at a time, in arrival order.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import * as E from '../engine/index.js';
import { imageHeader } from '../data/image/regions.js';
import { minSideOf } from '../model/limits.js';
import { chooseScale } from '../model/scale.js';
import { encodeMaskPng, renderOverlay } from '../predict/overlay.js';
import { planTiles, predictTiledInMemory } from '../predict/tiled-image.js';
import { type Predictor, classesAndProbs, forwardTensor, loadPredictor, predictBatch, preprocess } from '../predict/predictor.js';
import type { InferJob, JobReply, LoadedModel, SegmentJob, ThreadInit } from './thread.js';

const init = workerData as ThreadInit;
const port = parentPort;
if (!port) throw new Error('serve/worker.ts runs as a worker thread');
const models = new Map<string, { p: Predictor; scale: number }>();

/** A failure the client caused (bad image, too many pixels): the HTTP status it answers with. */
class ClientError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

async function load(): Promise<LoadedModel[]> {
  const out: LoadedModel[] = [];
  for (const m of init.models) {
    const p = await loadPredictor(m.path, { device: init.device });
    const sc = chooseScale(p.trainingScale, init.scale);
    models.set(m.name, { p, scale: sc.scale });
    out.push({
      name: m.name,
      path: m.path,
      nChannels: p.args.nChannels,
      nClasses: p.args.nClasses,
      bilinear: p.args.bilinear,
      minSide: minSideOf(p.args),
      maskValues: p.maskValues,
      device: p.device,
      scale: sc.scale,
      notes: [...p.notes, ...(sc.warning ? [sc.warning] : [])],
    });
  }
  return out;
}

/** Logits [N, K, H, W] of one (batched) input and, when asked, the class maps [N, H, W]. */
function infer(job: InferJob): JobReply {
  const { p } = models.get(job.model) as { p: Predictor };
  const t0 = performance.now();
  const { logits, mask } = E.inferenceMode(() =>
    E.tidy(() => {
      const out = forwardTensor(p, E.tensor(job.data, job.shape));
      const cls = job.mask ? classesAndProbs(out, p.args.nClasses, init.maskThreshold, false).classes : null;
      return { logits: job.logits ? out.to({ device: 'cpu' }).contiguous() : null, mask: cls };
    }),
  );
  const reply: JobReply = { type: 'done', id: job.id, ms: performance.now() - t0 };
  if (logits) reply.logits = logits.disposeAfter((t) => Float32Array.from(t.data() as Float32Array));
  if (mask) reply.mask = mask.disposeAfter((t) => Uint8Array.from(t.data() as Uint8Array));
  return reply;
}

/** An image body -> the mask PNG `unet predict` writes (or the overlay), through its own code. */
async function segment(job: SegmentJob): Promise<JobReply> {
  const { p, scale } = models.get(job.model) as { p: Predictor; scale: number };
  const dir = await mkdtemp(join(tmpdir(), 'unet-serve-'));
  try {
    const file = join(dir, 'request-body');
    await writeFile(file, job.body);
    const head = await imageHeader(file).catch(() => null);
    if (head && head.width * head.height > init.maxPixels) {
      throw new ClientError(`the image is ${head.width}x${head.height} = ${head.width * head.height} pixels, over the server's --max-pixels ${init.maxPixels}`, 413);
    }
    const pre = await preprocess(file, scale, p.args.nChannels, init.maxPixels, p.args).catch((e: Error) => {
      throw new ClientError(e.message.replace(`${file}: `, ''), 400);
    });
    const t0 = performance.now();
    // As predict: whole, or (a large image, or --tile N) in windows; in memory, as the body is.
    const plan = head ? planTiles(p, { ...init.tiling, batchSize: 1 }, head, { width: pre.width, height: pre.height }, 1) : { tile: null };
    const pred = plan.tile === null ? predictBatch(p, [pre], { threshold: init.maskThreshold })[0] : await predictTiledInMemory(p, pre, { ...init.tiling, tile: plan.tile, batchSize: 1, threshold: init.maskThreshold, probs: false });
    const ms = performance.now() - t0;
    const png = job.overlay ? await renderOverlay(file, pred.classes, pred.width, pred.height, p.maskValues, p.classNames) : await encodeMaskPng(pred.classes, pred.width, pred.height, p.maskValues);
    return { type: 'done', id: job.id, ms, png: Uint8Array.from(png) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

let chain = Promise.resolve();
port.on('message', (job: InferJob | SegmentJob) => {
  chain = chain.then(async () => {
    let reply: JobReply;
    try {
      reply = job.type === 'infer' ? infer(job) : await segment(job);
    } catch (e) {
      const status = e instanceof ClientError ? e.status : 500;
      reply = { type: 'failed', id: job.id, status, message: (e as Error).message.split('\n')[0] };
    }
    const transfer = [reply.logits?.buffer, reply.mask?.buffer, reply.png?.buffer].filter((b): b is ArrayBuffer => b instanceof ArrayBuffer);
    port.postMessage(reply, transfer);
  });
});

load().then(
  (loaded) => port.postMessage({ type: 'loaded', models: loaded }),
  (e: unknown) => port.postMessage({ type: 'error', message: (e as Error).message }),
);
