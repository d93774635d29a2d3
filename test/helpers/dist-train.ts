/**
 * `unet train` with a narrow UNet that records what each rank saw, for the data-parallel loop tests
 * (test/distributed.train.test.ts):
 *   UNET_TEST_OUT=DIR node --import tsx test/helpers/dist-train.ts train ... --nproc-per-node 2
 * The launcher re-runs this file for its workers (as tiny-cli.ts). Each rank appends to
 * DIR/rank<R>.jsonl its split, its training batches, whether each backward synchronised the
 * gradients, and every validation score (the value the plateau scheduler and early stopping get);
 * at each validation it writes its weights to DIR/rank<R>-step<S>.json. Rank 0 also writes the
 * initial weights (before the broadcast) to DIR/init.json.
 */
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildProgram } from '../../src/cli/program.js';
import { DistContext } from '../../src/distributed/index.js';
import type { UNet } from '../../src/model/index.js';
import { trainCommand } from '../../src/train/command.js';
import { dumpTensors } from './exchange.js';
import { tinyUNet } from './tiny-unet.js';

const dir = process.env.UNET_TEST_OUT as string;
const rank = process.env.RANK ?? 'single';
const record = (o: Record<string, unknown>) => appendFileSync(join(dir, `rank${rank}.jsonl`), `${JSON.stringify(o)}\n`);

const backward = DistContext.prototype.backward;
DistContext.prototype.backward = function (loss, sync) {
  record({ type: 'backward', sync });
  return backward.call(this, loss, sync);
};

let model: UNet | null = null;
const onlyTrain = async (): Promise<number> => {
  throw new Error('dist-train runs only `train`');
};
await buildProgram({
  train: (cfg, out) =>
    trainCommand(cfg, out, {
      createModel: (a) => {
        model = tinyUNet(a);
        if (rank === '0' || rank === 'single') dumpTensors(dir, model.stateDict(), 'init.json');
        return model;
      },
      onSplit: (split) => record({ type: 'split', ...split }),
      onTrainBatch: (epoch, ids) => record({ type: 'batch', epoch, ids }),
      validationScore: (dice, at) => {
        record({ type: 'score', dice, ...at });
        dumpTensors(dir, (model as UNet).stateDict(), `rank${rank}-step${at.step}.json`);
        return dice;
      },
    }),
  predict: onlyTrain,
  evaluate: onlyTrain,
}).parseAsync(process.argv);
