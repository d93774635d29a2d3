/**
 * Per-epoch progress: a bar on a terminal, plain lines every few seconds otherwise (CI logs,
 * pipes). The plain lines are written from update() itself: training runs synchronous libtorch
 * calls back to back, so a timer-driven printer would not get a turn until the epoch ends.
 */
import cliProgress from 'cli-progress';
import { NO_EPOCH_CAP } from '../config/options.js';

export interface Progress {
  update(done: number, payload: { loss?: number; imgPerSec?: number }): void;
  stop(): void;
}

const fmt = (p: { loss?: number; imgPerSec?: number }) => ({
  loss: p.loss === undefined ? '-' : p.loss.toFixed(4),
  ips: p.imgPerSec === undefined || !Number.isFinite(p.imgPerSec) ? '-' : p.imgPerSec.toFixed(1),
});

/** Seconds left at `imgPerSec`, or '-' while there is no usable rate (none yet, 0, NaN). */
export function eta(left: number, imgPerSec: number | undefined): string {
  if (imgPerSec === undefined || !(imgPerSec > 0) || !Number.isFinite(imgPerSec)) return '-';
  return `${Math.max(0, Math.round(left / imgPerSec))}s`;
}

/** "3/10", or "3" while --time-budget has not yet planned the epochs (no cap to show). */
export const epochOf = (epoch: number, epochs: number): string => (epochs >= NO_EPOCH_CAP ? String(epoch) : `${epoch}/${epochs}`);

export function epochProgress(epoch: number, epochs: number, total: number, stream: NodeJS.WriteStream = process.stderr, intervalMs = 5000): Progress {
  if (!stream.isTTY) {
    let last = performance.now();
    let done = 0;
    let payload = fmt({});
    let rate: number | undefined;
    let stopped = false;
    const line = () => {
      stream.write(`Epoch ${epochOf(epoch, epochs)}: ${done}/${total} img | loss ${payload.loss} | ${payload.ips} img/s | ETA ${eta(total - done, rate)}\n`);
    };
    return {
      update(d, p) {
        done = d;
        payload = fmt(p);
        rate = p.imgPerSec;
        if (performance.now() - last >= intervalMs) {
          last = performance.now();
          line();
        }
      },
      stop() {
        if (stopped) return;
        stopped = true;
        line();
      },
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: `Epoch ${epochOf(epoch, epochs)} [{bar}] {value}/{total} img | loss {loss} | {ips} img/s | ETA {eta_formatted}`,
      hideCursor: true,
      etaBuffer: 50,
      barsize: 24,
      synchronousUpdate: true,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, fmt({}));
  let stopped = false;
  return {
    update(done, p) {
      bar.update(done, fmt(p));
    },
    // Also called when an error ends the epoch: the bar's timer would keep the process alive
    // (and the cursor hidden) after the error is printed.
    stop() {
      if (stopped) return;
      stopped = true;
      bar.stop();
    },
  };
}
