// The page of the live dashboard and of the offline report: two data sources, one renderer.
//   live   – polls /api/runs and /api/runs/<run>/<kind>?from=<byte offset>
//   static – window.__UNET_BOOT__ = {mode:"static", runs:[...]} (report.html)
// Built by scripts/build-web.mjs into dist/dashboard/app.js: a classic script, because the report
// inlines it. Test hooks: each chart is <div class="chart" data-tag=… data-points=N>;
// <body data-updates=N> counts completed refreshes.
import type { HistogramRecord, JsonlChunk, RunList } from '../records.js';
import { renderCharts, resizeCharts } from './charts.js';
import { $, enc } from './dom.js';
import { renderHist } from './histograms.js';
import { renderConfig, renderFinal, renderMedia, renderRuns } from './panels.js';
import { addHist, addMedia, addMetrics, BOOT, getRun, type Kind, type Media, type Run, STATIC, state } from './state.js';

const params = new URLSearchParams(location.search);
const POLL_MS = Math.max(200, Number(params.get('poll')) || 1500);

function render(): void {
  renderRuns(refresh);
  renderCharts();
  renderFinal();
  renderMedia();
  renderHist();
  renderConfig();
  state.updates++;
  document.body.setAttribute('data-updates', String(state.updates));
}

// ---- live: the dashboard's API ------------------------------------------------
function getJSON<T>(url: string): Promise<T> {
  return fetch(url, { cache: 'no-store' }).then((res) => {
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
    return res.json() as Promise<T>;
  });
}

/** Reads what was appended since last time; loops while the server says there is more. */
function pull<T>(r: Run, kind: Kind, add: (r: Run, recs: T[]) => void): Promise<void> {
  return getJSON<JsonlChunk<T>>(`/api/runs/${enc(r.name)}/${kind}?from=${r.off[kind]}`).then((res) => {
    const before = r.off[kind];
    if (res.next < before) return; // file rewritten: ignore (runs are append-only)
    add(r, res.records || []);
    r.off[kind] = res.next;
    if (res.more && res.next > before) return pull(r, kind, add);
  });
}

let first = true;
let timer: ReturnType<typeof setTimeout> | undefined;
let busy = false;

function poll(): void {
  if (busy) return;
  busy = true;
  getJSON<RunList>('/api/runs')
    .then((list) => {
      state.tryIt = !!list.tryIt;
      const names: string[] = [];
      for (const info of list.runs || []) {
        getRun(info.name, info);
        names.push(info.name);
      }
      const known = state.order.slice();
      state.order = names;
      if (first) {
        // start with the newest run shown and focused
        if (names.length) {
          state.selected[names[0] as string] = true;
          state.focus = names[0] as string;
        }
        first = false;
      } else {
        // a run that starts while the page is open is shown too
        for (const n of names) {
          if (known.indexOf(n) < 0) {
            state.selected[n] = true;
            if (!state.focus) state.focus = n;
          }
        }
      }
      if (state.focus && names.indexOf(state.focus) < 0) state.focus = names[0] || null;
      const jobs: Array<Promise<void>> = [];
      for (const n of names) {
        const r = state.runs[n] as Run;
        if (state.selected[n] || n === state.focus) jobs.push(pull(r, 'metrics', addMetrics));
        if (n === state.focus) {
          jobs.push(pull<HistogramRecord>(r, 'histograms', addHist));
          jobs.push(pull<Media>(r, 'media', addMedia));
          if (r.config === undefined) {
            jobs.push(
              getJSON(`/api/runs/${enc(n)}/config`).then(
                (c) => {
                  r.config = c;
                  r.version++;
                },
                () => {
                  r.config = null;
                },
              ),
            );
          }
        }
      }
      return Promise.all(jobs);
    })
    .then(
      () => {
        render();
        $('status').textContent = `live · refreshed ${new Date().toLocaleTimeString()} · every ${POLL_MS / 1000} s`;
      },
      (err: Error | undefined) => {
        $('status').textContent = `cannot reach the dashboard server (${err?.message}), retrying…`;
      },
    )
    .then(() => {
      busy = false;
      timer = setTimeout(poll, POLL_MS);
    });
}

/** Redraws now after a click (live: with fresh data, unless a poll is under way). */
function refresh(): void {
  if (STATIC) render();
  else {
    clearTimeout(timer);
    timer = undefined;
    if (busy) render();
    else poll();
  }
}

function init(): void {
  const sm = $<HTMLInputElement>('smoothing');
  sm.value = String(state.smoothing);
  sm.addEventListener('input', () => {
    state.smoothing = Number(sm.value);
    $('smoothing-val').textContent = sm.value;
    renderCharts();
  });
  $('smoothing-val').textContent = String(state.smoothing);
  let rt: ReturnType<typeof setTimeout> | undefined;
  window.addEventListener('resize', () => {
    clearTimeout(rt);
    rt = setTimeout(() => {
      resizeCharts();
      renderHist();
    }, 150);
  });
  if (STATIC) {
    // ---- static: the report's inline data
    (BOOT.runs || []).forEach((d, i) => {
      const r = getRun(d.name, d.info);
      r.config = d.config;
      addMetrics(r, d.metrics || []);
      addHist(r, d.histograms || []);
      addMedia(r, d.media || []);
      state.order.push(d.name);
      state.selected[d.name] = true;
      if (i === 0) state.focus = d.name;
    });
    $('status').textContent = BOOT.generated ? `report generated ${BOOT.generated}` : '';
    render();
  } else {
    poll();
  }
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();
