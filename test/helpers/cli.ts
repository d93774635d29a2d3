/**
 * Runs the real `unet` command line (src/cli/main.ts through tsx) in a subprocess, and checks
 * what a user would see: the exit code, the message, and no stack trace or native crash.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const MAIN = join(ROOT, 'src', 'cli', 'main.ts');
export const TSX = join(ROOT, 'node_modules', 'tsx', 'dist', 'esm', 'index.mjs');

export interface CliOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** Kill (SIGKILL) after this many ms; the result then has `timedOut`. Default 120 s. */
  timeoutMs?: number;
  /** Extra modules loaded with --import before the CLI (fault injection), absolute paths. */
  preload?: string[];
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  timedOut: boolean;
}

export function cliArgs(args: readonly string[], preload: readonly string[] = []): string[] {
  return ['--import', pathToFileURL(TSX).href, ...preload.flatMap((p) => ['--import', pathToFileURL(p).href]), MAIN, ...args];
}

/** Starts `unet <args>`; stdout/stderr are collected into the returned getters. */
export function spawnCli(args: readonly string[], o: CliOptions = {}): { child: ChildProcess; out: () => string; err: () => string; done: Promise<CliResult> } {
  const t0 = performance.now();
  const child = spawn(process.execPath, cliArgs(args, o.preload), {
    cwd: o.cwd ?? ROOT,
    // One intra-op thread: these runs test behaviour, and on two cores shared with the test runner
    // (or anything else) two OpenMP threads per trainer slow small steps down many times over.
    env: { ...process.env, NODE_OPTIONS: '', UNET_DEBUG: '', FORCE_COLOR: '0', UNET_THREADS: '1', ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => (stdout += s));
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, o.timeoutMs ?? 120_000);
  const done = new Promise<CliResult>((res) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      res({ code, signal, stdout, stderr, ms: performance.now() - t0, timedOut });
    });
  });
  return { child, out: () => stdout, err: () => stderr, done };
}

export function runCli(args: readonly string[], o: CliOptions = {}): Promise<CliResult> {
  return spawnCli(args, o).done;
}

/** Signs of a crash or of an unexplained error that must never reach the user. */
export const CRASH_MARKERS = [/Segmentation fault/i, /\bAborted\b/, /terminate called/, /core dumped/i, /SIGSEGV|SIGABRT|SIGBUS/, /FATAL ERROR/, /Exception raised from/, /frame #\d+/];
/** A JavaScript stack frame line ("    at fn (file:1:2)"). */
export const STACK_LINE = /^\s{4}at .+/m;

/** No stack lines, no crash markers, no "set UNET_DEBUG" fallback for an unknown error. */
export function assertNoCrashText(r: CliResult, label = ''): void {
  const all = `${r.stdout}\n${r.stderr}`;
  assert.doesNotMatch(all, STACK_LINE, `${label}: a stack trace reached the user:\n${r.stderr}`);
  for (const m of CRASH_MARKERS) assert.doesNotMatch(all, m, `${label}: crash marker ${m}:\n${r.stderr}`);
}

/**
 * A clean refusal: exits by itself with a non-zero code (not killed by a signal), within the
 * timeout, the message on stderr matches every pattern, and there is no stack or crash text.
 */
export function assertCleanFailure(r: CliResult, patterns: RegExp | RegExp[], label = '', code?: number): void {
  assert.equal(r.timedOut, false, `${label}: timed out\n${r.stderr}`);
  assert.equal(r.signal, null, `${label}: killed by ${r.signal}\n${r.stderr}`);
  if (code !== undefined) assert.equal(r.code, code, `${label}: exit code\n${r.stderr}`);
  else assert.ok(r.code !== 0 && r.code !== null, `${label}: exit code ${r.code}\n${r.stdout}\n${r.stderr}`);
  for (const p of [patterns].flat()) assert.match(r.stderr, p, `${label}: message`);
  assert.doesNotMatch(r.stderr, /set UNET_DEBUG=1 for details/, `${label}: an unexpected (unclassified) error:\n${r.stderr}`);
  assertNoCrashText(r, label);
}

/** name -> sha256 of every file under dir (recursively), to prove nothing saved was touched. */
export function snapshotDir(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  if (!existsSync(dir)) return out;
  const walk = (d: string, rel: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const r = rel ? `${rel}/${name}` : name;
      if (statSync(p).isDirectory()) walk(p, r);
      else out.set(r, createHash('sha256').update(readFileSync(p)).digest('hex'));
    }
  };
  walk(dir, '');
  return out;
}

/** The common flags of a quick CPU run on tiny data (bilinear, scale 1, 1 epoch, no validation). */
export function quickTrainArgs(data: string, work: string, extra: readonly string[] = []): string[] {
  return [
    'train',
    '--imgs',
    join(data, 'imgs'),
    '--masks',
    join(data, 'masks'),
    '--checkpoint-dir',
    join(work, 'checkpoints'),
    '--logdir',
    join(work, 'runs'),
    '--device',
    'cpu',
    '--bilinear',
    '-s',
    '1',
    '-e',
    '1',
    '-v',
    '0',
    '--workers',
    '2',
    '--no-tensorboard',
    ...extra,
  ];
}

/** Last value of a flag in an argv list (later flags win, as commander does). */
export function flagValue(args: readonly string[], flag: string): string | undefined {
  const i = args.lastIndexOf(flag);
  return i >= 0 ? args[i + 1] : undefined;
}
