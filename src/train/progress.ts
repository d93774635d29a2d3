/** Per-epoch progress: a bar on a terminal, plain periodic lines otherwise (CI logs, pipes). */
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, payload: { loss?: number; imgPerSec?: number }): void;
  stop(): void;
}

export function epochProgress(epoch: number, epochs: number, total: number, stream: NodeJS.WriteStream = process.stderr): Progress {
  const tty = Boolean(stream.isTTY);
  const bar = new cliProgress.SingleBar(
    {
      stream,
      format: `Epoch ${epoch}/${epochs} [{bar}] {value}/{total} img | loss {loss} | {ips} img/s | ETA {eta_formatted}`,
      noTTYOutput: !tty,
      notTTYSchedule: 5000,
      hideCursor: tty,
      etaBuffer: 50,
      barsize: 24,
    },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0, { loss: '-', ips: '-' });
  return {
    update(done, p) {
      bar.update(done, {
        loss: p.loss === undefined ? '-' : p.loss.toFixed(4),
        ips: p.imgPerSec === undefined ? '-' : p.imgPerSec.toFixed(1),
      });
    },
    stop() {
      bar.stop();
    },
  };
}
