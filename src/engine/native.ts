/** The one module that loads the native libtorch addon (native/*.cpp), typed by native-contract.ts. */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { NativeModule } from './native-contract.js';

export type { NativeHandle, NativeModule } from './native-contract.js';

const here = dirname(fileURLToPath(import.meta.url));
// src/engine or dist/engine: the project root is two levels up.
const root = resolve(here, '..', '..');
const addonPath = join(root, 'build', 'unet_torch.node');

function load(): NativeModule {
  if (!existsSync(addonPath)) {
    throw Object.assign(new Error(`the libtorch addon is not built (${addonPath} is missing). Run \`node ${join(root, 'native', 'build.mjs')}\`: it builds it, or says what is missing (libtorch, g++); \`unet env\` shows what was found`), {
      code: 'ERR_ADDON_MISSING',
    });
  }
  const require = createRequire(import.meta.url);
  return require(addonPath) as NativeModule;
}

export const N: NativeModule = load();

/** Intra-op threads: libtorch 1.13 defaults to half the cores; we use all available ones. */
export function defaultThreads(): number {
  const env = process.env.UNET_THREADS;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (Number.isInteger(n) && n > 0) return n;
    throw new Error(`UNET_THREADS must be a positive integer, got '${env}'`);
  }
  return os.availableParallelism();
}

N.setNumThreads(defaultThreads());
