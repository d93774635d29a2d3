// The scalar charts: one uPlot chart per tag, one line per selected run.
import type UPlot from 'uplot';
import { $, byName, fmt, h, tick } from './dom.js';
import { type Chart, type Run, state } from './state.js';

/** uPlot's browser build, loaded by its own <script> before this one. */
declare const uPlot: typeof UPlot;

const PREFERRED = ['train loss', 'validation Dice', 'learning rate', 'img/s', 'epoch'];
// schedules, not noisy measurements: smoothing them would only distort them
const NO_SMOOTH = ['learning rate', 'lr', 'epoch'];

export function smooth(ys: number[], w: number): Array<number | null> {
  if (!(w > 0)) return ys;
  // TensorBoard's debiased exponential moving average; NaN points are kept as gaps
  const out = new Array<number | null>(ys.length);
  let last = 0;
  let n = 0;
  for (let i = 0; i < ys.length; i++) {
    const y = ys[i] as number;
    if (!Number.isFinite(y)) {
      out[i] = null;
      continue;
    }
    last = last * w + (1 - w) * y;
    n++;
    out[i] = last / (1 - w ** n);
  }
  return out;
}

function allTags(runs: Run[]): string[] {
  const seen: Record<string, 1> = {};
  const tags: string[] = [];
  for (const r of runs) {
    for (const t of r.tags) {
      if (!seen[t]) {
        seen[t] = 1;
        tags.push(t);
      }
    }
  }
  const rank = (t: string) => {
    const i = PREFERRED.indexOf(t);
    return i < 0 ? 99 : i;
  };
  return tags.sort((a, b) => rank(a) - rank(b) || byName(a, b));
}

function chartData(tag: string, runs: Run[]): { data: UPlot.AlignedData; points: number } {
  // uPlot wants one shared x array: join the runs' steps, null where a run has no point
  const stepSet: Record<string, 1> = {};
  const xs: number[] = [];
  let points = 0;
  for (const r of runs) for (const x of r.series[tag]?.xs ?? []) stepSet[x] = 1;
  for (const k in stepSet) xs.push(Number(k));
  xs.sort((a, b) => a - b);
  const index: Record<string, number> = {};
  xs.forEach((x, i) => {
    index[x] = i;
  });
  const data: [number[], ...Array<Array<number | null>>] = [xs];
  for (const r of runs) {
    const s = r.series[tag] as Run['series'][string];
    const col = new Array<number | null>(xs.length).fill(null);
    const w = s.xs.length > 20 && NO_SMOOTH.indexOf(tag) < 0 ? state.smoothing : 0;
    const ys = smooth(s.ys, w);
    for (let i = 0; i < s.xs.length; i++) {
      const y = ys[i];
      col[index[s.xs[i] as number] as number] = y == null || !Number.isFinite(y) ? null : y;
    }
    points += s.xs.length;
    data.push(col);
  }
  return { data, points };
}

export function renderCharts(): void {
  const box = $('charts');
  const runs = state.order.filter((n) => state.selected[n]).map((n) => state.runs[n] as Run);
  const tags = allTags(runs);
  if (!tags.length) {
    for (const t in state.charts) state.charts[t]?.u.destroy();
    state.charts = {};
    box.textContent = '';
    box.appendChild(h('div', { class: 'muted', text: runs.length ? 'No scalars logged yet.' : 'Select a run.' }));
    return;
  }
  const empty = box.querySelector('.muted');
  if (empty) box.removeChild(empty);
  const keep: Record<string, true> = {};
  for (const tag of tags) {
    const withTag = runs.filter((r) => r.series[tag]);
    const cd = chartData(tag, withTag);
    const key = `${withTag.map((r) => r.name).join('|')}#${state.smoothing}`;
    let c: Chart | undefined = state.charts[tag];
    if (c && c.key !== key) {
      c.u.destroy();
      box.removeChild(c.el);
      c = undefined;
    }
    if (!c) {
      const el = h('div', { class: 'chart', 'data-tag': tag });
      box.appendChild(el);
      const width = Math.max(300, (el.clientWidth || 480) - 8);
      const opts: UPlot.Options = {
        title: tag,
        width,
        height: 220,
        scales: { x: { time: false } },
        series: [
          { label: 'step' },
          ...withTag.map((r) => ({
            label: r.name,
            stroke: r.color,
            width: 1.5,
            spanGaps: true,
            points: { show: (r.series[tag]?.xs.length ?? 0) <= 60, size: 5 },
            value: (_u: UPlot, v: number | null) => (v == null ? '-' : fmt(v)),
          })),
        ],
        axes: [{ label: 'step' }, { size: 56, values: (_u: UPlot, vals: number[]) => vals.map(tick) }],
        legend: { live: true },
      };
      c = state.charts[tag] = { u: new uPlot(opts, cd.data, el), el, key };
    } else {
      c.u.setData(cd.data);
    }
    c.el.setAttribute('data-points', String(cd.points));
    keep[tag] = true;
  }
  for (const t in state.charts) {
    if (!keep[t]) {
      const c = state.charts[t] as Chart;
      c.u.destroy();
      box.removeChild(c.el);
      delete state.charts[t];
    }
  }
  // keep the DOM order equal to the tag order
  for (const tag of tags) box.appendChild((state.charts[tag] as Chart).el);
}

export function resizeCharts(): void {
  for (const t in state.charts) {
    const c = state.charts[t] as Chart;
    c.u.setSize({ width: Math.max(300, c.el.clientWidth - 8), height: 220 });
  }
}
