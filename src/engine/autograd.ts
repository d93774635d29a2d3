/** Grad and inference modes, gradient lists, autocast and the AMP primitives (native/autograd.cpp). */
import { readFileSync } from 'node:fs';
import { N } from './native.js';
import { type Tensor, handlesOf as hs, wrap } from './tensor.js';

// ------------------------------------------------------------------------------------------------
// Autograd modes

/** Runs fn with gradient recording off (torch.no_grad). */
export function noGrad<T>(fn: () => T): T {
  const prev = N.setGradEnabled(false);
  try {
    return fn();
  } finally {
    N.setGradEnabled(prev);
  }
}
export const isGradEnabled = (): boolean => N.isGradEnabled();

/** Runs fn in torch.inference_mode (faster than noGrad; tensors made inside never need grad). */
export function inferenceMode<T>(fn: () => T): T {
  N.inferenceEnter();
  try {
    return fn();
  } finally {
    N.inferenceExit();
  }
}

/** Drops the .grad of each tensor (zero_grad(set_to_none=True)). */
export const clearGrads = (params: Tensor[]): void => N.clearGrads(hs(params));
/** The .grad of each tensor (null where none); new handles, dispose them. */
export const grads = (params: Tensor[]): (Tensor | null)[] => N.grads(hs(params)).map((g) => (g === null ? null : wrap(g)));

// ------------------------------------------------------------------------------------------------
// Mixed precision

export type AutocastDtype = 'float16' | 'bfloat16';

/** Runs fn under torch.autocast(deviceType, dtype). CPU supports bfloat16 only. */
export function autocast<T>(deviceType: 'cpu' | 'cuda', dtype: AutocastDtype, fn: () => T, enabled = true): T {
  if (!enabled) return fn();
  N.autocastEnter(deviceType, dtype, true);
  try {
    return fn();
  } finally {
    N.autocastExit();
  }
}
export const isAutocastEnabled = (deviceType: 'cpu' | 'cuda'): boolean => N.isAutocastEnabled(deviceType);

/** Runs fn under autocast on `device` (cpu, cuda[:N]) with `dtype`, or plainly when dtype is null (fp32). */
export function autocastOn<T>(device: string, dtype: AutocastDtype | null, fn: () => T): T {
  return dtype === null ? fn() : autocast(device.startsWith('cuda') ? 'cuda' : 'cpu', dtype, fn);
}

let nativeBf16: boolean | undefined;
/** Whether the CPU runs bf16 math natively (AVX512-BF16 or AMX); elsewhere oneDNN emulates it. */
export function cpuHasNativeBf16(): boolean {
  if (nativeBf16 === undefined) {
    try {
      nativeBf16 = /\b(avx512_bf16|amx_bf16)\b/.test(readFileSync('/proc/cpuinfo', 'utf8'));
    } catch {
      nativeBf16 = false;
    }
  }
  return nativeBf16;
}

/**
 * The autocast dtype `--amp` gets on a device: float16 on CUDA, bfloat16 on a CPU with native bf16,
 * null (fp32) on other CPUs, where emulated bf16 measured 38x slower than fp32 (UNet step, AVX2).
 * UNET_CPU_AMP=bf16 forces bf16 autocast on any CPU (tests, comparisons).
 */
export function ampDtypeFor(device: string): AutocastDtype | null {
  if (device.startsWith('cuda')) return 'float16';
  return cpuHasNativeBf16() || process.env.UNET_CPU_AMP === 'bf16' ? 'bfloat16' : null;
}

/** The one line users see when `--amp` is asked for on a CPU that gets fp32 instead. */
export const CPU_AMP_NOTE = '--amp: this CPU has no native bf16 instructions (avx512_bf16/amx_bf16); emulated bf16 is slower than fp32 here, so fp32 is used (UNET_CPU_AMP=bf16 forces bf16)';

/** torch._amp_foreach_non_finite_check_and_unscale_ (CUDA kernels only on libtorch < 2.3). */
export const ampUnscale_ = (grads: Tensor[], foundInf: Tensor, invScale: Tensor): void => N.ampUnscale_(hs(grads), foundInf.h, invScale.h);
/** torch._amp_update_scale_ (CUDA kernels only on libtorch < 2.3). */
export const ampUpdateScale_ = (scale: Tensor, growthTracker: Tensor, foundInf: Tensor, growth: number, backoff: number, interval: number): void => N.ampUpdateScale_(scale.h, growthTracker.h, foundInf.h, growth, backoff, interval);
