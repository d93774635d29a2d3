/** Folder creation with the real reason on failure. */
import { mkdir } from 'node:fs/promises';

/**
 * `mkdir -p`. Node's recursive mkdir reports ENOENT for a read-only parent; a plain mkdir then
 * tells the truth (EACCES, EROFS...), so that is the error thrown.
 */
export async function makeDirs(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (e) {
    const plain = await mkdir(dir).then(
      () => null,
      (e2: NodeJS.ErrnoException) => e2,
    );
    throw plain && plain.code !== 'ENOENT' ? plain : e;
  }
}
