/**
 * GradScaler as torch.cuda.amp.GradScaler (PyTorch 1.13), for fp16 mixed precision.
 *
 *   scaler.scale(loss).backward()
 *   scaler.unscale_(optimizer)        // optional, once per step (e.g. before clipGradNorm)
 *   scaler.step(optimizer)            // unscales if needed; skips the step if a grad had inf/NaN
 *   scaler.update()                   // backoff on inf, growth after growthInterval clean steps
 *
 * State: `scale` (float32 [1]) and `growth_tracker` (int32 [1]) on the device of the first scaled
 * loss (or `device`), created lazily like PyTorch's.
 *
 * Kernels: on CUDA the native `_amp_foreach_non_finite_check_and_unscale_` / `_amp_update_scale_`
 * run without host syncs. libtorch 1.13 has no CPU kernels for them, so the first call per device
 * type tries the native op and, if it throws, switches that device type to the plain-op fallback
 * below for the rest of the process (same math: found_inf = 1 if any grad element is non-finite,
 * grads *= inv_scale; scale *= backoff on inf, or *= growth after `growthInterval` consecutive
 * clean steps, never growing to inf).
 *
 * When disabled every method is a pass-through: scale() returns the loss itself, step() just steps,
 * unscale_/update do nothing, getScale() is 1, stateDict() is {}.
 */
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import type { SteppableOptimizer } from './optimizer.js';
import type { Stateful } from '../io/stateful.js';

export interface GradScalerOptions {
  enabled?: boolean; // true
  initScale?: number; // 65536 (2^16)
  growthFactor?: number; // 2
  backoffFactor?: number; // 0.5
  growthInterval?: number; // 2000
  /** Device for the scale tensors; default: the device of the first loss passed to scale(). */
  device?: string;
}

/** torch.cuda.amp.GradScaler.state_dict() keys ({} when disabled). */
export interface GradScalerStateDict {
  scale?: number;
  growth_factor?: number;
  backoff_factor?: number;
  growth_interval?: number;
  _growth_tracker?: number;
}

type Stage = 'ready' | 'unscaled' | 'stepped';
interface PerOptimizerState {
  stage: Stage;
  /** device -> found_inf [1] float32 (kept until update()). */
  foundInfPerDevice: Map<string, Tensor>;
}

/** Per device type ('cpu', 'cuda'): whether the native amp kernels work there (cached after the first try). */
const nativeAmpWorks = new Map<string, boolean>();
const deviceType = (d: string): string => d.split(':')[0];

/**
 * Whether the native amp kernels worked on a device type ('cpu', 'cuda'): undefined until first
 * used there; false means the plain-op fallback is in use.
 */
export function nativeAmpKernels(type: string): boolean | undefined {
  return nativeAmpWorks.get(type);
}

/** For tests: forget which device types lack the native kernels. */
export function resetAmpKernelCache(): void {
  nativeAmpWorks.clear();
}

function tryNative(device: string, run: () => void): boolean {
  const type = deviceType(device);
  if (nativeAmpWorks.get(type) === false) return false;
  try {
    run();
    nativeAmpWorks.set(type, true);
    return true;
  } catch (e) {
    // The op is missing for this backend ("Could not run 'aten::_amp_...' with arguments from the
    // 'CPU' backend"): use plain ops from now on. Any other error on a backend that has worked is real.
    if (nativeAmpWorks.get(type) === true) throw e;
    nativeAmpWorks.set(type, false);
    return false;
  }
}

/** _amp_foreach_non_finite_check_and_unscale_ with ordinary ops (one device, one dtype). */
function unscaleFallback(grads: Tensor[], foundInf: Tensor, invScale: Tensor): void {
  E.tidy(() => {
    // all-finite per grad, then over the list; 1.0 when any element is inf/NaN
    const allFinite = E.stack(grads.map((g) => g.isfinite().all())).all();
    const nonFinite = allFinite.logicalNot().to({ dtype: 'float32', device: foundInf.device }).reshape([1]);
    foundInf.copy_(foundInf.maximum(nonFinite)); // the kernel only ever sets found_inf to 1
    E.foreach.mul_(grads, invScale);
  });
}

/** _amp_update_scale_ with ordinary (host) arithmetic: float32 scale, int32 tracker, as the kernel. */
function updateScaleFallback(scale: Tensor, growthTracker: Tensor, foundInf: Tensor, growth: number, backoff: number, interval: number): void {
  const cur = scale.item();
  if (foundInf.item() !== 0) {
    scale.fill_(Math.fround(cur * backoff));
    growthTracker.fill_(0);
    return;
  }
  const successful = growthTracker.item() + 1;
  if (successful === interval) {
    const next = Math.fround(cur * growth);
    if (Number.isFinite(next)) scale.fill_(next); // do not grow the scale past fp32 range
    growthTracker.fill_(0);
  } else {
    growthTracker.fill_(successful);
  }
}

export class GradScaler implements Stateful<GradScalerStateDict> {
  /** Whether scaling is on (fixed at construction). */
  readonly enabled: boolean;
  private initScale: number;
  private growthFactor: number;
  private backoffFactor: number;
  private growthInterval: number;
  private initGrowthTracker = 0;
  private readonly device: string | undefined;
  private scaleT: Tensor | null = null;
  private growthTrackerT: Tensor | null = null;
  private perOptimizer = new Map<SteppableOptimizer, PerOptimizerState>();

  constructor(o: GradScalerOptions = {}) {
    this.enabled = o.enabled ?? true;
    this.initScale = o.initScale ?? 2 ** 16;
    this.growthFactor = o.growthFactor ?? 2;
    this.backoffFactor = o.backoffFactor ?? 0.5;
    this.growthInterval = o.growthInterval ?? 2000;
    this.device = o.device;
    if (this.enabled) {
      if (!(this.growthFactor > 1)) throw new RangeError('The growth factor must be > 1.0.');
      if (!(this.backoffFactor < 1)) throw new RangeError('The backoff factor must be < 1.0.');
      if (!Number.isInteger(this.growthInterval) || this.growthInterval <= 0) throw new RangeError('The growth interval must be a positive integer.');
    }
  }

  isEnabled(): boolean {
    return this.enabled;
  }

  private lazyInit(device: string): void {
    if (this.scaleT) return;
    this.scaleT = E.full([1], this.initScale, { dtype: 'float32', device }).keep();
    this.growthTrackerT = E.full([1], this.initGrowthTracker, { dtype: 'int32', device }).keep();
  }

  private state(optimizer: SteppableOptimizer): PerOptimizerState {
    let s = this.perOptimizer.get(optimizer);
    if (!s) {
      s = { stage: 'ready', foundInfPerDevice: new Map() };
      this.perOptimizer.set(optimizer, s);
    }
    return s;
  }

  /**
   * loss * scale, a new tensor (shape [1] for a scalar loss, as in PyTorch). Disabled: returns
   * `loss` itself (not a copy).
   */
  scale(loss: Tensor): Tensor {
    if (!this.enabled) return loss;
    this.lazyInit(this.device ?? loss.device);
    const s = this.scaleT as Tensor;
    return E.tidy(() => loss.mul(s.device === loss.device ? s : s.to({ device: loss.device, nonBlocking: true })));
  }

  /**
   * Divides the optimizer's gradients by the scale in place and records whether any was inf/NaN.
   * At most once per optimizer between update() calls.
   */
  unscale_(optimizer: SteppableOptimizer): void {
    if (!this.enabled) return;
    this.checkInit('unscale_');
    const st = this.state(optimizer);
    if (st.stage === 'unscaled') throw new Error('unscale_() has already been called on this optimizer since the last update().');
    if (st.stage === 'stepped') throw new Error('unscale_() is being called after step().');
    const scale = this.scaleT as Tensor;
    E.tidy(() =>
      E.noGrad(() => {
        // inv_scale = 1 / scale computed in double, stored as float (PyTorch's exact recipe)
        const invScale = scale.to({ dtype: 'float64' }).reciprocal().to({ dtype: 'float32' });
        // group grads by device and dtype, as the native kernel requires
        const groups = new Map<string, { device: string; grads: Tensor[] }>();
        for (const g of E.grads(optimizer.params)) {
          if (g === null) continue;
          if (g.dtype === 'float16') throw new Error('Attempting to unscale FP16 gradients.');
          const key = `${g.device}|${g.dtype}`;
          const grp = groups.get(key);
          if (grp) grp.grads.push(g);
          else groups.set(key, { device: g.device, grads: [g] });
        }
        for (const { device, grads } of groups.values()) {
          let foundInf = st.foundInfPerDevice.get(device);
          if (!foundInf) {
            foundInf = E.zeros([1], { dtype: 'float32', device }).keep();
            st.foundInfPerDevice.set(device, foundInf);
          }
          const inv = invScale.device === device ? invScale : invScale.to({ device });
          const fi = foundInf;
          if (!tryNative(device, () => E.ampUnscale_(grads, fi, inv))) unscaleFallback(grads, fi, inv);
        }
      }),
    );
    st.stage = 'unscaled';
  }

  /**
   * Unscales (if unscale_ was not called) and steps the optimizer unless an inf/NaN was found.
   * Returns whether the optimizer stepped. Disabled: `optimizer.step()`.
   */
  step(optimizer: SteppableOptimizer): boolean {
    if (!this.enabled) return optimizer.step();
    this.checkInit('step');
    const st = this.state(optimizer);
    if (st.stage === 'stepped') throw new Error('step() has already been called since the last update().');
    if (st.stage === 'ready') this.unscale_(optimizer);
    if (st.foundInfPerDevice.size === 0) throw new Error('No inf checks were recorded for this optimizer.');
    // sum over devices on the scale's device; the optimizer skips when non-zero (one host read)
    const stepped = E.tidy(() => {
      const scaleDev = (this.scaleT as Tensor).device;
      let combined: Tensor | null = null;
      for (const fi of st.foundInfPerDevice.values()) {
        const v = fi.device === scaleDev ? fi : fi.to({ device: scaleDev });
        combined = combined === null ? v : combined.add(v);
      }
      return optimizer.step({ foundInf: combined });
    });
    st.stage = 'stepped';
    return stepped;
  }

  /**
   * Updates the scale from the inf checks of this iteration (or sets it to `newScale`) and resets
   * the per-optimizer records. Call once per iteration, after step() for every optimizer.
   */
  update(newScale?: number): void {
    if (!this.enabled) return;
    this.checkInit('update');
    const scale = this.scaleT as Tensor;
    const tracker = this.growthTrackerT as Tensor;
    try {
      if (newScale !== undefined) {
        scale.fill_(newScale);
        return;
      }
      const founds = [...this.perOptimizer.values()].flatMap((s) => [...s.foundInfPerDevice.values()]);
      if (founds.length === 0) throw new Error('No inf checks were recorded prior to update.');
      E.tidy(() => {
        let combined = founds[0].device === scale.device ? founds[0].clone() : founds[0].to({ device: scale.device });
        for (const f of founds.slice(1)) combined = combined.add(f.to({ device: scale.device }));
        const c = combined;
        const { growthFactor: gf, backoffFactor: bf, growthInterval: gi } = this;
        if (!tryNative(scale.device, () => E.ampUpdateScale_(scale, tracker, c, gf, bf, gi))) updateScaleFallback(scale, tracker, c, gf, bf, gi);
      });
    } finally {
      if (newScale !== undefined || this.perOptimizer.size > 0) this.resetPerOptimizer();
    }
  }

  private resetPerOptimizer(): void {
    for (const s of this.perOptimizer.values()) E.dispose([...s.foundInfPerDevice.values()]);
    this.perOptimizer = new Map();
  }

  private checkInit(fn: string): void {
    if (!this.scaleT || !this.growthTrackerT) {
      throw new Error(`Attempted ${fn} but the scale is not initialized. This may indicate your script did not use scaler.scale(loss or outputs) earlier in the iteration.`);
    }
  }

  /** The current scale as a number (a host read); initScale before the first scale(); 1 when disabled. */
  getScale(): number {
    if (!this.enabled) return 1.0;
    return this.scaleT ? this.scaleT.item() : this.initScale;
  }
  getGrowthFactor(): number {
    return this.growthFactor;
  }
  getBackoffFactor(): number {
    return this.backoffFactor;
  }
  getGrowthInterval(): number {
    return this.growthInterval;
  }
  private growthTrackerValue(): number {
    return this.growthTrackerT ? this.growthTrackerT.item() : this.initGrowthTracker;
  }

  /**
   * PyTorch's keys: scale (float), growth_factor (float), backoff_factor (float), growth_interval
   * (int), _growth_tracker (int). {} when disabled. Call after update().
   */
  stateDict(): GradScalerStateDict {
    if (!this.enabled) return {};
    return {
      scale: this.getScale(),
      growth_factor: this.growthFactor,
      backoff_factor: this.backoffFactor,
      growth_interval: this.growthInterval,
      _growth_tracker: this.growthTrackerValue(),
    };
  }

  /** No-op when disabled; throws on an empty dict (saved from a disabled scaler), as PyTorch. */
  loadStateDict(sd: GradScalerStateDict): void {
    if (!this.enabled) return;
    if (!sd || Object.keys(sd).length === 0) {
      throw new Error('The source state dict is empty, possibly because it was saved from a disabled instance of GradScaler.');
    }
    const need = (k: keyof GradScalerStateDict): number => {
      const v = sd[k];
      if (typeof v !== 'number' || Number.isNaN(v)) throw new Error(`GradScaler.loadStateDict: '${k}' must be a number, got ${String(v)}`);
      return v;
    };
    const scale = need('scale');
    const growth = need('growth_factor');
    const backoff = need('backoff_factor');
    const interval = need('growth_interval');
    const tracker = need('_growth_tracker');
    this.initScale = scale;
    this.scaleT?.fill_(scale);
    this.growthFactor = growth;
    this.backoffFactor = backoff;
    this.growthInterval = interval;
    this.initGrowthTracker = tracker;
    this.growthTrackerT?.fill_(tracker);
  }

  /** Frees the scale tensors and pending inf checks. */
  dispose(): void {
    this.resetPerOptimizer();
    this.scaleT?.dispose();
    this.growthTrackerT?.dispose();
    this.scaleT = null;
    this.growthTrackerT = null;
  }
}
