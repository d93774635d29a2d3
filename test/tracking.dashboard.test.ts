// Dashboard server over HTTP: run list, incremental metrics, assets, files,
// and what it must refuse (traversal, symlinks out of logdir, non-GET, foreign Host).
import assert from 'node:assert/strict';
import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Script } from 'node:vm';
import { type Dashboard, listRuns, type RunEnd, startDashboard, Tracker, writeReport } from '../src/tracking/index.js';
import { ROOT } from './helpers/cli.js';

const tmp = mkdtempSync(join(tmpdir(), 'unet-dash-'));
const logdir = join(tmp, 'runs');
const outside = join(tmp, 'outside');
let dash: Dashboard;
let run: string;
let runDir: string;

/** Raw request: fetch() would normalise "/a/../b" before sending it, hiding what we want to test. */
function raw(path: string, opts: { method?: string; host?: string } = {}): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: dash.port, path, method: opts.method ?? 'GET', headers: opts.host ? { host: opts.host } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

// biome-ignore lint/suspicious/noExplicitAny: the tests read the dashboard's JSON answers field by field
async function json(path: string): Promise<any> {
  const r = await raw(path);
  assert.equal(r.status, 200, `${path}: ${r.body.toString()}`);
  assert.match(String(r.headers['content-type']), /application\/json/);
  return JSON.parse(r.body.toString('utf8'));
}

before(async () => {
  mkdirSync(outside, { recursive: true });
  writeFileSync(join(outside, 'secret.txt'), 'SECRET');
  const t = await Tracker.create({ logdir, name: 'dash', config: { lr: 0.01 } });
  for (let s = 1; s <= 5; s++) t.scalars({ 'train loss': 1 / s, 'learning rate': 0.01 }, s);
  t.scalar('validation Dice', 0.5, 5);
  t.histogram('Weights/a', Float32Array.from([1, 2, 3]), 5);
  t.image('pred/0', { data: new Uint8Array(4), width: 2, height: 2, channels: 1 }, 5);
  await t.close();
  runDir = t.runDir;
  run = basename(runDir);
  writeFileSync(join(runDir, 'notes.txt'), 'ok');
  // a symlink inside a run that points out of logdir, and a "run" that is such a symlink
  symlinkSync(join(outside, 'secret.txt'), join(runDir, 'link.txt'));
  symlinkSync(outside, join(logdir, 'escape-run'));
  dash = await startDashboard({ logdir, port: 0 });
});

after(async () => {
  await dash?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('dashboard', () => {
  test('binds to 127.0.0.1 on a random port', () => {
    assert.equal(dash.host, '127.0.0.1');
    assert.ok(dash.port > 0);
    assert.equal(dash.url, `http://127.0.0.1:${dash.port}/`);
  });

  test('page and local assets', async () => {
    const page = await raw('/');
    assert.equal(page.status, 200);
    assert.match(String(page.headers['content-type']), /text\/html/);
    assert.match(String(page.headers['content-security-policy']), /default-src 'none'/);
    const html = page.body.toString();
    assert.ok(html.includes('/assets/uPlot.iife.min.js') && html.includes('/assets/app.js'));
    assert.ok(!/src="http/i.test(html), 'no remote scripts');
    const js = await raw('/assets/uPlot.iife.min.js');
    assert.equal(js.status, 200);
    assert.ok(js.body.length > 40_000);
    assert.ok(js.body.toString().includes('uPlot'));
    assert.equal((await raw('/assets/uPlot.min.css')).status, 200);
    const app = await raw('/assets/app.js');
    assert.equal(app.status, 200);
    assert.match(String(app.headers['content-type']), /javascript/);
    assert.equal((await raw('/assets/app.css')).status, 200);
    assert.equal((await raw('/assets/nope.js')).status, 404);
  });

  test('app.js and app.css are the built client (dist/dashboard/), and app.js is a classic script that parses', async () => {
    // tracking.browser runs it in Chromium; this catches a missing or unparsable build without one
    const app = await raw('/assets/app.js');
    assert.equal(app.status, 200);
    const js = app.body.toString();
    assert.equal(js, readFileSync(join(ROOT, 'dist/dashboard/app.js'), 'utf8'));
    assert.ok(js.includes('__UNET_BOOT__') && js.includes('/api/runs'), 'the dashboard client');
    assert.doesNotThrow(() => new Script(js, { filename: 'app.js' }));
    assert.equal((await raw('/assets/app.css')).body.toString(), readFileSync(join(ROOT, 'dist/dashboard/app.css'), 'utf8'));
  });

  test('run list, config, incremental metrics', async () => {
    const list = await json('/api/runs');
    assert.deepEqual(
      list.runs.map((r: { name: string }) => r.name),
      [run],
      'the symlink that leaves logdir is not a run',
    );
    assert.equal(list.runs[0].status, 'finished');
    assert.equal(list.runs[0].lastStep, 5);
    assert.deepEqual(await json(`/api/runs/${run}/config`), { lr: 0.01 });

    const m = await json(`/api/runs/${run}/metrics?from=0`);
    const scalars = m.records.filter((r: { type: string }) => r.type === 'scalars');
    assert.equal(scalars.length, 5);
    assert.deepEqual(scalars[4].values, { 'train loss': 0.2, 'learning rate': 0.01, 'validation Dice': 0.5 });
    assert.equal(m.more, false);
    const again = await json(`/api/runs/${run}/metrics?from=${m.next}`);
    assert.deepEqual(again.records, []);
    // a new line, then a half-written one: only the complete line is returned
    appendFileSync(join(runDir, 'metrics.jsonl'), '{"type":"scalars","step":6,"time":1,"values":{"train loss":0.1}}\n{"type":"sca');
    const inc = await json(`/api/runs/${run}/metrics?from=${m.next}`);
    assert.deepEqual(
      inc.records.map((r: { step: number }) => r.step),
      [6],
    );

    const h = await json(`/api/runs/${run}/histograms?from=0`);
    assert.equal(h.records[0].tag, 'Weights/a');
    const media = await json(`/api/runs/${run}/media`);
    assert.equal(media.records[0].file, 'media/5-pred_0.png');
    assert.equal((await raw(`/api/runs/${run}/metrics?from=-5`)).status, 400);
    assert.equal((await raw(`/api/runs/${run}/secrets`)).status, 404);
    assert.equal((await raw('/api/runs/no-such-run/metrics')).status, 404);
  });

  test('files inside a run are served', async () => {
    const png = await raw(`/files/${run}/media/5-pred_0.png`);
    assert.equal(png.status, 200);
    assert.equal(png.headers['content-type'], 'image/png');
    assert.deepEqual([...png.body.subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
    assert.equal((await raw(`/files/${run}/notes.txt`)).body.toString(), 'ok');
    const ev = readdirSync(runDir).find((f) => f.startsWith('events.out.tfevents.')) as string;
    assert.equal((await raw(`/files/${run}/${ev}`)).status, 200);
    assert.equal((await raw(`/files/${run}/media`)).status, 404, 'no directory listing');
    assert.equal((await raw(`/files/${run}/missing.png`)).status, 404);
  });

  test('path traversal, encoded dots, absolute paths and escaping symlinks are refused', async () => {
    const attempts = [
      `/files/${run}/../../outside/secret.txt`,
      `/files/${run}/..`,
      '/files/../outside/secret.txt',
      `/files/${run}/%2e%2e/%2e%2e/outside/secret.txt`,
      `/files/${run}/%2E%2E%2F%2E%2E%2Foutside%2Fsecret.txt`,
      `/files/${run}/..%2f..%2foutside%2fsecret.txt`,
      '/files/%2e%2e/outside/secret.txt',
      `/files/${run}/.%2e/x`,
      `/files/${run}/..%5c..%5csecret.txt`,
      `/files/${run}/..\\..\\secret.txt`,
      `/files/${run}/%00`,
      '//etc/passwd',
      '/files//etc/passwd',
      `/files/${run}//etc/passwd`,
      '/files/%2fetc%2fpasswd/x',
      `/files/${run}/.hidden`,
      '/api/runs/..%2f..%2f/metrics',
      `/api/runs/${run}/..`,
      '/assets/../../package.json',
      '/assets/%2e%2e%2f%2e%2e%2fpackage.json',
      `/files/${run}/link.txt`,
      '/files/escape-run/secret.txt',
      '/api/runs/escape-run/config',
      'http://evil.example/etc/passwd',
    ];
    for (const path of attempts) {
      const r = await raw(path);
      assert.ok(r.status === 400 || r.status === 404, `${path} → ${r.status}`);
      assert.ok(!r.body.toString().includes('SECRET'), path);
    }
  });

  test('only GET; requests naming a foreign Host are refused', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS']) {
      const r = await raw('/', { method });
      assert.equal(r.status, 405, method);
    }
    assert.equal((await raw('/api/runs', { host: 'evil.example' })).status, 403);
    assert.equal((await raw('/api/runs', { host: `localhost:${dash.port}` })).status, 200);
    // fetch() goes through the same server
    const res = await fetch(`${dash.url}api/runs`);
    assert.equal(res.status, 200);
  });
});

describe('run status', () => {
  test('the end record says how a run ended: finished, stopped early, interrupted, failed; else running, or unknown once silent', async () => {
    const dir = join(tmp, 'status');
    const ends: RunEnd[] = ['finished', 'stopped early', 'interrupted', 'failed'];
    const expected: Record<string, string> = {};
    for (const end of ends) {
      const t = await Tracker.create({ logdir: dir, name: end.replace(' ', '-'), config: {} });
      t.scalar('train loss', 1, 1);
      await t.close(end);
      expected[basename(t.runDir)] = end;
    }
    const open = async (name: string) => {
      const t = await Tracker.create({ logdir: dir, name, config: {} });
      t.scalar('train loss', 1, 1);
      await t.flush();
      return t.runDir;
    };
    // still written to: running; silent for 10 minutes without an end record: unknown (killed?)
    expected[basename(await open('live'))] = 'running';
    const silent = await open('silent');
    const old = new Date(Date.now() - 600_000);
    utimesSync(join(silent, 'metrics.jsonl'), old, old);
    expected[basename(silent)] = 'unknown';
    // resumed after an end record (appends to the same run): running again
    const resumed = await open('resumed');
    appendFileSync(join(resumed, 'metrics.jsonl'), `${JSON.stringify({ type: 'end', time: 1, status: 'interrupted' })}\n${JSON.stringify({ type: 'scalars', step: 2, time: 2, values: { 'train loss': 0.5 } })}\n`);
    expected[basename(resumed)] = 'running';
    // an end record from before statuses were recorded
    const legacy = await open('legacy');
    appendFileSync(join(legacy, 'metrics.jsonl'), `${JSON.stringify({ type: 'end', time: 3 })}\n`);
    expected[basename(legacy)] = 'finished';

    const runs = await listRuns(dir);
    assert.deepEqual(Object.fromEntries(runs.map((r) => [r.name, r.status])), expected);
    // the report of an interrupted run says so too
    const interrupted = runs.find((r) => r.status === 'interrupted')?.name as string;
    const html = readFileSync(await writeReport(join(dir, interrupted)), 'utf8');
    assert.match(html, /"info":\{"status":"interrupted"/);
  });
});
