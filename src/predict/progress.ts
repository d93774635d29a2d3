/** What `unet predict` prints while it runs: the progress line, per-file lines and failures. */
import type { PredictedFile } from './outputs.js';
import { megapixelProgress } from './tiled-image.js';

export interface PredictIo {
  log: (line: string) => void;
  warn: (line: string) => void;
  /** Show the progress line (default true). */
  progress?: boolean;
  onFile?: (r: PredictedFile | { input: string; error: string }) => void;
}

export class PredictProgress {
  /** Inputs done (predicted or failed). */
  done = 0;
  readonly failed: { input: string; reason: string }[] = [];
  /** Up to 20 inputs: one line per file, no progress line (except on a terminal). */
  readonly verbose: boolean;
  private readonly tty = process.stderr.isTTY === true;
  private readonly show: boolean;
  private readonly t0 = performance.now();
  private lastShown = -1;

  constructor(
    private readonly total: number,
    readonly io: PredictIo,
  ) {
    this.verbose = total <= 20;
    this.show = io.progress ?? true;
  }

  /** One more input done: redraws the line on a terminal, else prints every 10% (for many inputs). */
  tick(name: string): void {
    this.done++;
    if (!this.show) return;
    const { done, total } = this;
    const secs = (performance.now() - this.t0) / 1000;
    const rate = secs > 0 ? done / secs : 0;
    const line = `[${String(done).padStart(String(total).length)}/${total}] ${((100 * done) / total).toFixed(0).padStart(3)}%  ${rate.toFixed(2)} images/s  ${name}`;
    if (this.tty) process.stderr.write(`\r\x1b[2K${line}${done === total ? '\n' : ''}`);
    else {
      const step = Math.max(1, Math.floor(total / 10));
      if (!this.verbose && (done % step === 0 || done === total) && done !== this.lastShown) {
        this.lastShown = done;
        this.io.warn(line);
      }
    }
  }

  /** An input that failed: recorded, reported, skipped. */
  fail(input: string, e: unknown): void {
    const reason = reasonFor(input, e);
    this.failed.push({ input, reason });
    this.io.onFile?.({ input, error: reason });
    this.clearLine();
    this.io.warn(`error: ${input}: ${reason} (skipped)`);
  }

  /** A per-file line (verbose runs only). */
  wrote(line: string): void {
    if (!this.verbose) return;
    this.clearLine();
    this.io.log(line);
  }

  /** Megapixel progress for a single image, or one of 10 MP and more (not for every window row of many small ones). */
  megapixels(input: string, width: number, height: number): ((rowsDone: number, height: number) => void) | undefined {
    if (!this.show || !(this.total === 1 || width * height >= 1e7)) return undefined;
    return megapixelProgress(input, width, height, (line, final) => (this.tty ? process.stderr.write(`\r\x1b[2K${line}${final ? '\n' : ''}`) : this.io.warn(line)));
  }

  private clearLine(): void {
    if (this.tty && this.show) process.stderr.write('\r\x1b[2K');
  }
}

/** The error's message without a leading `input: ` (the line names the input already). */
export function reasonFor(input: string, e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.startsWith(`${input}: `) ? m.slice(input.length + 2) : m;
}
