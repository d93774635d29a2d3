/**
 * One scan of an input folder, shared by `unet predict -i DIR` and training's image/mask pairing:
 * the image files directly in it, and what is left out and why (sub-folders, other files, dangling
 * links, folders with an image name, files `unet predict` wrote next to their images).
 */
import { type Dirent, readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import { listSome } from './errors.js';
import { hasImageExtension } from './image/formats.js';

/** Stems of the files `unet predict` writes (`{stem}_OUT.png`, `{stem}_OVERLAY.png`, `{stem}_PROB<k>.png`). */
export const OUTPUT_STEM = /_(OUT|OVERLAY|PROB\d+)$/;

export interface FolderScan {
  /** Image file names (extension among IMAGE_EXTENSIONS), hidden files left out. */
  images: string[];
  /** Sub-folders (not image-named). */
  folders: string[];
  /** Files that are not images. */
  others: string[];
  /** Links that point nowhere, and folders with an image name (`x.png/`): skipped with a warning. */
  dangling: string[];
  imageNamedFolders: string[];
}

const stemOf = (name: string) => name.slice(0, name.length - extname(name).length);

/** Lists `dir` (throws the fs error when it cannot be read). */
export function scanImageFolder(dir: string): FolderScan {
  const scan: FolderScan = { images: [], folders: [], others: [], dangling: [], imageNamedFolders: [] };
  for (const e of readdirSync(dir, { withFileTypes: true }) as Dirent[]) {
    if (e.name.startsWith('.')) continue;
    let isFile = e.isFile();
    let isDir = e.isDirectory();
    if (e.isSymbolicLink()) {
      const st = statSync(join(dir, e.name), { throwIfNoEntry: false });
      if (!st) {
        scan.dangling.push(e.name);
        continue;
      }
      isFile = st.isFile();
      isDir = st.isDirectory();
    }
    const image = hasImageExtension(e.name);
    if (isDir && image) scan.imageNamedFolders.push(e.name);
    else if (isDir) scan.folders.push(e.name);
    else if (isFile && image) scan.images.push(e.name);
    else if (isFile) scan.others.push(e.name);
  }
  return scan;
}

/** The warnings for what a scan skipped silently before: dangling links and image-named folders. */
export function scanWarnings(dir: string, scan: FolderScan): string[] {
  const out: string[] = [];
  if (scan.dangling.length > 0) out.push(`${dir}: skipped ${scan.dangling.length} link(s) that point to nothing: ${listSome(scan.dangling, 5)}`);
  if (scan.imageNamedFolders.length > 0) out.push(`${dir}: skipped ${scan.imageNamedFolders.length} folder(s) named like images: ${listSome(scan.imageNamedFolders, 5)}`);
  return out;
}

/**
 * The images of `names` that `unet predict` wrote next to another image of the same folder
 * (`a_OUT.png` beside `a.jpg`): training leaves them out, as they are no training images.
 */
export function predictOutputs(names: readonly string[]): string[] {
  const stems = new Set(names.map(stemOf));
  return names.filter((n) => {
    const m = OUTPUT_STEM.exec(stemOf(n));
    return m !== null && stems.has(stemOf(n).slice(0, m.index));
  });
}
