/**
 * The segmentation dataset over image/mask pairs (pairs.ts), as Pytorch-UNet's `BasicDataset` /
 * `CarvanaDataset`: a mask-value scan and an in-memory cache of decoded, resized samples.
 */

import { totalmem } from 'node:os';
import { dirname } from 'node:path';
import { defaultWorkers } from '../config/options.js';
import type { DataWarning } from './image/decode.js';
import { DataError, listSome } from './errors.js';
import { type ImageInfo, probeImage, readImageRaw } from './image/image.js';
import { readMaskRaw, type RawMask } from './image/mask-read.js';
import { maskToClassIndex, type MaskValues, mergeMaskValues, uniqueMaskValues } from './masks.js';
import { LAYOUT_HINT, type Pair } from './pairs.js';
import { toChwFloat32 } from './image/pixels.js';
import { Limiter, mapPool } from './pool.js';
import { minScale, type PixelData, resizeNearest, scaledSize } from './image/resize.js';

export interface DatasetOptions {
  /** Resize factor (Pytorch-UNet `--scale`): `floor(scale * w)`. Default 1. */
  scale?: number;
  /** Known mask values (e.g. from a checkpoint). Otherwise call `scan()` before `get()`. */
  maskValues?: MaskValues;
  /** --ignore-index: this mask value becomes IGNORE_CLASS in the class maps (it is not among `maskValues`). */
  ignoreValue?: number | null;
  /**
   * The model's input channels (1 or 3): images with the other count are converted (PIL's
   * convert('L') / convert('RGB')), and `scan()` says how many. Unset: a folder that mixes
   * greyscale and colour images is refused by `scan()`, naming files of each kind.
   */
  channels?: number;
  /** `scan()` refuses images smaller than this many pixels per side after scaling (the UNet needs MIN_SIDE). Default 0: no check. */
  minSide?: number;
  /** Pairs decoded at once. Default: --workers' default (src/config/options.ts). */
  workers?: number;
  /** Keep decoded samples in memory: true (default: up to 25% of RAM), false, or a byte budget. */
  cache?: boolean | { maxBytes: number };
  /** Pixel limit per file (default 178,956,970 like PIL). */
  maxPixels?: number;
  /** Called once per kind of warning (alpha dropped, CMYK converted, …). */
  onWarning?: (message: string) => void;
}

/** A sample as the network gets it. */
export interface Sample {
  id: string;
  /** [C, H, W] float32 0..1 */
  image: Float32Array;
  /** [H, W] class indices */
  mask: Uint8Array;
  channels: number;
  height: number;
  width: number;
}

/** A sample as it is cached: image samples in their source depth (8-bit stays 1 byte). */
export interface StoredSample {
  id: string;
  /** [H, W, C] interleaved (sharp's layout; the loader transposes while converting to float); divide by `divisor` for 0..1 */
  image: PixelData;
  layout: 'hwc';
  divisor: number;
  /** [H, W] class indices */
  mask: Uint8Array;
  channels: number;
  height: number;
  width: number;
}

export class SegmentationDataset {
  readonly pairs: readonly Pair[];
  readonly scale: number;
  /** The classes' values: scan() sets every value found; with `ignoreValue` the caller removes it (withoutIgnoreValue). */
  maskValues: MaskValues | undefined;
  /** Each pair's size after `-s`, set by scan() (what validation's sliding window covers). */
  scaledSizes: { width: number; height: number }[] = [];
  private readonly ignoreValue: number | null;
  private readonly channels?: number;
  private readonly minSide: number;
  private readonly maxPixels?: number;
  private readonly cacheLimit: number;
  private cacheBytes = 0;
  /** Files decoded so far (images and masks of `load`, not `scan`): 0 per epoch once all is cached. */
  private decodes = 0;
  private readonly cache = new Map<number, StoredSample>();
  private readonly inflight = new Map<number, Promise<StoredSample>>();
  /** Masks kept from scan(), already resized, raw values (mapped to classes on first load). */
  private readonly scanned = new Map<number, RawMask>();
  private readonly limiter: Limiter;
  private readonly warned = new Map<DataWarning['code'], { count: number; first: string }>();
  private readonly onWarning?: (message: string) => void;

  constructor(pairs: readonly Pair[], opts: DatasetOptions = {}) {
    if (pairs.length === 0) throw new DataError('the dataset has no image/mask pairs', { hint: LAYOUT_HINT });
    this.pairs = pairs;
    this.scale = opts.scale ?? 1;
    this.maskValues = opts.maskValues;
    this.ignoreValue = opts.ignoreValue ?? null;
    this.channels = opts.channels;
    this.minSide = opts.minSide ?? 0;
    this.maxPixels = opts.maxPixels;
    this.onWarning = opts.onWarning;
    const cache = opts.cache ?? true;
    this.cacheLimit = cache === false ? 0 : cache === true ? Math.floor(totalmem() * 0.25) : cache.maxBytes;
    this.limiter = new Limiter(opts.workers ?? defaultWorkers);
  }

  get length(): number {
    return this.pairs.length;
  }

  /**
   * Reads every mask at full resolution ("Scanning mask files to determine unique values") and
   * sets `maskValues` to the sorted union. The resized masks are kept (within the cache budget)
   * so the first epoch does not decode them again. Image headers are read on the way, so that
   * what would otherwise fail mid-epoch fails here, before training: an image whose mask has
   * another size, images below `minSide` after scaling, and a mix of greyscale and colour images
   * (converted when `channels` is set, refused otherwise).
   */
  async scan(opts: { onProgress?: (done: number, total: number) => void } = {}): Promise<MaskValues> {
    let done = 0;
    const images: ImageInfo[] = new Array(this.pairs.length);
    const lists = await mapPool(this.pairs, this.limiter.size, async (pair, i) => {
      const [full, image] = await Promise.all([readMaskRaw(pair.mask, { maxPixels: this.maxPixels }), probeImage(pair.image, { maxPixels: this.maxPixels })]);
      if (image.width !== full.width || image.height !== full.height) throw sizeMismatch(pair, image, full);
      images[i] = image;
      this.noteWarnings(full.warnings);
      const values = uniqueMaskValues(full);
      if (!this.cache.has(i) && this.scaledLargeEnough(image)) {
        const size = scaledSize(full.width, full.height, this.scale, pair.mask);
        const data = resizeNearest(full.data, full.width, full.height, full.channels, size.width, size.height);
        if (this.reserve(data.byteLength)) this.scanned.set(i, { ...full, data, width: size.width, height: size.height });
      }
      opts.onProgress?.(++done, this.pairs.length);
      return values;
    });
    this.checkSizes(images);
    this.checkChannels(images);
    this.scaledSizes = images.map((im, i) => scaledSize(im.width, im.height, this.scale, this.pairs[i].image));
    this.maskValues = mergeMaskValues(lists);
    return this.maskValues;
  }

  private scaledLargeEnough(im: ImageInfo): boolean {
    return Math.min(Math.floor(this.scale * im.width), Math.floor(this.scale * im.height)) >= Math.max(1, this.minSide);
  }

  /** Images below `minSide` after `-s`: one error naming the smallest and the -s that would work. */
  private checkSizes(images: readonly ImageInfo[]): void {
    const small = this.pairs.map((p, i) => ({ file: p.image, ...images[i] })).filter((im) => !this.scaledLargeEnough(im));
    if (small.length === 0) return;
    const min = Math.max(1, this.minSide);
    const side = (im: ImageInfo) => Math.min(im.width, im.height);
    const worst = small.reduce((a, b) => (side(b) < side(a) ? b : a));
    const at = (im: ImageInfo) => `${Math.floor(this.scale * im.width)}×${Math.floor(this.scale * im.height)}`;
    const s = minScale(side(worst), min);
    const others = small.filter((im) => im !== worst).map((im) => im.file);
    const more = others.length > 0 ? `; ${others.length} more of the ${this.pairs.length} images are too small: ${listSome(others, 5)}` : '';
    throw new DataError(
      `image is ${worst.width}×${worst.height}, ${at(worst)} at scale ${this.scale}, ${min > 1 ? `but the UNet needs at least ${min}×${min} pixels (it halves the size ${Math.round(Math.log2(min))} times)` : 'which is empty'}${more}`,
      {
        file: worst.file,
        hint:
          s === null
            ? `It is smaller than ${min} px even at -s 1: remove it and its mask from the dataset, or enlarge it.`
            : `Use -s/--scale ${s} or more (then every image has at least ${min} px per side), or remove the images that small.`,
      },
    );
  }

  /** Greyscale and colour images in one folder: converted to `channels`, or refused when it is not set. */
  private checkChannels(images: readonly ImageInfo[]): void {
    const byChannels = new Map<number, string[]>();
    this.pairs.forEach((p, i) => {
      const list = byChannels.get(images[i].channels);
      if (list) list.push(p.image);
      else byChannels.set(images[i].channels, [p.image]);
    });
    const grey = byChannels.get(1) ?? [];
    const colour = byChannels.get(3) ?? [];
    if (this.channels !== undefined && this.channels !== 1 && this.channels !== 3) {
      const [have, files] = [...byChannels][0];
      throw new DataError(`the model expects ${this.channels} input channels, but the images have ${have} (${listSome(files, 3)})`, {
        file: files[0],
        hint: 'Images are read as greyscale (1 channel) or RGB (3; alpha is dropped): use --channels 1 or 3, or leave it at auto.',
      });
    }
    if (this.channels === undefined) {
      if (grey.length === 0 || colour.length === 0) return;
      throw new DataError(`the images mix greyscale and colour: ${grey.length} greyscale (${listSome(grey, 3)}) and ${colour.length} colour (${listSome(colour, 3)})`, {
        file: dirname(this.pairs[0].image),
        hint: "Pass --channels 1 (colour images are converted to greyscale, as PIL's convert('L')) or --channels 3 (greyscale images are copied to R, G and B).",
      });
    }
    const other = this.channels === 1 ? colour : grey;
    if (other.length === 0) return;
    this.onWarning?.(
      this.channels === 1
        ? `${other.length} of ${this.pairs.length} images are colour and were converted to greyscale (--channels 1; PIL's convert('L') luma): ${listSome(other, 3)}`
        : `${other.length} of ${this.pairs.length} images are greyscale and were converted to RGB (--channels 3; grey copied to R, G and B): ${listSome(other, 3)}`,
    );
  }

  /** The sample as float32 image + class map (copies; the cache is not exposed). */
  async get(i: number): Promise<Sample> {
    const s = await this.load(i);
    return { id: s.id, image: toChwFloat32(s.image, s.channels, s.divisor), mask: s.mask.slice(), channels: s.channels, height: s.height, width: s.width };
  }

  /** The cached form of a sample (decoded once, then served from memory). Do not modify it. */
  load(i: number): Promise<StoredSample> {
    if (!(i >= 0 && i < this.pairs.length) || !Number.isInteger(i)) {
      return Promise.reject(new RangeError(`sample index ${i} out of range 0..${this.pairs.length - 1}`));
    }
    const hit = this.cache.get(i);
    if (hit) return Promise.resolve(hit);
    let p = this.inflight.get(i);
    if (!p) {
      p = this.limiter.run(() => this.decode(i));
      this.inflight.set(i, p);
      p.then(
        (s) => {
          this.inflight.delete(i);
          const pending = this.scanned.get(i);
          if (pending) {
            this.scanned.delete(i);
            this.cacheBytes -= pending.data.byteLength;
          }
          if (this.reserve(s.image.byteLength + s.mask.byteLength)) this.cache.set(i, s);
        },
        () => this.inflight.delete(i),
      );
    }
    return p;
  }

  /** One line per kind of warning seen so far, with counts. */
  warnings(): string[] {
    return [...this.warned.values()].map((w) => (w.count > 1 ? `${w.first} (and ${w.count - 1} more files like it)` : w.first));
  }

  /** Samples and bytes held in memory, and how many samples were decoded from disk so far. */
  cacheStats(): { samples: number; bytes: number; maxBytes: number; decoded: number } {
    return { samples: this.cache.size, bytes: this.cacheBytes, maxBytes: this.cacheLimit, decoded: this.decodes };
  }

  private reserve(bytes: number): boolean {
    if (this.cacheBytes + bytes > this.cacheLimit) return false;
    this.cacheBytes += bytes;
    return true;
  }

  private noteWarnings(list: readonly DataWarning[]): void {
    for (const w of list) {
      const seen = this.warned.get(w.code);
      if (seen) {
        seen.count++;
        continue;
      }
      this.warned.set(w.code, { count: 1, first: w.message });
      this.onWarning?.(w.message);
    }
  }

  private async decode(i: number): Promise<StoredSample> {
    const pair = this.pairs[i];
    const maskValues = this.maskValues;
    if (!maskValues) throw new Error('SegmentationDataset: call scan() first, or pass maskValues (e.g. from a checkpoint)');
    const read = { scale: this.scale, maxPixels: this.maxPixels, layout: 'hwc' as const };
    this.decodes++;
    const [image, mask] = await Promise.all([readImageRaw(pair.image, { ...read, channels: this.channels === 1 || this.channels === 3 ? this.channels : undefined }), this.scanned.get(i) ?? readMaskRaw(pair.mask, read)]);
    this.noteWarnings(image.warnings);
    if (!this.scanned.has(i)) this.noteWarnings(mask.warnings);
    if (image.sourceWidth !== mask.sourceWidth || image.sourceHeight !== mask.sourceHeight) {
      throw sizeMismatch(pair, { width: image.sourceWidth, height: image.sourceHeight }, { width: mask.sourceWidth, height: mask.sourceHeight });
    }
    let classIndex: Uint8Array;
    try {
      classIndex = maskToClassIndex(mask, maskValues, undefined, this.ignoreValue);
    } catch (e) {
      if (e instanceof DataError && e.file === undefined) throw new DataError(e.message, { file: pair.mask, cause: e }); // name the file
      throw e;
    }
    return {
      id: pair.id,
      image: image.data,
      layout: 'hwc',
      divisor: image.divisor,
      mask: classIndex,
      channels: image.channels,
      height: image.height,
      width: image.width,
    };
  }
}

function sizeMismatch(pair: Pair, image: { width: number; height: number }, mask: { width: number; height: number }): DataError {
  return new DataError(`image and mask sizes differ: ${pair.image} is ${image.width}×${image.height}, ${pair.mask} is ${mask.width}×${mask.height}`, {
    file: pair.image,
    hint: 'Each mask must have the size of its image. Re-export the mask at the image size (nearest-neighbour), or check that the files are paired correctly.',
  });
}
