// Whole-file reads and writes of checkpoints and exports: errors name the file, and a write
// leaves either the old file or the complete new one, never a torn mix, even if the process
// dies mid-write.
import { randomBytes } from 'node:crypto';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { trackTemp } from './temp-files.js';

/** Read `path` and decode it; a decoding error is prefixed with the path. */
export async function readDecoded<T>(path: string, decode: (bytes: Uint8Array) => T): Promise<T> {
  const bytes = await readFile(path);
  try {
    return decode(bytes);
  } catch (err) {
    throw new Error(`${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Write chunks to `path` atomically: temp file in the same directory, fsync, rename. */
export async function writeFileAtomic(path: string, chunks: readonly Uint8Array[]): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fh = await open(tmp, 'wx');
  const untrack = trackTemp(tmp);
  try {
    for (const c of chunks) {
      for (let off = 0; off < c.length; ) off += (await fh.write(c, off, c.length - off)).bytesWritten;
    }
    await fh.sync();
    await fh.close();
  } catch (err) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    untrack();
    throw err;
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  } finally {
    untrack();
  }
  // Persist the rename itself; not every platform can fsync a directory, so this is best effort.
  try {
    const dh = await open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch {
    /* best effort */
  }
}

/** errno codes of failed file-system calls, in words (the CLI, checkpoints, predict and export say these). */
const ERRNO_WORDS: Readonly<Record<string, string>> = {
  EACCES: 'no permission',
  EPERM: 'no permission',
  EROFS: 'the file system is read-only',
  ENOSPC: 'the disk is full',
  EDQUOT: 'the disk quota is exhausted',
  ENOTDIR: 'a file is in the way (a path component is not a folder)',
  EEXIST: 'a file with that name is in the way',
  EISDIR: 'it is a folder, not a file',
};

/** Why a file-system call failed, in words, from its errno code; null for a code without words here. */
export const errnoWords = (e: unknown): string | null => ERRNO_WORDS[(e as NodeJS.ErrnoException | undefined)?.code ?? ''] ?? null;

/**
 * Why writing `path` failed, in words that name the file or folder (a full disk, a read-only or
 * unwritable folder), or null for other errors. Used by predict, evaluate and export.
 */
export function writeFailure(e: unknown, path: string, folder = dirname(path)): string | null {
  const code = (e as NodeJS.ErrnoException).code;
  const words = errnoWords(e);
  if (code === 'ENOSPC' || code === 'EDQUOT') return `cannot write ${path}: ${words}`;
  if (code === 'EROFS' || code === 'EACCES' || code === 'EPERM') return `cannot write ${path}: the folder ${folder} is not writable (${words})`;
  return null;
}
