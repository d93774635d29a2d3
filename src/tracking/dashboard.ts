// Local dashboard: a small read-only HTTP server over the log directory.
//
// Routes (GET only):
//   /                                  the page
//   /assets/{uPlot.iife.min.js,uPlot.min.css,app.js,app.css}
//   /api/runs                          {runs: RunInfo[]}
//   /api/runs/<run>/config             config.json
//   /api/runs/<run>/<metrics|histograms|media>?from=<byte offset>
//                                      {records, next, more}: only what was appended since `from`
//   /files/<run>/<path>                a file inside the run directory (PNG, JSON, report.html…)
//   /try/<run>/                        the browser predictor for the run's best model (when the
//                                      caller passes `tryIt`; `unet dashboard` does)
//
// Security: bound to 127.0.0.1 by default; only GET; every path segment must
// match a strict pattern (so "..", "%2e%2e", "%2f", backslashes, NUL and
// absolute paths are rejected with 400 before touching the disk); the real
// path of a served file must lie inside the real log directory (no symlink
// escapes: 404); the Host header must be an IP address or one of this machine's
// names (see hostAllowed: blocks DNS rebinding from web pages); no directory listings.
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo, isIP } from 'node:net';
import { hostname } from 'node:os';
import { extname, join, resolve } from 'node:path';
import { clientAssets, dashboardHtml, uplotAssets } from './page.js';
import type { RunList } from './records.js';
import { HISTOGRAMS_FILE, isInside, isSafeSegment, listRuns, MEDIA_FILE, METRICS_FILE, readConfig, readJsonlFrom } from './runfiles.js';

export interface DashboardOptions {
  /** directory holding the run directories (default "runs") */
  logdir?: string;
  /** 0 picks a free port (default 6006, TensorBoard's) */
  port?: number;
  /** default 127.0.0.1: only this machine can connect */
  host?: string;
  /**
   * Serves /try/<run>/<file>: the browser predictor for the run's best model (`runDir` is the
   * checked real path of the run directory). Given by the CLI, which knows about models.
   */
  tryIt?: (runDir: string, file: string, res: ServerResponse) => Promise<void>;
}

export interface Dashboard {
  url: string;
  port: number;
  host: string;
  close(): Promise<void>;
}

const JSONL_KINDS: Record<string, string> = { metrics: METRICS_FILE, histograms: HISTOGRAMS_FILE, media: MEDIA_FILE };

const CONTENT_TYPES: Record<string, string> = {
  '.png': 'image/png',
  '.json': 'application/json; charset=utf-8',
  '.jsonl': 'application/x-ndjson; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.csv': 'text/csv; charset=utf-8',
  '.log': 'text/plain; charset=utf-8',
};

const PAGE_CSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'";
// report.html is our own self-contained page, which needs its inline scripts; it may fetch nothing.
const REPORT_CSP = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:";

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}

/**
 * The names a Host header may give besides IP addresses: localhost, the bound name, and when bound
 * beyond loopback this machine's host name (also with ".local"). DNS rebinding needs a name the
 * attacker controls, so a Host that is an IP address is safe; other names are refused.
 */
export function allowedHostNames(boundHost: string): Set<string> {
  const names = new Set(['localhost', boundHost.toLowerCase()]);
  if (!isLoopback(boundHost)) {
    const own = hostname().toLowerCase();
    const short = own.split('.')[0] as string;
    for (const n of [own, short, `${short}.local`]) if (n) names.add(n);
  }
  return names;
}

/** Host header names this machine (with any port). */
export function hostAllowed(hostHeader: string | undefined, names: ReadonlySet<string>): boolean {
  if (!hostHeader) return false;
  let name = hostHeader.trim().toLowerCase();
  if (name.startsWith('[')) name = name.slice(1, name.indexOf(']'));
  else if (name.includes(':')) name = name.slice(0, name.lastIndexOf(':'));
  if (name.endsWith('.')) name = name.slice(0, -1);
  return isIP(name) !== 0 || names.has(name);
}

/** One line for a failed listen (a taken port, an address this machine lacks), or null if it is no such error. */
export function listenProblem(err: unknown, host: string, port: number): string | null {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === 'EADDRINUSE') return `port ${port} on ${host} is already in use (another dashboard, or TensorBoard?)`;
  if (code === 'EACCES') return `port ${port} needs privileges on this machine`;
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `cannot listen on ${host}: not an address of this machine`;
  return null;
}

/**
 * Splits the raw request path into decoded, validated segments. The raw form
 * is checked first: URL parsers normalise "/a/../b" to "/b", which would hide
 * a traversal attempt instead of rejecting it.
 */
export function parsePath(rawUrl: string): { segments: string[]; query: URLSearchParams } {
  const q = rawUrl.indexOf('?');
  const rawPath = q < 0 ? rawUrl : rawUrl.slice(0, q);
  const query = new URLSearchParams(q < 0 ? '' : rawUrl.slice(q + 1));
  if (!rawPath.startsWith('/') || rawPath.startsWith('//')) throw new HttpError(400, 'bad path');
  // Encoded dots, slashes, backslashes and NUL have no business in our URLs.
  if (/%(2e|2f|5c|00)/i.test(rawPath) || rawPath.includes('\\') || rawPath.includes('\0')) throw new HttpError(400, 'bad path');
  const parts = rawPath.split('/').slice(1);
  if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
  const segments: string[] = [];
  for (const p of parts) {
    let s: string;
    try {
      s = decodeURIComponent(p);
    } catch {
      throw new HttpError(400, 'bad path');
    }
    if (s === '' && parts.length === 1) continue; // "/" itself
    if (!isSafeSegment(s)) throw new HttpError(400, 'bad path');
    segments.push(s);
  }
  return { segments, query };
}

/** Real path of `<logdir>/<run>/<rest>`, or 404 if missing or outside the log directory. */
async function resolveInRun(logdir: string, run: string, rest: string[]): Promise<string> {
  let realLogdir: string;
  let real: string;
  try {
    realLogdir = await realpath(logdir);
    real = await realpath(join(logdir, run, ...rest));
  } catch {
    throw new HttpError(404, 'not found');
  }
  const realRun = await realpath(join(logdir, run)).catch(() => '');
  if (!realRun || !isInside(realLogdir, realRun) || realRun === realLogdir || !isInside(realRun, real)) {
    throw new HttpError(404, 'not found');
  }
  return real;
}

function send(res: ServerResponse, status: number, body: string | Buffer, type: string, extra: Record<string, string> = {}): void {
  res.writeHead(status, {
    'Content-Type': type,
    'Content-Length': String(Buffer.byteLength(body)),
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': 'no-store',
    ...extra,
  });
  res.end(body);
}

function sendJson(res: ServerResponse, value: unknown): void {
  send(res, 200, JSON.stringify(value), 'application/json; charset=utf-8');
}

/** /api/runs (the run list), /api/runs/<run>/config and /api/runs/<run>/<jsonl kind>?from=N. */
async function serveApi(res: ServerResponse, logdir: string, segments: string[], query: URLSearchParams, tryIt: boolean): Promise<void> {
  if (segments.length === 0) {
    sendJson(res, { runs: await listRuns(logdir), tryIt } satisfies RunList);
    return;
  }
  if (segments.length === 2) {
    const [run, kind] = segments as [string, string];
    const dir = await resolveInRun(logdir, run, []);
    if (kind === 'config') {
      sendJson(res, await readConfig(dir));
      return;
    }
    const file = JSONL_KINDS[kind];
    if (file) {
      const from = Number(query.get('from') ?? '0');
      if (!Number.isFinite(from) || from < 0) throw new HttpError(400, 'bad offset');
      sendJson(res, await readJsonlFrom(join(dir, file), from));
      return;
    }
  }
  throw new HttpError(404, 'not found');
}

/** A file of a run (report, images, event files), streamed with headers that keep it inert. */
async function serveRunFile(res: ServerResponse, path: string): Promise<void> {
  const st = await stat(path);
  if (!st.isFile()) throw new HttpError(404, 'not found');
  const type = CONTENT_TYPES[extname(path).toLowerCase()] ?? (path.includes('tfevents') ? 'application/octet-stream' : undefined);
  if (!type) throw new HttpError(404, 'not found');
  const isHtml = type.startsWith('text/html');
  res.writeHead(200, {
    'Content-Type': type,
    'Content-Length': String(st.size),
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'no-referrer',
    'Cache-Control': 'no-store',
    'Content-Security-Policy': isHtml ? REPORT_CSP : "default-src 'none'",
  });
  await new Promise<void>((ok, fail) => {
    const s = createReadStream(path);
    s.on('error', fail);
    res.on('close', () => {
      s.destroy();
      ok();
    });
    s.pipe(res);
  });
}

export async function startDashboard(opts: DashboardOptions = {}): Promise<Dashboard> {
  const logdir = resolve(opts.logdir ?? 'runs');
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 6006;
  const uplot = uplotAssets();
  const client = clientAssets();
  const page = dashboardHtml();
  const hostNames = allowedHostNames(host);
  const assets: Record<string, [string, string]> = {
    'uPlot.iife.min.js': [uplot.js, 'text/javascript; charset=utf-8'],
    'uPlot.min.css': [uplot.css, 'text/css; charset=utf-8'],
    'app.js': [client.js, 'text/javascript; charset=utf-8'],
    'app.css': [client.css, 'text/css; charset=utf-8'],
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'GET') {
      send(res, 405, 'method not allowed\n', 'text/plain; charset=utf-8', { Allow: 'GET' });
      return;
    }
    if (!hostAllowed(req.headers.host, hostNames)) throw new HttpError(403, "forbidden host: use an IP address or this machine's host name");
    const { segments, query } = parsePath(req.url ?? '/');
    const [a, b, c] = segments;

    if (segments.length === 0 || (segments.length === 1 && a === 'index.html')) {
      send(res, 200, page, 'text/html; charset=utf-8', { 'Content-Security-Policy': PAGE_CSP });
      return;
    }
    if (a === 'assets' && b && segments.length === 2) {
      const asset = assets[b];
      if (!asset) throw new HttpError(404, 'not found');
      send(res, 200, asset[0], asset[1], { 'Cache-Control': 'max-age=300' });
      return;
    }
    if (a === 'api' && b === 'runs') {
      await serveApi(res, logdir, segments.slice(2), query, Boolean(opts.tryIt));
      return;
    }
    if (a === 'try' && b && opts.tryIt && segments.length <= 3) {
      if (segments.length === 2 && !(req.url ?? '').split('?')[0].endsWith('/')) {
        res.writeHead(302, { Location: `/try/${encodeURIComponent(b)}/` }).end();
        return;
      }
      await opts.tryIt(await resolveInRun(logdir, b, []), c ?? 'index.html', res);
      return;
    }
    if (a === 'files' && b && c) {
      await serveRunFile(res, await resolveInRun(logdir, b, segments.slice(2)));
      return;
    }
    throw new HttpError(404, 'not found');
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : 500;
      const msg = err instanceof HttpError ? err.message : 'internal error';
      if (!res.headersSent) send(res, status, `${msg}\n`, 'text/plain; charset=utf-8');
      else res.destroy();
    });
  });
  // Polling keeps connections alive; close() must not wait for idle keep-alive sockets.
  server.keepAliveTimeout = 5000;

  return listen(server, port, host);
}

/** Listens, and the handle with the address it got (port 0: one the system picked). */
async function listen(server: Server, port: number, host: string): Promise<Dashboard> {
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      ok();
    });
  });
  const addr = server.address() as AddressInfo;
  const urlHost = addr.family === 'IPv6' || addr.address.includes(':') ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${urlHost}:${addr.port}/`,
    port: addr.port,
    host: addr.address,
    close: () =>
      new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeAllConnections();
      }),
  };
}
