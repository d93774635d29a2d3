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
 * written to `<root>/<folder>` before the file's first test. Call it before the file's own
 * `before` hooks, which then see the dataset.
 */
export function demoDataDir(name: string, opts: DemoOptions, folder = 'data'): { root: string; data: string } {
  const root = tempDir(name);
  const data = join(root, folder);
  before(() => makeDemoDataset(data, opts).then(() => {}));
  return { root, data };
}
