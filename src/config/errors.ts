/**
 * Exit codes and the base class of every error the user sees as one line (no stack trace). One
 * table drives `EXIT`, the `--help` epilogue and (checked by test/cli.flags) README's table.
 */

/** Every exit code of every command, with what it means to the user. */
export const EXIT_CODES = [
  { name: 'ok', code: 0, meaning: 'success' },
  { name: 'error', code: 1, meaning: 'error: bad data, a missing or damaged file, a libtorch error, an unwritable folder; saved files are intact' },
  { name: 'partial', code: 2, meaning: 'partial failure: some inputs failed and were skipped, the others were written (predict, evaluate); 1 when nothing was written' },
  { name: 'outOfMemory', code: 3, meaning: 'out of memory (the message lists the remedies)' },
  { name: 'usage', code: 64, meaning: 'usage error: unknown flag, bad value, bad `--config` file, `--resume` with `--load`; nothing ran' },
  { name: 'interrupted', code: 130, meaning: 'interrupted by Ctrl-C (SIGINT); train finishes the step and saves `INTERRUPTED.pth` first (a second Ctrl-C stops at once)' },
  { name: 'terminated', code: 143, meaning: 'terminated by SIGTERM; as 130' },
] as const;

type ExitName = (typeof EXIT_CODES)[number]['name'];
export const EXIT = Object.fromEntries(EXIT_CODES.map((e) => [e.name, e.code])) as { readonly [K in ExitName]: number };

/** The `--help` epilogue of every command. */
export const EXIT_CODES_HELP = ['Exit codes:', ...EXIT_CODES.map((e) => `  ${String(e.code).padEnd(5)}${e.meaning.replaceAll('`', '')}`)].join('\n');

/**
 * A problem the user can fix (bad input, a missing file, a bad flag): the CLI prints
 * `error: <message>` and exits with `exitCode`, without a stack trace. Every user-facing error
 * class extends it; anything else reaching the CLI is a bug and says how to get details.
 */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.error,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}
