/** Headless Chromium for the browser tests: playwright-core, Debian's chromium, why a test skips. */
import { existsSync } from 'node:fs';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SHOTS = process.env.UNET_SCREENSHOTS === '1' ? (process.env.UNET_SCREENSHOT_DIR ?? 'docs') : null;
/** No sandbox (root), and nothing that would reach the network by itself. */
export const LAUNCH_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

// biome-ignore lint/suspicious/noExplicitAny: playwright-core is optional, so its types may be absent
export let pw: any = null;
/** Why the browser tests cannot run here, or false. */
export let browserSkip: string | false = false;
try {
  pw = await import('playwright-core');
} catch {
  browserSkip = 'playwright-core is not installed (npm i -D playwright-core)';
}
if (!browserSkip && !existsSync(CHROMIUM)) browserSkip = `no chromium at ${CHROMIUM} (apt-get install chromium)`;
