/**
 * Any error turned into a message for the user and an exit code; never a stack trace for a
 * UserError (src/config/errors.ts, no libtorch behind it, so `--version`, `--help` and `env` still
 * run without the addon) or a known system error.
 */
import { EXIT, UserError } from '../config/errors.js';
import { errnoWords } from '../io/files.js';

export { EXIT, EXIT_CODES_HELP } from '../config/errors.js';

/** A command-line problem found outside the option parsers (e.g. nothing to --resume from). */
export class CliError extends UserError {}

export interface Report {
  message: string;
  exitCode: number;
}

export function reportError(e: unknown): Report {
  if (e instanceof UserError) return { message: `error: ${e.message}`, exitCode: e.exitCode };
  const err = e instanceof Error ? e : new Error(String(e));
  const code = (err as { code?: string }).code;
  const exitCode = code === 'ERR_OUT_OF_MEMORY' ? EXIT.outOfMemory : EXIT.error;
  const path = (err as { path?: string }).path ?? '';
  if (code === 'ERR_TORCH' || code === 'ERR_OUT_OF_MEMORY') return { message: `error (libtorch): ${err.message}`, exitCode };
  if (code === 'ERR_DEVICE' || code === 'ERR_ADDON_MISSING') return { message: `error: ${err.message}`, exitCode };
  const why = errnoWords(err);
  if (code === 'EACCES' || code === 'EROFS' || code === 'EPERM') {
    return { message: `error: cannot write ${path}: ${why}; choose a writable directory (e.g. --checkpoint-dir, --logdir, --output-dir)`, exitCode: EXIT.error };
  }
  if (code === 'ENOTDIR' || code === 'EEXIST' || code === 'EISDIR') {
    return { message: `error: cannot use ${path}: ${why}; choose another path (e.g. --checkpoint-dir, --logdir, --output-dir, -o)`, exitCode: EXIT.error };
  }
  if (code === 'ENOSPC' || code === 'EDQUOT') return { message: `error: ${why}${path ? ` (writing ${path})` : ''}; free space and resume with --load (earlier checkpoints are intact)`, exitCode: EXIT.error };
  if (code === 'ENOENT') return { message: `error: file not found: ${path || err.message}`, exitCode: EXIT.error };
  // Unknown: still no stack trace unless asked for.
  return { message: `error: ${err.message}${process.env.UNET_DEBUG ? `\n${err.stack}` : '\n(set UNET_DEBUG=1 for details)'}`, exitCode };
}
