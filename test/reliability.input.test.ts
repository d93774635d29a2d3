// Bad input through the real `unet train` command line (a subprocess, as a user runs it): every
// mistake gets a message that names the file or flag and the fix, a non-zero exit code, no stack
// trace and no native crash, and a checkpoint folder that already holds saved work is untouched.
//
// Parsing of each flag in-process is covered by train.cli.test.ts, decoding of every broken file
// kind by data.image.test.ts, pairing rules by data.dataset.test.ts; here the same mistakes go
// through the whole program. Independent cases run two at a time (each is mostly process start-up).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, test } from 'node:test';
import { zipChunks, concatChunks } from '../src/io/zip.js';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { type CliResult, assertCleanFailure, assertNoCrashText, cliArgs, quickTrainArgs, runCli, snapshotDir } from './helpers/cli.js';
import { cmykJpeg, png, rgbaPng, squareMask } from './helpers/fixtures.js';
import { demoDataDir } from './helpers/workdir.js';

// good: 2 pairs, 32x32 RGB, masks 0/255
const { root, data: good } = demoDataDir('rel-input', { count: 2, size: 32, classes: 2, seed: 1 }, 'good');
const saved = join(root, 'saved'); // a checkpoint folder with the user's saved work in it
let ckpt = ''; // a real checkpoint (bilinear, 3 channels, 2 classes, base 16 channels)
/** The runs that train (or load) use a narrow UNet: none of these mistakes depends on the width. */
const NARROW = ['--base-channels', '16'];
let savedBefore = new Map<string, string>();

before(() => mkdirSync(saved));

/** A copy of the good dataset with changes. */
async function variant(name: string, change: (imgs: string, masks: string) => void | Promise<void>): Promise<string> {
  const d = join(root, 'data', name);
  cpSync(good, d, { recursive: true });
  await change(join(d, 'imgs'), join(d, 'masks'));
  return d;
}

/**
 * `unet train` on `data` writing checkpoints into the saved folder; with --exist-ok, which replaces
 * the saved run only once training starts: a run that fails before must leave it untouched.
 */
// Runs that fail only once training has begun (an image decoded in the first batch, a checkpoint
// loaded) hold the saved folder's writer lock meanwhile: their suites run one at a time, or a
// neighbour would be refused with "in use by another training" instead of its own error.
function train(data: string, extra: string[] = [], label = 'run'): Promise<CliResult> {
  const work = join(root, 'work', label.replace(/\W+/g, '_'));
  return runCli([...quickTrainArgs(data, work, [...NARROW, ...extra]), '--checkpoint-dir', saved, '--exist-ok'], { cwd: root, timeoutMs: 120_000 });
}

test('a run that succeeds despite odd files: RGBA and CMYK images and an unpaired image with --skip-unpaired (warnings, exit 0)', async () => {
  const data = await variant('odd-ok', async (imgs, masks) => {
    writeFileSync(join(imgs, '000.png'), rgbaPng(32, 32));
    rmSync(join(imgs, '001.png'));
    writeFileSync(join(imgs, '001.jpg'), await cmykJpeg(32, 32));
    copyFileSync(join(imgs, '000.png'), join(imgs, 'lonely.png'));
    copyFileSync(join(masks, '000.png'), join(masks, 'orphan.png'));
  });
  const work = join(root, 'ok');
  const r = await runCli(quickTrainArgs(data, work, ['--skip-unpaired', ...NARROW]), { cwd: root, timeoutMs: 180_000 });
  assert.equal(r.code, 0, r.stderr);
  assertNoCrashText(r, 'odd-ok');
  assert.match(r.stderr, /warning: .*Skipped 1 of 3 images have no mask: lonely\.png/);
  assert.match(r.stderr, /warning: .*Ignored 1 of 3 masks have no image: orphan\.png/);
  assert.match(r.stderr, /000\.png: has an alpha channel; it was dropped/);
  assert.match(r.stderr, /001\.jpg: CMYK image converted to RGB/);
  ckpt = join(work, 'checkpoints', 'checkpoint_epoch1.pth');
  const c = await loadCheckpoint(ckpt);
  assert.deepEqual(c.modelArgs, { nChannels: 3, nClasses: 2, bilinear: true, depth: 4, baseChannels: 16 });
  // The user's saved work for the rest of this file: a real checkpoint in the checkpoint folder.
  copyFileSync(ckpt, join(saved, 'checkpoint_epoch1.pth'));
  copyFileSync(ckpt, join(saved, 'best_model.pth'));
  savedBefore = snapshotDir(saved);
});

describe('data folders and pairing', { concurrency: 2 }, () => {
  test('missing images folder, missing masks folder, empty images folder', async () => {
    let r = await train(good, ['--imgs', join(root, 'nope')], 'missing-imgs');
    assertCleanFailure(r, [/nope: the images folder does not exist/, /--imgs/], 'missing imgs');
    r = await train(good, ['--masks', join(root, 'nomasks')], 'missing-masks');
    assertCleanFailure(r, [/nomasks: the masks folder does not exist/, /--masks/], 'missing masks');
    const empty = join(root, 'empty');
    mkdirSync(empty);
    r = await train(good, ['--imgs', empty], 'empty-imgs');
    assertCleanFailure(r, [/empty: the images folder has no image files \(it is empty\)/, /--imgs DIR/], 'empty imgs');
  });

  test('images without masks are listed (the fix: --mask-suffix or --skip-unpaired)', async () => {
    const data = await variant('no-mask', (imgs) => {
      copyFileSync(join(imgs, '000.png'), join(imgs, 'extra1.png'));
      copyFileSync(join(imgs, '000.png'), join(imgs, 'extra2.png'));
    });
    const r = await train(data, [], 'no-mask');
    assertCleanFailure(r, [/2 of 4 images have no mask: extra1\.png, extra2\.png/, /--skip-unpaired/, /--mask-suffix/], 'no mask');
  });

  test('masks without images are listed', async () => {
    const data = await variant('no-image', (_imgs, masks) => copyFileSync(join(masks, '000.png'), join(masks, 'orphan.png')));
    const r = await train(data, [], 'no-image');
    assertCleanFailure(r, [/1 of 3 masks have no image: orphan\.png/, /--skip-unpaired/], 'no image');
  });

  test('several masks for one image', async () => {
    const data = await variant('several', (_imgs, masks) => copyFileSync(join(masks, '000.png'), join(masks, '000.gif')));
    const r = await train(data, [], 'several');
    assertCleanFailure(r, [/several masks match one image: 000: 000\.gif \+ 000\.png/, /Keep exactly one mask per image/], 'several masks');
  });
});

describe('broken files', { concurrency: 1 }, () => {
  const cases: [string, (imgs: string, masks: string) => void, RegExp[]][] = [
    ['zero-byte image', (imgs) => writeFileSync(join(imgs, '001.png'), ''), [/imgs\/001\.png: file is empty \(0 bytes\)/, /Re-create it, or remove it/]],
    [
      'truncated image',
      (imgs) => {
        const b = readFileSync(join(imgs, '001.png'));
        writeFileSync(join(imgs, '001.png'), b.subarray(0, b.length >> 1));
      },
      [/imgs\/001\.png: cannot decode PNG data/, /damaged or truncated/],
    ],
    ['a text file named .png', (imgs) => writeFileSync(join(imgs, '001.png'), 'these are my notes\n'), [/imgs\/001\.png: not an image file: it starts with text/, /Remove this file/]],
    ['zero-byte mask', (_imgs, masks) => writeFileSync(join(masks, '001.png'), ''), [/masks\/001\.png: file is empty \(0 bytes\)/]],
    [
      'truncated mask',
      (_imgs, masks) => {
        const b = readFileSync(join(masks, '000.png'));
        writeFileSync(join(masks, '000.png'), b.subarray(0, 60));
      },
      [/masks\/000\.png: /, /damaged or truncated|cannot decode/],
    ],
    [
      'a JPEG that is really random bytes',
      (imgs) => {
        rmSync(join(imgs, '001.png'));
        writeFileSync(join(imgs, '001.jpg'), Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(300, 0x5a)]));
      },
      [/imgs\/001\.jpg: /],
    ],
  ];
  for (const [name, change, patterns] of cases) {
    test(name, async () => {
      const data = await variant(name, change);
      const r = await train(data, [], name);
      assertCleanFailure(r, patterns, name);
    });
  }
});

const hasScript = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;

test('on a terminal (progress bar), an error in the middle of an epoch ends the process and restores the cursor', {
  skip: !hasScript && 'util-linux `script` (a pseudo-terminal) not found',
  timeout: 180_000,
}, async () => {
  // The bar's timer used to keep the process alive after the error was printed: it never exited.
  // A truncated image: its header passes the up-front scan, its pixels fail to decode mid-epoch.
  const data = await variant('tty', (imgs) => {
    const b = readFileSync(join(imgs, '001.png'));
    writeFileSync(join(imgs, '001.png'), b.subarray(0, b.length >> 1));
  });
  const quote = (a: string) => `'${a.replace(/'/g, "'\\''")}'`;
  const cmd = [process.execPath, ...cliArgs(quickTrainArgs(data, join(root, 'work', 'tty'), NARROW))].map(quote).join(' ');
  const child = spawn('script', ['-qec', cmd, '/dev/null'], { cwd: root, env: { ...process.env, TERM: 'xterm', UNET_THREADS: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (x: string) => (out += x));
  child.stderr.setEncoding('utf8').on('data', (x: string) => (out += x));
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((res) => child.on('close', (c, s) => res([c, s])));
  clearTimeout(timer);
  assert.equal(signal, null, `did not exit by itself (hung after the error):\n${out.slice(-1500)}`);
  assert.equal(code, 1, out.slice(-1500));
  assert.match(out, /imgs\/001\.png: cannot decode PNG data/);
  assert.match(out, /Epoch 1\/1 \[/, 'the progress bar was drawn');
  assert.ok(out.lastIndexOf('\x1b[?25h') > out.lastIndexOf('\x1b[?25l'), 'cursor shown again');
  assertNoCrashText({ code, signal, stdout: out, stderr: '', ms: 0, timedOut: false }, 'tty');
});

describe('masks that do not fit', { concurrency: 1 }, () => {
  test('mask and image sizes differ: both files named', async () => {
    const data = await variant('size', (_imgs, masks) => writeFileSync(join(masks, '001.png'), squareMask(16, 16)));
    const r = await train(data, [], 'size');
    assertCleanFailure(r, [/imgs\/001\.png is 32×32, .*masks\/001\.png is 16×16/, /Re-export the mask at the image size/], 'size');
  });

  test('more mask values than classes: the values and the -c that fits', async () => {
    const data = await variant('values', (_imgs, masks) =>
      writeFileSync(
        join(masks, '001.png'),
        png(32, 32, 1, (i) => [0, 100, 255][i % 3]),
      ),
    );
    const r = await train(data, [], 'values');
    assertCleanFailure(r, [/3 distinct values \[0, 100, 255\], but --classes is 2/, /-c 3/], 'values');
  });

  test('16-bit masks keep their values (0 and 1000 are two classes)', async () => {
    const data = await variant('mask16', (_imgs, masks) => {
      for (const id of ['000', '001'])
        writeFileSync(
          join(masks, `${id}.png`),
          png(32, 32, 1, (i) => (i % 5 === 0 ? 1000 : 0), 16),
        );
    });
    const r = await train(data, ['-c', '3'], 'mask16');
    assertCleanFailure(r, [/2 distinct values \[0, 1000\], but --classes is 3/, /-c 2/], 'mask16');
  });

  test('RGB colour masks: each colour is a class', async () => {
    const colours = [
      [0, 0, 0],
      [255, 0, 0],
      [0, 255, 0],
    ];
    const data = await variant('rgb-mask', (_imgs, masks) => {
      for (const id of ['000', '001'])
        writeFileSync(
          join(masks, `${id}.png`),
          png(32, 32, 3, (i) => colours[Math.floor(i / 3) % 3][i % 3]),
        );
    });
    const r = await train(data, [], 'rgb-mask');
    assertCleanFailure(r, [/3 distinct values \[\[0, 0, 0\], \[0, 255, 0\], \[255, 0, 0\]\], but --classes is 2/, /-c 3/], 'rgb mask');
  });

  test('a huge image is refused by the pixel limit, naming the file and --max-pixels; raising the limit lets it through', async () => {
    const data = await variant('huge', (imgs, masks) => {
      writeFileSync(
        join(imgs, '001.png'),
        png(1100, 1000, 3, (i) => i % 251),
      );
      writeFileSync(
        join(masks, '001.png'),
        png(1100, 1000, 1, (i) => (i % 7 ? 0 : 255)),
      );
    });
    let r = await train(data, ['--max-pixels', '1000000'], 'huge');
    assertCleanFailure(r, [/001\.png: image is 1100×1000 = 1100000 pixels, above the limit of 1000000/, /--max-pixels/], 'huge');
    // Over the limit no more: the run goes on to the next check (here: -c 3 for two mask values).
    r = await train(data, ['--max-pixels', '2000000', '-c', '3'], 'huge-ok');
    assertCleanFailure(r, [/but --classes is 3/], 'huge with --max-pixels');
    assert.doesNotMatch(r.stderr, /above the limit/);
  });
});

describe('flags', { concurrency: 2 }, () => {
  const cases: [string[], RegExp[]][] = [
    [
      ['-e', '0'],
      [/--epochs/, /positive integer, got '0'/],
    ],
    [
      ['-e', 'ten'],
      [/--epochs/, /positive integer, got 'ten'/],
    ],
    [
      ['-s', '0'],
      [/--scale/, /\(0, 1\]/, /'0'/],
    ],
    [
      ['-s', '1.5'],
      [/--scale/, /\(0, 1\]/, /'1\.5'/],
    ],
    [
      ['-v', '100'],
      [/--validation/, /\[0, 100\)/, /'100'/],
    ],
    [
      ['-b', '0'],
      [/--batch-size/, /positive integer, got '0'/],
    ],
    [
      ['-l', 'fast'],
      [/--learning-rate/, /'fast'/],
    ],
    [
      ['-l', '-1'],
      [/--learning-rate/, /> 0, got '-1'/],
    ],
    [
      ['--epoch', '3'],
      [/unknown option '--epoch'/, /Did you mean --epochs\?/],
    ],
    [
      ['--lerning-rate', '1e-4'],
      [/unknown option '--lerning-rate'/, /Did you mean --learning-rate\?/],
    ],
    [
      ['--device', 'gpu'],
      [/--device/, /auto, cpu, cuda/],
    ],
  ];
  for (const [flags, patterns] of cases) {
    test(`unet train ${flags.join(' ')}`, async () => {
      const r = await train(good, flags, flags.join(''));
      assertCleanFailure(r, patterns, flags.join(' '));
    });
  }

  test('--device cuda without CUDA says so and how to fix it', async () => {
    const r = await train(good, ['--device', 'cuda'], 'cuda');
    assertCleanFailure(r, [/--device cuda/, /CUDA is not available/, /--device cpu/], 'cuda');
  });
});

describe('--load', { concurrency: 1 }, () => {
  test('a missing file', async () => {
    const r = await train(good, ['--load', join(root, 'nope.pth')], 'load-missing');
    assertCleanFailure(r, [/nope\.pth does not exist/, /check the path/], 'load missing');
  });

  test('a truncated checkpoint', async () => {
    const f = join(root, 'truncated.pth');
    const b = readFileSync(ckpt);
    writeFileSync(f, b.subarray(0, Math.floor(b.length * 0.6)));
    const r = await train(good, ['--load', f], 'load-truncated');
    assertCleanFailure(r, [/cannot read .*truncated\.pth as a PyTorch checkpoint/], 'load truncated');
  });

  test('a zip file that is not a checkpoint, and a text file', async () => {
    const zip = join(root, 'photos.pth');
    writeFileSync(zip, concatChunks(zipChunks([{ name: 'photos/readme.txt', data: new TextEncoder().encode('holiday pictures') }])));
    let r = await train(good, ['--load', zip], 'load-zip');
    assertCleanFailure(r, [/photos\.pth/, /not a PyTorch checkpoint/], 'load zip');
    const txt = join(root, 'notes.pth');
    writeFileSync(txt, 'not a checkpoint at all\n');
    r = await train(good, ['--load', txt], 'load-text');
    assertCleanFailure(r, [/notes\.pth/, /not a PyTorch checkpoint/], 'load text');
  });

  test('a folder instead of a file', async () => {
    const r = await train(good, ['--load', saved], 'load-dir');
    assertCleanFailure(r, [new RegExp(`${saved.replace(/[/.]/g, '\\$&')}`), /folder|directory/i], 'load dir');
  });

  test('a checkpoint of another architecture: both sides named, and the flags that fit', async () => {
    // The data has two mask values: -c 1 (one sigmoid output) fits the data but not the checkpoint.
    let r = await train(good, ['--load', ckpt, '-c', '1', '-e', '2'], 'load-arch-classes');
    assertCleanFailure(r, [/was trained with another architecture/, /classes: checkpoint 2, -c\/--classes 1/, /-c 2 --bilinear/], 'arch classes');
    const args = quickTrainArgs(good, join(root, 'work', 'arch'), [...NARROW, '--load', ckpt, '-e', '2', '--checkpoint-dir', saved, '--exist-ok']).filter((a) => a !== '--bilinear');
    r = await runCli(args, { cwd: root });
    assertCleanFailure(r, [/upsampling: checkpoint bilinear, flags no --bilinear/], 'arch bilinear');
  });
});

describe('output folders', () => {
  test('a file in the way of --checkpoint-dir is refused before training, naming the path', async () => {
    const blocker = join(root, 'blocker');
    writeFileSync(blocker, 'a file, not a folder');
    const args = [...quickTrainArgs(good, join(root, 'work', 'blocked')), '--checkpoint-dir', join(blocker, 'checkpoints')];
    const r = await runCli(args, { cwd: root });
    assertCleanFailure(r, [/blocker/, /--checkpoint-dir/], 'blocked');
    assert.doesNotMatch(r.stdout, /Epoch 1\/1:/, 'refused before any training');
  });
});

test('nothing in the checkpoint folder was changed by any of the failed runs', () => {
  assert.ok(savedBefore.size >= 2);
  assert.deepEqual(snapshotDir(saved), savedBefore);
  assert.deepEqual(
    readdirSync(saved).filter((f) => f.endsWith('.tmp')),
    [],
  );
  assert.ok(existsSync(join(saved, 'best_model.pth')));
});
