/** Errors of the data layer: every message names the file and says what to do. */
import { EXIT, UserError } from '../config/errors.js';

export interface DataErrorOptions {
  /** The file (or folder) the problem is about. */
  file?: string;
  /** What the user can do about it, one sentence. */
  hint?: string;
  cause?: unknown;
}

/**
 * A problem with the user's data (missing, damaged or inconsistent files), as opposed to a bug.
 * `message` already contains the file and the hint, so printing it alone is enough; `file` and
 * `hint` are kept separately for callers that format errors themselves.
 */
export class DataError extends UserError {
  readonly file?: string;
  readonly hint?: string;

  constructor(problem: string, opts: DataErrorOptions = {}) {
    const where = opts.file !== undefined && !problem.includes(opts.file) ? `${opts.file}: ` : '';
    const hint = opts.hint ? `\n  Hint: ${opts.hint}` : '';
    super(`${where}${problem}${hint}`, EXIT.error, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.file = opts.file;
    this.hint = opts.hint;
  }
}

/** "a, b, c … and 7 more": keeps long lists of file names readable in error messages. */
export function listSome(names: readonly string[], max = 10): string {
  const shown = names.slice(0, max).join(', ');
  return names.length > max ? `${shown} … and ${names.length - max} more` : shown;
}
