// What the page knows about each run, and what it has drawn (so that a refresh redraws only what changed).
import type UPlot from 'uplot';
import type { Boot, HistogramRecord, MediaRecord, RunInfo } from '../records.js';
import { num } from './dom.js';

declare global {
  interface Window {
    /** set by report.html; absent on the live dashboard */
    __UNET_BOOT__?: Boot;
  }
}

export const BOOT: Boot = window.__UNET_BOOT__ || { mode: 'live' };
export const STATIC = BOOT.mode === 'static';

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f'];

/** A metrics.jsonl record other than scalars: epoch, final, anything given to Tracker.record(). */
export interface ExtraRecord {
  type?: string;
  epoch?: number;
  step?: number;
  perClassDice?: unknown[];
  perClassIoU?: unknown[];
  classNames?: unknown[];
  [key: string]: unknown;
}

export type Media = MediaRecord & { src?: string };
export type Kind = 'metrics' | 'histograms' | 'media';

export interface Run {
  name: string;
  info: Partial<RunInfo>;
  color: string;
  /** per scalar tag: steps and values, in file order */
  series: Record<string, { xs: number[]; ys: number[] }>;
  tags: string[];
  hist: HistogramRecord[];
  histTags: Record<string, true>;
  media: Media[];
  final: ExtraRecord | null;
  perClass: ExtraRecord | null;
  /** undefined: not fetched yet; null: none */
  config: unknown;
  /** live: how many bytes of each file were read */
  off: Record<Kind, number>;
  /** bumped on every change (render keys) */
  version: number;
}

export interface Chart {
  u: UPlot;
  el: HTMLElement;
  /** the runs and smoothing it was made for */
  key: string;
}

export const state = {
  runs: {} as Record<string, Run>,
  order: [] as string[],
  selected: {} as Record<string, boolean>,
  focus: null as string | null,
  colorIdx: 0,
  smoothing: STATIC ? 0 : 0.6,
  charts: {} as Record<string, Chart>,
  histTag: null as string | null,
  /** null: the latest validation step */
  mediaStep: null as number | null,
  updates: 0,
  rendered: { hist: '', media: '', final: '', config: '' },
  /** the dashboard serves /try/<run>/ */
  tryIt: false,
};

/** The run whose images, histograms and config are shown. */
export function focused(): Run | undefined {
  return state.focus == null ? undefined : state.runs[state.focus];
}

export function getRun(name: string, info?: Partial<RunInfo>): Run {
  let r = state.runs[name];
  if (!r) {
    r = state.runs[name] = {
      name,
      info: info || {},
      color: COLORS[state.colorIdx++ % COLORS.length] as string,
      series: {},
      tags: [],
      hist: [],
      histTags: {},
      media: [],
      final: null,
      perClass: null,
      config: undefined,
      off: { metrics: 0, histograms: 0, media: 0 },
      version: 0,
    };
  }
  if (info) r.info = info;
  return r;
}

export function addMetrics(r: Run, recs: unknown[]): void {
  for (const item of recs) {
    if (!item || typeof item !== 'object') continue;
    const rec = item as ExtraRecord & { values?: Record<string, unknown> };
    if (rec.type === 'scalars' && rec.values) {
      for (const tag in rec.values) {
        let s = r.series[tag];
        if (!s) {
          s = r.series[tag] = { xs: [], ys: [] };
          r.tags.push(tag);
        }
        const v = num(rec.values[tag]);
        // the same step may be logged twice (train + validation records): keep the latest
        if (s.xs.length && s.xs[s.xs.length - 1] === rec.step) s.ys[s.ys.length - 1] = v;
        else {
          s.xs.push(rec.step as number);
          s.ys.push(v);
        }
      }
    } else {
      // per-class metrics come from the last record that has them (an epoch or the final record),
      // the "final" table from the last {type:"final"} record
      if (rec.perClassDice || rec.perClassIoU) r.perClass = rec;
      if (rec.type === 'final') r.final = rec;
    }
  }
  if (recs.length) r.version++;
}

export function addHist(r: Run, recs: HistogramRecord[]): void {
  for (const rec of recs) {
    if (rec?.tag && rec.counts) {
      r.hist.push(rec);
      r.histTags[rec.tag] = true;
    }
  }
  if (recs.length) r.version++;
}

export function addMedia(r: Run, recs: Media[]): void {
  for (const rec of recs) if (rec?.file) r.media.push(rec);
  if (recs.length) r.version++;
}
