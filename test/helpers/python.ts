/** Runs Debian's PyTorch (/usr/bin/python3) for golden values; tests skip when it is missing. */
import { spawnSync } from 'node:child_process';

export const PYTHON = process.env.UNET_TEST_PYTHON ?? '/usr/bin/python3';

let cached: boolean | undefined;
/** True when /usr/bin/python3 can import torch. */
export function hasTorch(): boolean {
  if (cached === undefined) cached = spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
  return cached;
}
export const NO_TORCH = 'Debian python3-torch is not installed (/usr/bin/python3 -c "import torch" fails)';

/** Runs a Python script with `input` as JSON on stdin and parses the JSON it prints last. */
export function runPython<T = unknown>(script: string, input: unknown = null, timeoutMs = 300_000): T {
  const r = spawnSync(PYTHON, ['-c', script], {
    input: JSON.stringify(input),
    encoding: 'utf8',
    maxBuffer: 1 << 30,
    timeout: timeoutMs,
    env: { ...process.env, OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? '2' },
  });
  if (r.status !== 0) throw new Error(`python failed (${r.status}): ${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]) as T;
}

/** Max |a-b| and a tolerance check relative to the magnitude of b. */
export function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (Number.isNaN(d)) return Number.NaN;
    if (d > m) m = d;
  }
  return m;
}

export function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, atol: number, rtol: number, what: string): void {
  if (a.length !== b.length) throw new Error(`${what}: length ${a.length} != ${b.length}`);
  for (let i = 0; i < a.length; i++) {
    const tol = atol + rtol * Math.abs(b[i]);
    if (!(Math.abs(a[i] - b[i]) <= tol) && !(Number.isNaN(a[i]) && Number.isNaN(b[i]))) {
      throw new Error(`${what}: element ${i}: got ${a[i]}, expected ${b[i]} (max diff ${maxDiff(a, b)})`);
    }
  }
}
