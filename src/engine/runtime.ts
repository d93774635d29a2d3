/** Threads, seeds, devices, backend flags, the CPU memory cache and versions (native/runtime.cpp). */
import type { BackendFlags, BuildInfo } from './native-contract.js';
import { N } from './native.js';
import { type Device, type Tensor, wrap } from './tensor.js';

export const setNumThreads = (n: number): void => N.setNumThreads(n);
export const getNumThreads = (): number => N.getNumThreads();
/** Seeds libtorch's default CPU (and CUDA) generators. */
export const manualSeed = (seed: number): void => N.manualSeed(seed);
/** The CPU generator state as a uint8 tensor (torch.get_rng_state()). */
export const getRngState = (): Tensor => wrap(N.getRngState());
export const setRngState = (state: Tensor): void => N.setRngState(state.h);
export const cudaIsAvailable = (): boolean => N.cudaIsAvailable();
export const cudaDeviceCount = (): number => N.cudaDeviceCount();
export const setBackendFlags = (f: BackendFlags): void => N.setFlags(f);
/** Frees the cached large CPU blocks and returns freed heap pages to the OS (glibc malloc_trim). */
export const mallocTrim = (): boolean => N.mallocTrim();
export const buildInfo = (): BuildInfo => N.buildInfo();

/** A device the user asked for that cannot be used; code ERR_DEVICE (the CLI prints it without a stack). */
const deviceError = (message: string): Error => Object.assign(new Error(message), { code: 'ERR_DEVICE' });

/** Resolves 'auto' to cuda when available, else cpu; checks explicit CUDA requests. */
export function resolveDevice(d: string): Device {
  if (d === 'auto') return cudaIsAvailable() ? 'cuda' : 'cpu';
  if (d === 'cpu') return 'cpu';
  const m = /^cuda(?::(\d+))?$/.exec(d);
  if (!m) throw deviceError(`unknown device '${d}': use auto, cpu, cuda or cuda:N`);
  if (!cudaIsAvailable()) throw deviceError(`--device ${d} was requested but CUDA is not available here (libtorch without CUDA, or no GPU); use --device cpu`);
  const idx = m[1] === undefined ? 0 : Number(m[1]);
  if (idx >= cudaDeviceCount()) throw deviceError(`--device ${d}: only ${cudaDeviceCount()} CUDA device(s) present; use --device cuda:0 or --device cpu`);
  return d as Device;
}
