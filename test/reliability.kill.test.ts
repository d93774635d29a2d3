// kill -9 at random moments, many of them while a checkpoint is being written: every checkpoint
// on disk still loads, `--load` of the newest one resumes, and the temp files of killed writers
// are cleaned up by the next run. The real `unet train` in a subprocess, resumed from its newest
// checkpoint after every kill; --base-channels 16: 13 MB checkpoints, whose writes (with fsync)
// still take long enough to be hit, and steps of milliseconds.
//
// Three kinds of kill, in turn: at a random moment (0.3-4 s after start), right after a
// checkpoint temp file appears (0-40 ms into the write), and SIGINT followed by SIGKILL 0-400 ms
// later (during the INTERRUPTED.pth write). UNET_LONG_TESTS=1 kills 60 times instead of 12.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { assertNoCrashText, quickTrainArgs, runCli, spawnCli } from './helpers/cli.js';
import { prng } from './helpers/fixtures.js';
import { demoDataDir } from './helpers/workdir.js';

const NARROW = ['--base-channels', '16'];
const KILLS = process.env.UNET_LONG_TESTS === '1' ? 60 : 12; // 4 of each kind
const { root, data } = demoDataDir('rel-kill', { count: 2, size: 32, classes: 2, seed: 4 });
const work = join(root, 'work');
const ckptDir = join(work, 'checkpoints');

const isTemp = (f: string) => f.endsWith('.tmp');
const temps = () => (existsSync(ckptDir) ? readdirSync(ckptDir).filter(isTemp) : []);

/** name -> (size, mtime, inode) and the epoch/step of checkpoints already proven loadable. */
const verified = new Map<string, { key: string; epoch: number; step: number }>();
let loads = 0;

/**
 * Loads every new or changed .pth on disk (an unchanged file was proven loadable already: reloading
 * 207 MB files every round was most of this test's time); returns the newest by completed epoch, then mtime.
 */
async function verifyAll(label: string): Promise<{ path: string; epoch: number; step: number } | null> {
  if (!existsSync(ckptDir)) return null;
  let newest: { path: string; epoch: number; step: number; mtime: number } | null = null;
  for (const f of readdirSync(ckptDir).filter((x) => x.endsWith('.pth'))) {
    const path = join(ckptDir, f);
    const st = statSync(path);
    const key = `${st.size}:${st.mtimeMs}:${st.ino}`;
    let c = verified.get(f);
    if (c?.key !== key) {
      const ck = await loadCheckpoint(path).catch((e: Error) => assert.fail(`${label}: ${f} does not load after kill -9: ${e.message}`));
      assert.equal(ck.kind, 'unet-ts', f);
      assert.ok(ck.optimizer !== null && ck.rng !== null, `${f}: full resume state`);
      c = { key, epoch: ck.epoch, step: ck.globalStep };
      loads++;
      verified.set(f, c);
    }
    const better = !newest || c.epoch > newest.epoch || (c.epoch === newest.epoch && st.mtimeMs > newest.mtime);
    if (better) newest = { path, epoch: c.epoch, step: c.step, mtime: st.mtimeMs };
  }
  return newest;
}

test(`kill -9 ${KILLS} times, during checkpoint writes too: every checkpoint loads, --load of the newest resumes`, { timeout: 900_000 }, async (t) => {
  const rand = prng(20240611);
  const stats = { kills: 0, duringWrite: 0, duringInterruptedWrite: 0, interruptedSaved: 0, resumed: 0, staleTempsSeen: 0, maxEpoch: 0 };
  const t0 = performance.now();
  for (let i = 0; i < KILLS; i++) {
    const newest = await verifyAll(`kill ${i}`);
    stats.maxEpoch = Math.max(stats.maxEpoch, newest?.epoch ?? 0);
    if (temps().length > 0) stats.staleTempsSeen++;
    const args = quickTrainArgs(data, work, ['-e', '100000', '-b', '2', '--patience', '0', '--keep-last', '2', ...NARROW, ...(newest ? ['--load', newest.path] : [])]);
    const run = spawnCli(args, { cwd: root, timeoutMs: 120_000 });
    const mode = i % 3;
    const ownTemp = (name = '') => temps().some((f) => f.includes(`.${run.child.pid}.`) && f.startsWith(`.${name}`));
    const waitFor = async (cond: () => boolean, ms = 60_000) => {
      const deadline = performance.now() + ms;
      while (performance.now() < deadline && run.child.exitCode === null && !cond()) await sleep(5);
    };
    if (mode === 0) {
      await sleep(300 + rand() * 3700);
    } else if (mode === 1) {
      await waitFor(() => ownTemp());
      await sleep(rand() * 40);
    } else {
      await waitFor(() => /Starting training/.test(run.out()));
      await sleep(rand() * 2000);
      run.child.kill('SIGINT');
      await waitFor(() => ownTemp('INTERRUPTED'));
      await sleep(rand() * 100);
    }
    const tempAtKill = ownTemp();
    const interruptWrite = ownTemp('INTERRUPTED');
    run.child.kill('SIGKILL');
    const r = await run.done;
    assertNoCrashText(r, `kill ${i}`);
    assert.ok(r.signal === 'SIGKILL' || (mode === 2 && r.code === 130), `kill ${i}: ended by ${r.signal ?? `exit code ${r.code}`}\n${r.stderr.slice(-2000)}`);
    stats.kills++;
    if (tempAtKill) stats.duringWrite++;
    if (interruptWrite) stats.duringInterruptedWrite++;
    if (/Interrupted: saved/.test(r.stdout)) stats.interruptedSaved++;
    if (newest && new RegExp(`Resuming from ${newest.path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(epoch ${newest.epoch} done`).test(r.stdout)) stats.resumed++;
  }
  const newest = await verifyAll('after the last kill');
  assert.ok(newest, 'the runs wrote checkpoints');
  stats.maxEpoch = Math.max(stats.maxEpoch, newest.epoch);

  // The newest checkpoint resumes to the next epoch and a clean run leaves no temp files behind.
  const final = await runCli(quickTrainArgs(data, work, ['-e', String(newest.epoch + 1), '-b', '2', '--patience', '0', '--keep-last', '2', ...NARROW, '--load', newest.path]), {
    cwd: root,
    timeoutMs: 180_000,
  });
  assert.equal(final.code, 0, final.stderr);
  assert.match(final.stdout, new RegExp(`Resuming from .* \\(epoch ${newest.epoch} done`));
  const next = await loadCheckpoint(join(ckptDir, `checkpoint_epoch${newest.epoch + 1}.pth`));
  assert.equal(next.epoch, newest.epoch + 1);
  assert.equal(next.globalStep, newest.step + 1, 'one more optimizer step than the resumed checkpoint');
  assert.deepEqual(temps(), [], 'temp files of killed writers were removed');
  await verifyAll('final');

  t.diagnostic(
    `kills ${stats.kills} (${stats.duringWrite} while the victim was writing a checkpoint, ${stats.duringInterruptedWrite} of them INTERRUPTED.pth), INTERRUPTED.pth saved before the kill ${stats.interruptedSaved} times, ` +
      `resumed from the newest checkpoint ${stats.resumed} times, checkpoint loads verified ${loads}, highest epoch ${stats.maxEpoch}, ` +
      `leftover temp files seen ${stats.staleTempsSeen} times (all removed by the next run), ${((performance.now() - t0) / 1000).toFixed(0)} s`,
  );
  assert.equal(stats.kills, KILLS);
  assert.ok(stats.duringWrite >= Math.floor(KILLS / 4), `only ${stats.duringWrite} kills hit a checkpoint write`);
  assert.ok(stats.resumed >= Math.floor(KILLS / 3), `only ${stats.resumed} runs got as far as resuming`);
  assert.ok(stats.maxEpoch >= 3, 'training made progress across the kills');
});
