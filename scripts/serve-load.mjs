// The load generator of scripts/serve-bench.mjs: N concurrent clients, each POSTing one fixed body
// (prepared once) over a keep-alive connection to a loopback URL, back to back, until a deadline
// or a request count. Responses are read whole but not parsed (the client shares the CPUs with the
// server); each point keeps its first response body for checking.
import http from 'node:http';

/** One POST; resolves with the status, the body's byte count and (when keep) its text; never rejects. */
function post(agent, url, body, keep, timeoutMs) {
  return new Promise((resolve) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        agent,
        timeout: timeoutMs,
        headers: { 'Content-Type': 'application/json', 'Content-Length': body.length },
      },
      (res) => {
        const chunks = [];
        let bytes = 0;
        res.on('data', (c) => {
          bytes += c.length;
          if (keep) chunks.push(c);
        });
        res.on('end', () => resolve({ status: res.statusCode, bytes, text: keep ? Buffer.concat(chunks).toString() : null }));
        res.on('error', (e) => resolve({ status: e.code ?? 'error', bytes }));
      },
    );
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (e) => resolve({ status: e.code ?? 'error', bytes: 0 }));
    req.end(body);
  });
}

/** Nearest-rank percentile of a sorted array. */
export function percentile(sorted, p) {
  return sorted.length ? sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)] : NaN;
}

/**
 * Drives `clients` concurrent clients for `seconds` (no new request after that; the ones in flight
 * finish and count) or until `maxRequests` were sent. `progress.done` counts answered requests as
 * they come (for a sampler). Returns throughput (answered 200s over the wall time until the last
 * answer), latency percentiles in ms, the non-200 answers by status, and the first 200's body.
 */
export async function runLoad({ url, body, clients, seconds, maxRequests = Infinity, timeoutMs = 120_000, progress = { done: 0 } }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const latencies = [];
  const errors = {};
  let sent = 0;
  let first = null;
  const t0 = performance.now();
  const deadline = t0 + seconds * 1000;
  const client = async () => {
    while (performance.now() < deadline && sent < maxRequests) {
      sent++;
      const start = performance.now();
      const r = await post(agent, url, body, first === null, timeoutMs);
      progress.done++;
      if (r.status === 200) {
        latencies.push(performance.now() - start);
        if (first === null && r.text !== null) first = r.text;
      } else {
        errors[r.status] = (errors[r.status] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, client));
  const wall = (performance.now() - t0) / 1000;
  agent.destroy();
  const sorted = Float64Array.from(latencies).sort();
  const ms = (v) => Math.round(v * 10) / 10;
  return {
    clients,
    requests: sent,
    ok: latencies.length,
    errors,
    seconds: Math.round(wall * 100) / 100,
    rps: Math.round((latencies.length / wall) * 1000) / 1000,
    p50_ms: ms(percentile(sorted, 0.5)),
    p90_ms: ms(percentile(sorted, 0.9)),
    p99_ms: ms(percentile(sorted, 0.99)),
    max_ms: ms(sorted[sorted.length - 1] ?? NaN),
    first,
  };
}
