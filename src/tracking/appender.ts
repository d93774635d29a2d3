// Write-behind file appender and a "warn once" helper shared by all sinks.
//
// Why write-behind: the training loop calls the tracker on every step, so a log
// call must cost a few microseconds. `append()` only queues bytes; one async
// write drains everything queued so far, so bursts coalesce into one syscall
// and a slow disk never blocks the loop.
import { appendFileSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/** Upper bound of queued bytes: past it we drop data rather than grow memory without limit. */
const MAX_QUEUED_BYTES = 64 * 1024 * 1024;

export class AsyncAppender {
  private chunks: Uint8Array[] = [];
  private queued = 0;
  private writing: Promise<void> | null = null;
  private fh: FileHandle | null = null;
  private failed = false;
  private closed = false;

  constructor(
    readonly path: string,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Queue bytes (or a string, as UTF-8) to be appended. Never throws. */
  append(data: string | Uint8Array): void {
    if (this.failed || this.closed) return;
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    if (this.queued + buf.length > MAX_QUEUED_BYTES) {
      this.fail(new Error(`write queue for ${this.path} exceeded ${MAX_QUEUED_BYTES} bytes (disk too slow?)`));
      return;
    }
    this.chunks.push(buf);
    this.queued += buf.length;
    this.writing ??= this.drain();
  }

  private async drain(): Promise<void> {
    try {
      // Let appends made in the same tick join this write.
      await null;
      this.fh ??= await open(this.path, 'a');
      while (this.chunks.length > 0) {
        const buf = Buffer.concat(this.chunks);
        this.chunks = [];
        this.queued = 0;
        let off = 0;
        while (off < buf.length) {
          const { bytesWritten } = await this.fh.write(buf, off, buf.length - off);
          off += bytesWritten;
        }
      }
    } catch (err) {
      this.fail(err);
    } finally {
      this.writing = null;
    }
  }

  private fail(err: unknown): void {
    this.failed = true;
    this.chunks = [];
    this.queued = 0;
    this.onError(err);
  }

  /** Resolves once everything appended so far is handed to the OS. */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
  }

  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
    const fh = this.fh;
    this.fh = null;
    if (fh) await fh.close().catch((err) => this.onError(err));
  }

  /**
   * Last-chance synchronous write for process 'exit' (async I/O no longer runs
   * then). Only data no async write has started on is written, so nothing is
   * duplicated.
   */
  flushSyncOnExit(): void {
    if (this.failed || this.closed || this.chunks.length === 0) return;
    try {
      appendFileSync(this.path, Buffer.concat(this.chunks));
    } catch {
      // process is exiting; nothing sensible left to do
    }
    this.chunks = [];
    this.queued = 0;
  }
}

/** Calls `sink(msg)` at most once per key, so a broken disk or network prints one line, not one per step. */
export class WarnOnce {
  private readonly seen = new Set<string>();
  constructor(private readonly sink: (msg: string) => void) {}

  warn(key: string, msg: string): void {
    if (this.seen.has(key)) return;
    this.seen.add(key);
    try {
      this.sink(msg);
    } catch {
      // a throwing warning callback must not reach the training loop either
    }
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
