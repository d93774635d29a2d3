// Browser code shared by the live dashboard and the offline report.
//
// It is kept as a plain-JS string (no template literals inside) so that it can
// be served as /assets/app.js and inlined verbatim into report.html without a
// bundler. Two data sources, one renderer:
//   live   – polls /api/runs and /api/runs/<run>/<kind>?from=<byte offset>
//   static – window.__UNET_BOOT__ = {mode:"static", runs:[...]} (report.html)
// Test hooks: each chart is <div class="chart" data-tag=… data-points=N>;
// <body data-updates=N> counts completed refreshes.

export const CLIENT_CSS = String.raw`
:root { --fg:#1d1f21; --muted:#6b7280; --line:#e5e7eb; --bg:#fff; --side:#f8fafc; --accent:#2563eb; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--fg); background:var(--bg); }
header { display:flex; gap:16px; align-items:center; padding:8px 16px; border-bottom:1px solid var(--line); position:sticky; top:0; background:var(--bg); z-index:5; }
header h1 { font-size:16px; margin:0; }
header .status { color:var(--muted); font-size:12px; flex:1; }
header label { font-size:12px; color:var(--muted); display:flex; align-items:center; gap:6px; }
#layout { display:flex; min-height:calc(100vh - 45px); }
nav#runs { width:260px; flex:none; border-right:1px solid var(--line); background:var(--side); padding:8px; overflow:auto; }
nav#runs .run { display:flex; align-items:flex-start; gap:6px; padding:4px; border-radius:4px; cursor:pointer; }
nav#runs .run.focus { background:#e0e7ff; }
nav#runs .swatch { width:10px; height:10px; border-radius:2px; margin-top:4px; flex:none; }
nav#runs .rname { font-size:12px; word-break:break-all; }
nav#runs .meta { font-size:11px; color:var(--muted); }
nav#runs .badge { font-size:10px; padding:0 4px; border-radius:3px; background:#e5e7eb; margin-left:4px; white-space:nowrap; }
nav#runs .badge.running { background:#dcfce7; color:#166534; }
nav#runs .empty { color:var(--muted); font-size:12px; padding:8px; }
main { flex:1; min-width:0; padding:8px 16px 32px; }
section { margin-bottom:24px; }
section h2 { font-size:14px; margin:12px 0 8px; border-bottom:1px solid var(--line); padding-bottom:4px; }
.grid { display:grid; grid-template-columns:repeat(auto-fill, minmax(440px, 1fr)); gap:12px; }
.chart { min-width:0; border:1px solid var(--line); border-radius:6px; padding:4px; }
.muted { color:var(--muted); font-size:12px; }
table.metrics { border-collapse:collapse; font-size:12px; }
table.metrics th, table.metrics td { border:1px solid var(--line); padding:3px 8px; text-align:right; }
table.metrics th:first-child, table.metrics td:first-child { text-align:left; }
.tables { display:flex; flex-wrap:wrap; gap:24px; align-items:flex-start; }
.images { display:flex; flex-wrap:wrap; gap:12px; }
.images .row { display:flex; flex-wrap:wrap; gap:8px; width:100%; }
.images figure { margin:0; }
.images img { display:block; max-width:256px; height:auto; max-height:256px; object-fit:contain; image-rendering:pixelated; border:1px solid var(--line); background:#000; }
.images figcaption { font-size:11px; color:var(--muted); max-width:256px; word-break:break-all; }
.ctl { display:flex; gap:12px; align-items:center; font-size:12px; margin-bottom:8px; flex-wrap:wrap; }
canvas#hist { width:100%; border:1px solid var(--line); border-radius:6px; }
pre#config { background:var(--side); padding:8px; border-radius:6px; font-size:12px; overflow:auto; max-height:400px; }
`;

export const CLIENT_JS = String.raw`
(function () {
  'use strict';
  var BOOT = window.__UNET_BOOT__ || { mode: 'live' };
  var STATIC = BOOT.mode === 'static';
  var params = new URLSearchParams(location.search);
  var POLL_MS = Math.max(200, Number(params.get('poll')) || 1500);
  var COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#bcbd22', '#7f7f7f'];
  var PREFERRED = ['train loss', 'validation Dice', 'learning rate', 'img/s', 'epoch'];
  // schedules, not noisy measurements: smoothing them would only distort them
  var NO_SMOOTH = ['learning rate', 'lr', 'epoch'];

  var state = {
    runs: {}, order: [], selected: {}, focus: null, colorIdx: 0,
    smoothing: STATIC ? 0 : 0.6, charts: {}, histTag: null, mediaStep: null,
    updates: 0, rendered: { hist: '', media: '', final: '', config: '' }
  };

  function $(id) { return document.getElementById(id); }
  function h(tag, attrs, children) {
    var el = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      if (k === 'text') el.textContent = attrs[k];
      else if (k === 'style') el.style.cssText = attrs[k];
      else if (k.slice(0, 2) === 'on') el.addEventListener(k.slice(2), attrs[k]);
      else el.setAttribute(k, attrs[k]);
    }
    (children || []).forEach(function (c) { if (c != null) el.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return el;
  }
  function num(v) { return typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : NaN; }
  function fmt(v) {
    if (typeof v !== 'number') return String(v);
    if (!isFinite(v)) return String(v);
    if (v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e5)) return v.toExponential(3);
    return String(Math.round(v * 10000) / 10000);
  }
  // short tick labels: 3 significant digits, exponent only for very small/large values
  function tick(v) {
    if (v == null || !isFinite(v)) return '';
    if (v === 0) return '0';
    var a = Math.abs(v);
    if (a < 1e-3 || a >= 1e5) return v.toExponential(1).replace('.0e', 'e');
    return String(Number(v.toPrecision(3)));
  }
  function enc(s) { return encodeURIComponent(s); }

  // ---- run state -------------------------------------------------------
  function getRun(name, info) {
    var r = state.runs[name];
    if (!r) {
      r = state.runs[name] = {
        name: name, info: info || {}, color: COLORS[state.colorIdx++ % COLORS.length],
        series: {}, tags: [], hist: [], histTags: {}, media: [], final: null, perClass: null, config: undefined,
        off: { metrics: 0, histograms: 0, media: 0 }, version: 0
      };
    }
    if (info) r.info = info;
    return r;
  }
  function addMetrics(r, recs) {
    recs.forEach(function (rec) {
      if (!rec || typeof rec !== 'object') return;
      if (rec.type === 'scalars' && rec.values) {
        for (var tag in rec.values) {
          var s = r.series[tag];
          if (!s) { s = r.series[tag] = { xs: [], ys: [] }; r.tags.push(tag); }
          var v = num(rec.values[tag]);
          // the same step may be logged twice (train + validation records): keep the latest
          if (s.xs.length && s.xs[s.xs.length - 1] === rec.step) s.ys[s.ys.length - 1] = v;
          else { s.xs.push(rec.step); s.ys.push(v); }
        }
      } else {
        // per-class metrics come from the last record that has them (an epoch or the final record),
        // the "final" table from the last {type:"final"} record
        if (rec.perClassDice || rec.perClassIoU) r.perClass = rec;
        if (rec.type === 'final') r.final = rec;
      }
    });
    if (recs.length) r.version++;
  }
  function addHist(r, recs) {
    recs.forEach(function (rec) { if (rec && rec.tag && rec.counts) { r.hist.push(rec); r.histTags[rec.tag] = true; } });
    if (recs.length) r.version++;
  }
  function addMedia(r, recs) {
    recs.forEach(function (rec) { if (rec && rec.file) r.media.push(rec); });
    if (recs.length) r.version++;
  }

  // ---- scalars ---------------------------------------------------------
  function smooth(ys, w) {
    if (!(w > 0)) return ys;
    // TensorBoard's debiased exponential moving average; NaN points are kept as gaps
    var out = new Array(ys.length), last = 0, n = 0;
    for (var i = 0; i < ys.length; i++) {
      var y = ys[i];
      if (!isFinite(y)) { out[i] = null; continue; }
      last = last * w + (1 - w) * y; n++;
      out[i] = last / (1 - Math.pow(w, n));
    }
    return out;
  }
  function allTags(runs) {
    var seen = {}, tags = [];
    runs.forEach(function (r) { r.tags.forEach(function (t) { if (!seen[t]) { seen[t] = 1; tags.push(t); } }); });
    tags.sort(function (a, b) {
      var ia = PREFERRED.indexOf(a), ib = PREFERRED.indexOf(b);
      if (ia < 0) ia = 99; if (ib < 0) ib = 99;
      return ia - ib || (a < b ? -1 : a > b ? 1 : 0);
    });
    return tags;
  }
  function chartData(tag, runs) {
    // uPlot wants one shared x array: join the runs' steps, null where a run has no point
    var stepSet = {}, xs = [], points = 0;
    runs.forEach(function (r) { r.series[tag].xs.forEach(function (x) { stepSet[x] = 1; }); });
    for (var k in stepSet) xs.push(Number(k));
    xs.sort(function (a, b) { return a - b; });
    var index = {};
    xs.forEach(function (x, i) { index[x] = i; });
    var data = [xs];
    runs.forEach(function (r) {
      var s = r.series[tag], col = new Array(xs.length).fill(null);
      var w = s.xs.length > 20 && NO_SMOOTH.indexOf(tag) < 0 ? state.smoothing : 0;
      var ys = smooth(s.ys, w);
      for (var i = 0; i < s.xs.length; i++) {
        var y = ys[i];
        col[index[s.xs[i]]] = (y == null || !isFinite(y)) ? null : y;
      }
      points += s.xs.length;
      data.push(col);
    });
    return { data: data, points: points };
  }
  function renderCharts() {
    var box = $('charts');
    var runs = state.order.filter(function (n) { return state.selected[n]; }).map(function (n) { return state.runs[n]; });
    var tags = allTags(runs);
    if (!tags.length) {
      for (var t0 in state.charts) { state.charts[t0].u.destroy(); }
      state.charts = {};
      box.textContent = '';
      box.appendChild(h('div', { class: 'muted', text: runs.length ? 'No scalars logged yet.' : 'Select a run.' }));
      return;
    }
    var empty = box.querySelector('.muted');
    if (empty) box.removeChild(empty);
    var keep = {};
    tags.forEach(function (tag) {
      var withTag = runs.filter(function (r) { return r.series[tag]; });
      var cd = chartData(tag, withTag);
      var key = withTag.map(function (r) { return r.name; }).join('|') + '#' + state.smoothing;
      var c = state.charts[tag];
      if (c && c.key !== key) { c.u.destroy(); box.removeChild(c.el); c = null; }
      if (!c) {
        var el = h('div', { class: 'chart', 'data-tag': tag });
        box.appendChild(el);
        var width = Math.max(300, (el.clientWidth || 480) - 8);
        var opts = {
          title: tag, width: width, height: 220,
          scales: { x: { time: false } },
          series: [{ label: 'step' }].concat(withTag.map(function (r) {
            return { label: r.name, stroke: r.color, width: 1.5, spanGaps: true,
              points: { show: r.series[tag].xs.length <= 60, size: 5 }, value: function (u, v) { return v == null ? '-' : fmt(v); } };
          })),
          axes: [{ label: 'step' }, { size: 56, values: function (u, vals) { return vals.map(tick); } }],
          legend: { live: true }
        };
        c = state.charts[tag] = { u: new uPlot(opts, cd.data, el), el: el, key: key };
      } else {
        c.u.setData(cd.data);
      }
      c.el.setAttribute('data-points', String(cd.points));
      keep[tag] = true;
    });
    for (var t in state.charts) if (!keep[t]) { state.charts[t].u.destroy(); box.removeChild(state.charts[t].el); delete state.charts[t]; }
    // keep the DOM order equal to the tag order
    tags.forEach(function (tag) { box.appendChild(state.charts[tag].el); });
  }
  function resizeCharts() {
    for (var t in state.charts) {
      var c = state.charts[t];
      c.u.setSize({ width: Math.max(300, c.el.clientWidth - 8), height: 220 });
    }
  }

  // ---- run list ----------------------------------------------------------
  function renderRuns() {
    var nav = $('runs');
    nav.textContent = '';
    if (!state.order.length) { nav.appendChild(h('div', { class: 'empty', text: 'No runs yet in the log directory.' })); return; }
    state.order.forEach(function (name) {
      var r = state.runs[name], info = r.info || {};
      var cb = h('input', { type: 'checkbox', title: 'show in charts' });
      cb.checked = !!state.selected[name];
      cb.addEventListener('click', function (ev) { ev.stopPropagation(); });
      cb.addEventListener('change', function () {
        if (cb.checked) state.selected[name] = true; else delete state.selected[name];
        refresh();
      });
      var meta = [];
      if (info.lastStep != null) meta.push('step ' + info.lastStep);
      var row = h('div', { class: 'run' + (state.focus === name ? ' focus' : ''), title: 'click to show its images, histograms and config',
        onclick: function () { state.focus = name; state.selected[name] = true; state.mediaStep = null; refresh(); } }, [
        cb,
        h('span', { class: 'swatch', style: 'background:' + r.color }),
        h('div', null, [
          h('div', { class: 'rname' }, [name, info.status ? h('span', { class: 'badge ' + info.status, text: info.status }) : null]),
          h('div', { class: 'meta', text: meta.join(' · ') }),
          info.hasReport && !STATIC ? h('a', { href: '/files/' + enc(name) + '/report.html', target: '_blank', class: 'meta', text: 'report' }) : null,
          state.tryIt && !STATIC ? h('a', { href: '/try/' + enc(name) + '/', target: '_blank', class: 'meta', title: 'predict with its best model in this browser', text: ' try it' }) : null
        ])
      ]);
      nav.appendChild(row);
    });
  }

  // ---- final metrics -----------------------------------------------------
  function renderFinal() {
    var r = state.runs[state.focus];
    var box = $('final');
    var key = r ? r.name + ':' + r.version : '';
    if (key === state.rendered.final) return;
    state.rendered.final = key;
    box.textContent = '';
    if (!r) return;
    var tables = h('div', { class: 'tables' });
    // last / min / max of every scalar
    var rows = r.tags.slice().sort().map(function (tag) {
      var ys = r.series[tag].ys.filter(function (y) { return isFinite(y); });
      if (!ys.length) return null;
      return h('tr', null, [h('td', { text: tag }), h('td', { text: fmt(ys[ys.length - 1]) }),
        h('td', { text: fmt(Math.min.apply(null, ys)) }), h('td', { text: fmt(Math.max.apply(null, ys)) })]);
    });
    tables.appendChild(h('table', { class: 'metrics' }, [h('tr', null, [h('th', { text: 'scalar' }), h('th', { text: 'last' }), h('th', { text: 'min' }), h('th', { text: 'max' })])].concat(rows)));
    var pc = r.perClass;
    if (pc) {
      var dice = pc.perClassDice || [], iou = pc.perClassIoU || [], names = pc.classNames || (r.final && r.final.classNames) || [];
      var n = Math.max(dice.length, iou.length);
      if (n) {
        var title = pc.type === 'final' ? 'class' : 'class (' + (pc.type || 'record') + (pc.epoch != null ? ' ' + pc.epoch : pc.step != null ? ' @' + pc.step : '') + ')';
        var crow = [h('tr', null, [h('th', { text: title }), h('th', { text: 'Dice' }), h('th', { text: 'IoU' })])];
        for (var i = 0; i < n; i++) crow.push(h('tr', null, [h('td', { text: names[i] != null ? String(names[i]) : String(i) }),
          h('td', { text: dice[i] != null ? fmt(num(dice[i])) : '-' }), h('td', { text: iou[i] != null ? fmt(num(iou[i])) : '-' })]));
        tables.appendChild(h('table', { class: 'metrics', 'data-role': 'per-class' }, crow));
      }
    }
    var f = r.final;
    if (f) {
      var other = [];
      for (var k in f) {
        if (k === 'perClassDice' || k === 'perClassIoU' || k === 'classNames' || k === 'type' || k === 'time') continue;
        var v = f[k];
        if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') other.push(h('tr', null, [h('td', { text: k }), h('td', { text: fmt(v) })]));
      }
      if (other.length) tables.appendChild(h('table', { class: 'metrics' }, [h('tr', null, [h('th', { text: 'final' }), h('th', { text: 'value' })])].concat(other)));
    }
    box.appendChild(tables);
  }

  // ---- images --------------------------------------------------------------
  function mediaSrc(r, rec) {
    if (rec.src) return rec.src;
    return '/files/' + enc(r.name) + '/' + rec.file.split('/').map(enc).join('/');
  }
  function renderMedia() {
    var r = state.runs[state.focus];
    var ctl = $('images-ctl'), box = $('images');
    var key = r ? r.name + ':' + r.media.length + ':' + state.mediaStep : '';
    if (key === state.rendered.media) return;
    state.rendered.media = key;
    ctl.textContent = ''; box.textContent = '';
    if (!r || !r.media.length) { box.appendChild(h('div', { class: 'muted', text: 'No images logged yet (they are logged at validation).' })); return; }
    var stepSet = {};
    r.media.forEach(function (m) { stepSet[m.step] = 1; });
    var steps = Object.keys(stepSet).map(Number).sort(function (a, b) { return a - b; });
    var idx = state.mediaStep == null ? steps.length - 1 : Math.max(0, steps.indexOf(state.mediaStep));
    var step = steps[idx];
    var slider = h('input', { type: 'range', min: '0', max: String(steps.length - 1), value: String(idx) });
    slider.addEventListener('input', function () {
      var i = Number(slider.value);
      state.mediaStep = i === steps.length - 1 ? null : steps[i];
      renderMedia();
    });
    ctl.appendChild(h('span', { text: 'validation step ' + step + ' (' + (idx + 1) + ' of ' + steps.length + ')' }));
    if (steps.length > 1) ctl.appendChild(slider);
    var recs = r.media.filter(function (m) { return m.step === step; });
    var latest = {};
    recs.forEach(function (m) { latest[m.tag] = m; });
    // one row per sample: tags like "input/0", "true/0", "pred/0" group by their last part
    var rows = {}, rowOrder = [];
    // input first, then ground truth, then prediction (as the reference logs them)
    function rank(tag) { var t = tag.toLowerCase(); return /image|input/.test(t) ? 0 : /true|target|gt/.test(t) ? 1 : /pred/.test(t) ? 2 : 3; }
    Object.keys(latest).sort(function (a, b) { return rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0); }).forEach(function (tag) {
      var parts = tag.split('/'), last = parts[parts.length - 1];
      var group = /^[0-9]+$/.test(last) ? last : '';
      if (!rows[group]) { rows[group] = []; rowOrder.push(group); }
      rows[group].push(latest[tag]);
    });
    rowOrder.forEach(function (g) {
      box.appendChild(h('div', { class: 'row' }, rows[g].map(function (m) {
        // small images are scaled up (pixelated) so that masks stay readable
        return h('figure', null, [h('img', { src: mediaSrc(r, m), alt: m.tag, width: String(Math.min(256, Math.max(160, m.width))) }),
          h('figcaption', { text: m.tag + ' · ' + m.width + '×' + m.height })]);
      })));
    });
  }

  // ---- histograms ------------------------------------------------------------
  function renderHist() {
    var r = state.runs[state.focus];
    var ctl = $('hist-ctl'), canvas = $('hist');
    var tags = r ? Object.keys(r.histTags).sort(function (a, b) {
      // Weights before Gradients, then by name
      var wa = a.indexOf('Weights/') === 0 ? 0 : 1, wb = b.indexOf('Weights/') === 0 ? 0 : 1;
      return wa - wb || (a < b ? -1 : a > b ? 1 : 0);
    }) : [];
    if (tags.length && tags.indexOf(state.histTag) < 0) state.histTag = tags[0];
    var key = r ? r.name + ':' + r.hist.length + ':' + state.histTag + ':' + canvas.clientWidth : '';
    if (key === state.rendered.hist) return;
    state.rendered.hist = key;
    ctl.textContent = '';
    if (!tags.length) {
      canvas.style.display = 'none';
      ctl.appendChild(h('div', { class: 'muted', text: 'No histograms logged yet (Weights/* and Gradients/* are logged at validation).' }));
      return;
    }
    canvas.style.display = '';
    var sel = h('select', { 'aria-label': 'histogram tag' }, tags.map(function (t) {
      var o = h('option', { value: t, text: t }); if (t === state.histTag) o.selected = true; return o;
    }));
    sel.addEventListener('change', function () { state.histTag = sel.value; renderHist(); });
    ctl.appendChild(sel);
    var recs = r.hist.filter(function (x) { return x.tag === state.histTag; });
    var lastRec = recs[recs.length - 1];
    ctl.appendChild(h('span', { class: 'muted', text: 'step ' + lastRec.step + ': min ' + fmt(lastRec.min) + ', max ' + fmt(lastRec.max) +
      ', mean ' + fmt(lastRec.mean) + ', std ' + fmt(lastRec.std) + ', n ' + lastRec.num + (lastRec.nonFinite ? ', non-finite ' + lastRec.nonFinite : '') }));
    drawRidges(canvas, recs.slice(-12));
  }
  function drawRidges(canvas, recs) {
    // TensorBoard's "offset" view: one filled curve per step, older ones above
    var dpr = window.devicePixelRatio || 1;
    var W = canvas.clientWidth || 600, rowH = 24, amp = 48, left = 90, right = 16, top = 12;
    var H = top + amp + rowH * (recs.length - 1) + 36;
    canvas.width = Math.round(W * dpr); canvas.height = Math.round(H * dpr); canvas.style.height = H + 'px';
    var ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    var lo = Infinity, hi = -Infinity;
    recs.forEach(function (rec) { lo = Math.min(lo, rec.edges[0]); hi = Math.max(hi, rec.edges[rec.edges.length - 1]); });
    if (!(hi > lo)) { hi = lo + 1; }
    function X(v) { return left + (v - lo) / (hi - lo) * (W - left - right); }
    ctx.font = '11px system-ui, sans-serif';
    recs.forEach(function (rec, i) {
      var base = top + amp + i * rowH;
      var maxC = Math.max.apply(null, rec.counts) || 1;
      var t = recs.length > 1 ? i / (recs.length - 1) : 1;
      var shade = Math.round(200 - 150 * t);
      ctx.beginPath();
      ctx.moveTo(X(rec.edges[0]), base);
      for (var b = 0; b < rec.counts.length; b++) {
        var xc = (rec.edges[b] + rec.edges[b + 1]) / 2;
        ctx.lineTo(X(xc), base - rec.counts[b] / maxC * amp);
      }
      ctx.lineTo(X(rec.edges[rec.edges.length - 1]), base);
      ctx.closePath();
      ctx.fillStyle = 'rgba(' + Math.round(shade * 0.4) + ',' + Math.round(shade * 0.7) + ',' + 230 + ',0.55)';
      ctx.fill();
      ctx.strokeStyle = '#fff'; ctx.lineWidth = 1; ctx.stroke();
      ctx.fillStyle = '#6b7280';
      ctx.fillText('step ' + rec.step, 4, base - 2);
    });
    var axisY = H - 20;
    ctx.strokeStyle = '#9ca3af'; ctx.beginPath(); ctx.moveTo(left, axisY); ctx.lineTo(W - right, axisY); ctx.stroke();
    ctx.fillStyle = '#374151';
    // round tick values: 1, 2 or 5 times a power of ten
    var raw = (hi - lo) / 5, p10 = Math.pow(10, Math.floor(Math.log10(raw))), m = raw / p10;
    var stepV = (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p10;
    for (var v = Math.ceil(lo / stepV) * stepV; v <= hi + stepV * 1e-9; v += stepV) {
      var x = X(v);
      ctx.beginPath(); ctx.moveTo(x, axisY); ctx.lineTo(x, axisY + 4); ctx.stroke();
      var label = tick(Math.abs(v) < stepV * 1e-6 ? 0 : v);
      var tw = ctx.measureText(label).width;
      ctx.fillText(label, Math.min(W - right - tw, Math.max(0, x - tw / 2)), axisY + 15);
    }
  }

  // ---- config ------------------------------------------------------------------
  function renderConfig() {
    var r = state.runs[state.focus];
    var key = r ? r.name + ':' + (r.config === undefined ? 'u' : 'd') : '';
    if (key === state.rendered.config) return;
    state.rendered.config = key;
    $('config').textContent = r && r.config != null ? JSON.stringify(r.config, null, 2) : '';
  }

  function render() {
    renderRuns();
    renderCharts();
    renderFinal();
    renderMedia();
    renderHist();
    renderConfig();
    state.updates++;
    document.body.setAttribute('data-updates', String(state.updates));
  }

  // ---- data sources ------------------------------------------------------------
  function getJSON(url) {
    return fetch(url, { cache: 'no-store' }).then(function (res) {
      if (!res.ok) throw new Error(url + ': HTTP ' + res.status);
      return res.json();
    });
  }
  function pull(r, kind, add) {
    // read what was appended since last time; loop while the server says there is more
    return getJSON('/api/runs/' + enc(r.name) + '/' + kind + '?from=' + r.off[kind]).then(function (res) {
      var before = r.off[kind];
      if (res.next < before) { return; } // file rewritten: ignore (runs are append-only)
      add(r, res.records || []);
      r.off[kind] = res.next;
      if (res.more && res.next > before) return pull(r, kind, add);
    });
  }
  var first = true, timer = null, busy = false;
  function poll() {
    if (busy) return;
    busy = true;
    getJSON('/api/runs').then(function (list) {
      state.tryIt = !!list.tryIt;
      var names = [];
      (list.runs || []).forEach(function (info) { getRun(info.name, info); names.push(info.name); });
      var known = state.order.slice();
      state.order = names;
      if (first) {
        // start with the newest run shown and focused
        if (names.length) { state.selected[names[0]] = true; state.focus = names[0]; }
        first = false;
      } else {
        // a run that starts while the page is open is shown too
        names.forEach(function (n) { if (known.indexOf(n) < 0) { state.selected[n] = true; if (!state.focus) state.focus = n; } });
      }
      if (state.focus && names.indexOf(state.focus) < 0) state.focus = names[0] || null;
      var jobs = [];
      names.forEach(function (n) {
        var r = state.runs[n];
        if (state.selected[n] || n === state.focus) jobs.push(pull(r, 'metrics', addMetrics));
        if (n === state.focus) {
          jobs.push(pull(r, 'histograms', addHist));
          jobs.push(pull(r, 'media', addMedia));
          if (r.config === undefined) jobs.push(getJSON('/api/runs/' + enc(n) + '/config').then(function (c) { r.config = c; r.version++; }, function () { r.config = null; }));
        }
      });
      return Promise.all(jobs);
    }).then(function () {
      render();
      $('status').textContent = 'live · refreshed ' + new Date().toLocaleTimeString() + ' · every ' + (POLL_MS / 1000) + ' s';
    }, function (err) {
      $('status').textContent = 'cannot reach the dashboard server (' + (err && err.message) + '), retrying…';
    }).then(function () {
      busy = false;
      timer = setTimeout(poll, POLL_MS);
    });
  }
  function refresh() { if (STATIC) render(); else { clearTimeout(timer); timer = null; if (busy) render(); else poll(); } }

  function init() {
    var sm = $('smoothing');
    sm.value = String(state.smoothing);
    sm.addEventListener('input', function () { state.smoothing = Number(sm.value); $('smoothing-val').textContent = sm.value; renderCharts(); });
    $('smoothing-val').textContent = String(state.smoothing);
    var rt = null;
    window.addEventListener('resize', function () { clearTimeout(rt); rt = setTimeout(function () { resizeCharts(); renderHist(); }, 150); });
    if (STATIC) {
      (BOOT.runs || []).forEach(function (d, i) {
        var r = getRun(d.name, d.info);
        r.config = d.config;
        addMetrics(r, d.metrics || []);
        addHist(r, d.histograms || []);
        addMedia(r, d.media || []);
        state.order.push(d.name);
        state.selected[d.name] = true;
        if (i === 0) state.focus = d.name;
      });
      $('status').textContent = BOOT.generated ? 'report generated ' + BOOT.generated : '';
      render();
    } else {
      poll();
    }
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init); else init();
})();
`;
