// `train --dashboard`: the dashboard served from its own thread. libtorch's steps run synchronously
// on the main thread and held each request for seconds there; the server only reads run files.
import { Worker } from 'node:worker_threads';
import { workerEntry } from '../io/worker-entry.js';
import type { Dashboard } from './dashboard.js';

type Reply = { type: 'ready'; url: string; port: number; host: string } | { type: 'error'; message: string; code?: string };

/**
 * startDashboard() in a worker thread. Rejects as startDashboard does (e.g. an Error with code
 * EADDRINUSE); `warn` hears of a thread that dies later (the training goes on without it).
 */
export function startDashboardThread(opts: { logdir: string; port: number; host?: string }, warn: (line: string) => void): Promise<Dashboard> {
  const { script, evalCode } = workerEntry('dashboard-worker', import.meta.url);
  // No execArgv of the parent's: e.g. `node --input-type=module -e` makes a worker refuse its file.
  const worker = new Worker(script, { eval: evalCode, workerData: opts, execArgv: [] });
  let ready = false;
  const exited = new Promise<void>((res) => worker.once('exit', () => res()));
  return new Promise<Dashboard>((resolve, reject) => {
    worker.on('error', (e) => (ready ? warn(`the dashboard stopped: ${e.message}`) : reject(e)));
    void exited.then(() => reject(new Error('the dashboard thread ended before it served')));
    worker.once('message', (m: Reply) => {
      if (m.type === 'error') {
        reject(Object.assign(new Error(m.message), { code: m.code }));
        return;
      }
      ready = true;
      resolve({
        url: m.url,
        port: m.port,
        host: m.host,
        close: async () => {
          worker.postMessage('close');
          // A thread stuck in a read gets a few seconds, then is stopped.
          const timer = setTimeout(() => void worker.terminate(), 3000);
          await exited;
          clearTimeout(timer);
        },
      });
    });
  });
}
