// Disks that fill up and folders that cannot be written, with real size-limited and read-only
// file systems (tmpfs mounts; the test needs root and skips with the reason otherwise):
//  - the disk fills while a checkpoint is written: the run stops with "disk is full", the temp
//    file is removed, the earlier checkpoints are intact and resume;
//  - a disk that is already full, or a read-only checkpoint folder, is refused before training;
//  - a full disk under the run directory (logs) does not stop training;
//  - `unet predict` into a read-only folder says so;
//  - predict, evaluate and export on a disk that fills keep the earlier outputs intact (temp file,
//    then rename), leave no temp or 0-byte files, and say which file and that the disk is full;
//    `export --format web` to a read-only place says the folder is not writable.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, statfsSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeDemoDataset } from '../src/data/index.js';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { assertCleanFailure, assertNoCrashText, quickTrainArgs, runCli, snapshotDir } from './helpers/cli.js';

let root = '';
let data = '';
const mounts: string[] = [];

function mountTmpfs(dir: string, sizeBytes: number, readOnly = false): void {
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${Math.ceil(sizeBytes / 4096) * 4096}${readOnly ? ',ro' : ''}`, 'tmpfs', dir], { stdio: 'pipe' });
  mounts.push(dir);
}

const mountProblem = ((): string | false => {
  if (process.platform !== 'linux') return 'tmpfs mounts need Linux';
  const probe = mkdtempSync(join(tmpdir(), 'unet-mount-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', probe], { stdio: 'pipe' });
    execFileSync('umount', [probe], { stdio: 'pipe' });
    return false;
  } catch (e) {
    return `cannot mount a size-limited tmpfs here (needs root or CAP_SYS_ADMIN): ${(e as Error).message.split('\n')[0]}`;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
})();

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'unet-rel-disk-'));
  data = join(root, 'data');
  await makeDemoDataset(data, { count: 2, size: 32, classes: 2, seed: 7 });
});
after(() => {
  for (const m of mounts.reverse()) {
    try {
      execFileSync('umount', [m], { stdio: 'pipe' });
    } catch {
      /* already gone */
    }
  }
  rmSync(root, { recursive: true, force: true });
});

/** Training runs use a narrow UNet (13 MB checkpoints): what fills a disk is the write, not its size. */
const trainArgs = (work: string, extra: string[] = []) => quickTrainArgs(data, work, ['--base-channels', '16', ...extra]);
const tempFiles = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.tmp'));

describe('full and read-only disks', { skip: mountProblem }, () => {
  let ckptSize = 0;
  let model = '';

  test('reference run on a normal disk (checkpoint size)', { timeout: 180_000 }, async () => {
    const work = join(root, 'normal');
    const r = await runCli(trainArgs(work, ['-b', '2']), { cwd: root, timeoutMs: 180_000 });
    assert.equal(r.code, 0, r.stderr);
    model = join(work, 'checkpoints', 'checkpoint_epoch1.pth');
    ckptSize = statSync(model).size;
    assert.ok(ckptSize > 1e6);
  });

  test('the disk fills while a checkpoint is written: clear stop, temp file gone, earlier checkpoints intact and resumable', { timeout: 300_000 }, async (t) => {
    const full = join(root, 'small-disk');
    // Room for two checkpoints and a half: epoch 1 and best_model.pth fit, epoch 2 does not.
    mountTmpfs(full, Math.floor(ckptSize * 2.5));
    const work = join(root, 'full-run');
    const args = [...trainArgs(work, ['-b', '2', '-e', '3', '--patience', '0']), '--checkpoint-dir', full];
    const r = await runCli(args, { cwd: root, timeoutMs: 240_000 });
    const dir = full.replace(/[/.]/g, '\\$&');
    assertCleanFailure(
      r,
      [new RegExp(`cannot write the checkpoint ${dir}/checkpoint_epoch2\\.pth: the disk is full\\. Free space in ${dir}`), /resume with --resume or --load an earlier checkpoint/, /checkpoints already written in .* are intact/],
      'disk full',
      1,
    );
    assert.match(r.stdout, /Epoch 2\/3: loss/, 'it failed saving epoch 2, after training it');
    assert.deepEqual(tempFiles(full), [], 'the partial temp file was removed');
    const files = [...snapshotDir(full).keys()].sort();
    assert.deepEqual(files, ['best_model.pth', 'checkpoint_epoch1.pth']);
    for (const f of files) assert.equal((await loadCheckpoint(join(full, f))).epoch, 1, f);
    const fs = statfsSync(full);
    t.diagnostic(`tmpfs of ${(Math.floor(ckptSize * 2.5) / 2 ** 20).toFixed(0)} MB, checkpoint ${(ckptSize / 2 ** 20).toFixed(0)} MB, ${((fs.bavail * fs.bsize) / 2 ** 20).toFixed(0)} MB free after the failure`);
    assert.ok(fs.bavail * fs.bsize > ckptSize * 0.4, 'the space of the failed write was given back');

    // Free space elsewhere and resume from the intact checkpoint.
    const resumed = await runCli([...trainArgs(work, ['-b', '2', '-e', '2', '--patience', '0', '--load', join(full, 'checkpoint_epoch1.pth')])], { cwd: root, timeoutMs: 180_000 });
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stdout, /Resuming from .*checkpoint_epoch1\.pth \(epoch 1 done/);
  });

  test('a disk that is already full is refused before training, naming the folder and the flag', { timeout: 120_000 }, async () => {
    const full = join(root, 'full-disk');
    mountTmpfs(full, 256 * 1024);
    try {
      writeFileSync(join(full, 'filler'), Buffer.alloc(1024 * 1024));
    } catch {
      /* ENOSPC: full now */
    }
    const before = snapshotDir(full);
    const r = await runCli([...trainArgs(join(root, 'full-disk-run')), '--checkpoint-dir', join(full, 'ck')], { cwd: root });
    assertCleanFailure(r, [/cannot write checkpoints to .*full-disk\/ck: the disk is full|the disk is full/, /--checkpoint-dir/], 'already full', 1);
    assert.doesNotMatch(r.stdout, /Epoch 1\/1/, 'refused before training');
    assert.deepEqual(snapshotDir(full), before);
  });

  test('a read-only checkpoint folder is refused before training (existing folder and a new one inside it)', { timeout: 120_000 }, async () => {
    const ro = join(root, 'read-only');
    mountTmpfs(ro, 1024 * 1024, true);
    for (const dir of [ro, join(ro, 'checkpoints')]) {
      const r = await runCli([...trainArgs(join(root, 'ro-run')), '--checkpoint-dir', dir], { cwd: root });
      assertCleanFailure(r, [new RegExp(`cannot write checkpoints to ${dir.replace(/[/.]/g, '\\$&')}: the file system is read-only`), /--checkpoint-dir DIR/], `read-only ${dir}`, 1);
      assert.doesNotMatch(r.stdout, /Epoch 1\/1/, 'refused before training');
    }
  });

  test('a full disk under the run directory (logs) does not stop training', { timeout: 180_000 }, async () => {
    const logs = join(root, 'full-logs');
    mountTmpfs(logs, 64 * 1024);
    try {
      writeFileSync(join(logs, 'filler'), Buffer.alloc(1024 * 1024));
    } catch {
      /* full */
    }
    const work = join(root, 'logs-run');
    const r = await runCli([...trainArgs(work, ['-b', '2']), '--logdir', logs], { cwd: root, timeoutMs: 180_000 });
    assert.equal(r.code, 0, r.stderr);
    assertNoCrashText(r, 'full logdir');
    assert.match(r.stderr, /warning: /);
    assert.equal((await loadCheckpoint(join(work, 'checkpoints', 'checkpoint_epoch1.pth'))).epoch, 1);
  });

  test('unet predict into a read-only folder (existing, or a new one inside): a clear error naming it and --output-dir', { timeout: 120_000 }, async () => {
    const ro = join(root, 'read-only');
    let r = await runCli(['predict', '-m', model, '-i', join(data, 'imgs', '000.png'), '--output-dir', ro, '--device', 'cpu'], { cwd: root });
    // Nothing was written: exit 1 (2 means some outputs were written).
    assertCleanFailure(r, [/000\.png: cannot write .*000_OUT\.png: the folder .*read-only is not writable \(the file system is read-only\)/, /--output-dir DIR/], 'predict read-only', 1);
    r = await runCli(['predict', '-m', model, '-i', join(data, 'imgs', '000.png'), '--output-dir', join(ro, 'masks'), '--device', 'cpu'], { cwd: root });
    assertCleanFailure(r, [/cannot create the output folder .*read-only\/masks: EROFS: read-only file system/, /--output-dir DIR/], 'predict read-only new folder', 1);
  });
  /** Fills the file system of `dir` (the filler file takes what is left). */
  const fill = (dir: string) => {
    try {
      writeFileSync(join(dir, 'filler'), Buffer.alloc(8 * 1024 * 1024));
    } catch {
      /* ENOSPC: full now */
    }
  };
  const withoutFiller = (dir: string) => new Map([...snapshotDir(dir)].filter(([k]) => k !== 'filler'));

  test('predict and evaluate on a disk that fills: earlier outputs intact, no temp or empty files, the file and "disk is full" named', { timeout: 180_000 }, async () => {
    const out = join(root, 'outputs-disk');
    mountTmpfs(out, 2 * 1024 * 1024);
    const img = join(data, 'imgs', '000.png');
    const first = await runCli(['predict', '-m', model, '-i', img, '--output-dir', out, '-v', '--probs', '--device', 'cpu'], { cwd: root });
    assert.equal(first.code, 0, first.stderr);
    const ev = await runCli(['evaluate', '-m', model, '--imgs', join(data, 'imgs'), '--masks', join(data, 'masks'), '--json', join(out, 'metrics.json'), '--device', 'cpu'], { cwd: root });
    assert.equal(ev.code, 0, ev.stderr);
    const before = withoutFiller(out);
    assert.deepEqual([...before.keys()], ['000_OUT.png', '000_OVERLAY.png', '000_PROB0.png', '000_PROB1.png', 'metrics.json']);
    fill(out);
    const r = await runCli(['predict', '-m', model, '-i', img, '--output-dir', out, '-v', '--probs', '--device', 'cpu'], { cwd: root });
    assertCleanFailure(r, [/cannot write .*000_OUT\.png: the disk is full; free space, or choose another folder with --output-dir DIR/], 'predict on a full disk', 1);
    const e = await runCli(['evaluate', '-m', model, '--imgs', join(data, 'imgs'), '--masks', join(data, 'masks'), '--json', join(out, 'metrics.json'), '--device', 'cpu'], { cwd: root });
    assertCleanFailure(e, [/cannot write .*metrics\.json: the disk is full/], 'evaluate --json on a full disk', 1);
    assert.deepEqual(withoutFiller(out), before, 'every earlier output is byte for byte as before; no temp file is left');
    unlinkSync(join(out, 'filler'));
  });

  test('export: a full disk names the file (not --load); --format web to a read-only place says it is not writable', { timeout: 120_000 }, async () => {
    const full = join(root, 'export-disk');
    mountTmpfs(full, 256 * 1024);
    fill(full);
    for (const format of ['safetensors']) {
      const r = await runCli(['export', '-m', model, '--format', format, '-o', join(full, `m.${format}`)], { cwd: root });
      assertCleanFailure(r, [new RegExp(`cannot write .*export-disk/m\\.${format}: the disk is full`)], `export ${format} to a full disk`, 1);
      assert.doesNotMatch(r.stderr, /--load/);
    }
    const web = await runCli(['export', '-m', model, '--format', 'web', '-o', join(full, 'site')], { cwd: root });
    assertCleanFailure(web, [/cannot write .*export-disk\/site: the disk is full/], 'export web to a full disk', 1);
    assert.deepEqual([...snapshotDir(full).keys()], ['filler'], 'no partial file or folder is left');
    const ro = join(root, 'read-only');
    for (const o of [join(ro, 'site'), ro]) {
      const r = await runCli(['export', '-m', model, '--format', 'web', '-o', o], { cwd: root });
      assertCleanFailure(r, [/the folder .*read-only is not writable \(the file system is read-only\); choose another place with -o/], `export web to ${o}`, 1);
      assert.doesNotMatch(r.stderr, /ENOENT/);
    }
  });
});
