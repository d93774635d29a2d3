// The checkpoint folder through `unet train` (narrow UNet, subprocesses): another run's checkpoints
// are never overwritten silently, the guide's continuing workflows need no flag, one writer at a
// time (a lock file), and failures name the folder and leave no empty run directory.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadCheckpoint, prepareCheckpointDir } from '../src/model/checkpoint.js';
import { snapshotDir } from './helpers/cli.js';
import { startTs } from './helpers/dist.js';
import { demoDataDir } from './helpers/workdir.js';

const CLI = resolve(import.meta.dirname, 'helpers', 'tiny-cli.ts');
const LOCK = '.train.lock';
const { root, data } = demoDataDir('ckpt-dir', { count: 4, size: 32, classes: 2, seed: 11 });

/** 3 training images, 1 validation image, batch 1: 3 steps per epoch. */
const args = (work: string, extra: string[]) => [
  'train',
  '-s',
  '1',
  '-v',
  '25',
  '-b',
  '1',
  '--bilinear',
  '--device',
  'cpu',
  '--workers',
  '1',
  '--no-tensorboard',
  '--patience',
  '0',
  '--imgs',
  join(data, 'imgs'),
  '--masks',
  join(data, 'masks'),
  '--checkpoint-dir',
  join(work, 'checkpoints'),
  '--logdir',
  join(work, 'runs'),
  ...extra,
];
const train = (work: string, extra: string[]) => startTs(CLI, args(work, extra), { cwd: root, timeoutMs: 120_000 });
const runDirs = (work: string) => (existsSync(join(work, 'runs')) ? readdirSync(join(work, 'runs')) : []);

async function until(cond: () => boolean, what: string, ms = 60_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe('another run in the folder', () => {
  const work = join(root, 'shared');
  const ckpt = join(work, 'checkpoints');

  test('a second run is refused before any work, naming the other run (name, epoch, best Dice) and the ways out; nothing changes', { timeout: 120_000 }, async () => {
    const first = await train(work, ['-e', '2', '--name', 'first']).done;
    assert.equal(first.code, 0, first.out);
    const files = snapshotDir(ckpt);
    const runs = runDirs(work);
    const second = await train(work, ['-e', '1', '--name', 'second']).done;
    assert.equal(second.code, 1, second.out);
    assert.match(second.out, /holds the checkpoints of another run: run '\d{8}-\d{6}-first' \(epoch 2, best Dice 0\.\d{4}; checkpoint_epoch1\.pth, checkpoint_epoch2\.pth, best_model\.pth\)/);
    assert.match(second.out, /--exist-ok to replace that run, --resume to continue it, or --checkpoint-dir DIR/);
    assert.doesNotMatch(second.out, /Scanning|Run directory/, 'refused before any training work');
    assert.deepEqual(snapshotDir(ckpt), files, "the first run's checkpoints are untouched");
    assert.deepEqual(runDirs(work), runs, 'no run directory');
  });

  test("the guide's workflows continue in the same folder without a flag (-f checkpoint_epochN.pth, --resume), with a note naming what is replaced", { timeout: 120_000 }, async () => {
    const f = await train(work, ['-e', '3', '-f', join(ckpt, 'checkpoint_epoch1.pth')]).done;
    assert.equal(f.code, 0, f.out);
    assert.match(f.out, /Continuing in .*checkpoints from checkpoint_epoch1\.pth: this run replaces checkpoint_epoch2\.pth, best_model\.pth \(best_model\.pth only if the validation Dice improves/);
    assert.match(f.out, /Last checkpoint: +\S+checkpoint_epoch3\.pth/);
    const resumed = await train(work, ['-e', '4', '--resume']).done;
    assert.equal(resumed.code, 0, resumed.out);
    assert.match(resumed.out, /Resuming from \S+checkpoint_epoch3\.pth/);
    assert.match(resumed.out, /Continuing in /);
  });

  test("--exist-ok: interrupted before its first epoch ended, the summary names none of the other run's files", { timeout: 120_000 }, async () => {
    const run = train(work, ['-e', '50', '--exist-ok', '--name', 'third']);
    await until(() => /Run directory:/.test(run.out()) || run.child.exitCode !== null, 'the run directory');
    run.child.kill('SIGINT');
    const r = await run.done;
    assert.equal(r.code, 130, r.out);
    assert.match(r.out, /--exist-ok: this run replaces run '\S+' \(epoch 4, best Dice 0\.\d{4}; checkpoint_epoch1\.pth, checkpoint_epoch2\.pth, \.\.\., checkpoint_epoch4\.pth, best_model\.pth \(5 files\)\)/);
    assert.doesNotMatch(r.out, /Epoch 1\/50: loss/, 'interrupted within epoch 1');
    assert.match(r.out, /Best model: +none written/);
    const next = /Next: .*/.exec(r.out)?.[0] ?? '';
    assert.doesNotMatch(next, /best_model|checkpoint_epoch/, 'the hint names no file of the replaced run');
  });

  test("--exist-ok: the other run's checkpoints are removed when this run writes its first one; the summary names this run's files", { timeout: 120_000 }, async () => {
    const r = await train(work, ['-e', '1', '--exist-ok', '--name', 'fourth']).done;
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /--exist-ok: removed the other run's checkpoints from \S+checkpoints: /);
    assert.deepEqual(readdirSync(ckpt).sort(), ['best_model.pth', 'checkpoint_epoch1.pth']);
    assert.equal(basename((await loadCheckpoint(join(ckpt, 'best_model.pth'))).runDir ?? '').replace(/^\d{8}-\d{6}-/, ''), 'fourth');
    assert.match(r.out, new RegExp(`Next: unet predict -m ${join(ckpt, 'best_model.pth').replace(/[/.]/g, '\\$&')} -i IMAGE\n`));
  });
});

describe('one writer per folder', { concurrency: 2 }, () => {
  const lockOf = (work: string) => join(work, 'checkpoints', LOCK);
  const writeLock = (work: string, pid: number) => {
    mkdirSync(join(work, 'checkpoints'), { recursive: true });
    writeFileSync(lockOf(work), JSON.stringify({ pid, host: hostname(), started: '2026-01-01T00:00:00.000Z', what: 'unet train', token: 'x' }));
  };

  test('a running training holds the lock (pid, host, start time); a second writer is refused naming it; the lock goes on Ctrl-C', { timeout: 120_000 }, async () => {
    const work = join(root, 'locked');
    const a = train(work, ['-e', '50']);
    await until(() => /Starting training/.test(a.out()) || a.child.exitCode !== null, 'the first run to start');
    const held = JSON.parse(readFileSync(lockOf(work), 'utf8')) as { pid: number; host: string; started: string };
    assert.equal(held.pid, a.child.pid);
    assert.equal(held.host, hostname());
    assert.ok(Date.parse(held.started) > Date.now() - 120_000);
    const b = await train(work, ['-e', '1', '--exist-ok']).done;
    assert.equal(b.code, 1, b.out);
    assert.match(b.out, new RegExp(`is in use by another training: pid ${a.child.pid} on ${hostname()}, started ${held.started}`));
    assert.match(b.out, /--checkpoint-dir DIR/);
    assert.doesNotMatch(b.out, /Scanning/, 'refused before any work');
    a.child.kill('SIGINT');
    assert.equal((await a.done).code, 130);
    assert.equal(existsSync(lockOf(work)), false, 'released on the signal path');
  });

  test('a lock of a live process is refused; the stale lock of a dead process is taken over with a note and released at the end', { timeout: 120_000 }, async () => {
    const work = join(root, 'stale');
    writeLock(work, process.pid);
    const refused = await train(work, ['-e', '1']).done;
    assert.equal(refused.code, 1, refused.out);
    assert.match(refused.out, new RegExp(`in use by another training: pid ${process.pid} on ${hostname()}.*If that process is no longer running, delete \\S+${LOCK.replace('.', '\\.')}`));
    const dead = spawnSync('true').pid as number;
    writeLock(work, dead);
    const r = await train(work, ['-e', '1']).done;
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, new RegExp(`took over the stale lock \\S+ of pid ${dead} \\(started 2026-01-01T00:00:00.000Z\\), which is no longer running`));
    assert.equal(existsSync(lockOf(work)), false, 'released at the end');
  });
});

// A real full disk: a size-limited tmpfs (needs root; skipped with the reason otherwise), as test/reliability.disk.test.ts.
const mountProblem = ((): string | false => {
  if (process.platform !== 'linux') return 'tmpfs mounts need Linux';
  return spawnSync('mount', ['--version']).status === 0 && process.getuid?.() === 0 ? false : 'mounting a tmpfs needs root';
})();

describe('failures name the folder and leave nothing behind', { concurrency: 2 }, () => {
  test('a start that fails (the checkpoint folder is blocked by a file) leaves no run directory', { timeout: 60_000 }, async () => {
    const work = join(root, 'blocked');
    mkdirSync(work);
    writeFileSync(join(work, 'file'), 'in the way');
    const r = await startTs(CLI, [...args(work, ['-e', '1']), '--checkpoint-dir', join(work, 'file', 'checkpoints')], { cwd: root }).done;
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /cannot write checkpoints to \S+file\/checkpoints: a file is in the way/);
    assert.deepEqual(runDirs(work), [], 'no empty run directory left');
  });

  test('the disk fills while a checkpoint is written: the error names the file and its folder and what to do; the lock is released', { skip: mountProblem, timeout: 120_000 }, async () => {
    const work = join(root, 'full');
    const disk = join(work, 'disk');
    mkdirSync(disk, { recursive: true });
    // Narrow-UNet checkpoints are ~0.9 MB: epoch 1 and best_model.pth fit, epoch 2 does not.
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2300k', 'tmpfs', disk]);
    let r: Awaited<ReturnType<typeof startTs>['done']>;
    let left: string[];
    try {
      r = await startTs(CLI, [...args(work, ['-e', '3']), '--checkpoint-dir', disk], { cwd: root }).done;
      left = readdirSync(disk).sort();
    } finally {
      spawnSync('umount', [disk]); // before the temp folder is removed
    }
    assert.equal(r.code, 1, r.out);
    const dir = disk.replace(/[/.]/g, '\\$&');
    assert.match(r.out, new RegExp(`error: cannot write the checkpoint ${dir}/checkpoint_epoch2\\.pth: the disk is full\\. Free space in ${dir} \\(or choose another folder with --checkpoint-dir DIR\\)`));
    assert.match(r.out, new RegExp(`resume with --resume or --load an earlier checkpoint; the checkpoints already written in ${dir} are intact`));
    assert.deepEqual(left, ['best_model.pth', 'checkpoint_epoch1.pth'], 'no temp file, no lock left');
  });
});

test("a killed run's leftovers are removed, a live writer's kept: checkpoint temp files and the folder's write probe", async () => {
  // A kill -9 between the probe's write and its unlink left .write-test.<pid>.tmp (seen once in reliability.kill).
  const dir = join(root, 'leftovers');
  mkdirSync(dir, { recursive: true });
  const dead = spawnSync('true').pid as number;
  const live = process.ppid;
  const files = [`.checkpoint_epoch1.pth.${dead}.0123abcd.tmp`, `.write-test.${dead}.tmp`, `.checkpoint_epoch2.pth.${live}.0123abcd.tmp`, `.write-test.${live}.tmp`];
  for (const f of files) writeFileSync(join(dir, f), 'x');
  await prepareCheckpointDir(dir);
  assert.deepEqual(readdirSync(dir).sort(), [files[2], files[3]].sort());
});
