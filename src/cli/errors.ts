/**
 * Exit codes, and any error turned into a message for the user and an exit code; never a stack
 * trace for known errors. Errors are recognised by name, not by class: importing the classes would
 * load libtorch before `unet --version`, `--help` or `env` could run.
 */

/** One table for every command (README "Exit codes", `--help` epilogue). */
export const EXIT = {
  ok: 0,
  /** bad data, a missing or damaged file, a libtorch error, an unwritable folder */
  error: 1,
  /** predict/evaluate: some inputs failed and were skipped; the others were done */
  partial: 2,
  outOfMemory: 3,
  /** a bad flag, value or config file: nothing ran */
  usage: 64,
  /** SIGINT (Ctrl-C); train saves INTERRUPTED.pth first */
  interrupted: 130,
  /** SIGTERM; as SIGINT */
  terminated: 143,
} as const;

export const EXIT_CODES_HELP = [
  'Exit codes:',
  '  0    success',
  '  1    error (bad data, missing or damaged file, libtorch error); saved files are intact',
  '  2    partial failure: some inputs failed and were skipped (predict, evaluate)',
  '  3    out of memory (the message lists the remedies)',
  '  64   usage error: unknown flag, bad value or bad --config file; nothing ran',
  '  130  interrupted by Ctrl-C (SIGINT), 143 by SIGTERM; train saves INTERRUPTED.pth first',
].join('\n');

/** A command-line problem found outside the option parsers (e.g. nothing to --resume from). */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: number = EXIT.error,
  ) {
    super(message);
  }
}

export interface Report {
  message: string;
  exitCode: number;
}

const KNOWN = ['CliError', 'TrainError', 'PredictError', 'StateDictError', 'OptionError', 'CheckpointError', 'DataError', 'BenchError', 'DistError', 'DistConfigError'];

export function reportError(e: unknown): Report {
  const err = e instanceof Error ? e : new Error(String(e));
  const code = (err as { code?: string }).code;
  const exitCode = (err as { exitCode?: number }).exitCode ?? (err.name === 'OptionError' ? EXIT.usage : code === 'ERR_OUT_OF_MEMORY' ? EXIT.outOfMemory : EXIT.error);
  if (KNOWN.includes(err.name)) return { message: `error: ${err.message}`, exitCode };
  const path = (err as { path?: string }).path ?? '';
  if (code === 'ERR_TORCH' || code === 'ERR_OUT_OF_MEMORY') return { message: `error (libtorch): ${err.message}`, exitCode };
  if (code === 'ERR_DEVICE' || code === 'ERR_ADDON_MISSING') return { message: `error: ${err.message}`, exitCode };
  if (code === 'EACCES' || code === 'EROFS' || code === 'EPERM') {
    const why = code === 'EROFS' ? 'the file system is read-only' : 'no permission';
    return { message: `error: cannot write ${path}: ${why}; choose a writable directory (e.g. --checkpoint-dir, --logdir, --output-dir)`, exitCode: EXIT.error };
  }
  if (code === 'ENOTDIR' || code === 'EEXIST' || code === 'EISDIR') {
    const why = code === 'EISDIR' ? 'it is a folder, not a file' : 'a file is in the way of a folder';
    return { message: `error: cannot use ${path}: ${why}; choose another path (e.g. --checkpoint-dir, --logdir, --output-dir, -o)`, exitCode: EXIT.error };
  }
  if (code === 'ENOSPC' || code === 'EDQUOT') return { message: `error: the disk is full${path ? ` (writing ${path})` : ''}; free space and resume with --load (earlier checkpoints are intact)`, exitCode: EXIT.error };
  if (code === 'ENOENT') return { message: `error: file not found: ${path || err.message}`, exitCode: EXIT.error };
  // Unknown: still no stack trace unless asked for.
  return { message: `error: ${err.message}${process.env.UNET_DEBUG ? `\n${err.stack}` : '\n(set UNET_DEBUG=1 for details)'}`, exitCode };
}
