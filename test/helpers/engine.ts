/** Test-side re-exports of the engine. */
export * as F from '../../src/engine/ops.js';
export type { Tensor } from '../../src/engine/tensor.js';
