/**
 * One process of the data-parallel golden test (test/distributed.ddp.test.ts):
 *   node --import tsx ddp-worker.ts DIR MODE RANK WORLD PORT [ENCODER]
 * MODE ddp: a narrow UNet (or ENCODER's UNet, encoder depth 3) under our DDP (Reducer; the first of two micro-batches per step is
 * no_sync); syncbn: the same with sync-BN; single: one process on both ranks' micro-batches at
 * once. Starts from DIR/init.json, trains on DIR/data.json, and rank 0 writes DIR/out-MODE.json.
 */
import { DistContext } from '../../src/distributed/index.js';
import * as E from '../../src/engine/index.js';
import { createModel } from '../../src/model/index.js';
import { createOptimizer } from '../../src/optim/index.js';
import { dumpTensors, loadTensors } from './exchange.js';
import { TinyUNet, tinyEncoderArgs } from './tiny-unet.js';

const [dir, mode, rankS, worldS, portS, encoder] = process.argv.slice(2);
const rank = Number(rankS);
const worldSize = Number(worldS);
E.setNumThreads(1);
const STEPS = 3;
const MICRO = 2; // micro-batches per optimizer step
const PER = 2; // images per micro-batch and rank

const model = encoder ? createModel(tinyEncoderArgs(encoder)) : new TinyUNet({ nChannels: 1, nClasses: 2, bilinear: false });
const init = loadTensors(dir, 'init.json');
model.loadStateDict(init);
E.dispose([...init.values()]);
const data = loadTensors(dir, 'data.json');
const x = data.get('x') as E.Tensor; // [STEPS*MICRO*2*PER, 1, H, W]
const y = data.get('y') as E.Tensor; // [.., H, W] int64

const dist = mode === 'single' ? null : await DistContext.join({ rank, worldSize, localRank: rank, masterAddr: '127.0.0.1', masterPort: Number(portS) }, { backend: 'gloo', timeoutSeconds: 60, device: 'cpu' });
await dist?.wrapModel(model, mode === 'syncbn');
const params = model.parameters();
const opt = createOptimizer('sgd', params, { lr: 0.1, momentum: 0, weightDecay: 0 });
model.train();
for (let s = 0; s < STEPS; s++) {
  for (let m = 0; m < MICRO; m++) {
    // Micro-batch (s, m) of rank r: images [base + r*PER, base + (r+1)*PER); single takes both ranks'.
    const base = (s * MICRO + m) * 2 * PER;
    const [start, n] = dist ? [base + rank * PER, PER] : [base, 2 * PER];
    const loss = E.tidy(() => E.crossEntropy(model.forward(x.narrow(0, start, n)), y.narrow(0, start, n)).div(MICRO));
    if (dist) await dist.backward(loss, m === MICRO - 1);
    else loss.backward();
    loss.dispose();
  }
  opt.step();
  opt.zeroGrad();
}
if (rank === 0) dumpTensors(dir, model.stateDict(), `out-${mode}.json`);
await dist?.close();
opt.dispose();
model.dispose();
E.dispose([x, y]);
