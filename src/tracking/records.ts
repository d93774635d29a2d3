// What a run directory's files hold, and what the dashboard's API answers: types only, shared by
// the Node side (tracker, dashboard, report) and the browser code (client/), which cannot import
// Node modules.

/**
 * metrics.jsonl records. Scalars logged at one step in one go share a record.
 * Non-finite values are stored as the strings "NaN", "Infinity", "-Infinity"
 * (JSON has no such numbers, and a NaN loss is worth seeing).
 */
export interface ScalarsRecord {
  type: 'scalars';
  step: number;
  time: number;
  values: Record<string, number | string>;
}
/** How a run ended, as Tracker.close() was told. */
export type RunEnd = 'finished' | 'interrupted' | 'stopped early' | 'failed';
export interface EndRecord {
  type: 'end';
  time: number;
  /** absent in runs written before it was recorded: 'finished' */
  status?: RunEnd;
}
/** Anything passed to Tracker.record(), e.g. {type:"final", perClassDice:[...], perClassIoU:[...]}. */
export type MetricsRecord = ScalarsRecord | EndRecord | ({ type?: string; time?: number } & Record<string, unknown>);

export interface HistogramRecord {
  step: number;
  tag: string;
  time: number;
  min: number;
  max: number;
  num: number;
  mean: number;
  std: number;
  nonFinite: number;
  edges: number[];
  counts: number[];
}

export interface MediaRecord {
  step: number;
  tag: string;
  /** relative to the run directory, e.g. "media/120-pred_0.png" */
  file: string;
  width: number;
  height: number;
  channels: number;
  time: number;
}

export interface RunInfo {
  name: string;
  /** ms since epoch of the latest write to metrics.jsonl (or the directory) */
  mtime: number;
  /**
   * The end record's status when it is the last record (a resumed run appends after it); else
   * 'running' if written to in the last 2 min, or 'unknown' (killed, crashed or stuck)
   */
  status: RunEnd | 'running' | 'unknown';
  hasReport: boolean;
  lastStep: number | null;
}

/** A run as the report embeds it (report.html sets window.__UNET_BOOT__ to a StaticBoot). */
export interface StaticRun {
  name: string;
  info?: Partial<RunInfo>;
  config?: unknown;
  metrics?: MetricsRecord[];
  histograms?: HistogramRecord[];
  /** `src`: the image as a data: URI (the report has no server to fetch files from) */
  media?: Array<MediaRecord & { src?: string }>;
}

/** What the page starts from: live polls the dashboard's API, static (the report) has it all inline. */
export interface Boot {
  mode: 'live' | 'static';
  /** when the report was written */
  generated?: string;
  runs?: StaticRun[];
}

/** GET /api/runs */
export interface RunList {
  runs: RunInfo[];
  /** the dashboard serves /try/<run>/ */
  tryIt: boolean;
}

/** GET /api/runs/<run>/<metrics|histograms|media>?from=<byte offset> */
export interface JsonlChunk<T = unknown> {
  records: T[];
  /** the offset to ask from next time */
  next: number;
  /** more complete lines follow */
  more: boolean;
}
