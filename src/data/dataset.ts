/**
 * Image/mask pairs on disk and the segmentation dataset over them (Pytorch-UNet's
 * `BasicDataset` / `CarvanaDataset`), with exact-name pairing, a mask-value scan and an
 * in-memory cache of decoded, resized samples.
 */

import { readdir, stat } from 'node:fs/promises';
import { totalmem } from 'node:os';
import { dirname, extname, join, resolve } from 'node:path';
import { defaultWorkers } from '../config/options.js';
import { DataError, listSome } from './errors.js';
import { hasImageExtension } from './formats.js';
import { type DataWarning, type ImageInfo, probeImage, readImageRaw, readMaskRaw, type RawMask, toChwFloat32 } from './image.js';
import { mapPool, maskToClassIndex, type MaskValues, mergeMaskValues, uniqueMaskValues } from './masks.js';
import { minScale, type PixelData, resizeNearest, scaledSize } from './resize.js';

// ---------------------------------------------------------------------------------------------
// Pairing

export interface Pair {
  /** Image file name without extension. */
  id: string;
  image: string;
  mask: string;
}

export interface ListPairsOptions {
  imgsDir: string;
  masksDir: string;
  /**
   * Mask name = `<id><suffix>.<ext>`. `'auto'` (default) picks the suffix that pairs the most
   * images among '' and common ones such as '_mask' (Carvana: `<id>.jpg` + `<id>_mask.gif`).
   */
  maskSuffix?: string;
  /** Leave out images without masks and masks without images (with a warning) instead of failing. */
  skipUnpaired?: boolean;
}

export interface PairList {
  /** Sorted by id. */
  pairs: Pair[];
  /** The suffix used (the detected one for 'auto'). */
  maskSuffix: string;
  warnings: string[];
}

/** Suffixes tried by 'auto', in order of preference on ties. */
export const AUTO_MASK_SUFFIXES = ['', '_mask', '_masks', '-mask', '_label', '_labels', '_gt', '_seg', '_segmentation', '_annotation'];

const LAYOUT_HINT =
  'Expected layout: data/imgs/<id>.png and data/masks/<id>.png (same base names; masks may add a suffix such as _mask). ' +
  'Point to your folders with --imgs DIR --masks DIR.';

/**
 * Pairs images and masks by exact base name (+ suffix): `1.png` never matches `10_mask.png`.
 * Hidden files and sub-folders are ignored. Throws DataError for missing/empty folders, unpaired
 * files (unless `skipUnpaired`), several masks for one image and several images with one id.
 */
export async function listPairs(opts: ListPairsOptions): Promise<PairList> {
  if (resolve(opts.imgsDir) === resolve(opts.masksDir)) {
    throw new DataError('images and masks point to the same folder', {
      file: opts.imgsDir,
      hint: `Put the masks in a folder of their own. ${LAYOUT_HINT}`,
    });
  }
  const images = await listImageFiles(opts.imgsDir, 'images', '--imgs');
  const masks = await listImageFiles(opts.masksDir, 'masks', '--masks');
  const warnings: string[] = [];

  const imageById = groupByStem(images);
  const maskByStem = groupByStem(masks);
  const dupImages = [...imageById].filter(([, files]) => files.length > 1);
  if (dupImages.length > 0) {
    throw new DataError(`several images share one id: ${listSome(dupImages.map(([, f]) => f.join(' + ')))}`, {
      file: opts.imgsDir,
      hint: 'Keep one file per id (e.g. delete the .jpg copy of a .png), so that each image has exactly one mask.',
    });
  }

  let suffix = opts.maskSuffix ?? 'auto';
  if (suffix === 'auto') {
    let best = -1;
    for (const s of AUTO_MASK_SUFFIXES) {
      let hits = 0;
      for (const id of imageById.keys()) if (maskByStem.has(id + s)) hits++;
      if (hits > best) { best = hits; suffix = s; }
    }
  }

  const pairs: Pair[] = [];
  const noMask: string[] = [];
  const severalMasks: string[] = [];
  const usedMaskStems = new Set<string>();
  for (const [id, [image]] of imageById) {
    const found = maskByStem.get(id + suffix);
    if (!found) { noMask.push(image); continue; }
    usedMaskStems.add(id + suffix);
    if (found.length > 1) { severalMasks.push(`${id}: ${found.join(' + ')}`); continue; }
    pairs.push({ id, image: join(opts.imgsDir, image), mask: join(opts.masksDir, found[0]) });
  }
  const noImage = masks.filter((m) => !usedMaskStems.has(stem(m)));

  if (severalMasks.length > 0) {
    throw new DataError(`several masks match one image: ${listSome(severalMasks)}`, {
      file: opts.masksDir,
      hint: 'Keep exactly one mask per image (e.g. remove the .jpg copy of a .png mask).',
    });
  }
  const suffixText = suffix === '' ? 'no suffix' : `suffix "${suffix}"`;
  const rule = `masks are matched by name: <id>.<ext> in ${opts.imgsDir} ↔ <id>${suffix}.<ext> in ${opts.masksDir} (${suffixText})`;
  if (noMask.length > 0) {
    const text = `${noMask.length} of ${images.length} images have no mask: ${listSome(noMask)}`;
    if (!opts.skipUnpaired) {
      throw new DataError(text, { file: opts.imgsDir, hint: `${capitalise(rule)}. Rename the files, set the mask suffix (--mask-suffix), or pass --skip-unpaired to leave them out.` });
    }
    warnings.push(`Skipped ${text}`);
  }
  if (noImage.length > 0) {
    const text = `${noImage.length} of ${masks.length} masks have no image: ${listSome(noImage)}`;
    if (!opts.skipUnpaired) {
      throw new DataError(text, { file: opts.masksDir, hint: `${capitalise(rule)}. Remove or rename them, set the mask suffix (--mask-suffix), or pass --skip-unpaired to ignore them.` });
    }
    warnings.push(`Ignored ${text}`);
  }
  if (pairs.length === 0) {
    throw new DataError('no image/mask pairs found', { file: opts.imgsDir, hint: `${capitalise(rule)}. ${LAYOUT_HINT}` });
  }
  pairs.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return { pairs, maskSuffix: suffix, warnings };
}

const capitalise = (s: string) => s[0].toUpperCase() + s.slice(1);
const stem = (name: string) => name.slice(0, name.length - extname(name).length);

function groupByStem(names: readonly string[]): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const n of names) {
    const s = stem(n);
    const list = map.get(s);
    if (list) list.push(n);
    else map.set(s, [n]);
  }
  return map;
}

/** Image file names directly in `dir` (no hidden files, no sub-folders). */
async function listImageFiles(dir: string, role: 'images' | 'masks', flag: string): Promise<string[]> {
  let entries;
  try {
    const st = await stat(dir);
    if (!st.isDirectory()) throw new DataError(`the ${role} path is not a folder`, { file: dir, hint: LAYOUT_HINT });
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if (err instanceof DataError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const what = code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? (err as Error).message})`;
    throw new DataError(`the ${role} folder ${what}`, { file: dir, hint: `${LAYOUT_HINT} (${flag} is the ${role} folder.)`, cause: err });
  }
  const files: string[] = [];
  const folders: string[] = [];
  const others: string[] = [];
  for (const e of entries) {
    if (e.name.startsWith('.')) continue;
    let isFile = e.isFile();
    let isDir = e.isDirectory();
    if (e.isSymbolicLink()) {
      const st = await stat(join(dir, e.name)).catch(() => null);
      isFile = st?.isFile() ?? false;
      isDir = st?.isDirectory() ?? false;
    }
    if (isDir) folders.push(e.name);
    else if (isFile && hasImageExtension(e.name)) files.push(e.name);
    else if (isFile) others.push(e.name);
  }
  if (files.length === 0) {
    const seen = [
      folders.length ? `${folders.length} sub-folder(s): ${listSome(folders, 5)}` : '',
      others.length ? `${others.length} other file(s): ${listSome(others, 5)}` : '',
    ].filter(Boolean).join('; ');
    const sub = folders.length ? ` Files must sit directly in the folder; sub-folders are ignored, so point ${flag} at the folder that holds the files.` : '';
    throw new DataError(`the ${role} folder has no image files${seen ? ` (found ${seen})` : ' (it is empty)'}`, {
      file: dir,
      hint: `Supported: .png .jpg .jpeg .gif .tif .tiff .webp .npy.${sub} ${LAYOUT_HINT}`,
    });
  }
  const bmp = files.filter((f) => extname(f).toLowerCase() === '.bmp');
  if (bmp.length > 0) {
    throw new DataError(`BMP files are not supported: ${listSome(bmp)}`, {
      file: dir,
      hint: 'Convert them to PNG first, e.g. `mogrify -format png *.bmp` (ImageMagick), then remove the .bmp files.',
    });
  }
  return files;
}

// ---------------------------------------------------------------------------------------------
// Dataset

export interface DatasetOptions {
  /** Resize factor (Pytorch-UNet `--scale`): `floor(scale * w)`. Default 1. */
  scale?: number;
  /** Known mask values (e.g. from a checkpoint). Otherwise call `scan()` before `get()`. */
  maskValues?: MaskValues;
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
  maskValues: MaskValues | undefined;
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
      `image is ${worst.width}×${worst.height}, ${at(worst)} at scale ${this.scale}, ${min > 1 ? `but the UNet needs at least ${min}×${min} pixels (it halves the size 4 times)` : 'which is empty'}${more}`,
      {
        file: worst.file,
        hint: s === null
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
      throw new DataError(
        `the images mix greyscale and colour: ${grey.length} greyscale (${listSome(grey, 3)}) and ${colour.length} colour (${listSome(colour, 3)})`,
        { file: dirname(this.pairs[0].image), hint: 'Pass --channels 1 (colour images are converted to greyscale, as PIL\'s convert(\'L\')) or --channels 3 (greyscale images are copied to R, G and B).' },
      );
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
          if (pending) { this.scanned.delete(i); this.cacheBytes -= pending.data.byteLength; }
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
      if (seen) { seen.count++; continue; }
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
      classIndex = maskToClassIndex(mask, maskValues);
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

/** A counting semaphore: at most `size` calls of `run` execute at once. */
export class Limiter {
  private active = 0;
  private readonly queue: (() => void)[] = [];

  constructor(readonly size: number) {
    if (!(size >= 1)) throw new RangeError(`workers must be >= 1, got ${size}`);
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active < this.size) this.active++;
    else await new Promise<void>((resolve) => this.queue.push(resolve)); // the slot is handed over
    try {
      return await fn();
    } finally {
      const next = this.queue.shift();
      if (next) next();
      else this.active--;
    }
  }
}
