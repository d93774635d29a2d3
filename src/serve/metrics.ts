/** `GET /metrics`: the server's counters and histograms in Prometheus' text format (0.0.4). */
import { monitorEventLoopDelay } from 'node:perf_hooks';

class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
  ) {
    this.counts = bounds.map(() => 0);
  }

  observe(v: number): void {
    this.sum += v;
    this.count++;
    this.bounds.forEach((b, i) => {
      if (v <= b) this.counts[i]++;
    });
  }

  text(): string[] {
    return [
      `# HELP ${this.name} ${this.help}`,
      `# TYPE ${this.name} histogram`,
      ...this.bounds.map((b, i) => `${this.name}_bucket{le="${b}"} ${this.counts[i]}`),
      `${this.name}_bucket{le="+Inf"} ${this.count}`,
      `${this.name}_sum ${this.sum}`,
      `${this.name}_count ${this.count}`,
    ];
  }
}

const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export class Metrics {
  private readonly byCode = new Map<string, number>();
  readonly latency = new Histogram('unet_serve_request_duration_seconds', 'time from a request to its answer', SECONDS);
  readonly batchSize = new Histogram('unet_serve_batch_size', 'images per forward pass', [1, 2, 4, 8, 16, 32, 64]);
  readonly inference = new Histogram('unet_serve_inference_seconds', 'time of one forward pass (a batch) in the inference thread', SECONDS);

  /** Forwards run in the inference thread: this delay shows the event loop stays free meanwhile. */
  private readonly loopDelay = monitorEventLoopDelay({ resolution: 10 });

  constructor() {
    this.loopDelay.enable();
  }

  request(code: number, seconds: number): void {
    this.byCode.set(String(code), (this.byCode.get(String(code)) ?? 0) + 1);
    this.latency.observe(seconds);
  }

  /** The exposition; `queueDepth` and `inFlight` are read now. */
  text(queueDepth: number, inFlight: number): string {
    return [
      '# HELP unet_serve_requests_total requests answered, by HTTP status code',
      '# TYPE unet_serve_requests_total counter',
      ...[...this.byCode].sort().map(([code, n]) => `unet_serve_requests_total{code="${code}"} ${n}`),
      ...this.latency.text(),
      ...this.batchSize.text(),
      ...this.inference.text(),
      ...this.loopDelayText(),
      '# HELP unet_serve_queue_depth requests waiting for the inference thread',
      '# TYPE unet_serve_queue_depth gauge',
      `unet_serve_queue_depth ${queueDepth}`,
      '# HELP unet_serve_requests_in_flight requests received and not yet answered',
      '# TYPE unet_serve_requests_in_flight gauge',
      `unet_serve_requests_in_flight ${inFlight}`,
      '',
    ].join('\n');
  }

  private loopDelayText(): string[] {
    const h = this.loopDelay;
    const s = (ns: number) => (Number.isFinite(ns) ? ns / 1e9 : 0);
    const name = 'unet_serve_event_loop_delay_seconds';
    return [
      `# HELP ${name} how late the event loop ran a 10 ms timer since the start (quantiles)`,
      `# TYPE ${name} summary`,
      ...[0.5, 0.99].map((q) => `${name}{quantile="${q}"} ${s(h.percentile(q * 100))}`),
      `${name}_sum ${s(h.mean) * h.count}`,
      `${name}_count ${h.count}`,
      `# HELP ${name}_max the largest such delay since the start`,
      `# TYPE ${name}_max gauge`,
      `${name}_max ${s(h.max)}`,
    ];
  }
}
