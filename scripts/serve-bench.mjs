// Measures `unet serve` (issue 25's "Measure") on this machine, side by side in one run:
//  (a) requests/s with --clients (16) concurrent clients, default batching vs --max-batch 1 (goal >= 1.5x);
//  (b) p99 latency with 1 client vs `unet predict`'s per-image time, taken as `unet bench --predict
//      -b 1` at the same size: the median forward pass of the same UNet, no decoding or PNG
//      (goal <= 1.2x);
//  (c) requests/s vs test/reference/serve_baseline.py (torch + http.server, same weights, same
//      request) at --clients, one forward at a time (--serialize; --python-threaded also measures a
//      forward per request thread, far slower on 2 cores, and compares with the better) (goal >= 1.0x);
//  (d) a soak of --soak requests of --soak-size images against a fresh `unet serve`: its RSS
//      sampled over time, the slope in MB per 1,000 requests over the second half (goal < 1), no error.
// Model: a plain full-width UNet (3 channels, 2 classes, transposed convolutions), randomly
// initialised (seed 0) and saved as our checkpoint. Request: one FP32 [1, 3, --size, --size]
// image (pixel values k/255 as float32, prepared once), output "mask" (--output logits: logits).
// Ours and PyTorch use --threads intra-op threads (default: every core). Our servers run with
// --timeout-s 300 (no 504 from a saturated queue; the baseline has no timeout either).
//
// Runs under tsx, as the tests (it shares test/helpers/memory.ts's slope):
//   node --import tsx scripts/serve-bench.mjs [--json FILE]   # ~9 minutes on 2 cores (estimated)
//   node --import tsx scripts/serve-bench.mjs --quick         # ~1 minute: 32x32, 2 s points, 300-request soak
//   node --import tsx scripts/serve-bench.mjs --seconds 60 --soak 20000 --size 256 --clients 16
// Flags (defaults; --quick's in brackets): --size 256 [32], --clients 16, --seconds 30 [2] per point,
// --warmup 8 [1] unmeasured seconds before each server's first point, --soak 10000 [300],
// --soak-size 16, --max-batch 8, --max-delay-ms 5, --bench-steps 20 [3], --threads (cores),
// --output mask|logits, --python /usr/bin/python3, --skip-python, --python-threaded, --json FILE.
// Prints a table; writes every figure to --json (default: $TMPDIR/serve-bench.json).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { slope } from '../test/helpers/memory.ts';
import { runLoad } from './serve-load.mjs';

const root = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..');
const { values: o } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    json: { type: 'string', default: join(tmpdir(), 'serve-bench.json') },
    size: { type: 'string' }, // default 256 (--quick: 32)
    clients: { type: 'string', default: '16' },
    seconds: { type: 'string' }, // measured seconds per point: 30 (--quick: 2)
    warmup: { type: 'string' }, // unmeasured seconds before each server's first point: 8 (--quick: 1)
    soak: { type: 'string' }, // soak requests: 10000 (--quick: 300)
    'soak-size': { type: 'string', default: '16' },
    'max-batch': { type: 'string', default: '8' },
    'max-delay-ms': { type: 'string', default: '5' },
    'bench-steps': { type: 'string' }, // timed forward passes for the predict figure: 20 (--quick: 3)
    threads: { type: 'string', default: String(availableParallelism()) },
    output: { type: 'string', default: 'mask' },
    python: { type: 'string', default: '/usr/bin/python3' },
    'skip-python': { type: 'boolean', default: false },
    'python-threaded': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (o.help) {
  console.log(
    readFileSync(new URL(import.meta.url), 'utf8')
      .split('\n')
      .filter((l) => l.startsWith('//'))
      .map((l) => l.slice(3))
      .join('\n'),
  );
  process.exit(0);
}
const int = (name, dflt, quick) => {
  const v = Number(o[name] ?? (o.quick ? quick : dflt));
  if (!Number.isInteger(v) || v < 1) {
    console.error(`serve-bench: --${name} must be a positive integer, got '${o[name]}'`);
    process.exit(64);
  }
  return v;
};
const P = {
  size: int('size', 256, 32),
  clients: int('clients', 16, 16),
  seconds: int('seconds', 30, 2),
  warmup: int('warmup', 8, 1),
  soak: int('soak', 10_000, 300),
  soakSize: int('soak-size', 16, 16),
  maxBatch: int('max-batch', 8, 8),
  maxDelayMs: Number(o['max-delay-ms']),
  benchSteps: int('bench-steps', 20, 3),
  threads: int('threads', 2, 2),
  output: o.output,
  quick: o.quick,
};
if (!['mask', 'logits'].includes(P.output)) {
  console.error(`serve-bench: --output must be mask or logits, got '${P.output}'`);
  process.exit(64);
}
const log = (s) => console.error(`serve-bench: ${s}`);
const env = { ...process.env, UNET_THREADS: String(P.threads) };
const work = mkdtempSync(join(tmpdir(), 'serve-bench-'));
const children = new Set();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});
process.on('SIGINT', () => process.exit(130));

/** A plain full-width UNet, seed 0, saved as our checkpoint (what `unet train` writes). */
function makeCheckpoint(path) {
  const code = `
    const E = await import(${JSON.stringify(join(root, 'dist/engine/index.js'))});
    const { UNet } = await import(${JSON.stringify(join(root, 'dist/model/index.js'))});
    const { saveCheckpoint } = await import(${JSON.stringify(join(root, 'dist/model/checkpoint.js'))});
    E.manualSeed(0);
    const m = new UNet({ nChannels: 3, nClasses: 2, bilinear: false });
    await saveCheckpoint(${JSON.stringify(path)}, { model: m.stateDict(), epoch: 0, globalStep: 0, loss: 0, valScore: 0, maskValues: [0, 255], modelArgs: m.args, config: { scale: 1 } });`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`making the checkpoint failed:\n${r.stderr}`);
}

/** The infer request body: one [1, 3, s, s] image of k/255 values (as a client's float32 array serialises). */
function requestBody(s) {
  const data = Array.from({ length: 3 * s * s }, (_, i) => Math.fround(((i * 37 + (i >> 7) * 11) % 256) / 255));
  return Buffer.from(JSON.stringify({ inputs: [{ name: 'input', shape: [1, 3, s, s], datatype: 'FP32', data }], outputs: [{ name: P.output }] }));
}

/** Starts a server command; resolves with its base URL once it prints `Listening on` and is ready. */
async function startServer(label, cmd, args) {
  const child = spawn(cmd, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise((res) => child.once('exit', (code, sig) => res(code ?? sig)));
  const started = Date.now();
  for (;;) {
    const m = /Listening on (http:\/\/[^ ]+)/.exec(out);
    if (m) {
      const url = m[1];
      const r = await fetch(`${url}/v2/health/ready`).catch(() => null);
      if (r?.status === 200) return { label, url, pid: child.pid, child, exited, banner: out.trim().split('\n'), stop: () => stop(child, exited) };
    }
    const ended = await Promise.race([exited, new Promise((r) => setTimeout(() => r(undefined), 100))]);
    if (ended !== undefined || Date.now() - started > 120_000) throw new Error(`${label} did not start (${ended ?? 'timeout'}):\n${out}`);
  }
}

async function stop(child, exited) {
  child.kill('SIGTERM');
  const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r('still running after 60 s'), 60_000))]);
  children.delete(child);
  if (typeof code === 'string' && code.startsWith('still')) child.kill('SIGKILL');
  return code;
}

const rssMb = (pid) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
};

/** One measured point: optional warmup (not counted), then `clients` clients for P.seconds. */
async function point(srv, body, clients, warmupSeconds) {
  const url = `${srv.url}/v2/models/unet/infer`;
  if (warmupSeconds > 0) await runLoad({ url, body, clients, seconds: warmupSeconds });
  const r = await runLoad({ url, body, clients, seconds: P.seconds });
  log(`${srv.label}, ${clients} client(s): ${r.ok} answered in ${r.seconds} s = ${r.rps} req/s, p50 ${r.p50_ms} ms, p99 ${r.p99_ms} ms${Object.keys(r.errors).length ? `, errors ${JSON.stringify(r.errors)}` : ''}`);
  return r;
}

async function soak(ckpt) {
  const srv = await startServer('unet serve (soak)', process.execPath, [
    'bin/unet.js',
    'serve',
    '-m',
    ckpt,
    '--name',
    'unet',
    '--port',
    '0',
    '--device',
    'cpu',
    '--max-batch',
    String(P.maxBatch),
    '--max-delay-ms',
    String(P.maxDelayMs),
    '--timeout-s',
    '300',
  ]);
  const progress = { done: 0 };
  const samples = [{ requests: 0, rss_mb: rssMb(srv.pid), s: 0 }];
  const t0 = performance.now();
  let next = P.soak / 10;
  const timer = setInterval(() => {
    const s = { requests: progress.done, rss_mb: rssMb(srv.pid), s: (performance.now() - t0) / 1000 };
    samples.push(s);
    if (s.requests < next) return;
    next += P.soak / 10;
    log(`soak: ${s.requests}/${P.soak} in ${Math.round(s.s)} s (about ${Math.round((s.s / s.requests) * (P.soak - s.requests))} s left), RSS ${s.rss_mb.toFixed(1)} MB`);
  }, 250);
  const r = await runLoad({ url: `${srv.url}/v2/models/unet/infer`, body: requestBody(P.soakSize), clients: P.clients, seconds: 3600, maxRequests: P.soak, progress });
  clearInterval(timer);
  samples.push({ requests: progress.done, rss_mb: rssMb(srv.pid), s: (performance.now() - t0) / 1000 });
  const exit = await srv.stop();
  const half = samples.filter((s) => s.requests >= P.soak / 2);
  const mbPer1000 = slope(
    half.map((s) => s.requests / 1000),
    half.map((s) => s.rss_mb),
  );
  const round = (v, d = 1) => Math.round(v * 10 ** d) / 10 ** d;
  const rss = samples.map((s) => s.rss_mb);
  const res = {
    requests: r.requests,
    ok: r.ok,
    errors: r.errors,
    image: `1x3x${P.soakSize}x${P.soakSize}`,
    clients: P.clients,
    seconds: r.seconds,
    rps: r.rps,
    p99_ms: r.p99_ms,
    rss_start_mb: round(rss[0]),
    rss_half_mb: round(half[0]?.rss_mb ?? NaN),
    rss_end_mb: round(rss[rss.length - 1]),
    rss_peak_mb: round(Math.max(...rss)),
    slope_mb_per_1000_second_half: round(mbPer1000, 3),
    server_exit: exit,
    samples: samples.map((s) => [s.requests, round(s.rss_mb), round(s.s, 2)]),
  };
  log(
    `soak: ${res.ok}/${res.requests} answered in ${res.seconds} s; RSS ${res.rss_start_mb} -> ${res.rss_half_mb} -> ${res.rss_end_mb} MB (peak ${res.rss_peak_mb}); slope ${res.slope_mb_per_1000_second_half} MB / 1,000 requests over the second half; server exit ${exit}`,
  );
  return res;
}

/** `unet bench --predict -b 1` at the size: the median forward ms of the same UNet. */
function predictPerImage() {
  const args = ['bin/unet.js', 'bench', '--predict', '--device', 'cpu', '-b', '1', '--height', String(P.size), '--width', String(P.size), '--steps', String(P.benchSteps), '--warmup', '3'];
  const r = spawnSync(process.execPath, args, { cwd: root, env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`unet bench failed:\n${r.stderr}`);
  const line = JSON.parse(r.stdout.trim().split('\n').pop());
  log(`unet bench --predict -b 1 at ${P.size}x${P.size}: ${line.ms_per_step} ms per image (median of ${P.benchSteps})`);
  return { command: `unet ${args.slice(1).join(' ')}`, ms_per_image: line.ms_per_step, threads: line.threads };
}

const maskOf = (text) => JSON.parse(text).outputs[0].data;

async function main() {
  const t0 = Date.now();
  const setup = spawnSync('bash', ['scripts/setup.sh'], { cwd: root, stdio: ['ignore', 2, 2] });
  if (setup.status !== 0) throw new Error('scripts/setup.sh failed');
  const ckpt = join(work, 'unet.pth');
  makeCheckpoint(ckpt);
  const body = requestBody(P.size);
  log(`${P.quick ? 'QUICK mode; ' : ''}${P.size}x${P.size} RGB, full-width UNet, ${P.clients} clients, ${P.seconds} s per point, ${P.threads} intra-op threads; request body ${(body.length / 2 ** 20).toFixed(2)} MiB`);
  const predict = predictPerImage();
  const serveArgs = (batch) => ['bin/unet.js', 'serve', '-m', ckpt, '--name', 'unet', '--port', '0', '--device', 'cpu', '--max-batch', String(batch), '--max-delay-ms', String(P.maxDelayMs), '--timeout-s', '300'];
  const pts = {};
  const firsts = {};
  let srv = await startServer(`unet serve --max-batch ${P.maxBatch}`, process.execPath, serveArgs(P.maxBatch));
  pts.ours = await point(srv, body, P.clients, P.warmup);
  pts.ours_1 = await point(srv, body, 1, 0);
  firsts.ours = pts.ours.first;
  await srv.stop();
  srv = await startServer('unet serve --max-batch 1', process.execPath, serveArgs(1));
  pts.ours_mb1 = await point(srv, body, P.clients, P.warmup);
  await srv.stop();
  const pyBanner = [];
  if (!o['skip-python']) {
    const modes = [['py_serial', ['--serialize'], 'python baseline --serialize (one forward at a time)']];
    if (o['python-threaded']) modes.push(['py_threaded', [], 'python baseline (a forward per request thread)']);
    for (const [key, extra, label] of modes) {
      srv = await startServer(label, o.python, ['test/reference/serve_baseline.py', '-m', ckpt, '--name', 'unet', '--port', '0', '--threads', String(P.threads), ...extra]);
      pyBanner.push(srv.banner[0]);
      pts[key] = await point(srv, body, P.clients, P.warmup);
      firsts[key] = pts[key].first;
      await srv.stop();
    }
  }
  const soakRes = await soak(ckpt);

  let agreement = null;
  if (P.output === 'mask' && firsts.ours && firsts.py_serial) {
    const a = maskOf(firsts.ours);
    const b = maskOf(firsts.py_serial);
    agreement = a.length === b.length ? a.filter((v, i) => v === b[i]).length / a.length : 0;
  }
  for (const p of Object.values(pts)) delete p.first;
  const r3 = (v) => Math.round(v * 1000) / 1000;
  const py = [pts.py_serial, pts.py_threaded].filter(Boolean).sort((x, y) => y.rps - x.rps)[0] ?? null;
  const checks = {
    a_batching_speedup: { value: r3(pts.ours.rps / pts.ours_mb1.rps), goal: '>= 1.5' },
    b_p99_1client_over_predict: { value: r3(pts.ours_1.p99_ms / predict.ms_per_image), goal: '<= 1.2' },
    c_ours_over_python: py ? { value: r3(pts.ours.rps / py.rps), goal: '>= 1.0', python_mode: py === pts.py_serial ? 'serialized' : 'thread per request' } : null,
    d_soak_slope_mb_per_1000: { value: soakRes.slope_mb_per_1000_second_half, goal: '< 1', errors: soakRes.requests - soakRes.ok },
  };
  checks.a_batching_speedup.pass = checks.a_batching_speedup.value >= 1.5;
  checks.b_p99_1client_over_predict.pass = checks.b_p99_1client_over_predict.value <= 1.2;
  if (checks.c_ours_over_python) checks.c_ours_over_python.pass = checks.c_ours_over_python.value >= 1.0;
  checks.d_soak_slope_mb_per_1000.pass = checks.d_soak_slope_mb_per_1000.value < 1 && soakRes.ok === soakRes.requests && soakRes.server_exit === 0;

  const cpu = cpus()[0]?.model ?? '?';
  const result = {
    date: new Date().toISOString(),
    quick: P.quick,
    machine: { cpus: availableParallelism(), cpu, loadavg_at_end: loadavg() },
    params: P,
    threads: { ours: P.threads, python: P.threads, python_banner: pyBanner },
    predict,
    points: pts,
    soak: soakRes,
    mask_agreement_ours_vs_python: agreement,
    checks,
    total_seconds: Math.round((Date.now() - t0) / 1000),
  };
  writeFileSync(o.json, `${JSON.stringify(result, null, 1)}\n`);
  printTable(result);
  console.log(`\nJSON: ${o.json} (total ${result.total_seconds} s)`);
}

function printTable(r) {
  const row = (cells) => console.log(`| ${cells.join(' | ')} |`);
  console.log(
    `\n${r.quick ? 'QUICK run (short points, small images: not the measurement). ' : ''}${r.params.size}x${r.params.size} RGB, full-width UNet, ${r.threads.ours} intra-op threads both sides, ${r.machine.cpus} x ${r.machine.cpu}\n`,
  );
  row(['server', 'clients', 'answered', 'req/s', 'p50 ms', 'p99 ms', 'errors']);
  row(['---', '---:', '---:', '---:', '---:', '---:', '---']);
  const names = {
    ours: `unet serve (--max-batch ${r.params.maxBatch})`,
    ours_1: `unet serve (--max-batch ${r.params.maxBatch})`,
    ours_mb1: 'unet serve --max-batch 1',
    py_serial: 'Python baseline --serialize',
    py_threaded: 'Python baseline, a forward per thread',
  };
  for (const [k, p] of Object.entries(r.points)) row([names[k], p.clients, p.ok, p.rps, p.p50_ms, p.p99_ms, JSON.stringify(p.errors)]);
  console.log(`\nunet predict per image (unet bench --predict -b 1, median forward): ${r.predict.ms_per_image} ms`);
  const s = r.soak;
  console.log(`soak: ${s.ok}/${s.requests} answered (${s.image}, ${s.clients} clients, ${s.seconds} s, ${s.rps} req/s); RSS ${s.rss_start_mb} -> ${s.rss_half_mb} -> ${s.rss_end_mb} MB, peak ${s.rss_peak_mb}; server exit ${s.server_exit}`);
  if (r.mask_agreement_ours_vs_python !== null) console.log(`masks, ours vs Python, same request: ${(r.mask_agreement_ours_vs_python * 100).toFixed(3)} % of pixels equal`);
  console.log('');
  row(['check', 'value', 'goal', 'pass']);
  row(['---', '---:', '---', '---']);
  const c = r.checks;
  row([`(a) req/s at ${r.params.clients} clients / --max-batch 1`, c.a_batching_speedup.value, c.a_batching_speedup.goal, c.a_batching_speedup.pass]);
  row(['(b) p99 at 1 client / predict per image', c.b_p99_1client_over_predict.value, c.b_p99_1client_over_predict.goal, c.b_p99_1client_over_predict.pass]);
  if (c.c_ours_over_python) row([`(c) req/s ours / Python (${c.c_ours_over_python.python_mode}), ${r.params.clients} clients`, c.c_ours_over_python.value, c.c_ours_over_python.goal, c.c_ours_over_python.pass]);
  row(['(d) soak RSS MB per 1,000 requests (2nd half)', c.d_soak_slope_mb_per_1000.value, c.d_soak_slope_mb_per_1000.goal, c.d_soak_slope_mb_per_1000.pass]);
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`serve-bench: ${e.message}`);
    process.exit(1);
  },
);
