/**
 * The dynamic batching queue (Triton's max_queue_delay, BentoML's max_latency): requests with the
 * same key (model and input shape) wait up to `maxDelayMs` for others and go to the inference
 * thread together, at most `maxBatch` images per forward pass. One batch runs at a time, so while
 * it runs the next one fills. The queue is bounded: beyond `maxQueue`, submit() refuses.
 */

export interface BatchItem<J, R> {
  job: J;
  /** Items with equal keys may share a forward pass; null: always alone. */
  key: string | null;
  /** Images it carries (a tensor's N). */
  images: number;
  /** The client went away or gave up: dropped before it runs. */
  cancelled: boolean;
  enqueued: number;
  resolve: (r: R) => void;
  reject: (e: Error) => void;
}

export interface BatcherOptions {
  maxBatch: number;
  maxDelayMs: number;
  maxQueue: number;
}

export class QueueFull extends Error {}

export class Batcher<J, R> {
  private readonly queue: BatchItem<J, R>[] = [];
  private busy = false;
  private timer: NodeJS.Timeout | null = null;
  /** Set while draining: whatever is queued goes at once. */
  private flushNow = false;

  constructor(
    private readonly opts: BatcherOptions,
    /** Runs one batch (same key, in queue order); settles each item itself. */
    private readonly exec: (items: BatchItem<J, R>[]) => Promise<void>,
  ) {}

  get depth(): number {
    return this.queue.length;
  }

  get idle(): boolean {
    return !this.busy && this.queue.length === 0;
  }

  /** Queues a request; throws QueueFull when the queue is at its bound. */
  submit(item: Omit<BatchItem<J, R>, 'resolve' | 'reject' | 'enqueued' | 'cancelled'>): { done: Promise<R>; cancel: () => void } {
    this.prune();
    if (this.queue.length >= this.opts.maxQueue) throw new QueueFull(`the queue is full (${this.opts.maxQueue} requests waiting)`);
    let entry!: BatchItem<J, R>;
    const done = new Promise<R>((resolve, reject) => {
      entry = { ...item, cancelled: false, enqueued: performance.now(), resolve, reject };
    });
    this.queue.push(entry);
    this.pump();
    return {
      done,
      cancel: () => {
        entry.cancelled = true;
      },
    };
  }

  /** Draining: no more waiting for batch-mates. */
  flush(): void {
    this.flushNow = true;
    this.pump();
  }

  private prune(): void {
    for (let i = this.queue.length - 1; i >= 0; i--) if (this.queue[i].cancelled) this.queue.splice(i, 1);
  }

  /** Starts the next batch when the thread is free: now if full (or alone), else when the first item's delay is up. */
  private pump(): void {
    if (this.busy) return;
    this.prune();
    if (this.queue.length === 0) return;
    const head = this.queue[0];
    const batch = this.collect(head);
    const images = batch.reduce((n, it) => n + it.images, 0);
    const wait = this.opts.maxDelayMs - (performance.now() - head.enqueued);
    if (head.key !== null && images < this.opts.maxBatch && wait > 0 && !this.flushNow) {
      this.timer ??= setTimeout(() => {
        this.timer = null;
        this.pump();
      }, wait);
      return;
    }
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const it of batch) this.queue.splice(this.queue.indexOf(it), 1);
    this.busy = true;
    void this.exec(batch)
      .catch((e: Error) => batch.forEach((it) => it.reject(e)))
      .finally(() => {
        this.busy = false;
        this.pump();
      });
  }

  /** The head and the queued items of its key, up to maxBatch images (an oversized head goes alone). */
  private collect(head: BatchItem<J, R>): BatchItem<J, R>[] {
    const batch = [head];
    if (head.key === null) return batch;
    let images = head.images;
    for (const it of this.queue.slice(1)) {
      if (it.key !== head.key || images + it.images > this.opts.maxBatch) continue;
      batch.push(it);
      images += it.images;
      if (images >= this.opts.maxBatch) break;
    }
    return batch;
  }
}
