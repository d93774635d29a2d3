// The dashboard and the report in a real browser: Debian's chromium driven by
// playwright-core. While a fake "training" logs every 200 ms, the charts must
// grow; a second run must show up on the same charts; report.html must render
// offline. Skips (with the reason) when playwright-core or /usr/bin/chromium is
// missing. UNET_SCREENSHOTS=1 saves docs/dashboard.png and docs/report.png
// (UNET_SCREENSHOT_DIR picks another folder).
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { maskToImage, startDashboard, Tracker, writeReport } from '../src/tracking/index.js';
import { CHROMIUM, LAUNCH_ARGS, SHOTS, browserSkip, pw } from './helpers/browser.js';
import { tempDir } from './helpers/workdir.js';

const skip = browserSkip;

const tmp = tempDir('browser');

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Logs like a training loop: a step every `everyMs`, validation every 5 steps. */
function fakeTraining(t: Tracker, everyMs: number, lossScale = 1): { stop: () => Promise<void>; step: () => number } {
  let step = 0;
  let stopped = false;
  const done = (async () => {
    while (!stopped) {
      step++;
      t.scalars({ 'train loss': (lossScale * 1) / Math.sqrt(step) + 0.05 * Math.random(), 'learning rate': 1e-3 * 0.98 ** step, epoch: 1 + Math.floor(step / 20), 'img/s': 40 + 5 * Math.random() }, step);
      if (step % 5 === 0) {
        t.scalar('validation Dice', 1 - 1 / (1 + step / 10), step);
        t.histogram(
          'Weights/inc.double_conv.0.weight',
          Float32Array.from({ length: 2000 }, () => (Math.random() - 0.5) * (1 + step / 50)),
          step,
        );
        t.histogram(
          'Gradients/inc.double_conv.0.weight',
          Float32Array.from({ length: 2000 }, () => (Math.random() - 0.5) * 1e-3),
          step,
        );
        const w = 64;
        const h = 48;
        const img = new Uint8Array(w * h).map((_, i) => (((i % w) * 4) ^ (Math.floor(i / w) * 5)) & 255);
        const truth = new Uint8Array(w * h).map((_, i) => (((i % w) - 32) ** 2 + (Math.floor(i / w) - 24) ** 2 < 300 ? 1 : 0));
        const pred = new Uint8Array(w * h).map((_, i) => (((i % w) - 32 - 3 * Math.sin(step)) ** 2 + (Math.floor(i / w) - 24) ** 2 < 300 - 200 / step ? 1 : 0));
        t.image('images/0', { data: img, width: w, height: h, channels: 1 }, step);
        t.image('masks/true/0', maskToImage(truth, w, h), step);
        t.image('masks/pred/0', maskToImage(pred, w, h), step);
      }
      await sleep(everyMs);
    }
  })();
  return {
    stop: async () => {
      stopped = true;
      await done;
    },
    step: () => step,
  };
}

describe('dashboard and report in chromium', { skip }, () => {
  test('live curves grow, runs compare, report renders offline', { timeout: 90_000 }, async () => {
    const logdir = join(tmp, 'runs');
    const runA = await Tracker.create({ logdir, name: 'baseline', config: { lr: 1e-3, epochs: 5 } });
    const trainA = fakeTraining(runA, 200);
    const dash = await startDashboard({ logdir, port: 0 });
    const browser = await pw.chromium.launch({ executablePath: CHROMIUM, headless: true, args: LAUNCH_ARGS });
    const errors: string[] = [];
    try {
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      page.on('console', (m: { type(): string; text(): string }) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      page.on('pageerror', (e: Error) => errors.push(e.message));
      await page.goto(`${dash.url}?poll=500`);

      const points = async (tag: string): Promise<number> => Number((await page.locator(`.chart[data-tag="${tag}"]`).getAttribute('data-points', { timeout: 15_000 })) ?? 0);
      await page.waitForSelector('.chart[data-tag="train loss"] canvas', { timeout: 15_000 });
      const first = await points('train loss');
      assert.ok(first >= 1);
      // more points appear while training runs, without reloading
      await page.waitForFunction((n: number) => Number(document.querySelector('.chart[data-tag="train loss"]')?.getAttribute('data-points')) >= n + 5, first, { timeout: 15_000 });
      for (const tag of ['validation Dice', 'learning rate', 'img/s', 'epoch']) {
        await page.waitForSelector(`.chart[data-tag="${tag}"] canvas`, { timeout: 15_000 });
      }

      // a second run shows up and is drawn on the same charts
      const runB = await Tracker.create({ logdir, name: 'higher-lr', config: { lr: 3e-3, epochs: 5 } });
      const trainB = fakeTraining(runB, 200, 1.5);
      await page.waitForFunction(() => document.querySelectorAll('nav#runs .run').length === 2, null, { timeout: 15_000 });
      await page.waitForFunction(() => document.querySelectorAll('.chart[data-tag="train loss"] .u-legend .u-series').length === 3, null, { timeout: 15_000 });
      // focus the first run again: its images and histograms are shown
      await page.locator('nav#runs .run', { hasText: 'baseline' }).locator('.rname').click();
      await page.waitForFunction(
        () => {
          const imgs = [...document.querySelectorAll('#images img')] as HTMLImageElement[];
          return imgs.length >= 3 && imgs.every((i) => i.complete && i.naturalWidth > 0);
        },
        null,
        { timeout: 15_000 },
      );
      await page.waitForFunction(() => (document.getElementById('hist') as HTMLCanvasElement).height > 50, null, { timeout: 15_000 });
      assert.ok(
        (await page.locator('#hist-ctl select option').allTextContents()).some((t: string) => t.startsWith('Gradients/')),
        'gradient histograms are listed',
      );
      await sleep(1200); // let a few more polls land before the picture
      if (SHOTS) {
        mkdirSync(SHOTS, { recursive: true });
        await page.screenshot({ path: join(SHOTS, 'dashboard.png'), fullPage: true });
      }
      await trainB.stop();
      await runB.close('interrupted');
      // its badge says how it ended (a Ctrl-C), not "finished"
      await page.waitForFunction(() => [...document.querySelectorAll('nav#runs .run')].some((r) => r.textContent?.includes('higher-lr') && r.querySelector('.badge')?.textContent === 'interrupted'), null, { timeout: 15_000 });
      await trainA.stop();
      // as the training loop does: per-class metrics (and --class-names) in epoch records, then a final record without them
      runA.record({ type: 'epoch', epoch: 1, step: trainA.step(), perClassDice: [0.98, 0.83], perClassIoU: [0.96, 0.71], classNames: ['background', 'membrane'] });
      runA.record({ type: 'final', bestScore: 0.83, bestEpoch: 1 });
      await runA.close();
      assert.deepEqual(errors, [], 'no console errors on the dashboard');

      // the report, from disk, with the network unused
      const report = await writeReport(runA.runDir);
      const rp = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      const reportErrors: string[] = [];
      const requests: string[] = [];
      rp.on('console', (m: { type(): string; text(): string }) => {
        if (m.type() === 'error') reportErrors.push(m.text());
      });
      rp.on('pageerror', (e: Error) => reportErrors.push(e.message));
      rp.on('request', (r: { url(): string }) => requests.push(r.url()));
      await rp.goto(pathToFileURL(report).href);
      await rp.waitForSelector('.chart[data-tag="train loss"] canvas', { timeout: 15_000 });
      assert.ok((await rp.locator('.chart canvas').count()) >= 5);
      assert.ok(Number(await rp.locator('.chart[data-tag="train loss"]').getAttribute('data-points')) > 10);
      const perClass = await rp.locator('table[data-role="per-class"]').innerText();
      assert.match(perClass, /membrane/);
      assert.match(perClass, /0\.83/);
      assert.match(await rp.locator('#final').innerText(), /bestScore/);
      await rp.waitForFunction(() => {
        const imgs = [...document.querySelectorAll('#images img')] as HTMLImageElement[];
        return imgs.length >= 3 && imgs.every((i) => i.complete && i.naturalWidth > 0);
      });
      assert.deepEqual(reportErrors, [], 'no console errors in the report');
      assert.deepEqual(
        requests.filter((u) => !u.startsWith('file:') && !u.startsWith('data:')),
        [],
        'the report loads nothing from the network',
      );
      if (SHOTS) await rp.screenshot({ path: join(SHOTS, 'report.png'), fullPage: true });

      // the same report through the dashboard (served with a CSP that allows only its inline code)
      await rp.goto(`${dash.url}files/${basename(runA.runDir)}/report.html`);
      await rp.waitForSelector('.chart[data-tag="validation Dice"] canvas', { timeout: 15_000 });
      assert.deepEqual(reportErrors, [], 'no console errors (CSP included) for the served report');
    } finally {
      await browser.close();
      await dash.close();
    }
  });
});
