// Training monitoring: run directories with metrics.jsonl + TensorBoard files,
// a local live dashboard, a self-contained HTML report and an optional W&B sink.
// Pure TypeScript; the training loop passes plain numbers and typed arrays.
// See README.md in this folder for the file formats.
export type { MetricSink } from './sink.js';
export { Tracker, type TrackerOptions } from './tracker.js';
export {
  checkImage,
  encodePng,
  floatImageToImage,
  type ImageData8,
  maskToImage,
  probabilityToImage,
} from './images.js';
export { computeHistogram, DEFAULT_BINS, type HistogramSummary } from './histogram.js';
export {
  EventFileWriter,
  type EventFileWriterOptions,
  encodeEvent,
  FILE_VERSION,
  frameRecord,
  maskedCrc32c,
} from './tfevents.js';
export { writeReport, type ReportOptions } from './report.js';
export { type Dashboard, type DashboardOptions, isLoopback, listenProblem, startDashboard } from './dashboard.js';
export { startDashboardThread } from './dashboard-thread.js';
export { WANDB_SYNC_HINT, WandbSink, type WandbSinkOptions, wandbRequested } from './wandb.js';
export {
  CONFIG_FILE,
  HISTOGRAMS_FILE,
  type HistogramRecord,
  listRuns,
  MEDIA_FILE,
  type MediaRecord,
  METRICS_FILE,
  type MetricsRecord,
  readAllJsonl,
  REPORT_FILE,
  type RunEnd,
  type RunInfo,
  type ScalarsRecord,
} from './runfiles.js';
