/**
 * `unet predict -i`: files, folders and globs expanded to the image files to predict (sorted,
 * earlier outputs skipped).
 */
import { readdirSync, statSync } from 'node:fs';
import * as fs from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { IMAGE_EXTENSIONS } from '../data/index.js';
import { PredictError } from './predictor.js';

export interface InputEntry {
  /** The file to predict (or the argument that produced nothing). */
  input: string;
  /** Set when the argument could not give an image (missing file, empty folder, no glob match). */
  error?: string;
}

/** Stems of files this command writes; folders and globs skip them so a rerun does not predict its own outputs. */
export const OUTPUT_STEM = /_(OUT|OVERLAY|PROB\d+)$/;

const collator = new Intl.Collator('en', { numeric: true });
const byName = (a: string, b: string) => collator.compare(a, b);
const isImageName = (name: string) => (IMAGE_EXTENSIONS as readonly string[]).includes(extname(name).toLowerCase());
export const stemOf = (p: string) => basename(p, extname(p));
const MAGIC = /[*?[]/;

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

const escapeRe = (c: string) => c.replace(/[.+^${}()|\\\]]/g, '\\$&');

/** A glob in the last path segment only (`*`, `?`, `[abc]`, `[!abc]`), for Node versions without fs.globSync. */
export function globLastSegment(pattern: string): string[] {
  const dir = dirname(pattern);
  const base = basename(pattern);
  if (MAGIC.test(dir)) {
    throw new PredictError(`input pattern ${pattern}: wildcards are only supported in the last part of the path (e.g. data/imgs/*.png)`);
  }
  let re = '^';
  for (let i = 0; i < base.length; i++) {
    const ch = base[i];
    if (ch === '*') re += '.*';
    else if (ch === '?') re += '.';
    else if (ch === '[') {
      const end = base.indexOf(']', i + 2);
      if (end < 0) re += '\\[';
      else {
        let body = base.slice(i + 1, end);
        if (body.startsWith('!')) body = `^${body.slice(1)}`;
        re += `[${body.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += escapeRe(ch);
  }
  const rx = new RegExp(`${re}$`);
  let names: string[];
  try {
    names = readdirSync(dir === '' ? '.' : dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => rx.test(n) && (!n.startsWith('.') || base.startsWith('.')))
    .map((n) => (dir === '.' && !pattern.startsWith('./') ? n : join(dir, n)))
    .filter(isFile);
}

function globFiles(pattern: string): string[] {
  const g = (fs as unknown as { globSync?: (p: string) => string[] }).globSync;
  return typeof g === 'function' ? g(pattern).filter(isFile) : globLastSegment(pattern);
}

/**
 * Expands -i arguments: files as given; folders -> their image files (sorted, not recursive);
 * globs -> the matching image files (sorted). Folders and globs skip earlier outputs
 * (`*_OUT`, `*_OVERLAY`, `*_PROB<k>`). Duplicates are removed.
 */
export function expandInputs(args: readonly string[]): { entries: InputEntry[]; skippedOutputs: number } {
  const entries: InputEntry[] = [];
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
    let st: fs.Stats | null = null;
    try {
      st = statSync(arg);
    } catch {
      st = null;
    }
    if (st?.isDirectory()) {
      const files = readdirSync(arg)
        .filter((n) => !n.startsWith('.') && isImageName(n))
        .map((n) => join(arg, n))
        .filter(isFile);
      if (files.length === 0) entries.push({ input: arg, error: `folder has no image files (${IMAGE_EXTENSIONS.join(', ')})` });
      addListed(files);
    } else if (st) {
      add(arg);
    } else if (MAGIC.test(arg)) {
      const files = globFiles(arg).filter((f) => isImageName(f));
      if (files.length === 0) entries.push({ input: arg, error: 'no image files match this pattern' });
      addListed(files);
    } else {
      entries.push({ input: arg, error: 'file not found; check the path' });
    }
  }
  return { entries, skippedOutputs };
}
