/**
 * Optimizer base: parameter groups over a list of leaf tensors, per-parameter state, and
 * PyTorch-layout state dicts.
 *
 * Groups differ only in their lr (train --encoder-lr: the encoder's parameters get lr x factor);
 * every other hyper-parameter is the optimizer's. One group (a plain parameter list) is the
 * reference trainer's setup, and then `lr` is that group's lr, the plain number schedulers set.
 *
 * Memory contract: per-parameter state tensors are created inside `step()` (a tidy scope) and
 * `.keep()`-ed, so they live until the optimizer replaces them (`loadStateDict`) or `dispose()`.
 * Everything else a step creates (grad handles, foreach temporaries) dies with the step's scope.
 *
 * Numerics: every subclass follows PyTorch's `_multi_tensor_*` (foreach=True) code path op for op,
 * with one native foreach call per op over the whole list, and the scalar arithmetic (bias
 * corrections, 1 - beta...) done in JS doubles exactly as Python does it in floats.
 */
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import type { Stateful } from '../io/stateful.js';
import { ParamGroup, type ParamGroupInit } from './param-group.js';

export { ParamGroup, type ParamGroupInit } from './param-group.js';

/** Per-parameter state as PyTorch stores it. `null` is Python's None (SGD's momentum_buffer when momentum = 0). */
export type StateRecord = Record<string, Tensor | null>;

/**
 * `optimizer.state_dict()` in PyTorch's layout.
 * - `state`: parameter index -> state (only parameters that have state, as in PyTorch).
 * - `param_groups`: per group, hyper-parameters under PyTorch's keys, then `params` (indices
 *   numbered across the groups in order, as PyTorch numbers them).
 *   Numbers are plain JS numbers: lr, eps, betas, momentum... are Python floats in a PyTorch
 *   checkpoint, so the checkpoint writer must emit them as floats (see `PY_FLOAT_KEYS`).
 */
export interface OptimizerStateDict {
  state: Map<number, StateRecord>;
  param_groups: Array<Record<string, unknown>>;
}

/**
 * What `loadStateDict` accepts: our own `stateDict()` output, or a PyTorch checkpoint as read back
 * (state keyed by number or numeric string; `step` a tensor or a plain number, e.g. Debian
 * PyTorch 1.13's RMSprop stores an int).
 */
export interface LoadableOptimizerStateDict {
  state: Map<number | string, Record<string, Tensor | number | null>> | Record<string, Record<string, Tensor | number | null>>;
  param_groups: Array<Record<string, unknown>>;
}

/**
 * Options of `step()`. `foundInf` is how a GradScaler skips the step: a one-element tensor that is
 * non-zero when the unscaled gradients held an inf/NaN (read once, like PyTorch's
 * `_maybe_opt_step`, which syncs on `found_inf.item()`).
 */
export interface StepOptions {
  foundInf?: Tensor | null;
}

/** The subset of an optimizer that GradScaler and clipping need. */
export interface SteppableOptimizer {
  readonly params: Tensor[];
  step(opts?: StepOptions): boolean;
}

/** Python's `ValueError("Invalid ...: x")` checks. */
export function checkNonNegative(what: string, v: number): void {
  if (typeof v !== 'number' || !(v >= 0)) throw new RangeError(`Invalid ${what}: ${v}`);
}

/**
 * max(xs[i], ys[i]) written into xs[i] (torch._foreach_maximum_). The engine has no foreach
 * maximum yet, so this is one `maximum` + `copy_` per tensor; it switches to a native
 * `E.foreach.maximum_` automatically once the engine exposes one.
 */
export function foreachMaximum_(xs: Tensor[], ys: Tensor[]): void {
  const native = (E.foreach as unknown as { maximum_?: (a: Tensor[], b: Tensor[]) => void }).maximum_;
  if (native) return native(xs, ys);
  E.tidy(() => {
    for (let i = 0; i < xs.length; i++) xs[i].copy_(xs[i].maximum(ys[i]));
  });
}

/** -g for each g, as new tensors (torch._foreach_neg): never negates the stored .grad in place. */
export function foreachNeg(xs: Tensor[]): Tensor[] {
  const out = E.foreach.add(xs, 0); // a copy (x + 0)
  E.foreach.mul_(out, -1);
  return out;
}

/** zeros_like(p, memory_format=preserve): same dtype, device and strides (channels_last survives). */
export function zerosLike(p: Tensor): Tensor {
  return E.tidy(() => p.detach().clone('preserve').zero_());
}

/** The step counter tensor PyTorch keeps per parameter: `torch.tensor(0.)` (float32 scalar on CPU). */
function stepTensor(value: number): Tensor {
  return E.scalar(value, { dtype: 'float32', device: 'cpu' });
}

function isTensor(v: unknown): v is Tensor {
  return v instanceof E.Tensor;
}

function shapeEq(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export abstract class Optimizer implements SteppableOptimizer, Stateful<OptimizerStateDict, LoadableOptimizerStateDict> {
  /** The optimized leaf tensors; their order defines the state-dict indices. */
  readonly params: Tensor[];
  /** Per-parameter state (undefined until the parameter first gets a gradient). */
  protected readonly states: (StateRecord | undefined)[];
  /**
   * Host copy of each parameter's `state.step`: bias corrections need it as a number, and reading
   * the tensor would cost a sync per step (PyTorch 1.13 calls `.item()` on it; we do not need to).
   */
  protected readonly hostSteps: number[];
  /** The groups, in order; a plain parameter list is one group. */
  readonly paramGroups: ParamGroup[];

  /** PyTorch's class name, for messages. */
  abstract readonly name: string;

  protected constructor(groups: Tensor[] | ParamGroupInit[], lr: number) {
    const inits: ParamGroupInit[] = Array.isArray(groups) && groups.length > 0 && !isTensor(groups[0]) ? (groups as ParamGroupInit[]) : [{ params: groups as Tensor[] }];
    const params = inits.flatMap((g) => g.params);
    if (!Array.isArray(groups) || params.length === 0 || inits.some((g) => !Array.isArray(g.params) || g.params.length === 0)) throw new Error('optimizer got an empty parameter list');
    if (new Set(params).size !== params.length) throw new Error('some parameters appear more than once in the optimizer parameter list');
    for (const [i, p] of params.entries()) {
      if (!isTensor(p) || p.isDisposed) throw new TypeError(`parameter ${i} is not a live Tensor`);
      if (!p.isLeaf) throw new Error(`can't optimize a non-leaf Tensor (parameter ${i})`);
    }
    checkNonNegative('learning rate', lr);
    this.params = [...params];
    this.states = params.map(() => undefined);
    this.hostSteps = params.map(() => 0);
    let next = 0;
    this.paramGroups = inits.map(
      (g) =>
        new ParamGroup(
          g.params.map(() => next++),
          g.lr ?? lr,
        ),
    );
  }

  /** The learning rate of the first parameter group (the only one, unless groups were given); schedulers set each group's. */
  get lr(): number {
    return this.paramGroups[0].lr;
  }
  set lr(v: number) {
    this.paramGroups[0].lr = v;
  }
  /** The first group's `initial_lr` (see ParamGroup). */
  get initialLr(): number | undefined {
    return this.paramGroups[0].initialLr;
  }
  set initialLr(v: number | undefined) {
    this.paramGroups[0].initialLr = v;
  }
  /** Every group's lr, in order (a rollback to an optimizer step restores them). */
  get lrs(): number[] {
    return this.paramGroups.map((g) => g.lr);
  }
  set lrs(v: number[]) {
    if (v.length !== this.paramGroups.length) throw new Error(`${this.name}: ${v.length} learning rates for ${this.paramGroups.length} parameter groups`);
    v.forEach((lr, i) => (this.paramGroups[i].lr = lr));
  }

  // ---------------------------------------------------------------------------------------------
  // Subclass hooks

  /** Group hyper-parameters under PyTorch's keys and in its order (without `params`). */
  protected abstract groupHyper(): Record<string, unknown>;
  /** Sets hyper-parameters from a loaded group (validated); `lr` is handled by the base. */
  protected abstract loadGroupHyper(group: Record<string, unknown>): void;
  /** The tensor state keys each parameter must have under the current hyper-parameters (plus 'step' when `hasStep`). */
  protected abstract stateKeys(): string[];
  /** Whether the state has a `step` counter (all but SGD). */
  protected abstract readonly hasStep: boolean;
  /**
   * Applies one update to the parameters that have gradients. `idx` are their indices, `grads` the
   * gradient handles (aliases of `.grad`: never modify them in place), all of one group, whose lr
   * is `lr`. Runs under noGrad and tidy.
   */
  protected abstract update(idx: number[], params: Tensor[], grads: Tensor[], lr: number): void;

  // ---------------------------------------------------------------------------------------------
  // Step / grads

  /**
   * One optimization step over the parameters whose `.grad` is set (others are skipped, as in
   * PyTorch), group by group as PyTorch does. With `opts.foundInf` non-zero the step is skipped
   * (GradScaler). Returns whether the update ran.
   */
  step(opts: StepOptions = {}): boolean {
    if (opts.foundInf && opts.foundInf.item() !== 0) return false;
    E.tidy(() =>
      E.noGrad(() => {
        const all = E.grads(this.params);
        for (const group of this.paramGroups) {
          const idx = group.indices.filter((i) => all[i] !== null);
          if (idx.length === 0) continue;
          for (const chunk of this.params[idx[0]].device === 'cpu' ? cacheSizedChunks(idx, this.params) : [idx]) {
            E.tidy(() =>
              this.update(
                chunk,
                chunk.map((i) => this.params[i]),
                chunk.map((i) => all[i] as Tensor),
                group.lr,
              ),
            );
          }
        }
      }),
    );
    return true;
  }

  /** optimizer.zero_grad(set_to_none=True): drops every `.grad`. */
  zeroGrad(): void {
    E.clearGrads(this.params);
  }

  /**
   * Creates (and keeps) state for parameter i if it has none: `step` = tensor(0.) when the
   * optimizer counts steps, and zeros_like(param) for each of `keys`.
   */
  protected ensureState(i: number, keys: string[]): StateRecord {
    let s = this.states[i];
    if (s === undefined) {
      s = {};
      if (this.hasStep) s.step = stepTensor(0).keep();
      for (const k of keys) s[k] = zerosLike(this.params[i]).keep();
      this.states[i] = s;
      this.hostSteps[i] = 0;
    }
    return s;
  }

  /** state[i][key] as a tensor (present by construction). */
  protected st(i: number, key: string): Tensor {
    const t = this.states[i]?.[key];
    if (!t) throw new Error(`${this.name}: parameter ${i} has no '${key}' state`);
    return t;
  }

  /** `torch._foreach_add_(state_steps, 1)` plus the host copies. */
  protected incrementSteps(idx: number[]): void {
    E.foreach.add_(
      idx.map((i) => this.st(i, 'step')),
      1,
    );
    for (const i of idx) this.hostSteps[i] += 1;
  }

  // ---------------------------------------------------------------------------------------------
  // State dicts

  /**
   * PyTorch's `optimizer.state_dict()`. By default the state tensors are REFERENCES to the live
   * state (like PyTorch's): do not dispose them, and serialize them before the next `step()`
   * changes them. With `{ clone: true }` they are fresh copies the caller owns (dispose them, e.g.
   * with `E.dispose(sd.state)`).
   */
  stateDict(opts: { clone?: boolean } = {}): OptimizerStateDict {
    const state = new Map<number, StateRecord>();
    for (const [i, s] of this.states.entries()) {
      if (s === undefined) continue;
      const rec: StateRecord = {};
      for (const [k, v] of Object.entries(s)) rec[k] = v === null ? null : opts.clone ? E.tidy(() => v.clone()).keep() : v;
      state.set(i, rec);
    }
    const hyper = this.groupHyper();
    const param_groups = this.paramGroups.map((g) => {
      const group: Record<string, unknown> = { lr: g.lr, ...hyper };
      if (g.initialLr !== undefined) group.initial_lr = g.initialLr;
      group.params = [...g.indices];
      return group;
    });
    return { state, param_groups };
  }

  /**
   * PyTorch's `load_state_dict`: the saved groups' hyper-parameters replace the current ones (each
   * group's lr, the others from the first group), and the saved state is copied in (cast to each
   * parameter's dtype and device), so the caller keeps ownership of `sd`. Validates group count,
   * group sizes, state keys and shapes; on error nothing changes.
   */
  loadStateDict(sd: LoadableOptimizerStateDict): void {
    const where = `${this.name}.loadStateDict`;
    const { groups, posOf } = this.readGroups(sd, where);

    // Hyper-parameters first (the required state keys depend on them); restore them on failure.
    const backup = { lrs: this.paramGroups.map((g) => [g.lr, g.initialLr] as const), hyper: this.groupHyper() };
    const restoreLrs = (saved: readonly (readonly [number, number | undefined])[]) => saved.forEach(([lr, initialLr], i) => Object.assign(this.paramGroups[i], { lr, initialLr }));
    this.loadGroupHyper(groups[0].group);
    restoreLrs(groups.map((g) => [g.lr, g.initialLr] as const));

    const entries: Array<[unknown, Record<string, Tensor | number | null>]> = sd.state instanceof Map ? [...sd.state.entries()] : Object.entries(sd.state);
    const fresh: (StateRecord | undefined)[] = this.params.map(() => undefined);
    const freshSteps = this.params.map(() => 0);
    try {
      for (const [key, raw] of entries) {
        // a checkpoint reader may hand dicts over as Maps
        const rec = (raw instanceof Map ? Object.fromEntries(raw) : raw) as Record<string, Tensor | number | null>;
        const pos = posOf.get(Number(key));
        if (pos === undefined) throw new Error(`${where}: state for parameter id ${String(key)}, which is not in any param_groups' params`);
        if (rec === null || typeof rec !== 'object') throw new Error(`${where}: state for parameter ${pos} is not a dict`);
        fresh[pos] = {};
        freshSteps[pos] = this.loadParamState(rec, pos, fresh[pos] as StateRecord, where);
      }
    } catch (e) {
      for (const s of fresh) if (s) E.dispose(Object.values(s));
      restoreLrs(backup.lrs);
      this.loadGroupHyper({ ...backup.hyper });
      throw e;
    }
    for (const s of this.states) if (s) E.dispose(Object.values(s));
    for (let i = 0; i < this.params.length; i++) {
      this.states[i] = fresh[i];
      this.hostSteps[i] = freshSteps[i];
    }
  }

  /** The saved parameter groups, checked, with saved ids mapped to positions as PyTorch does. */
  private readGroups(sd: LoadableOptimizerStateDict, where: string) {
    if (!sd || !Array.isArray(sd.param_groups) || sd.state === undefined || sd.state === null) {
      throw new Error(`${where}: expected { state, param_groups }`);
    }
    const n = this.paramGroups.length;
    if (sd.param_groups.length !== n) {
      throw new Error(`${where}: loaded state dict has ${sd.param_groups.length} parameter groups; this optimizer has ${n} (train --encoder-lr makes two: continue with the same --encoder-lr)`);
    }
    // PyTorch maps saved ids to parameters by position, across the groups in order.
    const posOf = new Map<number, number>();
    const groups = sd.param_groups.map((raw: unknown, k) => {
      const group = (raw instanceof Map ? Object.fromEntries(raw) : raw) as Record<string, unknown>;
      if (group === null || typeof group !== 'object') throw new Error(`${where}: param_groups[${k}] is not a dict`);
      const ids = group.params;
      const want = this.paramGroups[k].indices;
      if (!Array.isArray(ids) || ids.length !== want.length) {
        throw new Error(`${where}: loaded state dict contains a parameter group that doesn't match the size of optimizer's group ` + `(${Array.isArray(ids) ? ids.length : 'no params list'} saved vs ${want.length} parameters)`);
      }
      ids.forEach((id, j) => posOf.set(Number(id), want[j]));
      const lr = group.lr;
      if (typeof lr !== 'number' || !(lr >= 0)) throw new Error(`${where}: param_groups[${k}].lr must be a non-negative number, got ${String(lr)}`);
      const initialLr = group.initial_lr;
      if (initialLr !== undefined && typeof initialLr !== 'number') throw new Error(`${where}: param_groups[${k}].initial_lr must be a number`);
      return { group, lr, initialLr: initialLr as number | undefined };
    });
    return { groups, posOf };
  }

  /** Copies one parameter's saved state into `out` (checked, cast as PyTorch's _cast); returns its step. */
  private loadParamState(rec: Record<string, Tensor | number | null>, pos: number, out: StateRecord, where: string): number {
    const p = this.params[pos];
    let step = 0;
    if (this.hasStep) {
      const rawStep = rec.step;
      if (typeof rawStep === 'number') step = rawStep;
      else if (isTensor(rawStep) && rawStep.numel === 1) step = rawStep.item();
      else throw new Error(`${where}: state for parameter ${pos} lacks a numeric 'step'`);
      if (!Number.isInteger(step) || step < 0) throw new Error(`${where}: state for parameter ${pos} has step ${step}; expected a non-negative integer`);
      out.step = stepTensor(step).keep();
    }
    for (const k of this.stateKeys()) {
      const v = rec[k];
      if (v === null && this.allowsNullState(k)) {
        // Python None: SGD re-creates the buffer from the next gradient.
        out[k] = null;
        continue;
      }
      if (!isTensor(v)) {
        throw new Error(`${where}: state for parameter ${pos} lacks tensor '${k}' (has: ${Object.keys(rec).join(', ') || 'nothing'}); was it saved by another optimizer or with other settings?`);
      }
      if (!shapeEq(v.shape, p.shape)) throw new Error(`${where}: state '${k}' of parameter ${pos} has shape [${v.shape}], the parameter has [${p.shape}]`);
      // PyTorch's _cast: floating state follows the parameter's dtype and device. A copy, so
      // the caller may dispose `sd`.
      out[k] = E.tidy(() => {
        const c = v.to({ device: p.device, dtype: p.dtype, copy: true });
        // keep the parameter's memory format (channels_last) as zeros_like would
        return p.isContiguous() || !p.isContiguous('channels_last') ? c : c.contiguous('channels_last');
      }).keep();
    }
    return step;
  }

  /** Whether a state key may be None (SGD's momentum_buffer). */
  protected allowsNullState(_key: string): boolean {
    return false;
  }

  /** Frees the optimizer state (the parameters are the caller's). */
  dispose(): void {
    for (const [i, s] of this.states.entries()) {
      if (s) E.dispose(Object.values(s));
      this.states[i] = undefined;
      this.hostSteps[i] = 0;
    }
  }

  /** Number of live state tensors (for leak checks). */
  stateTensorCount(): number {
    let n = 0;
    for (const s of this.states) if (s) for (const v of Object.values(s)) if (v) n++;
    return n;
  }
}

// -----------------------------------------------------------------------------------------------
// Loaded-group validation helpers

export function num(group: Record<string, unknown>, key: string, where: string): number {
  const v = group[key];
  if (typeof v !== 'number' || Number.isNaN(v)) throw new Error(`${where}: param_groups[0].${key} must be a number, got ${String(v)}`);
  return v;
}
export function bool(group: Record<string, unknown>, key: string, where: string, fallback?: boolean): boolean {
  const v = group[key];
  if (v === undefined && fallback !== undefined) return fallback; // keys added in later PyTorch versions
  if (typeof v !== 'boolean') throw new Error(`${where}: param_groups[0].${key} must be a boolean, got ${String(v)}`);
  return v;
}

/**
 * On CPU an update is memory-bound: running all of its ops over a few parameters at a time keeps
 * them in cache, where each op over all of a UNet's 31M weights streams every buffer through
 * memory once per op (UNet RMSprop step + clipping, B=2 256x256: 105 -> 80 ms).
 * CUDA keeps one list: fewer kernel launches.
 */
function cacheSizedChunks(idx: number[], params: Tensor[]): number[][] {
  const limit = 65_536; // elements: 256 KB per float32 buffer
  const chunks: number[][] = [];
  let cur: number[] = [];
  let size = 0;
  for (const i of idx) {
    const n = params[i].numel;
    if (cur.length > 0 && size + n > limit) {
      chunks.push(cur);
      cur = [];
      size = 0;
    }
    cur.push(i);
    size += n;
  }
  if (cur.length > 0) chunks.push(cur);
  return chunks;
}
