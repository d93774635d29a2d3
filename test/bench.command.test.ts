// `unet bench`: the JSON lines it prints for the training step, inference, the data loader, and
// the PyTorch/PIL side when asked. Speed itself is measured by running it, not here.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { benchData } from '../src/bench/data.js';
import { makeJpegDataset } from '../src/data/index.js';
import * as E from '../src/engine/index.js';
import { assertCleanFailure, runCli } from './helpers/cli.js';
import { hasTorch, PYTHON } from './helpers/python.js';
import { REFERENCE_BENCH as REF } from './helpers/reference.js';
import { tempDir } from './helpers/workdir.js';

const dir = tempDir('bench');

const hasPil = () => spawnSync(PYTHON, ['-c', 'import PIL, numpy'], { stdio: 'ignore' }).status === 0;
const jsonLines = (s: string) =>
  s
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('bench --data', () => {
  test('a decode pass without the cache, then epoch 1 decodes every pair, epoch 2 none (the cache serves it); PIL side and ratio when asked', async (t) => {
    const data = join(dir, 'carvana');
    await makeJpegDataset(data, { count: 3, width: 240, height: 160 });
    const pil = hasPil();
    if (!pil) t.diagnostic('PIL/numpy missing for /usr/bin/python3: comparing our side only');
    const lines = await benchData({ dir: data, count: 3, scale: 0.5, epochs: 2, python: pil ? PYTHON : null });
    const [decode, e1, e2] = lines;
    assert.equal(decode.pass, 'decode');
    assert.equal(decode.cache, false);
    assert.equal(decode.samples, 3);
    assert.ok((decode.cpu_ms_per_sample as number) > 0);
    assert.equal(e1.epoch, 1);
    assert.equal(e1.cache, true);
    assert.equal(e1.samples, 3);
    assert.equal(e1.decoded, 3);
    assert.equal(e2.epoch, 2);
    assert.equal(e2.decoded, 0);
    assert.ok((e1.cpu_ms_per_sample as number) > 0);
    if (pil) {
      assert.equal(lines[3].impl, 'PIL');
      assert.equal(lines[3].samples, 3);
      const ratio = lines[4].throughput_per_core_ours_over_pil as number;
      // The ratio is taken against the decode pass (PIL's loop fills no cache either).
      assert.equal(ratio, Math.round(((lines[3].cpu_ms_per_sample as number) / (decode.cpu_ms_per_sample as number)) * 100) / 100);
    } else assert.equal(lines.length, 3);
  });

  test('bad --count / --scale / DIR are refused, naming the flag or folder', async () => {
    // Bad values are usage errors (64), worded as for every other command's table.
    assertCleanFailure(await runCli(['bench', '--data', '--count', '0']), /--count <n>' argument '0' is invalid\. expects a positive integer/, '--count', 64);
    assertCleanFailure(await runCli(['bench', '--data', dir, '--scale', '2']), /--scale <x>' argument '2' is invalid\. must be in \(0, 1\]/, '--scale', 64);
    assertCleanFailure(await runCli(['bench', '--data', join(dir, 'none')]), [/none\/imgs does not exist/, /DIR\/imgs and DIR\/masks/]);
  });
});

describe('bench (training step, inference)', () => {
  test('prints one JSON line with the settings and times; --amp on a CPU without native bf16 says fp32', async () => {
    const r = await runCli(['bench', '--device', 'cpu', '-b', '1', '--height', '32', '--width', '32', '--channels', '1', '--steps', '2', '--warmup', '0', '--amp']);
    assert.equal(r.code, 0, r.stderr);
    const [line] = jsonLines(r.stdout);
    assert.equal(line.impl, 'unet-ts');
    assert.equal(line.mode, 'train');
    assert.equal(line.height, 32);
    assert.ok((line.ms_per_step as number) > 0 && (line.img_per_s as number) > 0);
    assert.ok((line.cpu_ms_per_step as number) > 0);
    assert.ok(Number.isFinite(line.loss));
    assert.match(String(line.amp), E.cpuHasNativeBf16() ? /^bf16$/ : /no native bf16 on this CPU: fp32/);
  });

  test('--predict against the reference UNet prints both sides and the ratio', { skip: !hasTorch() ? 'no python3-torch' : false }, async () => {
    const r = await runCli(['bench', '--predict', '--device', 'cpu', '-b', '1', '--height', '32', '--width', '32', '--steps', '2', '--warmup', '1', '--reference', REF], { timeoutMs: 300_000 });
    assert.equal(r.code, 0, r.stderr);
    const [ours, theirs, ratio] = jsonLines(r.stdout);
    assert.equal(ours.mode, 'predict');
    assert.equal(theirs.impl, 'pytorch');
    assert.ok((ratio.ratio_ours_over_pytorch_step_time as number) > 0);
  });
});

describe('bench flags', () => {
  test('-b/--batch-size is documented; the former --batch is still accepted and hidden', async () => {
    const help = await runCli(['bench', '--help']);
    assert.match(help.stdout, /-b, --batch-size <n>/);
    assert.doesNotMatch(help.stdout, /--batch </);
    const conv = async (flag: string, n: string) => {
      const r = await runCli(['bench', '--conv', '--steps', '1', '--warmup', '0', '--height', '16', '--width', '16', flag, n]);
      assert.equal(r.code, 0, r.stderr);
      return (jsonLines(r.stdout)[0].shape as number[])[0];
    };
    assert.equal(await conv('--batch', '1'), 1);
    assert.equal(await conv('--batch-size', '3'), 3);
  });
});

describe('bench --encoder', () => {
  test('times the encoder UNet, and with --reference the same smp-style model in PyTorch (test/reference/bench.py --encoder); a narrowed encoder is refused', async (t) => {
    const torch = hasTorch();
    if (!torch) t.diagnostic('no torch for /usr/bin/python3: timing our side only');
    const flags = ['bench', '--encoder', 'resnet18', '--encoder-depth', '3', '-b', '1', '--height', '32', '--width', '32', '--steps', '1', '--warmup', '0', '--device', 'cpu'];
    const r = await runCli([...flags, ...(torch ? ['--reference', REF] : [])], { timeoutMs: 240_000 });
    assert.equal(r.code, 0, r.stderr);
    const lines = jsonLines(r.stdout);
    assert.equal(lines[0].impl, 'unet-ts');
    if (torch) {
      assert.equal(lines[1].model, 'smp Unet resnet18');
      assert.ok((lines[2].ratio_ours_over_pytorch_step_time as number) > 0);
      assert.ok((lines[2].ratio_ours_over_pytorch_cpu_time as number) > 0, 'both sides report CPU time per step');
    }
    assertCleanFailure(await runCli([...flags, '--width-divisor', '2']), /--encoder times the encoder UNet's train or --predict step: drop --width-divisor/, 'divisor', 1);
  });
});
