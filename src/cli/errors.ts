/** Turns any error into a message for the user and an exit code; never a stack trace for known errors. */
import { DataError } from '../data/index.js';
import { CheckpointError } from '../train/checkpoint.js';
import { OptionError } from './options.js';

export interface Report {
  message: string;
  exitCode: number;
}

const KNOWN = ['TrainError', 'PredictError', 'StateDictError', 'OptionError', 'CheckpointError', 'DataError', 'BenchError'];

export function reportError(e: unknown): Report {
  const err = e instanceof Error ? e : new Error(String(e));
  const exitCode = (err as { exitCode?: number }).exitCode ?? 1;
  if (err instanceof DataError || err instanceof CheckpointError || err instanceof OptionError || KNOWN.includes(err.name)) {
    return { message: `error: ${err.message}`, exitCode };
  }
  const code = (err as { code?: string }).code;
  const path = (err as { path?: string }).path ?? '';
  if (code === 'ERR_TORCH' || code === 'ERR_OUT_OF_MEMORY') return { message: `error (libtorch): ${err.message}`, exitCode };
  if (code === 'ERR_DEVICE') return { message: `error: ${err.message}`, exitCode };
  if (code === 'EACCES' || code === 'EROFS' || code === 'EPERM') {
    const why = code === 'EROFS' ? 'the file system is read-only' : 'no permission';
    return { message: `error: cannot write ${path}: ${why}; choose a writable directory (e.g. --checkpoint-dir, --logdir, --output-dir)`, exitCode: 1 };
  }
  if (code === 'ENOTDIR' || code === 'EEXIST' || code === 'EISDIR') {
    const why = code === 'EISDIR' ? 'it is a folder, not a file' : 'a file is in the way of a folder';
    return { message: `error: cannot use ${path}: ${why}; choose another path (e.g. --checkpoint-dir, --logdir, --output-dir, -o)`, exitCode: 1 };
  }
  if (code === 'ENOSPC' || code === 'EDQUOT') return { message: `error: the disk is full${path ? ` (writing ${path})` : ''}; free space and resume with --load (earlier checkpoints are intact)`, exitCode: 1 };
  if (code === 'ENOENT') return { message: `error: file not found: ${path || err.message}`, exitCode: 1 };
  // Unknown: still no stack trace unless asked for.
  return { message: `error: ${err.message}${process.env.UNET_DEBUG ? `\n${err.stack}` : '\n(set UNET_DEBUG=1 for details)'}`, exitCode };
}
