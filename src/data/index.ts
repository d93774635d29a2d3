/** Data layer: reading images/masks, pairing, mask values, datasets, splits, augmentation, loading. */

export { DataError, type DataErrorOptions, listSome } from './errors.js';
export { IMAGE_EXTENSIONS, type FileFormat, type HeaderInfo, hasImageExtension, readHeader, sniffFormat } from './image/formats.js';
export { DEFAULT_MAX_PIXELS, type DataWarning, type ReadOptions } from './image/decode.js';
export { type ImageData, type ImageInfo, type RawImage, probeImage, readImage, readImageRaw } from './image/image.js';
export { type MaskData, type RawMask, readMask, readMaskRaw } from './image/mask-read.js';
export { greyToRgb, hwcToChw, rgbToLuma, toChwFloat32, toFloat32 } from './image/pixels.js';
export { type BicubicBands, MIN_SIDE, type PixelData, minScale, nearestIndexTable, bicubicBands, resampleBicubicFloat, resizeBicubic, resizeNearest, scaledSize } from './image/resize.js';
export {
  type CheckClassesOptions,
  type MaskLike,
  type MaskValue,
  type MaskValues,
  type RGB,
  type ScanOptions,
  IGNORE_CLASS,
  checkClasses,
  classIndexToMaskValues,
  formatMaskValues,
  isIgnoreValue,
  maskToClassIndex,
  mergeMaskValues,
  scanMaskValues,
  uniqueMaskValues,
  withoutIgnoreValue,
} from './masks.js';
export { AUTO_MASK_SUFFIXES, type ListPairsOptions, type Pair, type PairList, listPairs } from './pairs.js';
export { type DatasetOptions, type Sample, type StoredSample, SegmentationDataset } from './dataset.js';
export { Limiter, mapPool } from './pool.js';
export { Rng, type RngStateDict, mulberry32, randomSplit, shuffle } from './split.js';
export { type AugmentOptions, type AugmentParams, type AugmentSource, augment, augmentInto, sampleAugment } from './augment.js';
export { PAD_CLASS, type PatchDraw, type PatchOptions, type PatchPlace, type PatchSize, cropInto, drawPatch, patchInto, placePatch } from './patches.js';
export { type Batch, DataLoader, type LoaderOptions, type SampleSource } from './loader.js';
export { type DemoOptions, type JpegDatasetOptions, type WrittenDataset, demoMaskLevel, makeDemoDataset, makeJpegDataset } from './synthetic.js';
export { type NpyArray, type NpyDtype, encodeNpy, parseNpy } from './image/npy.js';
export { decodeGifIndices, encodeGifIndices } from './image/gif.js';
