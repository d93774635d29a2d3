// The run directory layout, and readers shared by the dashboard and the report.
//
// runs/<YYYYMMDD-HHMMSS>-<name>/
//   config.json                      the object given to Tracker.create
//   metrics.jsonl                    one JSON object per line (see MetricsRecord)
//   histograms.jsonl                 one HistogramRecord per line (validation only)
//   media.jsonl + media/<step>-<tag>.png   one MediaRecord per logged image
//   events.out.tfevents.<secs>.<host>      TensorBoard
//   report.html                      written by writeReport()
import { open, readdir, readFile, realpath, rename, stat, writeFile } from 'node:fs/promises';
import { join, sep } from 'node:path';
import type { EndRecord, JsonlChunk, MetricsRecord, RunEnd, RunInfo, ScalarsRecord } from './records.js';

export type { EndRecord, HistogramRecord, MediaRecord, MetricsRecord, RunEnd, RunInfo, ScalarsRecord } from './records.js';

export const CONFIG_FILE = 'config.json';
export const METRICS_FILE = 'metrics.jsonl';
export const HISTOGRAMS_FILE = 'histograms.jsonl';
export const MEDIA_FILE = 'media.jsonl';
export const MEDIA_DIR = 'media';
export const REPORT_FILE = 'report.html';

/** Safe file-name part: what the dashboard accepts in a URL path segment. */
export function sanitizeName(s: string, maxLen = 80): string {
  const out = s
    .replace(/[^A-Za-z0-9_.-]+/g, '_')
    .replace(/\.{2,}/g, '_')
    .replace(/^[._-]+/, '');
  return out.slice(0, maxLen) || 'x';
}

/** A run directory name or file-name segment as the dashboard allows it. */
export const SAFE_SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

export function isSafeSegment(s: string): boolean {
  return s.length <= 200 && SAFE_SEGMENT.test(s) && !s.includes('..');
}

/** JSON replacer that keeps NaN/±Infinity visible (see ScalarsRecord). */
export function encodeNumber(v: number): number | string {
  return Number.isFinite(v) ? v : String(v);
}

export function decodeNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return Number(v);
  return NaN;
}

/**
 * Reads complete JSONL lines from byte `from` on. `next` is the offset to pass
 * next time, so a poller only reads what was appended since. A partly written
 * last line is left for the next call. Bad lines are skipped.
 */
export async function readJsonlFrom<T = unknown>(path: string, from = 0, maxBytes = 8 * 1024 * 1024): Promise<JsonlChunk<T>> {
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { records: [], next: from, more: false };
    throw err;
  }
  try {
    const size = (await fh.stat()).size;
    // A file that shrank was rewritten: start over.
    const start = from > size ? 0 : Math.max(0, Math.floor(from));
    const len = Math.min(size - start, maxBytes);
    if (len <= 0) return { records: [], next: start, more: false };
    const buf = Buffer.alloc(len);
    let got = 0;
    while (got < len) {
      const { bytesRead } = await fh.read(buf, got, len - got, start + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    const lastNl = buf.lastIndexOf(10, got - 1);
    if (lastNl < 0) {
      // One line longer than maxBytes cannot be returned; skip past it rather than stall.
      return { records: [], next: got === maxBytes ? start + got : start, more: got === maxBytes };
    }
    const text = buf.toString('utf8', 0, lastNl);
    const records: T[] = [];
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        records.push(JSON.parse(line) as T);
      } catch {
        // a corrupt line (e.g. from a crash mid-write) must not hide the rest
      }
    }
    const next = start + lastNl + 1;
    return { records, next, more: next < size };
  } finally {
    await fh.close();
  }
}

export async function readAllJsonl<T = unknown>(path: string): Promise<T[]> {
  const out: T[] = [];
  let from = 0;
  for (;;) {
    const r = await readJsonlFrom<T>(path, from);
    for (const rec of r.records) out.push(rec);
    if (!r.more || r.next === from) return out;
    from = r.next;
  }
}

/**
 * Prepares a run directory to be continued from optimizer step `step`, after epoch `epoch` (a
 * resumed training): drops the records logged after it (the rest of an interrupted epoch) and the
 * end-of-run records, so the curves go on without duplicates. A directory holding later finished
 * epochs is left alone (an error): continuing from an earlier checkpoint branches off a new run.
 * Each file is rewritten atomically (temporary file, then rename).
 */
export async function truncateRun(runDir: string, step: number, epoch: number): Promise<void> {
  if (!(await stat(runDir)).isDirectory()) throw new Error(`${runDir} is not a folder`);
  const later = (await readAllJsonl<{ type?: unknown; epoch?: unknown }>(join(runDir, METRICS_FILE))).some((r) => r.type === 'epoch' && typeof r.epoch === 'number' && r.epoch > epoch);
  if (later) throw new Error(`it holds epochs after epoch ${epoch}, kept as they are`);
  for (const file of [METRICS_FILE, HISTOGRAMS_FILE, MEDIA_FILE]) {
    const path = join(runDir, file);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    const keep = text.split('\n').filter((line) => {
      try {
        const r = JSON.parse(line) as { step?: unknown; type?: unknown };
        return !(typeof r.step === 'number' && r.step > step) && r.type !== 'end' && r.type !== 'final';
      } catch {
        return false; // blank, or torn by a kill
      }
    });
    const kept = keep.map((l) => `${l}\n`).join('');
    if (kept === text) continue;
    await writeFile(`${path}.tmp`, kept);
    await rename(`${path}.tmp`, path);
  }
}

/** True if `child` (a real path) is `parent` or inside it. */
export function isInside(parent: string, child: string): boolean {
  return child === parent || child.startsWith(parent.endsWith(sep) ? parent : parent + sep);
}

/** Run directories in `logdir`: safe names, and no symlinks that lead outside it. Newest first. */
export async function listRuns(logdir: string): Promise<RunInfo[]> {
  let realLogdir: string;
  try {
    realLogdir = await realpath(logdir);
  } catch {
    return [];
  }
  const entries = await readdir(realLogdir, { withFileTypes: true }).catch(() => []);
  const runs: RunInfo[] = [];
  for (const e of entries) {
    if (!isSafeSegment(e.name) || !(e.isDirectory() || e.isSymbolicLink())) continue;
    const dir = join(realLogdir, e.name);
    try {
      const real = await realpath(dir);
      if (!isInside(realLogdir, real) || real === realLogdir) continue;
      const st = await stat(real);
      if (!st.isDirectory()) continue;
      runs.push(await runInfo(real, e.name, st.mtimeMs));
    } catch {
      // vanished or unreadable: not listed
    }
  }
  runs.sort((a, b) => (a.name < b.name ? 1 : a.name > b.name ? -1 : 0));
  return runs;
}

const RUN_ENDS: readonly string[] = ['finished', 'interrupted', 'stopped early', 'failed'] satisfies RunEnd[];

/** How the run ended, if its last record is the end record (a resumed run appends after it). */
export function endStatus(last: MetricsRecord | undefined): RunEnd | null {
  if (last?.type !== 'end') return null;
  const s = (last as EndRecord).status;
  return typeof s === 'string' && RUN_ENDS.includes(s) ? s : 'finished';
}

async function runInfo(dir: string, name: string, dirMtime: number): Promise<RunInfo> {
  let mtime = dirMtime;
  let ended: RunEnd | null = null;
  let lastStep: number | null = null;
  const metrics = join(dir, METRICS_FILE);
  try {
    const fh = await open(metrics, 'r');
    try {
      const st = await fh.stat();
      mtime = st.mtimeMs;
      // Only the tail is needed for the status and last step.
      const len = Math.min(st.size, 16 * 1024);
      const buf = Buffer.alloc(len);
      await fh.read(buf, 0, len, st.size - len);
      const lines = buf.toString('utf8').split('\n');
      let isLast = true;
      for (let i = lines.length - 1; i >= 0; i--) {
        const line = lines[i];
        if (!line?.startsWith('{')) continue;
        try {
          const rec = JSON.parse(line) as MetricsRecord;
          if (isLast) ended = endStatus(rec);
          isLast = false;
          if (lastStep === null && typeof (rec as ScalarsRecord).step === 'number') lastStep = (rec as ScalarsRecord).step;
        } catch {
          // first line of the tail may be cut
        }
        if (lastStep !== null) break;
      }
    } finally {
      await fh.close();
    }
  } catch {
    // no metrics yet
  }
  const status: RunInfo['status'] = ended ?? (Date.now() - mtime < 120_000 ? 'running' : 'unknown');
  const hasReport = await stat(join(dir, REPORT_FILE)).then(
    (s) => s.isFile(),
    () => false,
  );
  return { name, mtime, status, hasReport, lastStep };
}

export async function readConfig(runDir: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(join(runDir, CONFIG_FILE), 'utf8'));
  } catch {
    return null;
  }
}
