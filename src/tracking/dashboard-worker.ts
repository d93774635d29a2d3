// The dashboard thread's entry (see dashboard-thread.ts): serves until the main thread says 'close'.
import { parentPort, workerData } from 'node:worker_threads';
import { type DashboardOptions, startDashboard } from './dashboard.js';

const port = parentPort;
if (port) {
  try {
    const d = await startDashboard(workerData as DashboardOptions);
    port.on('message', (m) => {
      if (m === 'close') void d.close().finally(() => port.close());
    });
    port.postMessage({ type: 'ready', url: d.url, port: d.port, host: d.host });
  } catch (e) {
    port.postMessage({ type: 'error', message: (e as Error).message, code: (e as NodeJS.ErrnoException).code });
  }
}
