// DOM building and number formatting for the page.

export function $<T extends HTMLElement = HTMLElement>(id: string): T {
  return document.getElementById(id) as T;
}

type Attrs = Record<string, string | ((ev: Event) => void)>;
type Child = Node | string | null | undefined;

/** An element: `text` sets its text, `style` its CSS, `on<event>` a listener, anything else an attribute. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs | null, children?: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (attrs) {
    for (const k in attrs) {
      const v = attrs[k] as Attrs[string];
      if (typeof v === 'function') el.addEventListener(k.slice(2), v);
      else if (k === 'text') el.textContent = v;
      else if (k === 'style') el.style.cssText = v;
      else el.setAttribute(k, v);
    }
  }
  for (const c of children ?? []) if (c != null) el.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
  return el;
}

/** A logged value as a number ("NaN" and "Infinity" are stored as strings). */
export function num(v: unknown): number {
  return typeof v === 'number' ? v : typeof v === 'string' ? Number(v) : Number.NaN;
}

export function fmt(v: unknown): string {
  if (typeof v !== 'number') return String(v);
  if (!Number.isFinite(v)) return String(v);
  if (v !== 0 && (Math.abs(v) < 1e-3 || Math.abs(v) >= 1e5)) return v.toExponential(3);
  return String(Math.round(v * 10000) / 10000);
}

/** Short tick labels: 3 significant digits, exponent only for very small/large values. */
export function tick(v: number | null | undefined): string {
  if (v == null || !Number.isFinite(v)) return '';
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a < 1e-3 || a >= 1e5) return v.toExponential(1).replace('.0e', 'e');
  return String(Number(v.toPrecision(3)));
}

export const enc = encodeURIComponent;

/** a < b < c for strings, as Array.sort wants it. */
export function byName(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
