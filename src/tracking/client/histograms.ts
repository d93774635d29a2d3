// The focused run's weight and gradient histograms over time, drawn on a canvas.
import type { HistogramRecord } from '../records.js';
import { $, byName, fmt, h, tick } from './dom.js';
import { focused, state } from './state.js';

export function renderHist(): void {
  const r = focused();
  const ctl = $('hist-ctl');
  const canvas = $<HTMLCanvasElement>('hist');
  // Weights before Gradients, then by name
  const weightsFirst = (t: string) => (t.indexOf('Weights/') === 0 ? 0 : 1);
  const tags = r ? Object.keys(r.histTags).sort((a, b) => weightsFirst(a) - weightsFirst(b) || byName(a, b)) : [];
  if (tags.length && (state.histTag === null || tags.indexOf(state.histTag) < 0)) state.histTag = tags[0] as string;
  const key = r ? `${r.name}:${r.hist.length}:${state.histTag}:${canvas.clientWidth}` : '';
  if (key === state.rendered.hist) return;
  state.rendered.hist = key;
  ctl.textContent = '';
  if (!r || !tags.length) {
    canvas.style.display = 'none';
    ctl.appendChild(h('div', { class: 'muted', text: 'No histograms logged yet (Weights/* and Gradients/* are logged at validation).' }));
    return;
  }
  canvas.style.display = '';
  const sel = h(
    'select',
    { 'aria-label': 'histogram tag' },
    tags.map((t) => {
      const o = h('option', { value: t, text: t });
      if (t === state.histTag) o.selected = true;
      return o;
    }),
  );
  sel.addEventListener('change', () => {
    state.histTag = sel.value;
    renderHist();
  });
  ctl.appendChild(sel);
  const recs = r.hist.filter((x) => x.tag === state.histTag);
  const last = recs[recs.length - 1] as HistogramRecord;
  const nonFinite = last.nonFinite ? `, non-finite ${last.nonFinite}` : '';
  ctl.appendChild(
    h('span', {
      class: 'muted',
      text: `step ${last.step}: min ${fmt(last.min)}, max ${fmt(last.max)}, mean ${fmt(last.mean)}, std ${fmt(last.std)}, n ${last.num}${nonFinite}`,
    }),
  );
  drawRidges(canvas, recs.slice(-12));
}

/** TensorBoard's "offset" view: one filled curve per step, older ones above. */
function drawRidges(canvas: HTMLCanvasElement, recs: HistogramRecord[]): void {
  const dpr = window.devicePixelRatio || 1;
  const W = canvas.clientWidth || 600;
  const rowH = 24;
  const amp = 48;
  const left = 90;
  const right = 16;
  const top = 12;
  const H = top + amp + rowH * (recs.length - 1) + 36;
  canvas.width = Math.round(W * dpr);
  canvas.height = Math.round(H * dpr);
  canvas.style.height = `${H}px`;
  const ctx = canvas.getContext('2d') as CanvasRenderingContext2D;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, W, H);
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const rec of recs) {
    lo = Math.min(lo, rec.edges[0] as number);
    hi = Math.max(hi, rec.edges[rec.edges.length - 1] as number);
  }
  if (!(hi > lo)) hi = lo + 1;
  const X = (v: number) => left + ((v - lo) / (hi - lo)) * (W - left - right);
  ctx.font = '11px system-ui, sans-serif';
  recs.forEach((rec, i) => {
    const base = top + amp + i * rowH;
    const maxC = Math.max(...rec.counts) || 1;
    const t = recs.length > 1 ? i / (recs.length - 1) : 1;
    const shade = Math.round(200 - 150 * t);
    ctx.beginPath();
    ctx.moveTo(X(rec.edges[0] as number), base);
    for (let b = 0; b < rec.counts.length; b++) {
      const xc = ((rec.edges[b] as number) + (rec.edges[b + 1] as number)) / 2;
      ctx.lineTo(X(xc), base - ((rec.counts[b] as number) / maxC) * amp);
    }
    ctx.lineTo(X(rec.edges[rec.edges.length - 1] as number), base);
    ctx.closePath();
    ctx.fillStyle = `rgba(${Math.round(shade * 0.4)},${Math.round(shade * 0.7)},230,0.55)`;
    ctx.fill();
    ctx.strokeStyle = '#fff';
    ctx.lineWidth = 1;
    ctx.stroke();
    ctx.fillStyle = '#6b7280';
    ctx.fillText(`step ${rec.step}`, 4, base - 2);
  });
  const axisY = H - 20;
  ctx.strokeStyle = '#9ca3af';
  ctx.beginPath();
  ctx.moveTo(left, axisY);
  ctx.lineTo(W - right, axisY);
  ctx.stroke();
  ctx.fillStyle = '#374151';
  // round tick values: 1, 2 or 5 times a power of ten
  const raw = (hi - lo) / 5;
  const p10 = 10 ** Math.floor(Math.log10(raw));
  const m = raw / p10;
  const stepV = (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p10;
  for (let v = Math.ceil(lo / stepV) * stepV; v <= hi + stepV * 1e-9; v += stepV) {
    const x = X(v);
    ctx.beginPath();
    ctx.moveTo(x, axisY);
    ctx.lineTo(x, axisY + 4);
    ctx.stroke();
    const label = tick(Math.abs(v) < stepV * 1e-6 ? 0 : v);
    const tw = ctx.measureText(label).width;
    ctx.fillText(label, Math.min(W - right - tw, Math.max(0, x - tw / 2)), axisY + 15);
  }
}
