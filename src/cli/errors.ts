/** Turns any error into a message for the user and an exit code; never a stack trace for known errors. */
import { DataError } from '../data/index.js';
import { CheckpointError } from '../train/checkpoint.js';
import { OptionError } from './options.js';

export interface Report {
  message: string;
  exitCode: number;
}

const KNOWN = ['TrainError', 'PredictError', 'StateDictError', 'OptionError', 'CheckpointError', 'DataError'];

export function reportError(e: unknown): Report {
  const err = e instanceof Error ? e : new Error(String(e));
  const exitCode = (err as { exitCode?: number }).exitCode ?? 1;
  if (err instanceof DataError || err instanceof CheckpointError || err instanceof OptionError || KNOWN.includes(err.name)) {
    return { message: `error: ${err.message}`, exitCode };
  }
  const code = (err as { code?: string }).code;
  if (code === 'ERR_TORCH' || code === 'ERR_OUT_OF_MEMORY') return { message: `error (libtorch): ${err.message}`, exitCode };
  if (code === 'EACCES' || code === 'EROFS' || code === 'EPERM') {
    return { message: `error: no permission to write ${(err as { path?: string }).path ?? ''}: choose a writable directory (e.g. --checkpoint-dir, --logdir, --output-dir)`, exitCode: 1 };
  }
  if (code === 'ENOSPC') return { message: 'error: the disk is full; free space and resume with --load (earlier checkpoints are intact)', exitCode: 1 };
  if (code === 'ENOENT') return { message: `error: file not found: ${(err as { path?: string }).path ?? err.message}`, exitCode: 1 };
  // Unknown: still no stack trace unless asked for.
  return { message: `error: ${err.message}${process.env.UNET_DEBUG ? `\n${err.stack}` : '\n(set UNET_DEBUG=1 for details)'}`, exitCode };
}
