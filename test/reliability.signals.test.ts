// Ctrl-C (SIGINT) and SIGTERM: the trainer finishes the current step, writes INTERRUPTED.pth
// atomically and exits with 130 / 143; the file loads and `--load` of it resumes. A second Ctrl-C
// stops at once, even inside long synchronous work. (A kill -9 during the INTERRUPTED.pth write
// is covered by reliability.kill.test.ts.)
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { listRuns } from '../src/tracking/index.js';
import { assertNoCrashText, quickTrainArgs, ROOT, runCli, snapshotDir, spawnCli } from './helpers/cli.js';
import { demoDataDir } from './helpers/workdir.js';

const { root, data } = demoDataDir('rel-signals', { count: 4, size: 32, classes: 2, seed: 6 });
/** A narrow UNet (13 MB checkpoints); block-main.ts gives its steps the length of real ones. */
const NARROW = ['--base-channels', '16'];
const BLOCK = join(ROOT, 'test', 'helpers', 'block-main.ts');

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

for (const [signal, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  test(`${signal} mid-epoch: INTERRUPTED.pth written atomically, exit code ${code}, and --load of it resumes`, { timeout: 300_000 }, async () => {
    const work = join(root, signal);
    const ckpt = join(work, 'checkpoints');
    // 4 images, batch 1: 4 steps of 500 ms per epoch. Wait for epoch 1's checkpoint, then signal in epoch 2.
    const run = spawnCli(quickTrainArgs(data, work, ['-b', '1', '-e', '50', '--patience', '0', ...NARROW]), {
      cwd: root,
      timeoutMs: 240_000,
      preload: [BLOCK],
      env: { UNET_TEST_BLOCK_FORWARD_MS: '500' },
    });
    await until(() => existsSync(join(ckpt, 'checkpoint_epoch1.pth')) || run.child.exitCode !== null, 180_000, 'the first checkpoint');
    await until(() => /Epoch 1\/50: loss/.test(run.out()), 30_000, 'the epoch summary');
    await sleep(1000); // inside epoch 2's steps: the trainer handles the signal after the current step
    const sentAt = performance.now();
    run.child.kill(signal);
    const r = await run.done;
    const seconds = (performance.now() - sentAt) / 1000;
    assertNoCrashText(r, signal);
    assert.equal(r.signal, null, `${signal}: the process handled the signal (not killed by it)`);
    assert.equal(r.code, code, r.stderr.slice(-2000));
    assert.match(r.stderr, new RegExp(`${signal}: finishing the current step, then saving INTERRUPTED\\.pth \\(${signal === 'SIGINT' ? 'press Ctrl-C again' : 'signal again'} to stop at once\\)`));
    assert.match(r.stdout, /Interrupted: saved .*INTERRUPTED\.pth/);
    assert.match(r.stdout, /Training interrupted\./);
    assert.ok(seconds < 60, `stopped ${seconds.toFixed(1)} s after the signal`);
    assert.deepEqual(
      readdirSync(ckpt).filter((f) => f.endsWith('.tmp')),
      [],
      'no temp file left',
    );
    assert.equal((await listRuns(join(work, 'runs')))[0]?.status, 'interrupted', 'the dashboard says interrupted, not finished');

    const c = await loadCheckpoint(join(ckpt, 'INTERRUPTED.pth'));
    assert.equal(c.kind, 'unet-ts');
    assert.ok(c.epoch >= 1, `INTERRUPTED.pth records the last completed epoch (${c.epoch})`);
    assert.ok((c.position?.batch ?? 0) > 0, `stopped inside the epoch, after the current step (position ${JSON.stringify(c.position)})`);
    assert.ok(c.optimizer !== null && c.rng !== null && c.scheduler !== null);

    // Resume: the interrupted epoch continues at its next batch (train.resume.test.ts checks it is exact);
    // a signal that lands on an epoch's last step leaves a position at batch 0, which the log does not mention.
    const resumed = await runCli(quickTrainArgs(data, work, ['-b', '1', '-e', String(c.epoch + 1), '--patience', '0', ...NARROW, '--load', join(ckpt, 'INTERRUPTED.pth')]), {
      cwd: root,
      timeoutMs: 180_000,
    });
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(
      resumed.stdout,
      new RegExp(`Resuming from .*INTERRUPTED\\.pth \\(epoch ${c.epoch} done, step ${c.globalStep}${c.position && c.position.batch > 0 ? `; epoch ${c.epoch + 1} continues at batch ${c.position.batch + 1}` : ''}\\)`),
    );
    assert.match(resumed.stdout, new RegExp(`Epoch ${c.epoch + 1}/${c.epoch + 1}: loss`));
    assert.equal((await loadCheckpoint(join(ckpt, `checkpoint_epoch${c.epoch + 1}.pth`))).epoch, c.epoch + 1);
  });
}

test("a signal before training starts still ends cleanly with the signal's exit code", { timeout: 120_000 }, async () => {
  const work = join(root, 'early');
  const run = spawnCli(quickTrainArgs(data, work, ['-b', '1', '-e', '50']), { cwd: root, timeoutMs: 120_000 });
  await until(() => /Scanning/.test(run.out()) || run.child.exitCode !== null, 60_000, 'the start');
  run.child.kill('SIGTERM');
  const r = await run.done;
  assertNoCrashText(r, 'early SIGTERM');
  assert.equal(r.signal, null);
  assert.equal(r.code, 143, r.stderr);
  const f = join(work, 'checkpoints', 'INTERRUPTED.pth');
  if (existsSync(f)) assert.equal((await loadCheckpoint(f)).kind, 'unet-ts');
});

test('a second Ctrl-C stops at once, even inside long synchronous work: exit 130, the checkpoints already written intact', { timeout: 180_000 }, async () => {
  const work = join(root, 'twice');
  const ckpt = join(work, 'checkpoints');
  // Each forward pass holds the main thread 1.5 s, as long libtorch calls do, and so does each
  // checkpoint's stateDict() after epoch 1's two (3 s). 4 images in batches of 2: 2 steps per epoch.
  const run = spawnCli(quickTrainArgs(data, work, ['-b', '2', '-e', '50', '--patience', '0', ...NARROW]), {
    cwd: root,
    timeoutMs: 150_000,
    preload: [BLOCK],
    env: { UNET_TEST_BLOCK_FORWARD_MS: '1500', UNET_TEST_BLOCK_SAVE_MS: '3000', UNET_TEST_BLOCK_SAVE_AFTER: '2' },
  });
  await until(() => existsSync(join(ckpt, 'best_model.pth')) || run.child.exitCode !== null, 120_000, "epoch 1's checkpoints");
  // The writer lock is not a checkpoint: a process stopped by the signal's default action cannot
  // remove it, and the next run takes the dead process's lock over (train.checkpoint-dir.test.ts).
  const LOCK = '.train.lock';
  const written = snapshotDir(ckpt);
  assert.ok(written.delete(LOCK), 'the running trainer holds the lock');
  assert.deepEqual([...written.keys()].sort(), ['best_model.pth', 'checkpoint_epoch1.pth']);
  await sleep(200); // in epoch 2
  run.child.kill('SIGINT');
  await until(() => /press Ctrl-C again to stop at once/.test(run.err()) || run.child.exitCode !== null, 30_000, "the first Ctrl-C's message");
  // the trainer now saves INTERRUPTED.pth, which starts with 3 s of synchronous work
  const sentAt = performance.now();
  run.child.kill('SIGINT');
  const r = await run.done;
  const seconds = (performance.now() - sentAt) / 1000;
  assertNoCrashText(r, 'second SIGINT');
  // killed by the signal's default action (a shell reports 130), or exit(130) when JavaScript saw it first
  assert.ok(r.signal === 'SIGINT' || r.code === 130, `exit ${r.code} / ${r.signal}\n${r.stderr.slice(-1500)}`);
  assert.ok(seconds < 1.5, `stopped ${seconds.toFixed(2)} s after the second Ctrl-C (the save alone holds the thread 3 s)`);
  assert.doesNotMatch(r.stdout, /Interrupted: saved/);
  // what was written is intact; a write cut short could leave only its temp file
  const left = snapshotDir(ckpt);
  for (const [f, hash] of written) assert.equal(left.get(f), hash, `${f} unchanged`);
  assert.ok(!left.has('INTERRUPTED.pth'), 'the save was skipped');
  for (const f of [...left.keys()].filter((f) => !written.has(f) && !f.endsWith('.tmp') && f !== LOCK)) await loadCheckpoint(join(ckpt, f)); // complete
});
