/**
 * `unet predict -i`: files, folders and globs expanded to the image files to predict (sorted,
 * earlier outputs skipped). Globs go through tinyglobby (`*`, `?`, `[ab]`, `{a,b}`, `**`), as
 * Node 20 has no fs.globSync.
 */
import { statSync } from 'node:fs';
import type * as fs from 'node:fs';
import { basename, extname, isAbsolute, join, resolve } from 'node:path';
import { globSync, isDynamicPattern } from 'tinyglobby';
import { OUTPUT_STEM, scanImageFolder, scanWarnings } from '../data/folder.js';
import { IMAGE_EXTENSIONS, hasImageExtension } from '../data/index.js';

export { OUTPUT_STEM };

export interface InputEntry {
  /** The file to predict (or the argument that produced nothing). */
  input: string;
  /** Set when the argument could not give an image (missing file, empty folder, no glob match). */
  error?: string;
}

const collator = new Intl.Collator('en', { numeric: true });
const byName = (a: string, b: string) => collator.compare(a, b);
export const stemOf = (p: string) => basename(p, extname(p));

/** Image files matching a glob, as the user spelled the path (relative stays relative). */
function globFiles(pattern: string): string[] {
  return globSync(pattern, { absolute: isAbsolute(pattern), onlyFiles: true, expandDirectories: false }).filter(hasImageExtension);
}

/**
 * Expands -i arguments: files as given; folders -> their image files (sorted, not recursive);
 * globs -> the matching image files (sorted). Folders and globs skip earlier outputs
 * (`*_OUT`, `*_OVERLAY`, `*_PROB<k>`). Duplicates are removed.
 */
export function expandInputs(args: readonly string[]): { entries: InputEntry[]; skippedOutputs: number; warnings: string[] } {
  const entries: InputEntry[] = [];
  const warnings: string[] = [];
  const seen = new Set<string>();
  let skippedOutputs = 0;
  const add = (p: string) => {
    const key = resolve(p);
    if (seen.has(key)) return;
    seen.add(key);
    entries.push({ input: p });
  };
  const addListed = (files: string[]) => {
    for (const f of files.sort(byName)) {
      if (OUTPUT_STEM.test(stemOf(f))) skippedOutputs++;
      else add(f);
    }
  };
  for (const arg of args) {
    let st: fs.Stats | undefined;
    try {
      st = statSync(arg, { throwIfNoEntry: false });
    } catch {
      st = undefined;
    }
    if (st?.isDirectory()) {
      const scan = scanImageFolder(arg);
      warnings.push(...scanWarnings(arg, scan));
      const files = scan.images.map((n) => join(arg, n));
      if (files.length === 0) entries.push({ input: arg, error: `folder has no image files (${IMAGE_EXTENSIONS.join(', ')})` });
      addListed(files);
    } else if (st) {
      add(arg);
    } else if (isDynamicPattern(arg)) {
      const files = globFiles(arg);
      if (files.length === 0) entries.push({ input: arg, error: 'no image files match this pattern (quote it so the shell passes it as is; ** matches sub-folders)' });
      addListed(files);
    } else {
      entries.push({ input: arg, error: 'file not found; check the path' });
    }
  }
  return { entries, skippedOutputs, warnings };
}
