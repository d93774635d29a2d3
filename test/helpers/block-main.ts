/**
 * Loaded with `--import` before the CLI (see cli.ts `preload`): holds the main thread the way a
 * long synchronous libtorch call does, by busy-waiting
 *   UNET_TEST_BLOCK_FORWARD_MS  in every UNet forward pass (a training step), and
 *   UNET_TEST_BLOCK_SAVE_MS     in UNet stateDict() (the start of a checkpoint write), from the
 *                               call after the first UNET_TEST_BLOCK_SAVE_AFTER (default 0) on.
 * It patches the very module instance the CLI uses (same file URL).
 */
import { UNet } from '../../src/model/index.js';

function block(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // the main thread does nothing else meanwhile: no timers, no I/O callbacks, no signal handlers
  }
}

const forwardMs = Number(process.env.UNET_TEST_BLOCK_FORWARD_MS ?? 0);
const saveMs = Number(process.env.UNET_TEST_BLOCK_SAVE_MS ?? 0);
const saveAfter = Number(process.env.UNET_TEST_BLOCK_SAVE_AFTER ?? 0);
if (forwardMs > 0) {
  const forward = UNet.prototype.forward;
  UNet.prototype.forward = function (this: UNet, ...args: Parameters<UNet['forward']>) {
    block(forwardMs);
    return forward.apply(this, args);
  };
}
if (saveMs > 0) {
  const stateDict = UNet.prototype.stateDict;
  let calls = 0;
  UNet.prototype.stateDict = function (this: UNet, ...args: Parameters<UNet['stateDict']>) {
    if (++calls > saveAfter) block(saveMs);
    return stateDict.apply(this, args);
  };
}
