/**
 * Fault injection for subprocess tests, loaded with `--import` before the CLI (see cli.ts
 * `preload`). UNET_TEST_FAULT selects the fault:
 *
 *   oom@N   the N-th UNet forward pass throws what the addon throws on CUDA out-of-memory
 *           (an Error with code ERR_OUT_OF_MEMORY)
 *   nan@N   from the N-th forward pass on, the logits are NaN
 *
 * It patches UNet.prototype.forward of the very module instance the CLI uses (same file URL).
 */
import * as E from '../../src/engine/index.js';
import type { Tensor } from '../../src/engine/index.js';
import { UNet } from '../../src/model/index.js';

const spec = process.env.UNET_TEST_FAULT ?? '';
const m = /^(oom|nan)@(\d+)$/.exec(spec);
if (spec && !m) throw new Error(`UNET_TEST_FAULT: expected oom@N or nan@N, got '${spec}'`);
if (m) {
  const kind = m[1];
  const at = Number(m[2]);
  const forward = UNet.prototype.forward;
  let calls = 0;
  UNet.prototype.forward = function (this: UNet, x: Tensor): Tensor {
    calls++;
    if (kind === 'oom' && calls === at) {
      throw Object.assign(new Error('CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 7.79 GiB total capacity; 5.12 GiB already allocated)'), { code: 'ERR_OUT_OF_MEMORY' });
    }
    const y = forward.call(this, x);
    return kind === 'nan' && calls >= at ? y.mul(Number.NaN) : y;
  };
  process.stderr.write(`[fault injection: ${spec}]\n`);
}
export { E };
