// Tracker: one object the training loop logs to. It fans out to
//   metrics.jsonl (always), histograms.jsonl + media/ (side files for the
//   dashboard/report), TensorBoard event files (default on) and W&B (opt-in).
// Every public method catches its own errors and reports each kind once via
// onWarning: a full disk or a dead network never stops training.
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { AsyncAppender, errorMessage, WarnOnce } from './appender.js';
import { computeHistogram, DEFAULT_BINS } from './histogram.js';
import { encodePng, type ImageData8 } from './images.js';
import { CONFIG_FILE, encodeNumber, type EndRecord, HISTOGRAMS_FILE, type HistogramRecord, MEDIA_DIR, MEDIA_FILE, type MediaRecord, METRICS_FILE, type RunEnd, sanitizeName, type ScalarsRecord, truncateRun } from './runfiles.js';
import type { MetricSink } from './sink.js';
import { EventFileWriter } from './tfevents.js';
import { WandbSink } from './wandb.js';

export interface TrackerOptions {
  /** parent directory of all runs (default "runs") */
  logdir?: string;
  /** run name; the directory is <logdir>/<YYYYMMDD-HHMMSS>-<name> (default "run") */
  name?: string;
  /** written to config.json: options, versions, device, dataset summary… */
  config: object;
  /** write TensorBoard event files (default true) */
  tensorboard?: boolean;
  /** log scalars to W&B through @wandb/sdk if it can be loaded (default false) */
  wandb?: boolean;
  /** W&B project (default "unet-ts") */
  wandbProject?: string;
  /** how @wandb/sdk is loaded (tests) */
  wandbLoader?: () => Promise<unknown>;
  /** environment for the W&B checks (default process.env) */
  env?: NodeJS.ProcessEnv;
  /** buckets per histogram (default 30) */
  histogramBins?: number;
  /** one line per problem, once each (default: console.warn) */
  onWarning?: (msg: string) => void;
  /**
   * Continue this existing run directory (a resumed training) instead of creating one: its records
   * after `step` (and its end records) are dropped, config.json is kept, TensorBoard gets a new
   * event file beside the old ones. A directory that cannot be continued (or holds epochs after
   * `epoch`) gives a new one, with a warning.
   */
  continueRun?: { runDir: string; step: number; epoch: number };
}

const now = (): number => Date.now() / 1000;

function timestamp(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/** JSON.stringify that survives what configs may contain (bigint, typed arrays, cycles). */
function safeJson(obj: unknown, indent?: number): string {
  const seen = new WeakSet<object>();
  return JSON.stringify(
    obj,
    (_k, v: unknown) => {
      if (typeof v === 'bigint') return v.toString();
      if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
      if (ArrayBuffer.isView(v) && !(v instanceof DataView)) return Array.from(v as unknown as ArrayLike<number>);
      if (typeof v === 'object' && v !== null) {
        if (seen.has(v)) return '[circular]';
        seen.add(v);
      }
      return v;
    },
    indent,
  );
}

/** Creates <logdir>/<stamp>-<name>, adding -2, -3… if that exists (two runs started in one second). */
async function makeRunDir(logdir: string, name: string): Promise<string> {
  await mkdir(logdir, { recursive: true });
  const base = join(logdir, `${timestamp()}-${name}`);
  for (let n = 1; ; n++) {
    const dir = n === 1 ? base : `${base}-${n}`;
    try {
      await mkdir(dir);
      return dir;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || n > 1000) throw err;
    }
  }
}

export class Tracker implements MetricSink {
  readonly runDir: string;
  readonly name: string;
  /** false when the run directory could not be created: every call is then a no-op */
  readonly enabled: boolean;
  private readonly warn: WarnOnce;
  private readonly metrics: AsyncAppender | null;
  private readonly histograms: AsyncAppender | null;
  private readonly media: AsyncAppender | null;
  private readonly tb: EventFileWriter | null;
  private readonly wandbSink: WandbSink | null;
  private readonly bins: number;
  private pending: ScalarsRecord | null = null;
  private pendingScheduled = false;
  private readonly imageWrites = new Set<Promise<void>>();
  private closed = false;
  private readonly exitHook = (): void => this.flushSyncOnExit();

  private constructor(init: {
    runDir: string;
    name: string;
    enabled: boolean;
    warn: WarnOnce;
    tensorboard: boolean;
    bins: number;
    wandb: WandbSink | null;
    configText: string;
  }) {
    this.runDir = init.runDir;
    this.name = init.name;
    this.enabled = init.enabled;
    this.warn = init.warn;
    this.bins = init.bins;
    this.wandbSink = init.wandb;
    const onErr = (what: string) => (err: unknown) => this.warn.warn(`write:${what}`, `tracking: writing ${what} failed (${errorMessage(err)}); it is no longer written, training goes on`);
    if (!init.enabled) {
      this.metrics = this.histograms = this.media = null;
      this.tb = null;
      return;
    }
    this.metrics = new AsyncAppender(join(this.runDir, METRICS_FILE), onErr(METRICS_FILE));
    this.histograms = new AsyncAppender(join(this.runDir, HISTOGRAMS_FILE), onErr(HISTOGRAMS_FILE));
    this.media = new AsyncAppender(join(this.runDir, MEDIA_FILE), onErr(MEDIA_FILE));
    let tb: EventFileWriter | null = null;
    if (init.tensorboard) {
      try {
        tb = new EventFileWriter(this.runDir, { onError: onErr('TensorBoard events') });
        // The run's options in TensorBoard's Text tab (indented: a code block in any Markdown).
        tb.addText('config', init.configText.replace(/^/gm, '    '), 0);
      } catch (err) {
        onErr('TensorBoard events')(err);
      }
    }
    this.tb = tb;
    process.on('exit', this.exitHook);
  }

  static async create(opts: TrackerOptions): Promise<Tracker> {
    const warn = new WarnOnce(opts.onWarning ?? ((m) => console.warn(`[tracking] ${m}`)));
    const name = sanitizeName(opts.name ?? 'run', 64);
    const logdir = resolve(opts.logdir ?? 'runs');
    let runDir = join(logdir, `${timestamp()}-${name}`);
    let enabled = true;
    let configText = '{}';
    let continued = false;
    if (opts.continueRun) {
      try {
        await truncateRun(opts.continueRun.runDir, opts.continueRun.step, opts.continueRun.epoch);
        runDir = opts.continueRun.runDir;
        continued = true;
      } catch (err) {
        warn.warn('continue', `tracking: cannot continue ${opts.continueRun.runDir} (${errorMessage(err)}); writing a new run directory`);
      }
    }
    try {
      if (!continued) runDir = await makeRunDir(logdir, name);
      await mkdir(join(runDir, MEDIA_DIR), { recursive: true });
      try {
        configText = safeJson(opts.config ?? {}, 2);
      } catch (err) {
        warn.warn('config', `tracking: config is not serializable (${errorMessage(err)})`);
        configText = '{}';
      }
      if (!continued) await writeFile(join(runDir, CONFIG_FILE), `${configText}\n`);
    } catch (err) {
      warn.warn('rundir', `tracking: cannot create run directory ${runDir} (${errorMessage(err)}); nothing is logged, training goes on`);
      enabled = false;
    }
    const wandb =
      enabled && opts.wandb
        ? new WandbSink({
            project: opts.wandbProject,
            name: `${runDir.split(/[/\\]/).pop()}`,
            config: opts.config,
            runDir,
            env: opts.env,
            load: opts.wandbLoader,
            onWarning: (m) => warn.warn('wandb', m),
          })
        : null;
    return new Tracker({
      runDir,
      name,
      enabled,
      warn,
      tensorboard: opts.tensorboard ?? true,
      bins: opts.histogramBins ?? DEFAULT_BINS,
      wandb,
      configText,
    });
  }

  /** A tracker that writes nothing (the ranks other than 0 of a data-parallel run). */
  static disabled(runDir: string): Tracker {
    return new Tracker({ runDir, name: '', enabled: false, warn: new WarnOnce(() => {}), tensorboard: false, bins: DEFAULT_BINS, wandb: null, configText: '' });
  }

  /** Path of the TensorBoard event file, if one is written. */
  get eventFile(): string | null {
    return this.tb?.path ?? null;
  }

  /** The W&B sink, if enabled (e.g. to await whenSettled() in tests). */
  get wandb(): WandbSink | null {
    return this.wandbSink;
  }

  private guard(op: string, fn: () => void): void {
    if (this.closed || !this.enabled) return;
    try {
      fn();
    } catch (err) {
      this.warn.warn(`op:${op}`, `tracking: ${op}() failed (${errorMessage(err)}); further ${op} errors are not shown`);
    }
  }

  private emitPending(): void {
    const p = this.pending;
    this.pending = null;
    if (p) this.metrics?.append(`${JSON.stringify(p)}\n`);
  }

  scalar(tag: string, value: number, step: number): void {
    this.guard('scalar', () => {
      const v = Number(value);
      // Scalars of one step logged in one go (same tick) become one metrics.jsonl record.
      if (this.pending && this.pending.step !== step) this.emitPending();
      this.pending ??= { type: 'scalars', step, time: now(), values: {} };
      this.pending.values[tag] = encodeNumber(v);
      if (!this.pendingScheduled) {
        this.pendingScheduled = true;
        setImmediate(() => {
          this.pendingScheduled = false;
          this.emitPending();
        });
      }
      this.tb?.addScalar(tag, v, step);
      this.wandbSink?.scalar(tag, v, step);
    });
  }

  /** Several scalars of one step, e.g. {"train loss": 0.3, "learning rate": 1e-4}. */
  scalars(values: Record<string, number>, step: number): void {
    for (const [tag, v] of Object.entries(values)) this.scalar(tag, v, step);
  }

  histogram(tag: string, values: Float32Array, step: number): void {
    this.guard('histogram', () => {
      const h = computeHistogram(values, this.bins);
      if (!h) {
        this.warn.warn(`hist-empty:${tag}`, `tracking: histogram ${tag} has no finite values at step ${step}; skipped`);
        return;
      }
      const mean = h.sum / h.num;
      const rec: HistogramRecord = {
        step,
        tag,
        time: now(),
        min: h.min,
        max: h.max,
        num: h.num,
        mean,
        std: Math.sqrt(Math.max(0, h.sumSquares / h.num - mean * mean)),
        nonFinite: h.nonFinite,
        edges: h.edges,
        counts: h.counts,
      };
      this.histograms?.append(`${JSON.stringify(rec)}\n`);
      this.tb?.addHistogramSummary(tag, h, step);
      this.wandbSink?.histogram(tag, values, step);
    });
  }

  image(tag: string, img: ImageData8, step: number): void {
    this.guard('image', () => {
      const png = encodePng(img);
      const file = `${MEDIA_DIR}/${Math.trunc(step)}-${sanitizeName(tag)}.png`;
      const rec: MediaRecord = { step, tag, file, width: img.width, height: img.height, channels: img.channels, time: now() };
      // The index line is written only after the PNG, so readers never see a missing file.
      const w: Promise<void> = writeFile(join(this.runDir, file), png).then(
        () => this.media?.append(`${JSON.stringify(rec)}\n`),
        (err) => this.warn.warn('write:media', `tracking: writing ${file} failed (${errorMessage(err)}); training goes on`),
      );
      this.imageWrites.add(w);
      void w.finally(() => this.imageWrites.delete(w));
      this.tb?.addImage(tag, png, img.width, img.height, img.channels, step);
      this.wandbSink?.image(tag, img, step);
    });
  }

  record(obj: object): void {
    this.guard('record', () => {
      // Keep file order equal to call order.
      this.emitPending();
      const rec = 'time' in obj ? obj : { ...obj, time: now() };
      this.metrics?.append(`${safeJson(rec)}\n`);
      // Per-class metrics as TensorBoard scalars too, so TensorBoard (and wandb sync) show what the dashboard shows.
      const r = obj as { step?: number; perClassDice?: unknown; perClassIoU?: unknown };
      for (const [name, values] of [
        ['Dice', r.perClassDice],
        ['IoU', r.perClassIoU],
      ] as const) {
        if (!Array.isArray(values)) continue;
        values.forEach((v, k) => typeof v === 'number' && this.tb?.addScalar(`per-class ${name}/class ${k}`, v, r.step ?? 0));
      }
      this.wandbSink?.record(obj);
    });
  }

  async flush(): Promise<void> {
    if (!this.enabled) return;
    try {
      this.emitPending();
      await Promise.all([...this.imageWrites]);
      await Promise.all([this.metrics?.flush(), this.histograms?.flush(), this.media?.flush(), this.tb?.flush(), this.wandbSink?.flush()]);
    } catch (err) {
      this.warn.warn('flush', `tracking: flush failed (${errorMessage(err)})`);
    }
  }

  /** Flushes everything, writes the end record (how the run ended) to metrics.jsonl and closes the files. Safe to call twice. */
  async close(status: RunEnd = 'finished'): Promise<void> {
    if (this.closed || !this.enabled) return;
    await this.flush();
    this.closed = true;
    try {
      this.metrics?.append(`${JSON.stringify({ type: 'end', time: now(), status } satisfies EndRecord)}\n`);
      await Promise.all([this.metrics?.close(), this.histograms?.close(), this.media?.close(), this.tb?.close()]);
      await this.wandbSink?.close();
    } catch (err) {
      this.warn.warn('close', `tracking: close failed (${errorMessage(err)})`);
    } finally {
      process.off('exit', this.exitHook);
    }
  }

  private flushSyncOnExit(): void {
    // 'exit' runs no more async I/O: write what is still queued synchronously.
    try {
      this.emitPending();
      this.metrics?.flushSyncOnExit();
      this.histograms?.flushSyncOnExit();
      this.media?.flushSyncOnExit();
      this.tb?.flushSyncOnExit();
    } catch {
      // exiting anyway
    }
  }
}
