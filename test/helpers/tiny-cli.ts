/**
 * The `unet` command line with a narrow UNet (the real one with widths / 16), for tests that run
 * `unet train` end to end (the data-parallel launcher re-runs this same file for its workers):
 *   node --import tsx test/helpers/tiny-cli.ts train ...
 * UNET_TEST_SIGNAL_AT=SIGNAL:RANK:EPOCH:BATCH: that worker sends itself SIGNAL just before its
 * BATCH-th batch (from 1) of EPOCH, after the ranks agreed to go on (a worker dying mid-epoch).
 */
import { buildProgram } from '../../src/cli/program.js';
import { trainCommand } from '../../src/train/command.js';
import { tinyUNet } from './tiny-unet.js';

const onlyTrain = async (): Promise<number> => {
  throw new Error('tiny-cli runs only `train`');
};
const [signal, rank, epoch, batch] = (process.env.UNET_TEST_SIGNAL_AT ?? '').split(':');
const batches = new Map<number, number>();
const onTrainBatch = (e: number): void => {
  batches.set(e, (batches.get(e) ?? 0) + 1);
  if (signal && process.env.RANK === rank && e === Number(epoch) && batches.get(e) === Number(batch)) process.kill(process.pid, signal as NodeJS.Signals);
};
await buildProgram({ train: (cfg, out) => trainCommand(cfg, out, { createModel: (a) => tinyUNet(a), onTrainBatch }), predict: onlyTrain, evaluate: onlyTrain }).parseAsync(process.argv);
