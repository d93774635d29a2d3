/**
 * The HTTP side of `unet serve`: routes, bearer token, body limits, per-request timeouts, the
 * batching queue in front of the inference thread, metrics and draining. Nothing here touches
 * libtorch: the event loop only reads requests and writes answers.
 */
import { timingSafeEqual } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { type BatchItem, Batcher, QueueFull } from './batcher.js';
import { Metrics } from './metrics.js';
import { HttpError, type InferRequest, inferResponse, modelMetadata, parseInferRequest } from './protocol.js';
import { type InferenceThread, JobError, type JobResult, type LoadedModel } from './thread.js';

export interface ServerOptions {
  maxBatch: number;
  maxDelayMs: number;
  maxQueue: number;
  maxBodyBytes: number;
  maxPixels: number;
  timeoutMs: number;
  /** Required bearer token; null: none. */
  token: string | null;
  version: string;
}

type Job = { model: LoadedModel; infer: InferRequest } | { model: LoadedModel; image: Uint8Array; overlay: boolean };
type Item = BatchItem<Job, JobResult>;

export interface ModelServer {
  http: Server;
  metrics: Metrics;
  /** Ready turns false, new requests get 503; resolves when every request in flight is answered. */
  drain(): Promise<void>;
}

const JSON_TYPE = 'application/json';

function send(res: ServerResponse, status: number, body: object | string, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': typeof body === 'string' ? 'text/plain; version=0.0.4; charset=utf-8' : JSON_TYPE, 'Content-Length': String(Buffer.byteLength(text)), ...headers });
  res.end(text);
}

/** The body, refused with 413 past `limit` bytes (the connection is closed: the rest is not read). */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  const tooLarge = () => new HttpError(413, `the body is over the server's limit of ${limit} bytes (--max-body-mb)`);
  if (declared > limit) return Promise.reject(tooLarge());
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > limit) {
        req.removeAllListeners('data');
        reject(tooLarge());
      } else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** Runs one batch: infer jobs of one model and shape share a forward pass; a segment job runs alone. */
async function runBatch(thread: InferenceThread, metrics: Metrics, items: Item[]): Promise<void> {
  const live = items.filter((it) => !it.cancelled);
  if (live.length === 0) return;
  const first = live[0].job;
  const images = live.reduce((n, it) => n + it.images, 0);
  let result: JobResult;
  if ('image' in first) {
    result = await thread.run({ type: 'segment', model: first.model.name, body: first.image, overlay: first.overlay });
  } else {
    const reqs = live.map((it) => (it.job as { infer: InferRequest }).infer);
    const [, c, h, w] = first.infer.shape;
    const data = new Float32Array(images * c * h * w);
    let at = 0;
    for (const r of reqs) {
      data.set(r.data, at);
      at += r.data.length;
    }
    const wants = (o: string) => reqs.some((r) => r.outputs.includes(o as 'logits'));
    result = await thread.run({ type: 'infer', model: first.model.name, shape: [images, c, h, w], data, logits: wants('logits'), mask: wants('mask') });
  }
  metrics.batchSize.observe(images);
  metrics.inference.observe(result.ms / 1000);
  if (live.length === 1) return live[0].resolve(result);
  // Each request's slice of the batch's outputs, one per turn of the event loop: each answer's JSON
  // is encoded as it resolves, and other requests get in between.
  const { nClasses } = first.model;
  const [, , h, w] = (first as { infer: InferRequest }).infer.shape;
  let n0 = 0;
  for (const it of live) {
    if (n0 > 0) await new Promise((r) => setImmediate(r));
    const n = it.images;
    it.resolve({
      ...result,
      logits: result.logits?.slice(n0 * nClasses * h * w, (n0 + n) * nClasses * h * w),
      mask: result.mask?.slice(n0 * h * w, (n0 + n) * h * w),
    });
    n0 += n;
  }
}

/** The server's state, shared by its request handlers. */
interface Ctx {
  o: ServerOptions;
  models: Map<string, LoadedModel>;
  metrics: Metrics;
  batcher: Batcher<Job, JobResult>;
  token: Buffer | null;
  draining: boolean;
  inFlight: number;
}

function authorized(ctx: Ctx, req: IncomingMessage): boolean {
  if (!ctx.token) return true;
  const got = Buffer.from(req.headers.authorization ?? '');
  return got.length === ctx.token.length && timingSafeEqual(got, ctx.token);
}

function findModel(ctx: Ctx, raw: string): LoadedModel {
  let name = raw;
  try {
    name = decodeURIComponent(raw);
  } catch {
    // a malformed escape: no model has that name
  }
  const m = ctx.models.get(name);
  if (!m) throw new HttpError(404, `unknown model '${name}'; this server has: ${[...ctx.models.keys()].join(', ')}`);
  return m;
}

/** Queues a job; answers 503 when the queue is full, 504 past the timeout. */
async function enqueue(ctx: Ctx, job: Job, images: number, key: string | null, res: ServerResponse): Promise<JobResult> {
  let queued: ReturnType<typeof ctx.batcher.submit>;
  try {
    queued = ctx.batcher.submit({ job, images, key });
  } catch (e) {
    if (e instanceof QueueFull) throw new HttpError(503, `${e.message}; retry shortly`, { 'Retry-After': '1' });
    throw e;
  }
  // A client that went away is not computed for (when its batch has not started yet).
  res.once('close', queued.cancel);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      queued.cancel();
      reject(new HttpError(504, `no answer within ${ctx.o.timeoutMs / 1000} s (--timeout-s); the server is busy`));
    }, ctx.o.timeoutMs);
    // A request whose client left must not keep a draining process alive.
    timer.unref();
  });
  try {
    return await Promise.race([queued.done, timeout]);
  } catch (e) {
    if (e instanceof JobError) throw new HttpError(e.status, e.message);
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

/** POST /infer and /segment. */
async function predictRoute(ctx: Ctx, req: IncomingMessage, res: ServerResponse, mod: LoadedModel, action: string, url: URL): Promise<void> {
  if (ctx.draining) throw new HttpError(503, 'the server is shutting down');
  const body = await readBody(req, ctx.o.maxBodyBytes);
  if (action === 'infer') {
    const infer = parseInferRequest(body.toString('utf8'), mod, ctx.o.maxPixels);
    const [n, c, h, w] = infer.shape;
    const r = await enqueue(ctx, { model: mod, infer }, n, `${mod.name}:${c}x${h}x${w}`, res);
    return send(res, 200, inferResponse(mod, infer, r.logits, r.mask));
  }
  if (body.length === 0) throw new HttpError(400, 'the body must be a PNG, JPEG or TIFF image (e.g. curl --data-binary @image.png)');
  const overlay = ['1', 'true'].includes(url.searchParams.get('overlay') ?? '');
  const r = await enqueue(ctx, { model: mod, image: body, overlay }, 1, null, res);
  const png = Buffer.from(r.png as Uint8Array);
  res.writeHead(200, { 'Content-Type': 'image/png', 'Content-Length': String(png.length) }).end(png);
}

async function route(ctx: Ctx, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://x');
  const path = url.pathname.replace(/\/+$/, '') || '/';
  const method = req.method ?? 'GET';
  const only = (m: string) => {
    if (method !== m) throw new HttpError(405, `${path} takes ${m}, not ${method}`, { Allow: m });
  };
  const get = (status: number, body: object | string) => {
    only('GET');
    send(res, status, body);
  };
  const { draining } = ctx;
  if (!authorized(ctx, req)) throw new HttpError(401, 'missing or wrong bearer token: send the header "Authorization: Bearer <token>" with the token of --token-file', { 'WWW-Authenticate': 'Bearer' });
  if (path === '/v2/health/live') return get(200, { live: true });
  if (path === '/v2/health/ready') return get(draining ? 503 : 200, { ready: !draining });
  if (path === '/v2') return get(200, { name: 'unet-ts', version: ctx.o.version, extensions: [] });
  if (path === '/metrics') return get(200, ctx.metrics.text(ctx.batcher.depth, ctx.inFlight));
  const m = /^\/v2\/models\/([^/]+)(?:\/(ready|infer|segment))?$/.exec(path);
  if (!m) throw new HttpError(404, `no endpoint ${path}; see /v2, /v2/health/ready, /v2/models/{name}, /v2/models/{name}/infer, /v2/models/{name}/segment, /metrics`);
  const mod = findModel(ctx, m[1]);
  if (m[2] === undefined) return get(200, modelMetadata(mod));
  if (m[2] === 'ready') return get(draining ? 503 : 200, { name: mod.name, ready: !draining });
  only('POST');
  return predictRoute(ctx, req, res, mod, m[2], url);
}

export function createModelServer(thread: InferenceThread, o: ServerOptions): ModelServer {
  const metrics = new Metrics();
  const ctx: Ctx = {
    o,
    models: new Map(thread.models.map((m) => [m.name, m])),
    metrics,
    batcher: new Batcher<Job, JobResult>({ maxBatch: o.maxBatch, maxDelayMs: o.maxDelayMs, maxQueue: o.maxQueue }, (items) => runBatch(thread, metrics, items)),
    token: o.token === null ? null : Buffer.from(`Bearer ${o.token}`),
    draining: false,
    inFlight: 0,
  };
  let onIdle: (() => void) | null = null;
  const http = createServer((req, res) => {
    const t0 = performance.now();
    ctx.inFlight++;
    if (ctx.draining) res.shouldKeepAlive = false;
    res.once('close', () => {
      ctx.inFlight--;
      metrics.request(res.headersSent ? res.statusCode : 499, (performance.now() - t0) / 1000);
      if (ctx.inFlight === 0 && onIdle) onIdle();
    });
    route(ctx, req, res).catch((e: unknown) => {
      if (e instanceof HttpError) send(res, e.status, { error: e.message }, e.headers);
      else send(res, 500, { error: `internal error: ${(e as Error).message}` });
      // The unread rest of a refused body is read and dropped, so the client gets to read the answer.
      req.resume();
    });
  });
  // A client that sends its request slowly is cut off (408) without holding anything else.
  http.requestTimeout = o.timeoutMs;
  http.headersTimeout = Math.min(o.timeoutMs, 60_000);
  // Idle keep-alive connections stay longer than clients' and proxies' usual idle limits, so a client
  // never sends on a connection the server is closing at that moment (draining closes them at once).
  http.keepAliveTimeout = 65_000;
  return {
    http,
    metrics,
    drain: () => {
      ctx.draining = true;
      ctx.batcher.flush();
      http.closeIdleConnections();
      if (ctx.inFlight === 0) return Promise.resolve();
      return new Promise<void>((ok) => {
        onIdle = ok;
      });
    },
  };
}
