/** The real `unet` parser without running anything: what `unet train ...` would hand to train(). */
import { type Handlers, buildProgram } from '../../src/cli/program.js';
import type { TrainConfig } from '../../src/config/options.js';

/** argv as typed after `unet`; a usage error comes back as commander's message. */
export async function parseTrain(argv: string[]): Promise<{ cfg?: TrainConfig; error?: string }> {
  let cfg: TrainConfig | undefined;
  let err = '';
  const handlers: Handlers = { train: async (c) => ((cfg = c), 0), predict: async () => 0, evaluate: async () => 0 };
  try {
    await buildProgram(handlers, { exitOverride: true, writeErr: (s) => (err += s) }).parseAsync(argv, { from: 'user' });
  } catch (e) {
    return { error: err || (e as Error).message };
  }
  return { cfg };
}
