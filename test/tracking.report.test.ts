// report.html: self-contained (inline uPlot, code, data, images), no network references.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { maskToImage, Tracker, writeReport } from '../src/tracking/index.js';
import { tempDir } from './helpers/workdir.js';

const tmp = tempDir('report');

/** The page's JSON boot data. */
// biome-ignore lint/suspicious/noExplicitAny: the tests read the report's embedded JSON field by field
function bootData(html: string): any {
  const m = /window\.__UNET_BOOT__ = (.*?);<\/script>/s.exec(html);
  assert.ok(m, 'boot data present');
  return JSON.parse(m[1] as string);
}

describe('writeReport', () => {
  test('self-contained page with curves, final metrics, histograms and images', async () => {
    const t = await Tracker.create({ logdir: tmp, name: 'rep', config: { epochs: 3, note: '</script><script>alert(1)</script>' } });
    for (let s = 1; s <= 30; s++) t.scalars({ 'train loss': 1 / s, 'learning rate': 1e-3 * (1 - s / 40) }, s);
    for (const s of [10, 20, 30]) {
      t.scalar('validation Dice', s / 40, s);
      t.histogram(
        'Weights/inc.0.weight',
        Float32Array.from({ length: 100 }, (_, i) => Math.sin(i + s)),
        s,
      );
      const mask = new Uint8Array(8 * 8).map((_, i) => (i % 8 < s / 5 ? 1 : 0));
      t.image('images/0', { data: new Uint8Array(64).fill(90), width: 8, height: 8, channels: 1 }, s);
      t.image('true/0', maskToImage(mask, 8, 8), s);
      t.image('pred/0', maskToImage(mask, 8, 8), s);
    }
    t.record({ type: 'final', perClassDice: [0.97, 0.81], perClassIoU: [0.94, 0.68], classNames: ['background', 'membrane'] });
    await t.close();

    const path = await writeReport(t.runDir);
    assert.equal(path, join(t.runDir, 'report.html'));
    assert.ok(existsSync(path));
    const html = readFileSync(path, 'utf8');

    // inline assets only
    assert.ok(html.includes('var uPlot='), 'uPlot is inlined');
    assert.ok(html.includes('.uplot'), 'uPlot CSS is inlined');
    assert.ok(html.includes('__UNET_BOOT__'), 'app code is inlined');
    assert.ok(!/<script[^>]+src=/i.test(html), 'no external scripts');
    assert.ok(!/<link\b/i.test(html), 'no external stylesheets');
    // no network references, except the URL in uPlot's license banner comment
    const withoutBanner = html.replace(/\/\*![^*]*\*\//g, '');
    assert.ok(!/https?:/i.test(withoutBanner), `found: ${/.{40}https?:.{40}/i.exec(withoutBanner)?.[0]}`);
    assert.ok(!/\/\/[a-z0-9.-]+\.[a-z]{2,}\//i.test(withoutBanner.replace(/data:image\/png;base64,[A-Za-z0-9+/=]+/g, '')));
    // config text cannot break out of the data script
    assert.equal((html.match(/<script>alert/g) ?? []).length, 0);

    const boot = bootData(html);
    assert.equal(boot.mode, 'static');
    const run = boot.runs[0];
    assert.equal(run.config.note, '</script><script>alert(1)</script>');
    // 30 training records + 3 validation records
    assert.equal(run.metrics.filter((r: { type: string }) => r.type === 'scalars').length, 33);
    const final = run.metrics.find((r: { type: string }) => r.type === 'final');
    assert.deepEqual(final.perClassDice, [0.97, 0.81]);
    assert.deepEqual(final.perClassIoU, [0.94, 0.68]);
    assert.equal(run.histograms.length, 3);
    // images of the first and last validation, as data: URIs
    assert.deepEqual([...new Set(run.media.map((m: { step: number }) => m.step))], [10, 30]);
    assert.equal(run.media.length, 6);
    for (const m of run.media) assert.match(m.src, /^data:image\/png;base64,iVBORw0KGgo/);
  });

  test('a run with only scalars (or nothing) still gives a page', async () => {
    const t = await Tracker.create({ logdir: tmp, name: 'bare', config: {} });
    await t.close();
    const html = readFileSync(await writeReport(t.runDir), 'utf8');
    const boot = bootData(html);
    assert.deepEqual(boot.runs[0].media, []);
    assert.equal(boot.runs[0].info.status, 'finished');
  });
});
