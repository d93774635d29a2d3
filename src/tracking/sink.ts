import type { ImageData8 } from './images.js';

/**
 * Where training metrics go. Every method must be cheap and must never throw:
 * tracking may not stop or slow training.
 */
export interface MetricSink {
  scalar(tag: string, value: number, step: number): void;
  /** call at validation only: one O(n) pass over `values` */
  histogram(tag: string, values: Float32Array, step: number): void;
  /** call at validation only: encodes a PNG */
  image(tag: string, img: ImageData8, step: number): void;
  /** a raw metrics.jsonl record, e.g. {type:"final", perClassDice:[...], perClassIoU:[...]} */
  record(obj: object): void;
  flush(): Promise<void>;
  close(): Promise<void>;
}
