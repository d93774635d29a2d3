// --ignore-index and --class-weights end to end on tiny data with a void value (11, as CamVid's):
// `unet train` (narrow UNet) records both, `unet evaluate` leaves the void pixels out by itself,
// and bad values are one-line refusals naming the flag.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { before, test } from 'node:test';
import { loadCheckpoint } from '../src/model/checkpoint.js';
import { assertCleanFailure, assertNoCrashText, quickTrainArgs, runCli } from './helpers/cli.js';
import { startTs } from './helpers/dist.js';
import { rgbPattern, writePairs } from './helpers/fixtures.js';
import { tempDir } from './helpers/workdir.js';

const CLI = resolve(import.meta.dirname, 'helpers', 'tiny-cli.ts');
const S = 32;
const root = tempDir('ignore-index');
const data = join(root, 'data');
/** Classes 0, 1, 2 in vertical bands; the last 5 rows void (11). */
const maskValue = (i: number, k: number) => (Math.floor(i / S) >= S - 5 ? 11 : Math.floor(((i % S) + 8 * k) / 11) % 3);
const VOID_PER_MASK = 5 * S;
const IMAGES = 4;

let out = '';
let code: number | null = null;
before(async () => {
  const px = Array.from({ length: IMAGES }, (_, k) => rgbPattern(S, S, k + 1));
  await writePairs(data, IMAGES, { width: S, height: S, channels: 3, name: (k) => `p${k}.png` }, (i, k) => px[k][i], maskValue);
  const args = quickTrainArgs(data, root, ['-c', '3', '--ignore-index', '11', '--class-weights', 'auto', '-v', '25', '-b', '2', '--workers', '1', '--name', 'void']);
  ({ code, out } = await startTs(CLI, args, { cwd: root, timeoutMs: 180_000 }).done);
});

test('train with --ignore-index 11 --class-weights auto: weights printed and recorded as numbers, the void value recorded as no class', async () => {
  assert.equal(code, 0, out);
  const printed = /Class weights \(--class-weights auto: median-frequency balancing over the 3 training masks, clipped to \[0\.1, 10\]\): (.+)/.exec(out)?.[1];
  assert.ok(printed, out);
  const ckpt = await loadCheckpoint(join(root, 'checkpoints', 'checkpoint_epoch1.pth'));
  assert.equal(ckpt.ignoreValue, 11);
  assert.deepEqual(ckpt.maskValues, [0, 1, 2]);
  const config = JSON.parse(readFileSync(join(ckpt.runDir as string, 'config.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(config.ignoreIndex, 11);
  assert.deepEqual(config.classWeights, printed.split(', ').map(Number));
  assert.equal((config.classWeights as number[]).length, 3);
  assert.deepEqual(ckpt.config?.classWeights, config.classWeights);
});

test("evaluate applies the checkpoint's void value by itself: void pixels are in no count", async () => {
  assert.equal(code, 0, out);
  const r = await runCli(['evaluate', '-m', join(root, 'checkpoints', 'checkpoint_epoch1.pth'), '--imgs', join(data, 'imgs'), '--masks', join(data, 'masks'), '-s', '1', '--device', 'cpu', '--workers', '1', '--json'], { cwd: root });
  assert.equal(r.code, 0, r.stderr);
  assertNoCrashText(r, 'evaluate');
  const m = JSON.parse(r.stdout) as { ignoreValue: number; confusion: number[][]; images: number; perClass: { value: number; support: number }[] };
  assert.equal(m.ignoreValue, 11);
  assert.equal(m.images, IMAGES);
  assert.equal(
    m.confusion.flat().reduce((a, b) => a + b, 0),
    IMAGES * (S * S - VOID_PER_MASK),
  );
  assert.deepEqual(
    m.perClass.map((c) => c.value),
    [0, 1, 2],
  );
  assert.match(r.stderr, /pixels of mask value 11 left out \(the checkpoint's --ignore-index\)/);
});

// (A wrong --class-weights count is an OptionError before any work: test/train.ignore-index.test.ts.)
test('a value in no mask, and one that leaves a class count other than -c: one-line refusals naming the flag and the values', async () => {
  const args = (extra: string[]) => quickTrainArgs(data, join(root, 'refused'), ['--workers', '1', ...extra]);
  const [missing, count] = await Promise.all([runCli(args(['-c', '3', '--ignore-index', '7']), { cwd: root }), runCli(args(['-c', '2', '--ignore-index', '11']), { cwd: root })]);
  assertCleanFailure(missing, /--ignore-index 7: no mask holds the value 7; the masks hold \[0, 1, 2, 11\]: pass one of them/, 'missing', 1);
  assertCleanFailure(count, /--ignore-index 11 leaves 3 class value\(s\) \[0, 1, 2\] of the masks' \[0, 1, 2, 11\], but --classes is 2: use -c 3/, 'count', 1);
});
