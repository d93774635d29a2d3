// `unet train` on 2 processes (127.0.0.1, Gloo, 1 thread each, narrow UNet): the launcher, resume
// on another number of processes, and the faults of issue 14 (a worker killed, Ctrl-C/SIGTERM,
// port in use, unreachable master, mismatched world sizes, data that differs between ranks).
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, test } from 'node:test';
import { makeDemoDataset } from '../src/data/index.js';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { alive, childrenOf, freePort, startTs, stopped } from './helpers/dist.js';

const CLI = resolve(import.meta.dirname, 'helpers', 'tiny-cli.ts');
let root = '';
let data = '';
let other = ''; // the same images, one fewer pair: data that differs between ranks

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'unet-dist-'));
  data = join(root, 'data');
  other = join(root, 'other');
  await makeDemoDataset(data, { count: 8, size: 32, classes: 2 });
  await makeDemoDataset(other, { count: 7, size: 32, classes: 2 });
});
after(() => rmSync(root, { recursive: true, force: true }));

const trainArgs = (dir: string, d = data) => [
  'train',
  '-s',
  '1',
  '-v',
  '25',
  '-b',
  '2',
  '--imgs',
  join(d, 'imgs'),
  '--masks',
  join(d, 'masks'),
  '--checkpoint-dir',
  join(dir, 'ckpt'),
  '--logdir',
  join(dir, 'runs'),
  '--no-tensorboard',
  '--workers',
  '1',
  '--patience',
  '0',
];
const sub = (name: string) => mkdtempSync(join(root, `${name}-`));
const waitFor = async (cond: () => boolean, ms: number) => {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 200));
  }
};

test('--nproc-per-node 2 trains; the checkpoint records the world size and resumes on 1 process', { timeout: 300_000 }, async () => {
  const dir = sub('ok');
  const port = String(await freePort());
  const r = await startTs(CLI, [...trainArgs(dir), '-e', '1', '--nproc-per-node', '2', '--master-port', port]).done;
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /Batch size: {6}2 per process x 2 processes = 4 per optimizer step \(gloo\)/);
  assert.equal(r.out.match(/Starting training:/g)?.length, 1, 'rank 1 prints nothing');
  const ck = await loadCheckpoint(join(dir, 'ckpt', 'checkpoint_epoch1.pth'));
  assert.equal(ck.config?.worldSize, 2);
  const again = await startTs(CLI, [...trainArgs(dir), '-e', '2', '--load', join(dir, 'ckpt', 'checkpoint_epoch1.pth')]).done;
  assert.equal(again.code, 0, again.out);
  assert.match(again.out, /Resuming from .*checkpoint_epoch1\.pth/);
  assert.ok(existsSync(join(dir, 'ckpt', 'checkpoint_epoch2.pth')));
});

// Gloo's own text for a lost peer ("[../gloo/transport/tcp/pair.cc:589] Read error [127.0.0.1]:45484: Connection reset by peer").
const RAW_GLOO = /pair\.cc|gloo\/|Read error|Connection reset|Application timeout|timed out!/i;
/** Both workers exec'd (their RANK readable): before, a forked child still has the launcher's environment. */
const bothStarted = (launcher: number) => childrenOf(launcher).filter((w) => w.rank !== null).length === 2;

test('a worker killed with kill -9 mid-epoch: "worker 1 died" once, no Gloo text, rank 0 saves INTERRUPTED.pth at the last optimizer step, which resumes; exit 1, nothing left', {
  timeout: 300_000,
}, async () => {
  const dir = sub('kill');
  const port = String(await freePort());
  // 6 training images, 3 per rank at -b 2: 2 steps per epoch. Rank 1 dies before its 2nd batch of
  // epoch 2, so rank 0's 2nd backward of epoch 2 fails: the last step done is epoch 1's + 1.
  const run = startTs(CLI, [...trainArgs(dir), '-e', '500', '--nproc-per-node', '2', '--master-port', port, '--dist-timeout', '30'], { env: { UNET_TEST_SIGNAL_AT: 'SIGKILL:1:2:2' } });
  await waitFor(() => bothStarted(run.child.pid as number), 60_000);
  const workers = childrenOf(run.child.pid as number);
  const r = await run.done;
  assert.equal(r.code, 1, r.out); // README: a worker killed by a signal makes the launcher exit 1
  assert.equal(r.out.match(/worker 1 died/g)?.length, 1, r.out);
  assert.match(r.out, /launcher: worker 1 died \(pid \d+, killed by SIGKILL\)/);
  assert.doesNotMatch(r.out, RAW_GLOO, 'no raw Gloo text');
  assert.doesNotMatch(r.out, /SIGTERM: finishing/, 'no promise of a save');
  assert.doesNotMatch(r.out, /\n\s+at /, 'no stack trace');
  for (const w of workers) assert.ok(!alive(w.pid), `worker ${w.pid} is still running`);
  // Rank 0 announces the file it wrote: the state after the first step of epoch 2 (resuming repeats epoch 2).
  const interrupted = join(dir, 'ckpt', 'INTERRUPTED.pth');
  const epoch1 = await loadCheckpoint(join(dir, 'ckpt', 'checkpoint_epoch1.pth'));
  const step = epoch1.globalStep + 1;
  assert.match(r.out, new RegExp(`error: rank 0: lost the connection to the other workers while [^;]+; saved \\S+INTERRUPTED\\.pth \\(weights and training state after optimizer step ${step}; resuming from it repeats epoch 2\\)`));
  assert.ok(existsSync(interrupted), r.out);
  const ck = await loadCheckpoint(interrupted);
  assert.deepEqual([ck.epoch, ck.globalStep], [1, step]);
  const resumed = await startTs(CLI, [...trainArgs(dir), '-e', '2', '--load', interrupted]).done;
  assert.equal(resumed.code, 0, resumed.out);
  assert.match(resumed.out, /Resuming from .*INTERRUPTED\.pth/);
  assert.ok(existsSync(join(dir, 'ckpt', 'checkpoint_epoch2.pth')));
});

test('a hung worker (SIGSTOP mid-epoch) with --dist-timeout 6: rank 0 saves INTERRUPTED.pth and the run ends within the timeout plus a few seconds, the hung worker killed', {
  timeout: 300_000,
}, async () => {
  const dir = sub('hung');
  const port = String(await freePort());
  const run = startTs(CLI, [...trainArgs(dir), '-e', '500', '--nproc-per-node', '2', '--master-port', port, '--dist-timeout', '6'], { env: { UNET_TEST_SIGNAL_AT: 'SIGSTOP:1:2:2' } });
  await waitFor(() => bothStarted(run.child.pid as number), 60_000);
  const workers = childrenOf(run.child.pid as number);
  const victim = workers.find((w) => w.rank === '1');
  assert.ok(victim);
  try {
    await waitFor(() => stopped(victim.pid), 240_000);
    const t0 = performance.now();
    const r = await run.done;
    const seconds = (performance.now() - t0) / 1000;
    // 6 s, rank 0's save and exit, 3 s for the hung worker to go (before: 6 s + a 30 s grace).
    assert.ok(seconds < 6 + 10, `the run ended ${seconds.toFixed(1)} s after the worker hung`);
    assert.equal(r.code, 1, r.out);
    const step = (await loadCheckpoint(join(dir, 'ckpt', 'checkpoint_epoch1.pth'))).globalStep + 1;
    assert.match(r.out, new RegExp(`error: rank 0: no answer from the other workers within --dist-timeout 6s while [^;]+; saved \\S+INTERRUPTED\\.pth \\(weights and training state after optimizer step ${step};`));
    assert.match(r.out, /launcher: worker 0 exited with code 1; stopping the other workers\nlauncher: worker 1 did not exit within 3s \(hung\?\); killing it/);
    assert.doesNotMatch(r.out, RAW_GLOO);
    assert.equal((await loadCheckpoint(join(dir, 'ckpt', 'INTERRUPTED.pth'))).globalStep, step);
    for (const w of workers) assert.ok(!alive(w.pid), `worker ${w.pid} is still running`);
  } finally {
    if (alive(victim.pid)) process.kill(victim.pid, 'SIGKILL');
  }
});

test('stopped inside an epoch on 2 processes, resumed on 2 (or from the epoch checkpoint): the same weights, bit for bit; on 1 process it is refused', { timeout: 300_000 }, async () => {
  // 6 training images, 3 per rank, batch 1, augmented (each rank draws its own): rank 0 signals
  // itself at its 2nd batch of epoch 1, so the ranks stop together inside that epoch.
  const args = (dir: string, port: number) => [...trainArgs(dir), '-b', '1', '--augment', '-e', '2', '--nproc-per-node', '2', '--master-port', String(port)];
  const a = sub('exact-a');
  const b = sub('exact-b');
  const ra = await startTs(CLI, args(a, await freePort())).done;
  assert.equal(ra.code, 0, ra.out);
  const rb = await startTs(CLI, args(b, await freePort()), { env: { UNET_TEST_SIGNAL_AT: 'SIGTERM:0:1:2' } }).done;
  assert.ok(rb.code === 130 || rb.code === 143, `interrupted: ${rb.code}\n${rb.out}`);
  const saved = await loadCheckpoint(join(b, 'ckpt', 'INTERRUPTED.pth'));
  assert.equal(saved.position?.epoch, 1, rb.out);
  assert.ok((saved.position?.batch ?? 0) >= 1, `stopped inside epoch 1 (${JSON.stringify(saved.position)})`);
  assert.equal(saved.position?.dataRng.length, 2, "each rank's data generator");

  const alone = await startTs(CLI, [...trainArgs(b), '-b', '1', '--augment', '-e', '2', '--load', join(b, 'ckpt', 'INTERRUPTED.pth')]).done;
  assert.equal(alone.code, 1, alone.out);
  assert.match(alone.out, /INTERRUPTED\.pth was saved in the middle of epoch 1 by a run with 2 process\(es\) \(now 1\); resume it with the same flags/);

  const rc = await startTs(CLI, [...args(b, await freePort()), '--load', join(b, 'ckpt', 'INTERRUPTED.pth')]).done;
  assert.equal(rc.code, 0, rc.out);
  assert.match(rc.out, /epoch 1 continues at batch/);
  const wa = await loadCheckpoint(join(a, 'ckpt', 'checkpoint_epoch2.pth'));
  const wb = await loadCheckpoint(join(b, 'ckpt', 'checkpoint_epoch2.pth'));
  assert.equal(wb.globalStep, wa.globalStep);
  for (const [k, t] of wa.model) assert.ok(Buffer.from(t.data).equals(Buffer.from(wb.model.get(k)?.data ?? [])), `weights differ: ${k}`);

  // From the epoch checkpoint on 2 processes: each rank's data generator is in it too.
  const d = sub('exact-d');
  const rd = await startTs(CLI, [...args(d, await freePort()), '--load', join(a, 'ckpt', 'checkpoint_epoch1.pth')]).done;
  assert.equal(rd.code, 0, rd.out);
  const wd = await loadCheckpoint(join(d, 'ckpt', 'checkpoint_epoch2.pth'));
  for (const [k, t] of wa.model) assert.ok(Buffer.from(t.data).equals(Buffer.from(wd.model.get(k)?.data ?? [])), `weights differ after resuming at epoch 2: ${k}`);
});

test('SIGTERM to the launcher: rank 0 writes INTERRUPTED.pth and all exit 143', { timeout: 300_000 }, async () => {
  const dir = sub('term');
  const port = String(await freePort());
  const run = startTs(CLI, [...trainArgs(dir), '-e', '500', '--nproc-per-node', '2', '--master-port', port]);
  await waitFor(() => existsSync(join(dir, 'ckpt', 'checkpoint_epoch1.pth')), 240_000);
  const workers = childrenOf(run.child.pid as number);
  // Rank 0, the one writer, holds the checkpoint folder's lock; a second training there is refused naming it.
  const lock = join(dir, 'ckpt', '.train.lock');
  const holder = JSON.parse(readFileSync(lock, 'utf8')) as { pid: number };
  assert.equal(holder.pid, workers.find((w) => w.rank === '0')?.pid, JSON.stringify(workers));
  const second = await startTs(CLI, [...trainArgs(dir), '-e', '1', '--exist-ok']).done;
  assert.equal(second.code, 1, second.out);
  assert.match(second.out, new RegExp(`is in use by another training: pid ${holder.pid} on `));
  run.child.kill('SIGTERM');
  const r = await run.done;
  assert.equal(r.code, 143, r.out);
  assert.ok(existsSync(join(dir, 'ckpt', 'INTERRUPTED.pth')), r.out);
  for (const w of workers) assert.ok(!alive(w.pid));
  assert.ok(!existsSync(lock), 'the lock is released');
});

test('the launcher killed with kill -9: its workers exit too', { timeout: 300_000 }, async () => {
  const dir = sub('orphans');
  const port = String(await freePort());
  const run = startTs(CLI, [...trainArgs(dir), '-e', '500', '--nproc-per-node', '2', '--master-port', port]);
  await waitFor(() => existsSync(join(dir, 'ckpt', 'checkpoint_epoch1.pth')), 240_000);
  const workers = childrenOf(run.child.pid as number);
  assert.equal(workers.length, 2);
  run.child.kill('SIGKILL');
  await run.done;
  await waitFor(() => workers.every((w) => !alive(w.pid)), 30_000);
});

test('master port in use: one clear error', { timeout: 120_000 }, async () => {
  const dir = sub('port');
  const busy = createServer().listen(0, '127.0.0.1');
  await new Promise((r) => busy.once('listening', r));
  const port = String((busy.address() as { port: number }).port);
  try {
    const r = await startTs(CLI, [...trainArgs(dir), '-e', '1', '--nproc-per-node', '2', '--master-port', port, '--dist-timeout', '10']).done;
    assert.notEqual(r.code, 0);
    assert.match(r.out, /error: rank 0: the master port 127\.0\.0\.1:\d+ is already in use/);
    assert.doesNotMatch(r.out, /\n\s+at /);
  } finally {
    busy.close();
  }
});

// Workers started by another launcher (torchrun-style environment), each with its own flags.
const worker = (dir: string, rank: number, world: number, port: string, d = data, extra: string[] = []) =>
  startTs(CLI, [...trainArgs(dir, d), '-e', '1', '--dist-timeout', '8', ...extra], {
    env: { RANK: String(rank), WORLD_SIZE: String(world), LOCAL_RANK: String(rank), MASTER_ADDR: '127.0.0.1', MASTER_PORT: port },
  }).done;

test('unreachable master, mismatched world sizes, data that differs: one clear error within the timeout', { timeout: 300_000 }, async () => {
  const dir = sub('env');
  // Nobody serves the port: rank 1 gives up after --dist-timeout.
  const lonely = await worker(dir, 1, 2, String(await freePort()));
  assert.notEqual(lonely.code, 0);
  assert.match(lonely.out, /error: rank 1: the workers did not all meet at 127\.0\.0\.1:\d+ within 8s/);
  assert.ok(lonely.ms < 60_000);

  let port = String(await freePort());
  const mismatched = await Promise.all([worker(dir, 0, 2, port), worker(dir, 1, 3, port)]);
  for (const r of mismatched) {
    assert.notEqual(r.code, 0, r.out);
    assert.match(r.out, /error: rank \d: /);
    assert.doesNotMatch(r.out, /\n\s+at /);
    assert.ok(r.ms < 90_000);
  }

  port = String(await freePort());
  const differ = await Promise.all([worker(dir, 0, 2, port), worker(dir, 1, 2, port, other)]);
  for (const r of differ) {
    assert.notEqual(r.code, 0, r.out);
    assert.match(r.out, /error: rank \d: the workers do not agree on the data/);
  }
});
