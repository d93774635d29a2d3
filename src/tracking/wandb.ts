// Optional Weights & Biases sink over the official JS SDK (@wandb/sdk).
//
// The SDK is not a dependency: it is imported dynamically when the sink is
// enabled. It can only log scalars online (it has no Image/Histogram types and
// no offline mode), and its init() needs WANDB_API_KEY plus a network round
// trip that may hang (Pytorch-UNet's most reported W&B problem). So:
//   * init runs in the background; scalars logged meanwhile are queued;
//   * a missing package/key/network produces ONE warning and the sink goes quiet;
//   * everything (histograms, images too) is in the run directory anyway and can
//     be uploaded later with:  wandb sync --sync-tensorboard runs/<run>
import { errorMessage } from './appender.js';
import type { ImageData8 } from './images.js';
import type { MetricSink } from './sink.js';

export const WANDB_SYNC_HINT = 'upload it later with: wandb sync --sync-tensorboard <runDir>';

/** Minimal shape of what we use from @wandb/sdk. */
interface WandbRun {
  log(data: Record<string, unknown>, step?: number, commit?: boolean): void;
  finish(code?: number): Promise<void>;
  url?(): string;
}
interface WandbSdk {
  init(opts: Record<string, unknown>): Promise<WandbRun>;
}

export interface WandbSinkOptions {
  project?: string;
  name?: string;
  config?: object;
  /** the run directory, only for the sync hint in warnings */
  runDir?: string;
  onWarning: (msg: string) => void;
  /** how the SDK is loaded; tests pass a fake. Default: import('@wandb/sdk') */
  load?: () => Promise<unknown>;
  env?: NodeJS.ProcessEnv;
  /** give up on init after this long (default 30 s) */
  initTimeoutMs?: number;
  /** how long close() waits for a pending init and for finish() (default 10 s) */
  closeTimeoutMs?: number;
}

/**
 * Whether the command line asks for W&B: `--wandb`, or `--tracker wandb` with
 * WANDB_API_KEY set. WANDB_MODE=disabled turns it off (the usual W&B switch).
 */
export function wandbRequested(flags: { wandb?: boolean; tracker?: string }, env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.WANDB_MODE === 'disabled') return false;
  return flags.wandb === true || (flags.tracker === 'wandb' && !!env.WANDB_API_KEY);
}

const MAX_QUEUE = 10_000;
const SDK_MODULE = '@wandb/sdk';

/** `unref`: do not keep the process alive just for this timer (init runs in the background). */
function withTimeout<T>(p: Promise<T>, ms: number, what: string, unref = false): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${what} timed out after ${Math.round(ms / 1000)} s`)), ms);
    if (unref) t.unref();
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      (e) => {
        clearTimeout(t);
        reject(e);
      },
    );
  });
}

export class WandbSink implements MetricSink {
  private state: 'starting' | 'ready' | 'off' = 'starting';
  private run: WandbRun | null = null;
  private queue: Array<{ data: Record<string, unknown>; step: number }> = [];
  private pending: { step: number; data: Record<string, unknown> } | null = null;
  private lastSentStep = -Infinity;
  private warned = false;
  private readonly ready: Promise<void>;
  private readonly closeTimeoutMs: number;

  constructor(private readonly opts: WandbSinkOptions) {
    this.closeTimeoutMs = opts.closeTimeoutMs ?? 10_000;
    this.ready = this.start().catch((err) => this.disable(`W&B: init failed (${errorMessage(err)})`));
  }

  /** Resolves when the sink is either logging or switched off. */
  whenSettled(): Promise<void> {
    return this.ready;
  }

  get active(): boolean {
    return this.state === 'ready';
  }

  private disable(reason: string): void {
    this.state = 'off';
    this.queue = [];
    this.pending = null;
    if (this.warned) return;
    this.warned = true;
    const where = this.opts.runDir ? this.opts.runDir : 'runs/<run>';
    try {
      this.opts.onWarning(`${reason}. Training goes on; metrics are kept in ${where} (metrics.jsonl, TensorBoard files) - ${WANDB_SYNC_HINT.replace('<runDir>', where)}`);
    } catch {
      // the warning callback must not break anything
    }
  }

  private async start(): Promise<void> {
    const env = this.opts.env ?? process.env;
    if (env.WANDB_MODE === 'disabled') return this.disable('W&B: WANDB_MODE=disabled');
    if (env.WANDB_MODE === 'offline' || env.WANDB_MODE === 'dryrun') {
      return this.disable('W&B: WANDB_MODE=offline, and the JS SDK has no offline mode (it would drop every record)');
    }
    // Without a key the SDK prompts on a TTY, which would block training.
    if (!env.WANDB_API_KEY) return this.disable('W&B: WANDB_API_KEY is not set');
    let mod: unknown;
    try {
      mod = await (this.opts.load ?? (() => import(SDK_MODULE)))();
    } catch (err) {
      return this.disable(`W&B: the ${SDK_MODULE} package could not be loaded (${errorMessage(err)}; install it with npm i ${SDK_MODULE})`);
    }
    const sdk = ((mod as { default?: unknown }).default ?? mod) as Partial<WandbSdk>;
    if (typeof sdk.init !== 'function') return this.disable(`W&B: ${SDK_MODULE} has no init() function`);
    const run = await withTimeout(sdk.init({ project: this.opts.project ?? 'unet-ts', name: this.opts.name, config: this.opts.config ?? {} }), this.opts.initTimeoutMs ?? 30_000, 'wandb.init()', true);
    if (this.state === 'off') {
      // close() gave up on us meanwhile; end the remote run quietly.
      run.finish().catch(() => {});
      return;
    }
    this.run = run;
    this.state = 'ready';
    for (const { data, step } of this.queue) this.send(data, step);
    this.queue = [];
  }

  private send(data: Record<string, unknown>, step: number): void {
    if (this.state === 'off') return;
    if (this.state === 'starting') {
      if (this.queue.length >= MAX_QUEUE) this.queue.shift();
      this.queue.push({ data, step });
      return;
    }
    // W&B drops history rows whose step goes backwards; say so once instead of silently losing them.
    if (step < this.lastSentStep) {
      return this.warnOnce(`W&B: step ${step} is before ${this.lastSentStep}; W&B ignores such rows`);
    }
    this.lastSentStep = step;
    try {
      this.run?.log(data, step);
    } catch (err) {
      this.disable(`W&B: log failed (${errorMessage(err)})`);
    }
  }

  private warnedOther = new Set<string>();
  private warnOnce(msg: string): void {
    const key = msg.replace(/[0-9.]+/g, '#');
    if (this.warnedOther.has(key)) return;
    this.warnedOther.add(key);
    try {
      this.opts.onWarning(msg);
    } catch {
      // ignore
    }
  }

  private commitPending(): void {
    const p = this.pending;
    this.pending = null;
    if (p) this.send(p.data, p.step);
  }

  scalar(tag: string, value: number, step: number): void {
    if (this.state === 'off') return;
    // W&B wants one row per step: gather the scalars of a step into one log().
    if (this.pending && this.pending.step !== step) this.commitPending();
    this.pending ??= { step, data: {} };
    this.pending.data[tag] = value;
  }

  // The JS SDK has no histogram or image types; these live in the TensorBoard files.
  histogram(_tag: string, _values: Float32Array, _step: number): void {}
  image(_tag: string, _img: ImageData8, _step: number): void {}
  record(_obj: object): void {}

  async flush(): Promise<void> {
    this.commitPending();
  }

  async close(): Promise<void> {
    this.commitPending();
    if (this.state === 'starting') {
      // A ref'd timer: close() is awaited by the caller and must resolve even if nothing else runs.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([this.ready, new Promise((r) => (timer = setTimeout(r, this.closeTimeoutMs)))]);
      clearTimeout(timer);
      if (this.state === 'starting') {
        const n = this.queue.length;
        this.disable(`W&B: init did not finish before the run ended; ${n} queued rows were not sent`);
        return;
      }
    }
    const run = this.run;
    this.run = null;
    if (this.state !== 'ready' || !run) return;
    this.state = 'off';
    try {
      await withTimeout(run.finish(), this.closeTimeoutMs, 'wandb.finish()');
    } catch (err) {
      this.warnOnce(`W&B: finish failed (${errorMessage(err)})`);
    }
  }
}
