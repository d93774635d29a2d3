// TensorBoard event files without TensorFlow.
//
// Format (tensorboard/summary/writer/record_writer.py): a sequence of records
//   uint64 length (LE) | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)
// where data is a serialized `tensorboard.Event`. The first event carries
// file_version "brain.Event:2". Field numbers below are those of
// tensorboard/compat/proto/{event,summary,histogram}.proto; only the fields we
// write are declared.
import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { crc32c } from './crc32c.js';
import protobuf from 'protobufjs';
import { AsyncAppender } from './appender.js';
import { computeHistogram, DEFAULT_BINS, type HistogramSummary } from './histogram.js';

const root = protobuf.Root.fromJSON({
  nested: {
    tensorboard: {
      nested: {
        Event: {
          oneofs: { what: { oneof: ['file_version', 'summary'] } },
          fields: {
            wall_time: { type: 'double', id: 1 },
            step: { type: 'int64', id: 2 },
            file_version: { type: 'string', id: 3 },
            summary: { type: 'Summary', id: 5 },
          },
        },
        Summary: {
          fields: { value: { rule: 'repeated', type: 'Value', id: 1 } },
          nested: {
            Image: {
              fields: {
                height: { type: 'int32', id: 1 },
                width: { type: 'int32', id: 2 },
                colorspace: { type: 'int32', id: 3 },
                encoded_image_string: { type: 'bytes', id: 4 },
              },
            },
            Value: {
              // A oneof member is always serialized when set, so a loss of exactly 0 is kept.
              oneofs: { value: { oneof: ['simple_value', 'image', 'histo', 'tensor'] } },
              fields: {
                tag: { type: 'string', id: 1 },
                simple_value: { type: 'float', id: 2 },
                image: { type: 'Image', id: 4 },
                histo: { type: 'HistogramProto', id: 5 },
                tensor: { type: 'TensorProto', id: 8 },
                metadata: { type: 'SummaryMetadata', id: 9 },
              },
            },
          },
        },
        // Text summaries (the text plugin): a DT_STRING tensor, tagged with plugin_name "text".
        SummaryMetadata: {
          fields: { plugin_data: { type: 'PluginData', id: 1 } },
          nested: { PluginData: { fields: { plugin_name: { type: 'string', id: 1 }, content: { type: 'bytes', id: 2 } } } },
        },
        TensorProto: {
          fields: { dtype: { type: 'int32', id: 1 }, tensor_shape: { type: 'TensorShapeProto', id: 2 }, string_val: { rule: 'repeated', type: 'bytes', id: 8 } },
        },
        TensorShapeProto: {
          fields: { dim: { rule: 'repeated', type: 'Dim', id: 2 } },
          nested: { Dim: { fields: { size: { type: 'int64', id: 1 } } } },
        },
        HistogramProto: {
          fields: {
            min: { type: 'double', id: 1 },
            max: { type: 'double', id: 2 },
            num: { type: 'double', id: 3 },
            sum: { type: 'double', id: 4 },
            sum_squares: { type: 'double', id: 5 },
            bucket_limit: { rule: 'repeated', type: 'double', id: 6, options: { packed: true } },
            bucket: { rule: 'repeated', type: 'double', id: 7, options: { packed: true } },
          },
        },
      },
    },
  },
});

const EventType = root.lookupType('tensorboard.Event');

export const FILE_VERSION = 'brain.Event:2';

/** TFRecord's CRC mask, so that CRCs of data containing CRCs stay well distributed. */
export function maskedCrc32c(data: Uint8Array): number {
  const crc = crc32c(data) >>> 0;
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + 0xa282ead8) >>> 0;
}

/** Frames one serialized Event as a TFRecord. */
export function frameRecord(data: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(8 + 4 + data.length + 4);
  out.writeBigUInt64LE(BigInt(data.length), 0);
  out.writeUInt32LE(maskedCrc32c(out.subarray(0, 8)), 8);
  out.set(data, 12);
  out.writeUInt32LE(maskedCrc32c(data), 12 + data.length);
  return out;
}

/** Plain-object form of an Event, as protobufjs takes it. */
export interface EventObject {
  wall_time: number;
  step?: number;
  file_version?: string;
  summary?: { value: SummaryValueObject[] };
}
export interface SummaryValueObject {
  tag: string;
  simple_value?: number;
  tensor?: { dtype: number; tensor_shape: { dim: { size: number }[] }; string_val: Uint8Array[] };
  metadata?: { plugin_data: { plugin_name: string } };
  image?: { height: number; width: number; colorspace: number; encoded_image_string: Uint8Array };
  histo?: {
    min: number;
    max: number;
    num: number;
    sum: number;
    sum_squares: number;
    bucket_limit: number[];
    bucket: number[];
  };
}

export function encodeEvent(ev: EventObject): Uint8Array {
  return EventType.encode(EventType.fromObject(ev)).finish();
}

/** HistogramProto from our summary. TensorBoard's bucket i spans (bucket_limit[i-1], bucket_limit[i]]; the first starts at `min`. */
export function histogramProto(h: HistogramSummary): NonNullable<SummaryValueObject['histo']> {
  return {
    min: h.min,
    max: h.max,
    num: h.num,
    sum: h.sum,
    sum_squares: h.sumSquares,
    bucket_limit: h.edges.slice(1),
    bucket: h.counts,
  };
}

export interface EventFileWriterOptions {
  /** appended to the file name, e.g. ".1" to keep two writers in one directory apart */
  filenameSuffix?: string;
  /** called on write errors (the writer stops writing after the first one) */
  onError?: (err: unknown) => void;
}

/**
 * Writes `events.out.tfevents.<secs>.<hostname>` in `logdir` (which must exist).
 * The file and its file_version event are created synchronously in the
 * constructor; later events are appended write-behind.
 */
export class EventFileWriter {
  readonly path: string;
  private readonly out: AsyncAppender;

  constructor(logdir: string, opts: EventFileWriterOptions = {}) {
    const secs = Math.floor(Date.now() / 1000);
    const host = hostname().replace(/[/\\]/g, '_') || 'localhost';
    const base = join(logdir, `events.out.tfevents.${secs}.${host}${opts.filenameSuffix ?? ''}`);
    const onError = opts.onError ?? (() => {});
    const first = frameRecord(encodeEvent({ wall_time: Date.now() / 1000, file_version: FILE_VERSION }));
    // 'wx' so that two writers never interleave records in one file; a second
    // writer in the same directory and second gets a ".N" suffix instead.
    let path = base;
    for (let n = 1; ; n++) {
      try {
        writeFileSync(path, first, { flag: 'wx' });
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || n > 100) throw err;
        path = `${base}.${n}`;
      }
    }
    this.path = path;
    this.out = new AsyncAppender(this.path, onError);
  }

  addEvent(ev: EventObject): void {
    this.out.append(frameRecord(encodeEvent(ev)));
  }

  addSummary(values: SummaryValueObject[], step: number, wallTime = Date.now() / 1000): void {
    this.addEvent({ wall_time: wallTime, step: Math.trunc(step), summary: { value: values } });
  }

  addScalar(tag: string, value: number, step: number, wallTime?: number): void {
    this.addSummary([{ tag, simple_value: value }], step, wallTime);
  }

  /** Buckets `values` (non-finite values skipped); writes nothing if none is finite. */
  addHistogram(tag: string, values: ArrayLike<number>, step: number, bins = DEFAULT_BINS, wallTime?: number): void {
    const h = computeHistogram(values, bins);
    if (h) this.addHistogramSummary(tag, h, step, wallTime);
  }

  addHistogramSummary(tag: string, h: HistogramSummary, step: number, wallTime?: number): void {
    this.addSummary([{ tag, histo: histogramProto(h) }], step, wallTime);
  }

  /** `png` is an encoded image; colorspace 1 = gray, 2 = gray+alpha, 3 = RGB, 4 = RGBA. */
  addImage(tag: string, png: Uint8Array, width: number, height: number, colorspace: number, step: number, wallTime?: number): void {
    this.addSummary([{ tag, image: { height, width, colorspace, encoded_image_string: png } }], step, wallTime);
  }

  /** Markdown shown by TensorBoard's text plugin (a DT_STRING tensor, as tf.summary.text writes). */
  addText(tag: string, markdown: string, step: number, wallTime?: number): void {
    const DT_STRING = 7;
    const tensor = { dtype: DT_STRING, tensor_shape: { dim: [{ size: 1 }] }, string_val: [new TextEncoder().encode(markdown)] };
    this.addSummary([{ tag, tensor, metadata: { plugin_data: { plugin_name: 'text' } } }], step, wallTime);
  }

  flush(): Promise<void> {
    return this.out.flush();
  }

  close(): Promise<void> {
    return this.out.close();
  }

  /** @internal used by Tracker's process-exit hook */
  flushSyncOnExit(): void {
    this.out.flushSyncOnExit();
  }
}
