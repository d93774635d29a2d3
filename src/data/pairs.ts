/**
 * Image/mask pairs on disk: exact-name pairing of an images folder with a masks folder (the
 * reference's `<id>.<ext>` + `<id><mask_suffix>.<ext>`), with errors that say how to fix the layout.
 */

import { stat } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';
import { DataError, listSome } from './errors.js';
import { type FolderScan, predictOutputs, scanImageFolder, scanWarnings } from './folder.js';

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

export const LAYOUT_HINT = 'Expected layout: data/imgs/<id>.png and data/masks/<id>.png (same base names; masks may add a suffix such as _mask). ' + 'Point to your folders with --imgs DIR --masks DIR.';

/**
 * Pairs images and masks by exact base name (+ suffix): `1.png` never matches `10_mask.png`.
 * Hidden files and sub-folders are ignored, and so are the files `unet predict` wrote next to their
 * images (`a_OUT.png` beside `a.png`; one warning). Throws DataError for missing/empty folders, unpaired
 * files (unless `skipUnpaired`), several masks for one image and several images with one id.
 */
export async function listPairs(opts: ListPairsOptions): Promise<PairList> {
  if (resolve(opts.imgsDir) === resolve(opts.masksDir)) {
    throw new DataError('images and masks point to the same folder', {
      file: opts.imgsDir,
      hint: `Put the masks in a folder of their own. ${LAYOUT_HINT}`,
    });
  }
  const warnings: string[] = [];
  const images = await listImageFiles(opts.imgsDir, 'images', '--imgs', warnings);
  const masks = await listImageFiles(opts.masksDir, 'masks', '--masks', warnings);

  const imageById = groupByStem(images);
  const maskByStem = groupByStem(masks);
  const dupImages = [...imageById].filter(([, files]) => files.length > 1);
  if (dupImages.length > 0) {
    throw new DataError(`several images share one id: ${listSome(dupImages.map(([, f]) => f.join(' + ')))}`, {
      file: opts.imgsDir,
      hint: 'Keep one file per id (e.g. delete the .jpg copy of a .png), so that each image has exactly one mask.',
    });
  }

  const suffix = opts.maskSuffix === undefined || opts.maskSuffix === 'auto' ? detectSuffix(imageById, maskByStem) : opts.maskSuffix;

  const pairs: Pair[] = [];
  const noMask: string[] = [];
  const severalMasks: string[] = [];
  const usedMaskStems = new Set<string>();
  for (const [id, [image]] of imageById) {
    const found = maskByStem.get(id + suffix);
    if (!found) {
      noMask.push(image);
      continue;
    }
    usedMaskStems.add(id + suffix);
    if (found.length > 1) {
      severalMasks.push(`${id}: ${found.join(' + ')}`);
      continue;
    }
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

/** The AUTO_MASK_SUFFIXES entry that pairs the most images (the first one on ties). */
function detectSuffix(imageById: ReadonlyMap<string, string[]>, maskByStem: ReadonlyMap<string, string[]>): string {
  let suffix = AUTO_MASK_SUFFIXES[0];
  let best = -1;
  for (const s of AUTO_MASK_SUFFIXES) {
    let hits = 0;
    for (const id of imageById.keys()) if (maskByStem.has(id + s)) hits++;
    if (hits > best) {
      best = hits;
      suffix = s;
    }
  }
  return suffix;
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

/**
 * Image file names directly in `dir` (no hidden files, no sub-folders), less the outputs `unet
 * predict` wrote next to their images (`a_OUT.png` beside `a.png`): skipped with one warning, as
 * are dangling links and folders named like images.
 */
async function listImageFiles(dir: string, role: 'images' | 'masks', flag: string, warnings: string[]): Promise<string[]> {
  let scan: FolderScan;
  try {
    const st = await stat(dir);
    if (!st.isDirectory()) throw new DataError(`the ${role} path is not a folder`, { file: dir, hint: LAYOUT_HINT });
    scan = scanImageFolder(dir);
  } catch (err) {
    if (err instanceof DataError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    const what = code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? (err as Error).message})`;
    throw new DataError(`the ${role} folder ${what}`, { file: dir, hint: `${LAYOUT_HINT} (${flag} is the ${role} folder.)`, cause: err });
  }
  warnings.push(...scanWarnings(dir, scan));
  const outputs = new Set(predictOutputs(scan.images));
  if (outputs.size > 0) {
    warnings.push(`Skipped ${outputs.size} file(s) in ${dir} that \`unet predict\` wrote next to their images (*_OUT, *_OVERLAY, *_PROB<k>): ${listSome([...outputs], 5)}`);
  }
  const files = scan.images.filter((f) => !outputs.has(f));
  const { folders, others } = scan;
  if (files.length === 0) {
    const seen = [folders.length ? `${folders.length} sub-folder(s): ${listSome(folders, 5)}` : '', others.length ? `${others.length} other file(s): ${listSome(others, 5)}` : ''].filter(Boolean).join('; ');
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
