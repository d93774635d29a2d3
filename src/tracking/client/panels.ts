// The run list, and the focused run's metrics tables, prediction images and config.
import { $, byName, enc, fmt, h, num } from './dom.js';
import { focused, type Media, type Run, STATIC, state } from './state.js';

/** A run's status badge: its text, and what it means on hover. */
const BADGES: Record<string, [string, string]> = {
  running: ['running', 'written to in the last 2 minutes'],
  finished: ['finished', 'ran all its epochs'],
  'stopped early': ['stopped early', 'early stopping: no validation gain for --patience epochs'],
  interrupted: ['interrupted', 'stopped by Ctrl-C or SIGTERM; INTERRUPTED.pth resumes it'],
  failed: ['failed', 'ended by an error (see the terminal)'],
  unknown: ['no end record', 'not written to for 2 minutes and no end record: killed, crashed or stuck'],
};

function badge(status: string | undefined): HTMLElement | null {
  if (!status) return null;
  const [text, title] = BADGES[status] ?? [status, ''];
  return h('span', { class: `badge ${status.replace(/\W+/g, '-')}`, text, title });
}

/** `refresh`: what a click on a run does once the state is changed. */
export function renderRuns(refresh: () => void): void {
  const nav = $('runs');
  nav.textContent = '';
  if (!state.order.length) {
    nav.appendChild(h('div', { class: 'empty', text: 'No runs yet in the log directory.' }));
    return;
  }
  for (const name of state.order) {
    const r = state.runs[name] as Run;
    const info = r.info || {};
    const cb = h('input', { type: 'checkbox', title: 'show in charts' });
    cb.checked = !!state.selected[name];
    cb.addEventListener('click', (ev) => ev.stopPropagation());
    cb.addEventListener('change', () => {
      if (cb.checked) state.selected[name] = true;
      else delete state.selected[name];
      refresh();
    });
    const meta: string[] = [];
    if (info.lastStep != null) meta.push(`step ${info.lastStep}`);
    const onclick = () => {
      state.focus = name;
      state.selected[name] = true;
      state.mediaStep = null;
      refresh();
    };
    const row = h('div', { class: `run${state.focus === name ? ' focus' : ''}`, title: 'click to show its images, histograms and config', onclick }, [
      cb,
      h('span', { class: 'swatch', style: `background:${r.color}` }),
      h('div', null, [
        h('div', { class: 'rname' }, [name, badge(info.status)]),
        h('div', { class: 'meta', text: meta.join(' · ') }),
        info.hasReport && !STATIC ? h('a', { href: `/files/${enc(name)}/report.html`, target: '_blank', class: 'meta', text: 'report' }) : null,
        state.tryIt && !STATIC ? h('a', { href: `/try/${enc(name)}/`, target: '_blank', class: 'meta', title: 'predict with its best model in this browser', text: ' try it' }) : null,
      ]),
    ]);
    nav.appendChild(row);
  }
}

const headerRow = (...names: string[]) =>
  h(
    'tr',
    null,
    names.map((n) => h('th', { text: n })),
  );

export function renderFinal(): void {
  const r = focused();
  const box = $('final');
  const key = r ? `${r.name}:${r.version}` : '';
  if (key === state.rendered.final) return;
  state.rendered.final = key;
  box.textContent = '';
  if (!r) return;
  const tables = h('div', { class: 'tables' });
  // last / min / max of every scalar
  const rows = r.tags
    .slice()
    .sort()
    .map((tag) => {
      const ys = (r.series[tag]?.ys ?? []).filter((y) => Number.isFinite(y));
      if (!ys.length) return null;
      return h('tr', null, [h('td', { text: tag }), h('td', { text: fmt(ys[ys.length - 1]) }), h('td', { text: fmt(Math.min(...ys)) }), h('td', { text: fmt(Math.max(...ys)) })]);
    });
  tables.appendChild(h('table', { class: 'metrics' }, [headerRow('scalar', 'last', 'min', 'max'), ...rows]));
  const pc = r.perClass;
  if (pc) {
    const dice = pc.perClassDice || [];
    const iou = pc.perClassIoU || [];
    const names = pc.classNames || r.final?.classNames || [];
    const n = Math.max(dice.length, iou.length);
    if (n) {
      const at = pc.epoch != null ? ` ${pc.epoch}` : pc.step != null ? ` @${pc.step}` : '';
      const title = pc.type === 'final' ? 'class' : `class (${pc.type || 'record'}${at})`;
      const crow = [headerRow(title, 'Dice', 'IoU')];
      for (let i = 0; i < n; i++) {
        crow.push(h('tr', null, [h('td', { text: names[i] != null ? String(names[i]) : String(i) }), h('td', { text: dice[i] != null ? fmt(num(dice[i])) : '-' }), h('td', { text: iou[i] != null ? fmt(num(iou[i])) : '-' })]));
      }
      tables.appendChild(h('table', { class: 'metrics', 'data-role': 'per-class' }, crow));
    }
  }
  const f = r.final;
  if (f) {
    const other: HTMLElement[] = [];
    for (const k in f) {
      if (k === 'perClassDice' || k === 'perClassIoU' || k === 'classNames' || k === 'type' || k === 'time') continue;
      const v = f[k];
      if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') other.push(h('tr', null, [h('td', { text: k }), h('td', { text: fmt(v) })]));
    }
    if (other.length) tables.appendChild(h('table', { class: 'metrics' }, [headerRow('final', 'value'), ...other]));
  }
  box.appendChild(tables);
}

function mediaSrc(r: Run, rec: Media): string {
  if (rec.src) return rec.src;
  return `/files/${enc(r.name)}/${rec.file.split('/').map(enc).join('/')}`;
}

/** Input first, then ground truth, then prediction (as the reference logs them). */
function rank(tag: string): number {
  const t = tag.toLowerCase();
  return /image|input/.test(t) ? 0 : /true|target|gt/.test(t) ? 1 : /pred/.test(t) ? 2 : 3;
}

export function renderMedia(): void {
  const r = focused();
  const ctl = $('images-ctl');
  const box = $('images');
  const key = r ? `${r.name}:${r.media.length}:${state.mediaStep}` : '';
  if (key === state.rendered.media) return;
  state.rendered.media = key;
  ctl.textContent = '';
  box.textContent = '';
  if (!r?.media.length) {
    box.appendChild(h('div', { class: 'muted', text: 'No images logged yet (they are logged at validation).' }));
    return;
  }
  const stepSet: Record<string, 1> = {};
  for (const m of r.media) stepSet[m.step] = 1;
  const steps = Object.keys(stepSet)
    .map(Number)
    .sort((a, b) => a - b);
  const idx = state.mediaStep == null ? steps.length - 1 : Math.max(0, steps.indexOf(state.mediaStep));
  const step = steps[idx] as number;
  const slider = h('input', { type: 'range', min: '0', max: String(steps.length - 1), value: String(idx) });
  slider.addEventListener('input', () => {
    const i = Number(slider.value);
    state.mediaStep = i === steps.length - 1 ? null : (steps[i] as number);
    renderMedia();
  });
  ctl.appendChild(h('span', { text: `validation step ${step} (${idx + 1} of ${steps.length})` }));
  if (steps.length > 1) ctl.appendChild(slider);
  const latest: Record<string, Media> = {};
  for (const m of r.media) if (m.step === step) latest[m.tag] = m;
  // one row per sample: tags like "input/0", "true/0", "pred/0" group by their last part
  const rows: Record<string, Media[]> = {};
  const rowOrder: string[] = [];
  for (const tag of Object.keys(latest).sort((a, b) => rank(a) - rank(b) || byName(a, b))) {
    const last = tag.split('/').pop() as string;
    const group = /^[0-9]+$/.test(last) ? last : '';
    if (!rows[group]) {
      rows[group] = [];
      rowOrder.push(group);
    }
    rows[group].push(latest[tag] as Media);
  }
  for (const g of rowOrder) {
    box.appendChild(
      h(
        'div',
        { class: 'row' },
        (rows[g] as Media[]).map((m) =>
          // small images are scaled up (pixelated) so that masks stay readable
          h('figure', null, [h('img', { src: mediaSrc(r, m), alt: m.tag, width: String(Math.min(256, Math.max(160, m.width))) }), h('figcaption', { text: `${m.tag} · ${m.width}×${m.height}` })]),
        ),
      ),
    );
  }
}

export function renderConfig(): void {
  const r = focused();
  const key = r ? `${r.name}:${r.config === undefined ? 'u' : 'd'}` : '';
  if (key === state.rendered.config) return;
  state.rendered.config = key;
  $('config').textContent = r && r.config != null ? JSON.stringify(r.config, null, 2) : '';
}
