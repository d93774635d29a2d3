/**
 * torch.nn.utils.clip_grad_norm_, op for op (PyTorch 1.13):
 *   total = norm(stack([norm(g, p) for g in grads]), p)      (p = inf: max |g|)
 *   coef  = clamp(max_norm / (total + 1e-6), max=1.0)
 *   g *= coef for every grad
 * The multiply always happens, with the coefficient as a one-element tensor, so there is no host
 * sync (when no clipping is needed the coefficient is exactly 1). `max_norm / x` is computed as
 * `x.reciprocal() * max_norm`, which is what Python's `float / Tensor` does.
 */
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';

export interface ClipOptions {
  /** Throw when the total norm is inf/NaN (costs a host sync). Default false, as PyTorch. */
  errorIfNonfinite?: boolean;
}

/**
 * Clips the gradients of `params` in place to a total `normType`-norm of at most `maxNorm` and
 * returns the total norm before clipping: a new scalar float tensor the caller owns (dispose it, or
 * call inside tidy). Params without a grad are ignored; with no grads at all it returns tensor(0.).
 * A non-finite total norm is returned as is (the grads are then multiplied by NaN, as in PyTorch);
 * the caller decides, e.g. the GradScaler has already skipped that step.
 */
export function clipGradNorm(params: Tensor[], maxNorm: number, normType = 2, opts: ClipOptions = {}): Tensor {
  if (typeof maxNorm !== 'number' || Number.isNaN(maxNorm)) throw new TypeError(`clipGradNorm: maxNorm must be a number, got ${maxNorm}`);
  if (typeof normType !== 'number' || Number.isNaN(normType)) throw new TypeError(`clipGradNorm: normType must be a number, got ${normType}`);
  return E.tidy(() =>
    E.noGrad(() => {
      const grads = E.grads(params).filter((g): g is Tensor => g !== null);
      if (grads.length === 0) return E.scalar(0);
      const device = grads[0].device;
      let total: Tensor;
      if (normType === Number.POSITIVE_INFINITY) {
        const norms = grads.map((g) => g.abs().amax().to({ device }));
        total = norms.length === 1 ? norms[0] : E.stack(norms).amax();
      } else if (normType === 2) {
        // One native call for the per-grad 2-norms (the engine returns them stacked, as float32).
        total = E.foreach.norm(grads).to({ device }).norm(2);
      } else {
        total = E.stack(grads.map((g) => g.norm(normType).to({ device }))).norm(normType);
      }
      if (opts.errorIfNonfinite && !Number.isFinite(total.item())) {
        throw new Error(
          `The total norm of order ${normType} for gradients from \`parameters\` is non-finite, so it cannot be clipped. To disable this error and scale the gradients by the non-finite norm anyway, set errorIfNonfinite = false`,
        );
      }
      const clipCoefClamped = total.add(1e-6).reciprocal().mul(maxNorm).clamp(null, 1.0);
      E.foreach.mul_(grads, clipCoefClamped);
      return total;
    }),
  );
}
