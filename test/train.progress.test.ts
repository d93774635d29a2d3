// Progress output degrades to plain lines when not on a terminal, written during the epoch.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NO_EPOCH_CAP } from '../src/config/options.js';
import { epochOf, epochProgress } from '../src/train/progress.js';

test('non-TTY progress prints plain lines from update() and at the end', () => {
  const lines: string[] = [];
  const stream = { isTTY: false, write: (s: string) => lines.push(s) } as unknown as NodeJS.WriteStream;
  const p = epochProgress(2, 5, 10, stream, 0);
  p.update(4, { loss: 0.5, imgPerSec: 2 });
  p.update(8, { loss: 0.25, imgPerSec: 2 });
  p.stop();
  assert.equal(lines.length, 3);
  assert.equal(lines[0], 'Epoch 2/5: 4/10 img | loss 0.5000 | 2.0 img/s | ETA 3s\n');
  assert.match(lines[2], /^Epoch 2\/5: 8\/10 img \| loss 0\.2500/);
  const quiet: string[] = [];
  const q = epochProgress(1, 1, 10, { isTTY: false, write: (s: string) => quiet.push(s) } as unknown as NodeJS.WriteStream, 60_000);
  q.update(5, {});
  assert.equal(quiet.length, 0); // throttled
  q.stop();
  assert.equal(quiet.length, 1);
});

test('the plain-text ETA is "-" while the rate is 0, rounds to 0 or is not a number (never Infinitys/NaNs)', () => {
  const lines: string[] = [];
  const stream = { isTTY: false, write: (s: string) => lines.push(s) } as unknown as NodeJS.WriteStream;
  const p = epochProgress(1, 1, 100, stream, 0);
  p.update(1, { loss: 1, imgPerSec: 0.01 }); // prints "0.0 img/s"
  p.update(2, { loss: 1, imgPerSec: 0 });
  p.update(3, { loss: 1, imgPerSec: Number.NaN });
  p.update(4, { loss: 1, imgPerSec: Number.POSITIVE_INFINITY });
  p.update(50, { loss: 1, imgPerSec: 5 });
  for (const l of lines) assert.doesNotMatch(l, /Infinity|NaN/, l);
  assert.match(lines[0], /\| 0\.0 img\/s \| ETA 9900s$/m);
  assert.match(lines[1], /ETA -$/m);
  assert.match(lines[2], /ETA -$/m);
  assert.match(lines[3], /ETA -$/m);
  assert.match(lines[4], /ETA 10s$/m);
});

test('while --time-budget has not planned the epochs, the epoch shows without the placeholder cap', () => {
  assert.equal(epochOf(3, 10), '3/10');
  assert.equal(epochOf(1, NO_EPOCH_CAP), '1');
  const lines: string[] = [];
  const p = epochProgress(1, NO_EPOCH_CAP, 10, { isTTY: false, write: (s: string) => lines.push(s) } as unknown as NodeJS.WriteStream, 0);
  p.update(5, { loss: 1, imgPerSec: 1 });
  assert.match(lines[0], /^Epoch 1: 5\/10 img/);
});
