/** `unet dashboard`: serves the live training dashboard (and its "try it" pages) until Ctrl-C. */
import { existsSync } from 'node:fs';
import type { DashboardConfig } from '../config/options.js';
import { CliError } from './errors.js';

export async function dashboardCommand(o: DashboardConfig): Promise<number> {
  const { isLoopback, listenProblem, startDashboard } = await import('../tracking/index.js');
  if (!existsSync(o.logdir)) console.warn(`note: ${o.logdir} does not exist yet; runs appear once training starts`);
  const tryIt = (await import('../export/try-it.js')).tryItPages();
  const d = await startDashboard({ logdir: o.logdir, port: o.port, host: o.host, tryIt: tryIt.serve }).catch((e: unknown) => {
    tryIt.close();
    const why = listenProblem(e, o.host, o.port);
    throw why ? new CliError(`${why}: pick a port with --port N (--port 0: any free one), or an address with --host`) : e;
  });
  if (!isLoopback(o.host)) {
    console.warn(`warning: --host ${o.host}: the dashboard is reachable from the network, without authentication: anyone who can reach this machine can read these runs and try their models`);
  }
  console.log(`Dashboard: ${d.url} (Ctrl-C to stop)`);
  await new Promise<void>((res) => process.once('SIGINT', () => res()));
  await d.close();
  tryIt.close();
  return 0;
}
