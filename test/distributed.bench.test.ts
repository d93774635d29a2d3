// `unet bench --nproc-per-node 2` on CPU: 2 workers x 1 thread (DDP over Gloo on 127.0.0.1) against
// one process x 2 threads on the same global batch. A narrow UNet at 32x32 keeps it to seconds;
// the figures themselves are measured by running it (README), here only their shape and sense.
import assert from 'node:assert/strict';
import test from 'node:test';
import { freePort } from './helpers/dist.js';
import { assertCleanFailure, runCli } from './helpers/cli.js';

const jsonLines = (s: string) =>
  s
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
const tiny = ['--device', 'cpu', '-b', '2', '--height', '32', '--width', '32', '--channels', '1', '--steps', '1', '--warmup', '0', '--width-divisor', '16'];

test('prints the data-parallel line, the one-process line and their images/s ratio, as JSON lines (--json accepted)', { timeout: 120_000 }, async () => {
  const r = await runCli(['bench', ...tiny, '--nproc-per-node', '2', '--master-port', String(await freePort()), '--json'], { timeoutMs: 110_000 });
  assert.equal(r.code, 0, r.stderr);
  const lines = jsonLines(r.stdout); // stdout is nothing but the JSON lines
  assert.equal(lines.length, 3, r.stdout);
  const [ddp, single, ratio] = lines;
  assert.deepEqual(
    {
      impl: ddp.impl,
      mode: ddp.mode,
      backend: ddp.backend,
      processes: ddp.processes,
      threads_per_process: ddp.threads_per_process,
      batch: ddp.batch,
      batch_per_process: ddp.batch_per_process,
      width_divisor: ddp.width_divisor,
    },
    { impl: 'unet-ts', mode: 'train-ddp', backend: 'gloo', processes: 2, threads_per_process: 1, batch: 2, batch_per_process: 1, width_divisor: 16 },
  );
  assert.deepEqual({ mode: single.mode, threads: single.threads, batch: single.batch, width_divisor: single.width_divisor }, { mode: 'train', threads: 2, batch: 2, width_divisor: 16 });
  for (const l of [ddp, single]) assert.ok((l.ms_per_step as number) > 0 && (l.img_per_s as number) > 0, JSON.stringify(l));
  assert.ok((ddp.ms_per_step_without_allreduce as number) > 0);
  const share = ddp.communication_share as number;
  assert.ok(share >= 0 && share <= 1, `communication share ${share}`);
  // The share is what a synchronised step spends beyond a local one (both rounded to 0.01 ms).
  const expected = Math.max(0, (ddp.ms_per_step as number) - (ddp.ms_per_step_without_allreduce as number)) / (ddp.ms_per_step as number);
  assert.ok(Math.abs(share - expected) < 2e-3, `share ${share}, from the step times ${expected}`);
  const want = (ddp.img_per_s as number) / (single.img_per_s as number);
  assert.ok(Math.abs((ratio.img_per_s_ratio_ddp_over_single as number) - want) <= 2e-3 + 0.01 * want, `ratio ${JSON.stringify(ratio)} vs ${want}`);
  console.log(`bench --nproc-per-node 2 took ${(r.ms / 1000).toFixed(1)} s`);
});

test('a global batch that does not split over the workers, and --width-divisor against another implementation, are refused in one line', async () => {
  assertCleanFailure(await runCli(['bench', '--device', 'cpu', '-b', '3', '--nproc-per-node', '2']), /--batch-size 3 must be a multiple of --nproc-per-node 2/);
  assertCleanFailure(await runCli(['bench', '--device', 'cpu', '--width-divisor', '16', '--reference', 'x.py']), /--width-divisor applies to our side only/);
});
