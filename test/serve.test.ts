// `unet serve`: Open Inference Protocol v2 conformance (from Node and from a Python urllib client),
// /segment = `unet predict`'s bytes, /infer = predict's logits, batched = unbatched, concurrent mixed
// shapes with batches > 1 in /metrics, slow and vanishing clients, SIGTERM drain. One narrow UNet
// (widths / 16) served by a real `unet serve` subprocess.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { encode as encodePng } from 'fast-png';
import { defaults, predictOptions } from '../src/config/options.js';
import * as E from '../src/engine/index.js';
import { saveCheckpoint } from '../src/model/checkpoint.js';
import { type Predictor, forwardLogits, loadPredictor, preprocess, runPredict } from '../src/predict/index.js';
import { type CliResult, spawnCli } from './helpers/cli.js';
import { PYTHON, maxDiff } from './helpers/python.js';
import { evalUNet } from './helpers/tiny-unet.js';
import { tempDir } from './helpers/workdir.js';

const dir = tempDir('serve');
const TOKEN = 's3cret-token';
const ARGS = { nChannels: 3, nClasses: 3, bilinear: true };
const MASK_VALUES = [0, 100, 200];
const ckpt = join(dir, 'best_model.pth');
const image = join(dir, 'cells.png');
let reference: Predictor;

interface Server {
  url: string;
  done: Promise<CliResult>;
  kill: (s: NodeJS.Signals) => void;
}

/** `unet serve` in a subprocess; resolves once it listens (--port 0: the port it prints). */
async function startServer(extra: string[]): Promise<Server> {
  const s = spawnCli(['serve', '-m', ckpt, '--port', '0', '--device', 'cpu', ...extra], { timeoutMs: 90_000 });
  const started = Date.now();
  for (;;) {
    const m = /Listening on (http:\/\/[^ ]+)/.exec(s.out());
    if (m) return { url: m[1], done: s.done, kill: (sig) => s.child.kill(sig) };
    const ended = await Promise.race([s.done, new Promise((r) => setTimeout(() => r(null), 50))]);
    if (ended || Date.now() - started > 60_000) throw new Error(`serve did not start:\n${s.out()}\n${s.err()}`);
  }
}

/** Deterministic pixels in 0..1, [N, C, H, W] flat. */
function pixels(n: number, h: number, w: number, seed: number): number[] {
  return Array.from({ length: n * 3 * h * w }, (_, i) => Math.round(((Math.sin(i * 0.37 + seed) + 1) / 2) * 255) / 255);
}

const inferBody = (data: number[], shape: number[], outputs?: string[]) => JSON.stringify({ id: 'r1', inputs: [{ name: 'input', shape, datatype: 'FP32', data }], ...(outputs ? { outputs: outputs.map((name) => ({ name })) } : {}) });

/** Reference logits of predict's forward for one [N, 3, H, W] input. */
function predictLogits(data: number[], shape: number[]): Float32Array {
  const [n, c, h, w] = shape;
  const plane = c * h * w;
  const items = Array.from({ length: n }, (_, i) => ({
    path: 'x',
    data: Float32Array.from(data.slice(i * plane, (i + 1) * plane)),
    channels: c,
    width: w,
    height: h,
    fullWidth: w,
    fullHeight: h,
    warnings: [],
  }));
  return forwardLogits(reference, items).disposeAfter((t) => Float32Array.from(t.to({ device: 'cpu' }).data() as Float32Array));
}

type Out = { name: string; shape: number[]; datatype: string; data: number[] };

before(async () => {
  const rgb = new Uint8Array(64 * 48 * 3).map((_, i) => (i * 37 + (i >> 5) * 11) % 256);
  writeFileSync(image, encodePng({ width: 64, height: 48, data: rgb, channels: 3, depth: 8 }));
  const m = evalUNet(ARGS, 7, 16);
  try {
    // Each class's mean logit on the image moved to 0, so that classes tie often: a random UNet
    // otherwise predicts nearly one class everywhere, and masks would agree by chance.
    const pre = await preprocess(image, 0.5, 3);
    E.noGrad(() =>
      E.tidy(() => {
        const mean = m.forward(E.tensor(pre.data, [1, 3, pre.height, pre.width])).mean([0, 2, 3]);
        m.stateDict().get('outc.conv.bias')?.add_(mean, -1);
      }),
    );
    await saveCheckpoint(ckpt, { model: m.stateDict(), epoch: 1, globalStep: 1, loss: 0.1, valScore: 0.5, maskValues: MASK_VALUES, modelArgs: m.args, config: {} });
  } finally {
    m.dispose();
  }
  writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
  reference = await loadPredictor(ckpt, { device: 'cpu' });
});
after(() => reference?.dispose());

describe('unet serve', () => {
  let srv: Server;
  const auth = { Authorization: `Bearer ${TOKEN}` };
  const get = (path: string, headers: Record<string, string> = auth) => fetch(srv.url + path, { headers });
  const post = (path: string, body: string | Uint8Array, headers: Record<string, string> = auth) => fetch(srv.url + path, { method: 'POST', body: typeof body === 'string' ? body : new Blob([Uint8Array.from(body)]), headers });
  const infer = async (data: number[], shape: number[], outputs?: string[]) => {
    const r = await post('/v2/models/best_model/infer', inferBody(data, shape, outputs));
    assert.equal(r.status, 200, await r.clone().text());
    return ((await r.json()) as { outputs: Out[] }).outputs;
  };

  before(async () => {
    srv = await startServer(['--token-file', join(dir, 'token'), '--max-batch', '8', '--max-delay-ms', '40', '--max-body-mb', '8', '--max-pixels', '300000', '--timeout-s', '20']);
  });
  after(async () => {
    srv?.kill('SIGTERM');
    await srv?.done;
  });

  test('health, server and model metadata, and every error answer as the protocol has them (Node client)', async () => {
    assert.deepEqual(await (await get('/v2/health/live')).json(), { live: true });
    assert.deepEqual(await (await get('/v2/health/ready')).json(), { ready: true });
    assert.equal(((await (await get('/v2')).json()) as { name: string }).name, 'unet-ts');
    const meta = (await (await get('/v2/models/best_model')).json()) as { name: string; inputs: { shape: number[]; datatype: string }[]; outputs: { name: string }[] };
    assert.equal(meta.name, 'best_model');
    assert.deepEqual(meta.inputs[0], { name: 'input', datatype: 'FP32', shape: [-1, 3, -1, -1] });
    assert.deepEqual(
      meta.outputs.map((o) => o.name),
      ['logits', 'mask'],
    );
    assert.deepEqual(await (await get('/v2/models/best_model/ready')).json(), { name: 'best_model', ready: true });
    const errors: [Promise<Response>, number, RegExp][] = [
      [get('/v2/health/live', {}), 401, /bearer token/],
      [get('/v2/health/live', { Authorization: 'Bearer wrong' }), 401, /bearer token/],
      [get('/v2/models/nope'), 404, /unknown model 'nope'.*best_model/],
      [post('/v2/models/nope/infer', inferBody(pixels(1, 16, 16, 0), [1, 3, 16, 16])), 404, /unknown model/],
      [get('/v2/nothing'), 404, /no endpoint/],
      [get('/v2/models/best_model/infer'), 405, /takes POST/],
      [post('/v2/models/best_model/infer', '{"inputs": ['), 400, /not valid JSON/],
      [post('/v2/models/best_model/infer', inferBody(pixels(1, 16, 16, 0), [1, 3, 16, 16]).replace('FP32', 'INT64')), 400, /datatype must be "FP32"/],
      [post('/v2/models/best_model/infer', inferBody(pixels(1, 16, 16, 0), [1, 1, 48, 16])), 400, /shape must be \[N, 3, H, W\]/],
      [post('/v2/models/best_model/infer', inferBody(pixels(1, 16, 16, 0), [3, 16, 16])), 400, /shape must be/],
      [post('/v2/models/best_model/infer', inferBody(pixels(1, 16, 16, 0).slice(1), [1, 3, 16, 16])), 400, /must hold 768 finite numbers/],
      [post('/v2/models/best_model/infer', inferBody(pixels(1, 16, 16, 0), [1, 3, 16, 16], ['probs'])), 400, /unknown output "probs"/],
      [post('/v2/models/best_model/infer', inferBody([0], [1, 3, 600, 600])), 413, /--max-pixels 300000/],
      [post('/v2/models/best_model/infer', Buffer.alloc(9 * 2 ** 20, 32)), 413, /over the server's limit of 8388608 bytes/],
      [post('/v2/models/best_model/segment', Buffer.from('not an image')), 400, /./],
    ];
    for (const [pending, status, message] of errors) {
      const r = await pending;
      const body = (await r.json()) as { error: string };
      assert.equal(r.status, status, JSON.stringify(body));
      assert.equal(r.headers.get('content-type'), 'application/json');
      assert.match(body.error, message);
    }
  });

  test('the same endpoints and errors from a Python client (standard library urllib)', async () => {
    const script = `
import json, sys, urllib.request, urllib.error
url, token = sys.argv[1], sys.argv[2]
def call(path, body=None, auth=True):
    req = urllib.request.Request(url + path, data=body, headers={'Authorization': 'Bearer ' + token} if auth else {})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.headers.get('Content-Type'), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get('Content-Type'), e.read()
out = {}
for name, path in [('live', '/v2/health/live'), ('ready', '/v2/health/ready'), ('server', '/v2'), ('meta', '/v2/models/best_model'), ('model_ready', '/v2/models/best_model/ready'), ('unknown', '/v2/models/nope')]:
    code, ctype, body = call(path)
    out[name] = [code, json.loads(body)]
out['no_token'] = call('/v2/health/live', auth=False)[0]
req = {'inputs': [{'name': 'input', 'shape': [1, 3, 16, 16], 'datatype': 'FP32', 'data': [0.5] * 768}], 'outputs': [{'name': 'mask'}]}
code, ctype, body = call('/v2/models/best_model/infer', json.dumps(req).encode())
out['infer'] = [code, json.loads(body)]
out['bad_json'] = call('/v2/models/best_model/infer', b'{')[0]
req['inputs'][0]['datatype'] = 'FP64'
out['bad_type'] = call('/v2/models/best_model/infer', json.dumps(req).encode())[0]
code, ctype, body = call('/v2/models/best_model/segment', open(sys.argv[3], 'rb').read())
out['segment'] = [code, ctype, body[:8].hex()]
print(json.dumps(out))
`;
    const { stdout } = await promisify(execFile)(PYTHON, ['-c', script, srv.url, TOKEN, image], { encoding: 'utf8' });
    const out = JSON.parse(stdout) as Record<string, unknown>;
    assert.deepEqual(out.live, [200, { live: true }]);
    assert.deepEqual(out.ready, [200, { ready: true }]);
    assert.equal((out.server as [number, { name: string }])[1].name, 'unet-ts');
    assert.equal((out.meta as [number, { name: string }])[1].name, 'best_model');
    assert.deepEqual(out.model_ready, [200, { name: 'best_model', ready: true }]);
    assert.equal((out.unknown as [number])[0], 404);
    assert.match((out.unknown as [number, { error: string }])[1].error, /unknown model/);
    assert.equal(out.no_token, 401);
    const [code, res] = out.infer as [number, { model_name: string; id: string; outputs: Out[] }];
    assert.equal(code, 200);
    assert.equal(res.model_name, 'best_model');
    assert.deepEqual(
      res.outputs.map((o) => [o.name, o.datatype, o.shape]),
      [['mask', 'UINT8', [1, 16, 16]]],
    );
    assert.equal(out.bad_json, 400);
    assert.equal(out.bad_type, 400);
    assert.deepEqual(out.segment, [200, 'image/png', '89504e470d0a1a0a']);
  });

  test('/segment returns the bytes `unet predict` writes, ?overlay=1 its overlay', async () => {
    const r = await runPredict({ ...defaults(predictOptions), model: ckpt, input: [image], viz: true, device: 'cpu' }, { log: () => {}, warn: () => {}, progress: false });
    assert.equal(r.exitCode, 0);
    const body = readFileSync(image);
    const mask = Buffer.from(await (await post('/v2/models/best_model/segment', body)).arrayBuffer());
    assert.ok(mask.equals(readFileSync(join(dir, 'cells_OUT.png'))), "mask PNG differs from predict's");
    const overlay = Buffer.from(await (await post('/v2/models/best_model/segment?overlay=1', body)).arrayBuffer());
    assert.ok(overlay.equals(readFileSync(join(dir, 'cells_OVERLAY.png'))), 'overlay differs from predict -v');
  });

  test("/infer logits equal predict's forward to 1e-5 (a preprocessed image), the mask their argmax", async () => {
    const pre = await preprocess(image, 0.5, 3);
    const data = Array.from(pre.data);
    const shape = [1, 3, pre.height, pre.width];
    const [logits, mask] = await infer(data, shape);
    assert.deepEqual(logits.shape, [1, 3, pre.height, pre.width]);
    const want = predictLogits(data, shape);
    assert.ok(maxDiff(logits.data, want) <= 1e-5, `max diff ${maxDiff(logits.data, want)}`);
    const plane = pre.height * pre.width;
    const argmax = Array.from({ length: plane }, (_, i) => [0, 1, 2].reduce((b, k) => (want[k * plane + i] > want[b * plane + i] ? k : b), 0));
    assert.deepEqual(mask.data, argmax);
  });

  test('a batch of 3 answers as 3 single requests', async () => {
    const data = pixels(3, 32, 16, 1);
    const [batched] = await infer(data, [3, 3, 32, 16], ['logits']);
    const plane = 3 * 32 * 16;
    // One after the other, so that the server cannot batch them.
    const singles: number[][] = [];
    for (const i of [0, 1, 2]) singles.push((await infer(data.slice(i * plane, (i + 1) * plane), [1, 3, 32, 16], ['logits']))[0].data);
    assert.ok(maxDiff(batched.data, singles.flat()) <= 1e-5);
    assert.ok(maxDiff(batched.data, predictLogits(data, [3, 3, 32, 16])) <= 1e-5);
  });

  test('64 concurrent requests of mixed shapes are all answered correctly, in batches > 1', async () => {
    const shapes = [
      [1, 3, 16, 16],
      [1, 3, 32, 16],
      [2, 3, 16, 32],
      [1, 3, 48, 48],
    ];
    const jobs = Array.from({ length: 64 }, (_, i) => ({ shape: shapes[i % 4], data: pixels(shapes[i % 4][0], shapes[i % 4][2], shapes[i % 4][3], i) }));
    const answers = await Promise.all(jobs.map((j) => infer(j.data, j.shape, ['logits'])));
    jobs.forEach((j, i) => assert.ok(maxDiff(answers[i][0].data, predictLogits(j.data, j.shape)) <= 1e-5, `request ${i}`));
    const metrics = await (await get('/metrics')).text();
    const bucket = (le: string) => Number(new RegExp(`unet_serve_batch_size_bucket\\{le="${le}"\\} (\\d+)`).exec(metrics)?.[1]);
    const batches = Number(/unet_serve_batch_size_count (\d+)/.exec(metrics)?.[1]);
    assert.ok(batches > bucket('1'), `no batch of more than one image:\n${metrics}`);
    assert.ok(batches < 64, `every request ran alone:\n${metrics}`);
    assert.match(metrics, /unet_serve_requests_total\{code="200"\} \d+/);
    assert.match(metrics, /unet_serve_request_duration_seconds_bucket\{le="0.1"\} \d+/);
    assert.match(metrics, /unet_serve_queue_depth 0/);
    assert.match(metrics, /unet_serve_inference_seconds_count \d+/);
  });

  test('a long forward runs off the event loop: health checks are answered meanwhile', async () => {
    const metric = async (re: RegExp) => Number(re.exec(await (await get('/metrics')).text())?.[1]);
    const inferenceSum = /unet_serve_inference_seconds_sum ([\d.e+-]+)/;
    const before = await metric(inferenceSum);
    const shape = [4, 3, 256, 256];
    // Short numbers (0, 0.25, ... 1) keep the 786,432 values' JSON at ~4 MB.
    const big = infer(
      Array.from({ length: 4 * 3 * 256 * 256 }, (_, i) => ((i * 7) % 5) / 4),
      shape,
      ['mask'],
    );
    let busy = true;
    const probes: number[] = [];
    void big.finally(() => (busy = false));
    while (busy) {
      const t0 = performance.now();
      assert.equal((await get('/v2/health/live')).status, 200);
      probes.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 25));
    }
    await big;
    const forward = (await metric(inferenceSum)) - before;
    // On the event loop, one probe would wait for the whole forward and few would be answered.
    // (Reading the 4 MB JSON body and writing the answer do hold the loop, briefly: those probes are slower.)
    const quick = probes.filter((ms) => ms < 100).length;
    const why = `forward ${forward.toFixed(3)} s; health checks meanwhile (ms): ${probes.map(Math.round).join(', ')}`;
    assert.ok(forward > 0.3, why);
    assert.ok(quick >= (forward * 1000) / 25 / 3, why);
  });

  test('a slow client and a vanishing one do not hold the others', async () => {
    const host = new URL(srv.url);
    // Slow: sends its headers and part of its body, then waits.
    const slow = connect(Number(host.port), host.hostname);
    slow.write(`POST /v2/models/best_model/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: 5000\r\n\r\n{"inp`);
    // Vanishing: a whole request, then gone before the answer.
    const gone = connect(Number(host.port), host.hostname);
    const body = inferBody(pixels(1, 16, 16, 3), [1, 3, 16, 16]);
    gone.write(`POST /v2/models/best_model/infer HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    await new Promise((r) => setTimeout(r, 20));
    gone.destroy();
    const t0 = performance.now();
    const answers = await Promise.all([0, 1, 2, 3].map((i) => infer(pixels(1, 16, 16, i), [1, 3, 16, 16], ['mask'])));
    assert.equal(answers.length, 4);
    assert.ok(performance.now() - t0 < 5000, 'others waited for the slow client');
    slow.destroy();
  });
});

test('SIGTERM drains: ready turns false, new requests get 503, the request in flight finishes, exit 0', async () => {
  const srv = await startServer([]);
  const host = new URL(srv.url);
  const body = inferBody(pixels(1, 16, 16, 5), [1, 3, 16, 16], ['mask']);
  // In flight: headers and half the body sent before the signal, the rest after.
  const sock = connect(Number(host.port), host.hostname);
  let reply = '';
  sock.setEncoding('utf8').on('data', (s: string) => (reply += s));
  const closed = new Promise((r) => sock.on('close', r));
  sock.write(`POST /v2/models/best_model/infer HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 100)}`);
  await new Promise((r) => setTimeout(r, 300));
  srv.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 300));
  const ready = await fetch(`${srv.url}/v2/health/ready`);
  assert.equal(ready.status, 503);
  assert.deepEqual(await ready.json(), { ready: false });
  const late = await fetch(`${srv.url}/v2/models/best_model/infer`, { method: 'POST', body });
  assert.equal(late.status, 503);
  assert.match(((await late.json()) as { error: string }).error, /shutting down/);
  // (write, not end: a half-closed connection is an aborted request to Node's server)
  sock.write(body.slice(100));
  await closed;
  assert.match(reply, /^HTTP\/1.1 200 /);
  assert.match(reply, /"name":"mask"/);
  const r = await srv.done;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /SIGTERM: draining/);
});

test('serve --help lists the endpoints; a bad start is one line and the right exit code', async () => {
  const { runCli, assertCleanFailure } = await import('./helpers/cli.js');
  const help = await runCli(['serve', '--help']);
  assert.equal(help.code, 0);
  for (const flag of ['--max-batch', '--max-delay-ms', '--token-file', '--host', '--port', '/v2/models/{name}/infer', '/segment', '/metrics']) assert.ok(help.stdout.includes(flag), flag);
  assertCleanFailure(await runCli(['serve']), /no model to serve: pass a checkpoint with -m/, 'no -m', 64);
  assertCleanFailure(await runCli(['serve', '-m', ckpt, '-m', ckpt]), /two models are named 'best_model'/, 'same name', 64);
  assertCleanFailure(await runCli(['serve', '-m', ckpt, '--token-file', join(dir, 'none')]), /--token-file .*none: cannot read it/, 'token file', 1);
  assertCleanFailure(await runCli(['serve', '-m', join(dir, 'missing.pth'), '--port', '0']), /missing\.pth/, 'missing model', 1);
});

test("/segment with --tile goes through predict's tiler: the bytes of `unet predict --tile 16`", async () => {
  const out = join(dir, 'tiled.png');
  const r = await runPredict({ ...defaults(predictOptions), model: ckpt, input: [image], output: [out], tile: 16, device: 'cpu' }, { log: () => {}, warn: () => {}, progress: false });
  assert.equal(r.exitCode, 0);
  const srv = await startServer(['--tile', '16']);
  try {
    const res = await fetch(`${srv.url}/v2/models/best_model/segment`, { method: 'POST', body: new Blob([readFileSync(image)]) });
    assert.equal(res.status, 200);
    const png = Buffer.from(await res.arrayBuffer());
    assert.ok(png.equals(readFileSync(out)), 'tiled mask differs from predict --tile 16');
    assert.ok(!png.equals(readFileSync(join(dir, 'cells_OUT.png'))), 'the windows changed nothing: the test cannot tell tiled from whole');
  } finally {
    srv.kill('SIGTERM');
    await srv.done;
  }
});

test('back-pressure and limits: a full queue answers 503 with Retry-After, a late answer 504, a large image 413', async () => {
  // One request waits (3 s for batch-mates) and fills the queue of 1; it times out after 1 s.
  const srv = await startServer(['--max-queue', '1', '--max-delay-ms', '3000', '--timeout-s', '1', '--max-pixels', '2000']);
  try {
    const post = (path: string, body: string | Buffer) => fetch(srv.url + path, { method: 'POST', body: typeof body === 'string' ? body : new Blob([Uint8Array.from(body)]) });
    const waiting = post('/v2/models/best_model/infer', inferBody(pixels(1, 16, 16, 0), [1, 3, 16, 16]));
    await new Promise((r) => setTimeout(r, 300));
    const full = await post('/v2/models/best_model/infer', inferBody(pixels(1, 32, 16, 0), [1, 3, 32, 16]));
    assert.equal(full.status, 503);
    assert.equal(full.headers.get('retry-after'), '1');
    assert.match(((await full.json()) as { error: string }).error, /queue is full/);
    const late = await waiting;
    assert.equal(late.status, 504);
    assert.match(((await late.json()) as { error: string }).error, /no answer within 1 s/);
    const big = await post('/v2/models/best_model/segment', readFileSync(image));
    assert.equal(big.status, 413);
    assert.match(((await big.json()) as { error: string }).error, /64x48 = 3072 pixels, over the server's --max-pixels 2000/);
  } finally {
    srv.kill('SIGTERM');
    await srv.done;
  }
});
