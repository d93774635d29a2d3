/** `unet dashboard`: serves the live training dashboard (and its "try it" pages) until Ctrl-C. */
import { existsSync } from 'node:fs';
import type { DashboardConfig } from '../config/options.js';

export async function dashboardCommand(o: DashboardConfig): Promise<number> {
  const { startDashboard } = await import('../tracking/index.js');
  if (!existsSync(o.logdir)) console.warn(`note: ${o.logdir} does not exist yet; runs appear once training starts`);
  const tryIt = (await import('../export/try-it.js')).tryItPages();
  const d = await startDashboard({ logdir: o.logdir, port: o.port, host: o.host, tryIt: tryIt.serve });
  console.log(`Dashboard: ${d.url} (Ctrl-C to stop)`);
  await new Promise<void>((res) => process.once('SIGINT', () => res()));
  await d.close();
  tryIt.close();
  return 0;
}
