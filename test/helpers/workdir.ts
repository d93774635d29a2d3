/** The test files' working folders: a fresh temp folder, and the demo dataset written into one. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { type DemoOptions, makeDemoDataset } from '../../src/data/index.js';

/** A new folder `<os tmp>/unet-<name>-XXXXXX`, removed with its contents after the file's tests. */
export function tempDir(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `unet-${name}-`));
  after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * tempDir(name) as `root`, and the demo dataset (`makeDemoDataset(data, opts)`: imgs/, masks/)
 * written to `<root>/<folder>` before the file's first test. Node 20 runs a file's top-level
 * `before` hooks concurrently, so a hook of the file's own that reads the dataset starts with
 * `await ready()` (the one write, shared).
 */
export function demoDataDir(name: string, opts: DemoOptions, folder = 'data'): { root: string; data: string; ready: () => Promise<void> } {
  const root = tempDir(name);
  const data = join(root, folder);
  let written: Promise<void> | undefined;
  const ready = () => (written ??= makeDemoDataset(data, opts).then(() => {}));
  before(ready);
  return { root, data, ready };
}
