// Data problems that used to surface mid-run, through the real command line: images too small for
// the UNet after -s, and a folder mixing greyscale and colour images. `unet train` refuses before
// the first step (nothing written), or converts with --channels; `unet predict` and `unet
// evaluate` name the small file, skip it and exit with 2. The rules themselves are unit-tested
// in data.dataset.test.ts.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { makeDemoDataset } from '../src/data/index.js';
import { assertCleanFailure, assertNoCrashText, quickTrainArgs, runCli } from './helpers/cli.js';
import { png } from './helpers/fixtures.js';
import { demoDataDir } from './helpers/workdir.js';

// good: 2 pairs, 32×32 RGB, masks 0/255
const { root, data: good } = demoDataDir('data-upfront', { count: 2, size: 32, classes: 2, seed: 3 }, 'good');

const files = (dir: string) => (existsSync(dir) ? readdirSync(dir, { recursive: true }) : []);

describe('unet train refuses before training, or converts', () => {
  let checkpoint = '';

  test('images below 16×16 after -s: one message naming the image, the minimum and the -s that works; nothing written', async () => {
    const data = join(root, 'tiny');
    await makeDemoDataset(data, { count: 2, size: 20, classes: 2, seed: 4 });
    const work = join(root, 'work-tiny');
    const r = await runCli([...quickTrainArgs(data, work), '-s', '0.5'], { cwd: root });
    assertCleanFailure(r, [/imgs\/00[01]\.png: image is 20×20, 10×10 at scale 0\.5, but the UNet needs at least 16×16 pixels/, /-s\/--scale 0\.8 or more/], 'tiny');
    assert.doesNotMatch(r.stdout + r.stderr, /Epoch 1|Output size is too small/);
    assert.deepEqual(files(join(work, 'checkpoints')), [], 'no checkpoint written');
  });

  test('greyscale and colour images mixed without --channels: both kinds named, --channels advised', async () => {
    const data = join(root, 'mixed');
    cpSync(good, data, { recursive: true });
    writeFileSync(
      join(data, 'imgs', '000.png'),
      png(32, 32, 1, (i) => (i * 7) % 256),
    );
    const r = await runCli(quickTrainArgs(data, join(root, 'work-mixed')), { cwd: root });
    assertCleanFailure(r, [/mix greyscale and colour: 1 greyscale \(.*imgs\/000\.png\) and 1 colour \(.*imgs\/001\.png\)/, /--channels 1 .*--channels 3/], 'mixed');
    assert.doesNotMatch(r.stdout, /Epoch 1/);
  });

  test('the same folder with --channels 3 trains, with one warning saying how many images were converted', async () => {
    const work = join(root, 'work-mixed3');
    const r = await runCli([...quickTrainArgs(join(root, 'mixed'), work, ['--base-channels', '16']), '--channels', '3'], { cwd: root, timeoutMs: 300_000 });
    assert.equal(r.code, 0, r.stderr);
    assertNoCrashText(r, 'mixed --channels 3');
    const warnings = r.stderr.split('\n').filter((l) => /were converted/.test(l));
    assert.equal(warnings.length, 1, r.stderr);
    assert.match(warnings[0], /1 of 2 images are greyscale and were converted to RGB \(--channels 3; grey copied to R, G and B\): .*imgs\/000\.png/);
    checkpoint = join(work, 'checkpoints', 'checkpoint_epoch1.pth');
    assert.ok(existsSync(checkpoint));
  });

  describe('predict and evaluate name a too-small image, skip it and exit with 2', () => {
    let data = '';
    before(() => {
      data = join(root, 'eval');
      cpSync(good, data, { recursive: true });
      writeFileSync(
        join(data, 'imgs', '001.png'),
        png(40, 20, 3, (i) => (i * 5) % 256),
      );
      writeFileSync(
        join(data, 'masks', '001.png'),
        png(40, 20, 1, (i) => (i % 40 < 20 ? 0 : 255)),
      );
    });

    test('unet predict', async () => {
      assert.ok(checkpoint, 'needs the checkpoint of the --channels 3 run');
      const out = join(root, 'pred');
      mkdirSync(out);
      const r = await runCli(['predict', '-m', checkpoint, '-i', join(data, 'imgs'), '--output-dir', out, '-s', '0.5', '--device', 'cpu'], { cwd: root });
      assertCleanFailure(r, [/imgs\/001\.png.*image is 40x20; at scale 0\.5 that is 20x10, but the UNet needs at least 16x16/, /-s\/--scale 0\.8 or more/], 'predict', 2);
      assert.deepEqual(files(out), ['000_OUT.png'], 'the other image is predicted');
    });

    test('unet evaluate', async () => {
      const r = await runCli(['evaluate', '-m', checkpoint, '--imgs', join(data, 'imgs'), '--masks', join(data, 'masks'), '-s', '0.5', '--device', 'cpu'], { cwd: root });
      assertCleanFailure(r, [/imgs\/001\.png: image is 40x20; at scale 0\.5 that is 20x10, but the UNet needs at least 16x16/, /-s\/--scale 0\.8 or more/], 'evaluate', 2);
      assert.match(r.stdout, /1 pair\(s\) failed and were skipped/);
    });
  });
});
