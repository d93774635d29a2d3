/**
 * `unet serve`: one or more checkpoints behind an HTTP endpoint speaking the Open Inference
 * Protocol v2 (as KServe, Triton and ONNX Runtime's server), plus `/segment` for an image in and
 * the mask PNG `unet predict` writes out, and `/metrics`. The models live in a worker thread;
 * requests of one shape are batched on the fly. SIGTERM / SIGINT drain: ready turns false, new
 * requests get 503, those in flight finish, exit 0 (a second signal stops at once).
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { basename, extname } from 'node:path';
import { EXIT, UserError } from '../config/errors.js';
import { OptionError, type ServeConfig } from '../config/options.js';
import { isLoopback, listenProblem } from '../tracking/dashboard.js';
import { createModelServer } from './server.js';
import { type InferenceThread, startInferenceThread } from './thread.js';

export interface ServeRunOptions {
  log?: (line: string) => void;
  warn?: (line: string) => void;
  version?: string;
}

/** The URL names of the models: --name in -m's order, else each file's stem; checked to be distinct and URL-safe. */
export function modelNames(models: readonly string[], names: readonly string[]): string[] {
  if (models.length === 0) throw new OptionError('no model to serve: pass a checkpoint with -m/--model (e.g. -m checkpoints/best_model.pth)');
  if (names.length > 0 && names.length !== models.length) {
    throw new OptionError(`${models.length} model(s) with -m but ${names.length} name(s) with --name: give one --name per -m, in the same order, or none`);
  }
  const out = names.length > 0 ? [...names] : models.map((m) => basename(m, extname(m)));
  for (const n of out) {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(n)) throw new OptionError(`model name '${n}' is not usable in a URL: use letters, digits, '_', '.' and '-' (--name NAME)`);
  }
  const dup = out.find((n, i) => out.indexOf(n) !== i);
  if (dup) throw new OptionError(`two models are named '${dup}': give each -m its own --name`);
  return out;
}

/** --token-file's first line; a missing or empty file is an error naming the flag. */
export function readToken(file: string): string | null {
  if (!file) return null;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new UserError(`--token-file ${file}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); give a file holding the token on its first line`);
  }
  const token = text.split(/\r?\n/)[0].trim();
  if (!token) throw new UserError(`--token-file ${file}: the first line is empty; write the token there`);
  return token;
}

/** Starts the server, serves until SIGTERM / SIGINT, drains, and returns the exit code (0). */
export async function serveCommand(cfg: ServeConfig, opts: ServeRunOptions = {}): Promise<number> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const warn = opts.warn ?? ((l: string) => console.error(l));
  const names = modelNames(cfg.model, cfg.name);
  const token = readToken(cfg.tokenFile);
  let thread: InferenceThread;
  try {
    thread = await startInferenceThread({
      models: cfg.model.map((path, i) => ({ name: names[i], path })),
      device: cfg.device,
      scale: cfg.scale,
      maskThreshold: cfg.maskThreshold,
      maxPixels: cfg.maxPixels,
      tiling: { tile: cfg.tile, overlap: cfg.overlap, blend: cfg.blend, maxMemory: cfg.maxMemory },
    });
  } catch (e) {
    throw new UserError((e as Error).message);
  }
  for (const m of thread.models) for (const n of m.notes) warn(`note: ${m.name}: ${n}`);
  const server = createModelServer(thread, {
    maxBatch: cfg.maxBatch,
    maxDelayMs: cfg.maxDelayMs,
    maxQueue: cfg.maxQueue,
    maxBodyBytes: cfg.maxBodyMb * 2 ** 20,
    maxPixels: cfg.maxPixels,
    timeoutMs: cfg.timeoutS * 1000,
    token,
    version: opts.version ?? '0',
  });
  await new Promise<void>((ok, fail) => {
    server.http.once('error', fail);
    server.http.listen(cfg.port, cfg.host, ok);
  }).catch(async (e: unknown) => {
    await thread.close();
    const why = listenProblem(e, cfg.host, cfg.port)?.replace(/ \(.*\)$/, '');
    throw why ? new UserError(`${why}: pick a port with --port N (--port 0: any free one), or an address with --host`) : e;
  });
  if (!isLoopback(cfg.host) && !token) {
    warn(`warning: --host ${cfg.host}: the models are reachable from the network without authentication; add --token-file FILE`);
  }
  const { port } = server.http.address() as AddressInfo;
  const host = cfg.host.includes(':') ? `[${cfg.host}]` : cfg.host;
  for (const m of thread.models) {
    log(`Serving ${m.path} as http://${host}:${port}/v2/models/${m.name} (UNet channels=${m.nChannels} classes=${m.nClasses}; mask values ${JSON.stringify(m.maskValues)}; scale ${m.scale}; ${m.device})`);
  }
  log(`Listening on http://${host}:${port} (max batch ${cfg.maxBatch}, max delay ${cfg.maxDelayMs} ms${token ? ', bearer token required' : ''}); SIGTERM or Ctrl-C drains and stops`);

  const signal = await new Promise<NodeJS.Signals>((res) => {
    process.once('SIGTERM', () => res('SIGTERM'));
    process.once('SIGINT', () => res('SIGINT'));
  });
  // A second signal: stop now, without waiting for the requests in flight.
  const now = (s: NodeJS.Signals) => process.exit(s === 'SIGINT' ? EXIT.interrupted : EXIT.terminated);
  process.once('SIGTERM', now);
  process.once('SIGINT', now);
  warn(`${signal}: draining (new requests get 503; the ones in flight finish)`);
  await server.drain();
  await new Promise<void>((ok) => {
    server.http.close(() => ok());
    server.http.closeIdleConnections();
  });
  await thread.close();
  warn('drained; stopped');
  return EXIT.ok;
}
