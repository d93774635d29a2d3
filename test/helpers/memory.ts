/** Resident-memory sampling and trend fitting for the leak tests. */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const gcFn = runInNewContext('gc') as () => void;

/** Runs V8's full garbage collection (so that JS garbage does not look like a native leak). */
export function gc(): void {
  gcFn();
}

export const rssMB = (): number => process.memoryUsage().rss / 2 ** 20;

/** Least-squares slope of y over x. */
export function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my);
    den += (xs[i] - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

export interface Sample {
  /** iterations done */
  i: number;
  /** resident set size, MB */
  rss: number;
}

export interface Trend {
  /** MB per 1000 iterations, fitted over the second half of the samples (after warm-up) */
  slopePer1000: number;
  first: number;
  peak: number;
  last: number;
  /** growth of the median of the last quarter over the median of the second quarter, MB */
  lateGrowth: number;
  samples: number;
}

const median = (a: number[]): number => {
  const s = [...a].sort((x, y) => x - y);
  return s.length ? s[Math.floor(s.length / 2)] : Number.NaN;
};

export function trend(samples: readonly Sample[]): Trend {
  const half = samples.slice(Math.floor(samples.length / 2));
  const q = Math.max(1, Math.floor(samples.length / 4));
  return {
    slopePer1000:
      slope(
        half.map((s) => s.i),
        half.map((s) => s.rss),
      ) * 1000,
    first: samples[0]?.rss ?? Number.NaN,
    peak: Math.max(...samples.map((s) => s.rss)),
    last: samples[samples.length - 1]?.rss ?? Number.NaN,
    lateGrowth: median(samples.slice(-q).map((s) => s.rss)) - median(samples.slice(q, 2 * q).map((s) => s.rss)),
    samples: samples.length,
  };
}

export const describeTrend = (name: string, t: Trend, unit = 'iterations'): string =>
  `${name}: RSS ${t.first.toFixed(1)} -> ${t.last.toFixed(1)} MB (peak ${t.peak.toFixed(1)}), slope over the second half ${t.slopePer1000.toFixed(2)} MB per 1000 ${unit}, ` +
  `late growth ${t.lateGrowth.toFixed(1)} MB, ${t.samples} samples`;
