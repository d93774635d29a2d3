// DistContext in this process, on a one-process Gloo group: the one line a failed collective
// becomes, and the BatchNorm statistics rank 0 saves after one (those of the last optimizer step).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { DistContext, DistError } from '../src/distributed/index.js';
import * as E from '../src/engine/index.js';
import { freePort } from './helpers/dist.js';
import { tinyUNet } from './helpers/tiny-unet.js';

let dist: DistContext;
before(async () => {
  const worker = { rank: 0, worldSize: 1, localRank: 0, masterAddr: '127.0.0.1', masterPort: await freePort() };
  dist = await DistContext.join(worker, { backend: 'gloo', timeoutSeconds: 7, device: 'cpu' });
});
after(() => dist.close());

const raw = (message: string) => Object.assign(new Error(message), { code: 'ERR_DIST' });
const RESET = '[../third_party/gloo/gloo/transport/tcp/pair.cc:589] Read error [127.0.0.1]:45484: Connection reset by peer';

test("a failed collective is one line (no answer within --dist-timeout, or a lost connection); Gloo's text only with UNET_DEBUG", () => {
  const lost = dist.asFailure(raw(RESET), 'synchronising gradients');
  assert.ok(lost instanceof DistError);
  assert.equal(lost.message, 'rank 0: lost the connection to the other workers while synchronising gradients (a worker stopped or died)');
  assert.equal(lost.exitCode, 1);
  const late = dist.asFailure(raw('Application timeout caused pair closure'), 'reducing values');
  assert.equal(late?.message, 'rank 0: no answer from the other workers within --dist-timeout 7s while reducing values (a worker hung or cannot be reached)');
  assert.match(dist.asFailure(raw('Operation timed out!'))?.message ?? '', /within --dist-timeout 7s while computing BatchNorm statistics \(sync-BN\)/);
  assert.equal(dist.asFailure(new Error('not a collective')), null);
  assert.equal(dist.asFailure(lost), lost);
  process.env.UNET_DEBUG = '1';
  try {
    assert.match(dist.asFailure(raw(RESET))?.message ?? '', /\(a worker stopped or died\) \[gloo: .*pair\.cc:589\] Read error .*Connection reset by peer\]$/);
  } finally {
    delete process.env.UNET_DEBUG;
  }
});

test('restoreStepBuffers: the BatchNorm statistics of the last synchronised backward (the optimizer step), not those of the forwards since', async () => {
  E.manualSeed(5);
  const model = tinyUNet({ nChannels: 1, nClasses: 2, bilinear: false });
  const x = E.randn([2, 1, 16, 16]).keep();
  const buffers = () => model.namedBuffers().map(([k, b]) => [k, b.toArray()] as const);
  try {
    await dist.wrapModel(model, false);
    model.train();
    const loss = E.tidy(() => model.forward(x).square().mean()).keep();
    await dist.backward(loss, true).finally(() => loss.dispose());
    const atStep = buffers();
    // A forward of the next step (its backward then fails): the running statistics move.
    E.noGrad(() => E.tidy(() => model.forward(x.mul(3).add(1))));
    assert.notDeepEqual(buffers(), atStep);
    dist.restoreStepBuffers();
    assert.deepEqual(buffers(), atStep);
  } finally {
    x.dispose();
    model.dispose();
  }
});
