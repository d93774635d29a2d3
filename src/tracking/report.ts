// report.html: one self-contained page per run (uPlot, code, data and images
// inline), for viewing offline or attaching to an issue.
import { readFile, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { staticHtml } from './page.js';
import type { Boot } from './records.js';
import { endStatus, HISTOGRAMS_FILE, type HistogramRecord, isInside, MEDIA_FILE, type MediaRecord, METRICS_FILE, type MetricsRecord, readAllJsonl, readConfig, REPORT_FILE } from './runfiles.js';

export interface ReportOptions {
  /** validation steps whose images are embedded: the first and the last by default (images are the bulk of the file) */
  mediaSteps?: 'first-last' | 'last' | 'all';
  /** keep at most this many histogram steps per tag, evenly spread (default 50) */
  maxHistogramSteps?: number;
}

function pickSteps(steps: number[], mode: NonNullable<ReportOptions['mediaSteps']>): Set<number> {
  if (steps.length === 0 || mode === 'all') return new Set(steps);
  const first = steps[0] as number;
  const last = steps[steps.length - 1] as number;
  return new Set(mode === 'last' ? [last] : [first, last]);
}

function thin<T>(items: T[], max: number): T[] {
  if (items.length <= max) return items;
  const out: T[] = [];
  for (let i = 0; i < max; i++) out.push(items[Math.round((i * (items.length - 1)) / (max - 1))] as T);
  return out;
}

/** Writes <runDir>/report.html and returns its path. */
export async function writeReport(runDir: string, opts: ReportOptions = {}): Promise<string> {
  const dir = resolve(runDir);
  const name = basename(dir);
  const [config, metrics, histograms, media] = await Promise.all([
    readConfig(dir),
    readAllJsonl<MetricsRecord>(join(dir, METRICS_FILE)),
    readAllJsonl<HistogramRecord>(join(dir, HISTOGRAMS_FILE)),
    readAllJsonl<MediaRecord>(join(dir, MEDIA_FILE)),
  ]);

  // Histograms: evenly thinned per tag so long runs stay a reasonable size.
  const byTag = new Map<string, HistogramRecord[]>();
  for (const h of histograms) {
    const list = byTag.get(h.tag) ?? [];
    list.push(h);
    byTag.set(h.tag, list);
  }
  const hist = [...byTag.values()].flatMap((l) => thin(l, opts.maxHistogramSteps ?? 50));

  // Images as data: URIs; a missing or out-of-run file is skipped.
  const steps = [...new Set(media.map((m) => m.step))].sort((a, b) => a - b);
  const keep = pickSteps(steps, opts.mediaSteps ?? 'first-last');
  const embedded: Array<MediaRecord & { src: string }> = [];
  for (const m of media) {
    if (!keep.has(m.step) || typeof m.file !== 'string') continue;
    const path = resolve(dir, m.file);
    if (!isInside(dir, path) || !path.endsWith('.png')) continue;
    try {
      const png = await readFile(path);
      embedded.push({ ...m, src: `data:image/png;base64,${png.toString('base64')}` });
    } catch {
      // image deleted since: the report is still useful without it
    }
  }

  const last = [...metrics].reverse().find((r) => typeof (r as { step?: unknown }).step === 'number') as { step?: number } | undefined;
  const ended = endStatus(metrics[metrics.length - 1]);
  const boot: Boot = {
    mode: 'static',
    generated: new Date().toISOString().replace('T', ' ').slice(0, 19),
    runs: [
      {
        name,
        info: { status: ended ?? 'unknown', lastStep: last?.step ?? null },
        config,
        metrics,
        histograms: hist,
        media: embedded,
      },
    ],
  };
  const out = join(dir, REPORT_FILE);
  await writeFile(out, staticHtml(`unet-ts report: ${name}`, boot));
  return out;
}
