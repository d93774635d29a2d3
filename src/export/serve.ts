/**
 * Serving an exported web folder: the files directly inside it, GET only, fixed content types
 * (wasm must be application/wasm to be compiled while it streams). Used by `unet bench --predict
 * --web` and the dashboard's "Try it" page; any static file server does the same job.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.onnx': 'application/octet-stream',
  '.wasm': 'application/wasm',
};

/**
 * The page's policy: its own files only ('wasm-unsafe-eval' lets it compile onnxruntime's
 * WebAssembly; blob: is the mask download; data: the empty favicon).
 */
export const SITE_CSP = "default-src 'none'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' blob: data:; connect-src 'self'";

/** Sends `name` from the folder (a plain file name: no slashes, no dot-files), or 404. */
export async function sendSiteFile(dir: string, name: string, res: ServerResponse): Promise<void> {
  const type = TYPES[extname(name)];
  let body: Buffer | null = null;
  if (type && /^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/.test(name)) body = await readFile(join(dir, name)).catch(() => null);
  if (!body) {
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found\n');
    return;
  }
  res.writeHead(200, { 'Content-Type': type, 'Content-Length': String(body.length), 'X-Content-Type-Options': 'nosniff', 'Content-Security-Policy': SITE_CSP, 'Cache-Control': 'no-store' });
  res.end(body);
}

/** Serves the folder on 127.0.0.1 (port 0: a free one). */
export async function serveSite(dir: string, port = 0): Promise<{ url: string; close: () => Promise<void> }> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET') {
      res.writeHead(405, { Allow: 'GET' }).end();
      return;
    }
    const path = (req.url ?? '/').split('?')[0];
    void sendSiteFile(dir, path === '/' ? 'index.html' : path.slice(1), res);
  });
  await new Promise<void>((ok) => server.listen(port, '127.0.0.1', ok));
  const addr = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${addr.port}/`,
    close: () =>
      new Promise<void>((ok) => {
        server.close(() => ok());
        server.closeAllConnections();
      }),
  };
}
