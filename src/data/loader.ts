/**
 * Batches for training and evaluation: an async iterator over a dataset and a list of sample
 * indices, with seeded shuffling, optional augmentation and prefetching.
 *
 *   for await (const b of new DataLoader(ds, split.train, { batchSize: 4, shuffle: true, rng })) {
 *     b.images // [N, C, H, W] float32 0..1
 *     b.masks  // [N, H, W] uint8 class indices
 *   }
 *
 * With `patch`, each sample gives one patch of that size (patches.ts), so images of different
 * sizes share a batch.
 */

import { type AugmentOptions, type AugmentParams, augmentInto, sampleAugment } from './augment.js';
import type { StoredSample } from './dataset.js';
import { DataError, listSome } from './errors.js';
import { type PatchDraw, type PatchOptions, drawPatch, patchInto } from './patches.js';
import { toChwFloat32 } from './image/pixels.js';
import { Rng, type RngStateDict, shuffle as shuffleInPlace } from './split.js';

/** What the loader needs from a dataset (SegmentationDataset, or a test double). */
export interface SampleSource {
  load(i: number): Promise<StoredSample>;
}

export interface LoaderOptions {
  /** Samples per batch. Default 1. */
  batchSize?: number;
  /** Reshuffle the indices at the start of every epoch (iteration). Default false. */
  shuffle?: boolean;
  /** Generator for shuffling and augmentation; its state advances, so save it to resume. Default new Rng(0). */
  rng?: Rng;
  /** Drop the last batch when it is smaller than batchSize. Default false. */
  dropLast?: boolean;
  /** Batches loaded ahead while the consumer works on the current one. Default 2. */
  prefetch?: number;
  /** Random flips/rotations/scale/brightness (see augment.ts): true for the defaults, or options. Default false. */
  augment?: boolean | AugmentOptions;
  /**
   * Recycle batch arrays: a batch's `images`/`masks` are overwritten once the next batch is
   * requested, so copy them (e.g. into a tensor) before asking for the next one. Saves the
   * page faults of fresh multi-MB arrays (about half the cost of a cached epoch). Default false.
   */
  reuseBuffers?: boolean;
  /**
   * Skip samples whose files cannot be read (a DataError from the dataset): called once per such
   * sample, the batch goes on without it (a batch left empty is dropped). Default: the error ends
   * the iteration.
   */
  onBadSample?: (err: DataError, index: number) => void;
  /** One patch per sample instead of the whole image (its draws come from `rng`, after the augmentation's). Default: whole images. */
  patch?: PatchOptions;
  /** With onBadSample: a batch whose every sample is unreadable is an error, not dropped (data-parallel ranks must run the same batches). */
  keepEveryBatch?: boolean;
}

/** Where an epoch stands: its sample order and the batches done (mid-epoch resume). */
export interface EpochStart {
  order: readonly number[];
  /** Batches of `order` already consumed. */
  batch: number;
}

export interface Batch {
  /** [N, C, H, W] float32 0..1 */
  images: Float32Array;
  /** [N, H, W] uint8 class indices */
  masks: Uint8Array;
  /** Some mask pixels are patch padding (PAD_CLASS, patches.ts), to be ignored by the loss. */
  padded?: boolean;
  n: number;
  c: number;
  h: number;
  w: number;
  ids: string[];
  /** Dataset indices of the samples. */
  indices: number[];
  /** The epoch's sample order (shared by its batches) and this batch's number in it (0-based). */
  order: readonly number[];
  batch: number;
  /** The generator's state once this batch's augmentation was drawn: where the next batch's draws start. */
  rngAfter: RngStateDict;
}

export class DataLoader implements AsyncIterable<Batch> {
  readonly batchSize: number;
  private readonly opts: LoaderOptions;
  private readonly rng: Rng;

  constructor(
    private readonly dataset: SampleSource,
    private readonly indices: readonly number[],
    opts: LoaderOptions = {},
  ) {
    this.batchSize = opts.batchSize ?? 1;
    if (!(Number.isInteger(this.batchSize) && this.batchSize >= 1)) throw new RangeError(`batchSize must be a positive integer, got ${opts.batchSize}`);
    const prefetch = opts.prefetch ?? 2;
    if (!(Number.isInteger(prefetch) && prefetch >= 0)) throw new RangeError(`prefetch must be an integer >= 0, got ${opts.prefetch}`);
    this.opts = opts;
    this.rng = opts.rng ?? new Rng(0);
  }

  /** Batches per epoch. */
  get length(): number {
    const n = this.indices.length;
    return this.opts.dropLast ? Math.floor(n / this.batchSize) : Math.ceil(n / this.batchSize);
  }

  [Symbol.asyncIterator](): AsyncIterator<Batch> {
    return this.epoch();
  }

  /**
   * One epoch's batches; `from` continues an epoch saved mid-way (its order, without a new shuffle,
   * from its next batch; the generator must hold the state saved with that batch).
   */
  async *epoch(from?: EpochStart): AsyncGenerator<Batch> {
    const order = from ? [...from.order] : [...this.indices];
    if (this.opts.shuffle && !from) shuffleInPlace(order, this.rng);
    const batches: number[][] = [];
    for (let i = 0; i + (this.opts.dropLast ? this.batchSize : 1) <= order.length; i += this.batchSize) {
      batches.push(order.slice(i, i + this.batchSize));
    }
    const aug = this.opts.augment ? (this.opts.augment === true ? {} : this.opts.augment) : null;
    const prefetch = this.opts.prefetch ?? 2;
    const patch = this.opts.patch;

    const pending: Promise<Batch>[] = [];
    let next = from?.batch ?? 0;
    const fill = (k: number) => {
      while (pending.length < k && next < batches.length) {
        const idx = batches[next];
        // Draw augmentation parameters and patches now, in batch order: results do not depend on decode timing.
        const draws: Draws[] = idx.map(() => ({
          aug: aug ? sampleAugment(this.rng, aug) : null,
          patch: patch ? drawPatch(this.rng, patch.oversampleFg) : null,
        }));
        const p = this.assemble(idx, draws, { order, batch: next++, rngAfter: this.rng.stateDict() });
        p.catch(() => {}); // handled when awaited; avoids unhandled rejections if iteration stops early
        pending.push(p);
      }
    };
    for (;;) {
      fill(Math.max(1, prefetch));
      const p = pending.shift();
      if (!p) return;
      const batch = await p;
      fill(prefetch); // keep `prefetch` batches loading while the consumer works
      if (batch.n === 0) continue; // every sample skipped as unreadable
      yield batch;
      if (this.opts.reuseBuffers) {
        this.pool.push({ images: batch.images, masks: batch.masks }); // the consumer is done with it
        if (this.pool.length > prefetch + 2) this.pool.shift(); // bounded, e.g. when sizes vary
      }
    }
  }

  /** Arrays of consumed batches, reused when `reuseBuffers` is on. */
  private readonly pool: { images: Float32Array; masks: Uint8Array }[] = [];

  private buffers(imageLength: number, maskLength: number): { images: Float32Array; masks: Uint8Array } {
    const k = this.pool.findIndex((b) => b.images.length === imageLength && b.masks.length === maskLength);
    if (k >= 0) return this.pool.splice(k, 1)[0];
    return { images: new Float32Array(imageLength), masks: new Uint8Array(maskLength) };
  }

  private async assemble(all: number[], allDraws: Draws[], at: Pick<Batch, 'order' | 'batch' | 'rngAfter'>): Promise<Batch> {
    const { samples, idx, draws } = await this.load(all, allDraws);
    if (samples.length === 0) return { images: new Float32Array(0), masks: new Uint8Array(0), n: 0, c: 0, h: 0, w: 0, ids: [], indices: [], ...at };
    const patch = this.opts.patch;
    const c = samples[0].channels;
    const [h, w] = patch ? patch.size : [samples[0].height, samples[0].width];
    const odd = samples.filter((s) => s.channels !== c || (!patch && (s.height !== h || s.width !== w)));
    if (odd.length > 0) {
      const shape = (s: StoredSample) => `${s.id} is ${s.channels}×${s.height}×${s.width}`;
      const channelsDiffer = odd.some((s) => s.channels !== c);
      throw new DataError(`a batch needs samples of one size, but ${shape(samples[0])} and ${listSome(odd.map(shape), 5)} (C×H×W)`, {
        hint: channelsDiffer ? 'Some images are greyscale and some colour: convert them all to one mode (e.g. all RGB).' : 'Use a batch size of 1 (-b 1), or resize your data to one size before training.',
      });
    }
    const n = samples.length;
    const chw = c * h * w;
    const hw = h * w;
    const { images, masks } = this.buffers(n * chw, n * hw); // [N, C, H, W] and [N, H, W]
    let padded = false;
    samples.forEach((s, k) => {
      const { aug, patch: draw } = draws[k];
      if (patch && draw) padded = patchInto(s, aug, draw, patch.size, images, k * chw, masks, k * hw) || padded;
      else if (aug) augmentInto(s, aug, images, k * chw, masks, k * hw);
      else {
        toChwFloat32(s.image, c, s.divisor, images, k * chw); // fused [H, W, C] -> [C, H, W] and / divisor
        masks.set(s.mask, k * hw);
      }
    });
    return { images, masks, ...(padded ? { padded } : {}), n, c, h, w, ids: samples.map((s) => s.id), indices: idx, ...at };
  }

  /** The batch's samples; with onBadSample, those that load, with their indices and draws. */
  private async load(idx: number[], draws: Draws[]): Promise<{ samples: StoredSample[]; idx: number[]; draws: Draws[] }> {
    const onBad = this.opts.onBadSample;
    if (!onBad) return { samples: await Promise.all(idx.map((i) => this.dataset.load(i))), idx, draws };
    const got = await Promise.allSettled(idx.map((i) => this.dataset.load(i)));
    const ok = got.flatMap((g, k) => {
      if (g.status === 'fulfilled') return [k];
      if (!(g.reason instanceof DataError)) throw g.reason;
      onBad(g.reason, idx[k]);
      return [];
    });
    if (ok.length === 0 && this.opts.keepEveryBatch) {
      const files = got.map((g) => ((g as PromiseRejectedResult).reason as DataError).file ?? '?');
      throw new DataError(`every sample of a batch is unreadable (${listSome(files, 5)}), and the processes of a data-parallel run must all run every batch`, {
        hint: 'Fix or remove the files, or use a larger -b so that a batch keeps at least one readable pair.',
      });
    }
    const samples = ok.map((k) => (got[k] as PromiseFulfilledResult<StoredSample>).value);
    return { samples, idx: ok.map((k) => idx[k]), draws: ok.map((k) => draws[k]) };
  }
}

/** One sample's random draws (null: not drawn). */
interface Draws {
  aug: AugmentParams | null;
  patch: PatchDraw | null;
}
