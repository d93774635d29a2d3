// HTML shell shared by the dashboard (assets by URL) and the report (everything inlined).
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Boot } from './records.js';

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));

let uplotCache: { js: string; css: string } | null = null;

/** uPlot's browser build and stylesheet, read from node_modules (no CDN: the page must work offline). */
export function uplotAssets(): { js: string; css: string } {
  if (!uplotCache) {
    // uplot's "exports" hides package.json, so resolve the CJS entry and look next to it.
    const dist = dirname(require.resolve('uplot'));
    uplotCache = {
      js: readFileSync(join(dist, 'uPlot.iife.min.js'), 'utf8'),
      css: readFileSync(join(dist, 'uPlot.min.css'), 'utf8'),
    };
  }
  return uplotCache;
}

let clientCache: { js: string; css: string } | null = null;

/**
 * The page's own code and styles: dist/dashboard/{app.js,app.css}, built from src/tracking/client/
 * by scripts/build-web.mjs (npm run build), found from dist/tracking (built) or src/tracking (tsx).
 */
export function clientAssets(): { js: string; css: string } {
  if (!clientCache) {
    const dir = [join(here, '../dashboard'), join(here, '../../dist/dashboard')].find((d) => existsSync(join(d, 'app.js')));
    if (!dir) throw new Error('the dashboard page is not built (dist/dashboard/app.js is missing): run `npm run build`');
    // In a source checkout, a build older than its sources would serve (and test) old code.
    const src = join(here, 'client');
    if (existsSync(src)) {
      const built = statSync(join(dir, 'app.js')).mtimeMs;
      const newer = readdirSync(src).find((f) => statSync(join(src, f)).mtimeMs > built);
      if (newer) throw new Error(`dist/dashboard/app.js is older than src/tracking/client/${newer}: run \`npm run build\``);
    }
    clientCache = { js: readFileSync(join(dir, 'app.js'), 'utf8'), css: readFileSync(join(dir, 'app.css'), 'utf8') };
  }
  return clientCache;
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

/** JSON that is safe inside <script>: no "</script>", no "<!--". */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** Text that is safe inside <script>…</script> (for minified code, ours and uPlot's). */
function scriptText(code: string): string {
  return code.replace(/<\/script/gi, '<\\/script');
}

function body(): string {
  return `<header>
  <h1>unet-ts</h1>
  <span class="status" id="status">loading…</span>
  <label>smoothing <input id="smoothing" type="range" min="0" max="0.99" step="0.01"> <span id="smoothing-val"></span></label>
</header>
<div id="layout">
  <nav id="runs" aria-label="runs"></nav>
  <main>
    <section id="sec-scalars"><h2>Scalars</h2><div id="charts" class="grid"></div></section>
    <section id="sec-final"><h2>Metrics summary</h2><div id="final"></div></section>
    <section id="sec-images"><h2>Predictions (validation samples)</h2><div id="images-ctl" class="ctl"></div><div id="images" class="images"></div></section>
    <section id="sec-hist"><h2>Weights and gradients</h2><div id="hist-ctl" class="ctl"></div><canvas id="hist" height="10"></canvas></section>
    <section id="sec-config"><h2>Config</h2><pre id="config"></pre></section>
  </main>
</div>`;
}

/** The dashboard page: assets come from the server itself, so a strict CSP applies. */
export function dashboardHtml(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>unet-ts dashboard</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/uPlot.min.css"><link rel="stylesheet" href="/assets/app.css">
</head><body>
${body()}
<script src="/assets/uPlot.iife.min.js"></script>
<script src="/assets/app.js"></script>
</body></html>
`;
}

/** A self-contained page: uPlot, styles, code and data are all inline. */
export function staticHtml(title: string, boot: Boot): string {
  const { js, css } = uplotAssets();
  const client = clientAssets();
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${css}</style>
<style>${client.css}</style>
</head><body>
${body()}
<script>${scriptText(js)}</script>
<script>window.__UNET_BOOT__ = ${scriptJson(boot)};</script>
<script>${scriptText(client.js)}</script>
</body></html>
`;
}
