// Issue 21's predict/evaluate defects, each with the case that failed before:
//  - the scale: predict and evaluate default to the checkpoint's training scale (0.5 only for files
//    that record none), say which scale and where it came from, and warn when -s differs;
//  - training's pairing skips the files `unet predict` wrote into the images folder (with a note);
//  - usage errors exit 64 (no -i), recursive globs work, an unmatched glob is a clear error;
//  - dangling links and folders named like images are skipped with a warning (predict and pairing);
//  - --max-pixels also holds with --tile, staging folders of dead processes are removed, and
//    Ctrl-C during a region-by-region prediction removes the staged copy and the temp output;
//  - exit 2 only when something was written (1 when every input failed).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { before, describe, test } from 'node:test';
import sharp from 'sharp';
import { type EvaluateConfig, type PredictConfig, defaults, evaluateOptions, predictOptions } from '../src/config/options.js';
import { listPairs } from '../src/data/index.js';
import { STAGING_PREFIX, openScaledRegions } from '../src/data/image/regions.js';
import { UNet } from '../src/model/index.js';
import { saveCheckpoint } from '../src/model/checkpoint.js';
import { REFERENCE_SCALE, chooseScale } from '../src/model/scale.js';
import { expandInputs, runEvaluate, runPredict } from '../src/predict/index.js';
import { buildProgram } from '../src/cli/program.js';
import { runCli, spawnCli } from './helpers/cli.js';
import { tempDir } from './helpers/workdir.js';

const dir = tempDir('first-contact');

async function greyPng(file: string, w: number, h: number, value?: number): Promise<string> {
  const px = new Uint8Array(w * h);
  for (let i = 0; i < px.length; i++) px[i] = value ?? (i * 7 + (i % w) * 3) & 255;
  await sharp(px, { raw: { width: w, height: h, channels: 1 } })
    .toColourspace('b-w')
    .png()
    .toFile(file);
  return file;
}

/** A narrow (widths / 16) 1-channel 2-class UNet saved with `config` (e.g. { scale: 1 }) or none; predict reads the width from its first layer. */
async function checkpoint(name: string, config: Record<string, unknown>): Promise<string> {
  const file = join(dir, name);
  const m = new UNet({ nChannels: 1, nClasses: 2, bilinear: true }, 16);
  try {
    await saveCheckpoint(file, { model: m.stateDict(), epoch: 1, globalStep: 1, loss: 0, valScore: 0, maskValues: [0, 255], modelArgs: m.args, config });
  } finally {
    m.dispose();
  }
  return file;
}

/** `<name>-imgs/` and `<name>-masks/` holding the pairs `<id>.png` (size x size; masks all `mask`). */
async function pairFolders(name: string, ids: readonly string[], size: number, mask: number): Promise<{ imgs: string; masks: string }> {
  const imgs = join(dir, `${name}-imgs`);
  const masks = join(dir, `${name}-masks`);
  mkdirSync(imgs);
  mkdirSync(masks);
  for (const id of ids) {
    await greyPng(join(imgs, `${id}.png`), size, size);
    await greyPng(join(masks, `${id}.png`), size, size, mask);
  }
  return { imgs, masks };
}

const pcfg = (over: Partial<PredictConfig>): PredictConfig => ({ ...defaults(predictOptions), device: 'cpu', workers: 1, ...over });
async function predict(over: Partial<PredictConfig>) {
  const out: string[] = [];
  const err: string[] = [];
  const r = await runPredict(pcfg(over), { log: (l) => out.push(l), warn: (l) => err.push(l), progress: false });
  return { ...r, out: out.join('\n'), err: err.join('\n') };
}

let atScale1 = ''; // records config.scale = 1
let unrecorded = ''; // records no scale (as the reference's files)

before(async () => {
  atScale1 = await checkpoint('scale1.pth', { scale: 1 });
  unrecorded = await checkpoint('none.pth', {});
});

describe('the scale', () => {
  test('chooseScale: -s, else the training scale, else 0.5; a warning only when -s differs from it', () => {
    assert.deepEqual(chooseScale(1, undefined), { scale: 1, source: "the checkpoint's training scale", warning: null });
    assert.equal(chooseScale(null, undefined).scale, REFERENCE_SCALE);
    assert.match(chooseScale(null, undefined).source, /does not record its training scale/);
    assert.equal(chooseScale(1, 1).warning, null);
    assert.match(chooseScale(1, 0.5).warning ?? '', /-s 0\.5 differs from the scale the model was trained at \(1\)/);
    assert.equal(chooseScale(null, 0.5).warning, null);
  });

  test("predict uses the checkpoint's training scale by default and says so; -s that differs warns", async () => {
    // 24x24: at 0.5 it is 12x12, below the UNet's 16x16, so only scale 1 can predict it.
    const img = await greyPng(join(dir, 'small.png'), 24, 24);
    const r = await predict({ model: atScale1, input: [img], outputDir: join(dir, 'scale-out') });
    assert.equal(r.exitCode, 0, r.err);
    assert.match(r.out, /scale 1 \(the checkpoint's training scale\)/);
    assert.doesNotMatch(r.err, /differs/);
    const given = await predict({ model: atScale1, input: [img], outputDir: join(dir, 'scale-out'), scale: 0.5 });
    assert.match(given.err, /warning: -s 0\.5 differs from the scale the model was trained at \(1\)/);
    assert.match(given.out, /scale 0\.5 \(-s\)/);
    assert.equal(given.exitCode, 1, 'at -s 0.5 the image is too small, as it was before by default');
    const ref = await predict({ model: unrecorded, input: [img], outputDir: join(dir, 'scale-out') });
    assert.match(ref.out, /scale 0\.5 \(the reference's default; the checkpoint does not record its training scale/);
    assert.match(ref.failed[0]?.reason ?? '', /at scale 0\.5 that is 12x12/);
  });

  test("evaluate uses the checkpoint's training scale by default, reports it, and warns on a differing -s", async () => {
    const { imgs, masks } = await pairFolders('ev', ['a'], 32, 255);
    const ecfg = (over: Partial<EvaluateConfig>): EvaluateConfig => ({ ...defaults(evaluateOptions), device: 'cpu', workers: 1, imgs, masks, ...over });
    const warns: string[] = [];
    const r = await runEvaluate(ecfg({ model: atScale1 }), { warn: (l) => warns.push(l) });
    assert.equal(r.scale, 1);
    assert.equal(r.scaleSource, "the checkpoint's training scale");
    assert.equal(
      r.confusion.flat().reduce((a, b) => a + b, 0),
      32 * 32,
      'scored at full size',
    );
    assert.equal(warns.length, 0, warns.join('\n'));
    const r2 = await runEvaluate(ecfg({ model: atScale1, scale: 0.5 }), { warn: (l) => warns.push(l) });
    assert.equal(r2.scale, 0.5);
    assert.match(warns.join('\n'), /-s 0\.5 differs from the scale the model was trained at \(1\)/);
    assert.equal((await runEvaluate(ecfg({ model: unrecorded }), { warn: () => {} })).scale, 0.5);
  });

  test('--help says what the unset -s means', () => {
    for (const cmd of ['predict', 'evaluate']) {
      const c = buildProgram().commands.find((x) => x.name() === cmd);
      assert.match(c?.helpInformation() ?? '', /default: the checkpoint's training\s+scale, else 0\.5/, cmd);
    }
  });
});

describe('inputs and pairing', () => {
  test("training's pairing skips the files predict wrote next to the images, with one note", async () => {
    const { imgs, masks } = await pairFolders('pair', ['a', 'b'], 16, 0);
    // What `unet predict -i imgs -v --probs` leaves there.
    for (const id of ['a', 'b']) for (const s of ['_OUT', '_OVERLAY', '_PROB1']) await greyPng(join(imgs, `${id}${s}.png`), 16, 16, 0);
    const r = await listPairs({ imgsDir: imgs, masksDir: masks });
    assert.deepEqual(
      r.pairs.map((p) => p.id),
      ['a', 'b'],
    );
    assert.equal(r.warnings.length, 1, r.warnings.join('\n'));
    assert.match(r.warnings[0], /Skipped 6 file\(s\) in .*pair-imgs that `unet predict` wrote next to their images/);
  });

  test('dangling links and folders named like images: skipped with a warning by predict and by the pairing', async () => {
    const { imgs, masks } = await pairFolders('odd', ['a'], 16, 0);
    symlinkSync(join(dir, 'gone.png'), join(imgs, 'broken.png'));
    mkdirSync(join(imgs, 'folder.png'));
    const e = expandInputs([imgs]);
    assert.deepEqual(
      e.entries.map((x) => x.input),
      [join(imgs, 'a.png')],
    );
    assert.match(e.warnings.join('\n'), /skipped 1 link\(s\) that point to nothing: broken\.png/);
    assert.match(e.warnings.join('\n'), /skipped 1 folder\(s\) named like images: folder\.png/);
    const r = await listPairs({ imgsDir: imgs, masksDir: masks });
    assert.equal(r.pairs.length, 1);
    assert.match(r.warnings.join('\n'), /broken\.png/);
    assert.match(r.warnings.join('\n'), /folder\.png/);
  });

  test('recursive globs (tinyglobby), relative paths kept relative; an unmatched glob says so', async () => {
    const root = join(dir, 'globs');
    mkdirSync(join(root, 'x', 'y'), { recursive: true });
    await greyPng(join(root, 'x', 'a.png'), 16, 16);
    await greyPng(join(root, 'x', 'y', 'a.png'), 16, 16);
    await greyPng(join(root, 'x', 'y', 'a_OUT.png'), 16, 16);
    const abs = expandInputs([join(root, '**', 'a*.png')]);
    assert.deepEqual(
      abs.entries.map((x) => x.input),
      [join(root, 'x', 'a.png'), join(root, 'x', 'y', 'a.png')],
    );
    assert.equal(abs.skippedOutputs, 1);
    const rel = relative(process.cwd(), root);
    assert.deepEqual(
      expandInputs([`${rel}/**/a.png`]).entries.map((x) => x.input),
      [`${rel}/x/a.png`, `${rel}/x/y/a.png`],
    );
    const none = expandInputs([join(root, '**', 'none.png')]).entries;
    assert.match(none[0].error ?? '', /no image files match this pattern/);
  });

  test('CLI: predict without -i is a usage error (64)', async () => {
    const r = await runCli(['predict', '-m', atScale1]);
    assert.equal(r.code, 64, r.stderr);
    assert.match(r.stderr, /no input images: pass files, folders or globs with -i/);
  });
});

describe('pixel limit, staging files, exit codes', () => {
  test('--max-pixels holds with --tile (auto and a size); nothing written: exit 1; 0 lifts it', async () => {
    const img = await greyPng(join(dir, 'big.png'), 64, 64);
    for (const tile of ['auto', 32] as const) {
      const r = await predict({ model: atScale1, input: [img], tile, maxPixels: 1000, outputDir: join(dir, 'mp-out') });
      assert.equal(r.exitCode, 1, `--tile ${tile}: only a refused input is no partial success`);
      assert.match(r.failed[0].reason, /64×64 = 4096 pixels, above the limit of 1000/);
      assert.ok(!existsSync(join(dir, 'mp-out', 'big_OUT.png')));
    }
    const ok = await predict({ model: atScale1, input: [img], tile: 32, maxPixels: 0, outputDir: join(dir, 'mp-out') });
    assert.equal(ok.exitCode, 0, ok.err);
    assert.ok(existsSync(join(dir, 'mp-out', 'big_OUT.png')));
    assert.equal(pcfg({}).maxPixels, 178_956_970, "the default is training's and the decoder's limit");
  });

  test('exit 2 only when some outputs were written and some inputs failed', async () => {
    const d = join(dir, 'partial');
    mkdirSync(d);
    await greyPng(join(d, 'ok.png'), 32, 32);
    writeFileSync(join(d, 'bad.png'), 'not a png');
    const r = await predict({ model: atScale1, input: [d] });
    assert.equal(r.exitCode, 2);
    const none = await predict({ model: atScale1, input: [join(d, 'bad.png')] });
    assert.equal(none.exitCode, 1);
  });

  test('staging folders of dead processes are removed when the next one stages', async () => {
    const tmp = join(dir, 'stage-root');
    mkdirSync(tmp);
    const dead = spawnSync(process.execPath, ['-e', '0']).pid as number;
    mkdirSync(join(tmp, `${STAGING_PREFIX}${dead}-abc123`));
    writeFileSync(join(tmp, `${STAGING_PREFIX}${dead}-abc123`, 'staged.tif'), 'x');
    mkdirSync(join(tmp, `${STAGING_PREFIX}${process.pid}-live12`)); // ours: alive, kept
    const src = await openScaledRegions(await greyPng(join(dir, 'stage.png'), 32, 32), 1, tmp);
    try {
      const names = readdirSync(tmp);
      assert.ok(!names.includes(`${STAGING_PREFIX}${dead}-abc123`), names.join(', '));
      assert.ok(names.includes(`${STAGING_PREFIX}${process.pid}-live12`));
      assert.equal(names.length, 2, 'the new staging folder and the live one');
    } finally {
      src.close();
    }
    assert.equal(readdirSync(tmp).length, 1, 'close() removes the staging folder');
  });

  test('Ctrl-C during a region-by-region prediction removes the staged copy and the temp output (exit 130)', { timeout: 120_000 }, async () => {
    const tmp = join(dir, 'sigint-tmp');
    const out = join(dir, 'sigint-out');
    mkdirSync(tmp);
    const img = await greyPng(join(dir, 'huge.png'), 480, 480);
    const run = spawnCli(['predict', '-m', atScale1, '-i', img, '--output-dir', out, '--tile', '16', '--overlap', '0.5', '--max-memory', '1', '--device', 'cpu'], { env: { TMPDIR: tmp } });
    const t0 = Date.now();
    // Wait until it predicts region by region: the staged copy is in TMPDIR, the mask's temp file in the output folder.
    while (!(readdirSync(tmp).some((n) => n.startsWith(STAGING_PREFIX)) && existsSync(out) && readdirSync(out).some((n) => n.endsWith('.tmp')))) {
      assert.ok(Date.now() - t0 < 60_000, `no staging seen:\n${run.err()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    run.child.kill('SIGINT');
    const r = await run.done;
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, /staged as an uncompressed copy of about \d+ MiB/);
    assert.match(r.stderr, /interrupted \(SIGINT\): removed 2 temporary file\(s\)/);
    assert.deepEqual(
      readdirSync(tmp).filter((n) => n.startsWith(STAGING_PREFIX)),
      [],
      'the staged copy is gone',
    );
    assert.deepEqual(readdirSync(out), [], 'the temp output is gone');
  });
});
