// Progress output degrades to plain lines when not on a terminal, written during the epoch.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { epochProgress } from '../src/train/progress.js';

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
