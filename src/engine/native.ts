/** The one module that loads the native libtorch addon (native/torch_addon.cpp). */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Opaque handle to an at::Tensor held by the addon. */
export interface NativeHandle {
  readonly __brand: 'TensorHandle';
}

// The addon's functions are loosely typed here; src/engine/tensor.ts gives them their real types.
// biome-ignore lint/suspicious/noExplicitAny: native boundary
export type NativeModule = Record<string, (...args: any[]) => any>;

const here = dirname(fileURLToPath(import.meta.url));
// src/engine or dist/engine: the project root is two levels up.
const root = resolve(here, '..', '..');
const addonPath = join(root, 'build', 'unet_torch.node');

function load(): NativeModule {
  if (!existsSync(addonPath)) {
    throw Object.assign(new Error(
      `the libtorch addon is not built (${addonPath} is missing). Run \`node ${join(root, 'native', 'build.mjs')}\`: it builds it, or says what is missing (libtorch, g++); \`unet env\` shows what was found`,
    ), { code: 'ERR_ADDON_MISSING' });
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

/** The c10d entry points of native/distributed.cpp (typed in src/engine/distributed.ts). */
export interface NativeDistributed {
  distInit(o: { rank: number; worldSize: number; masterAddr: string; masterPort: number; timeoutMs: number; backend: string }): Promise<void>;
  distInfo(): { initialized: boolean; rank: number; worldSize: number; backend: string; gloo: boolean; nccl: boolean };
  distBroadcast(tensors: NativeHandle[], root: number): Promise<void>;
  distAllreduce(tensors: NativeHandle[], op: 'sum' | 'max' | 'min'): Promise<void>;
  distBarrier(): Promise<void>;
  distReducer(params: NativeHandle[], bucketCapMB: number): void;
  distBackward(loss: NativeHandle, sync: boolean): Promise<void>;
  distBatchNorm(x: NativeHandle, weight: NativeHandle, bias: NativeHandle, runningMean: NativeHandle, runningVar: NativeHandle, momentum: number, eps: number): NativeHandle;
  distDestroy(): Promise<void>;
}
export const D = N as unknown as NativeDistributed;
