/** Data layer: reading images/masks, pairing, mask values, datasets, splits, augmentation, loading. */

export { DataError, type DataErrorOptions } from './errors.js';
export { IMAGE_EXTENSIONS, type FileFormat, type HeaderInfo, hasImageExtension, readHeader, sniffFormat } from './formats.js';
export {
  DEFAULT_MAX_PIXELS,
  type DataWarning,
  type ImageData,
  type MaskData,
  type RawImage,
  type RawMask,
  type ReadOptions,
  readImage,
  readImageRaw,
  readMask,
  type ImageInfo,
  probeImage,
  greyToRgb,
  rgbToLuma,
  readMaskRaw,
  hwcToChw,
  toChwFloat32,
  toFloat32,
} from './image.js';
export { type BicubicBands, MIN_SIDE, type PixelData, minScale, nearestIndexTable, bicubicBands, resampleBicubicFloat, resizeBicubic, resizeNearest, scaledSize } from './resize.js';
export {
  type CheckClassesOptions,
  type MaskLike,
  type MaskValue,
  type MaskValues,
  type RGB,
  type ScanOptions,
  checkClasses,
  classIndexToMaskValues,
  formatMaskValues,
  mapPool,
  maskToClassIndex,
  mergeMaskValues,
  scanMaskValues,
  uniqueMaskValues,
} from './masks.js';
export {
  AUTO_MASK_SUFFIXES,
  type DatasetOptions,
  type ListPairsOptions,
  type Pair,
  type PairList,
  type Sample,
  type StoredSample,
  Limiter,
  SegmentationDataset,
  listPairs,
} from './dataset.js';
export { Rng, type RngStateDict, mulberry32, randomSplit, shuffle } from './split.js';
export { type AugmentOptions, type AugmentParams, type AugmentSource, augment, augmentInto, sampleAugment } from './augment.js';
export { type Batch, DataLoader, type LoaderOptions, type SampleSource } from './loader.js';
export { type DemoOptions, type JpegDatasetOptions, type WrittenDataset, demoMaskLevel, makeDemoDataset, makeJpegDataset } from './synthetic.js';
export { type NpyArray, type NpyDtype, encodeNpy, parseNpy } from './npy.js';
export { decodeGifIndices, encodeGifIndices } from './gif.js';
