/**
 * The `unet` command line with a narrow UNet (the real one with widths / 16), for tests that run
 * `unet train` end to end (the data-parallel launcher re-runs this same file for its workers):
 *   node --import tsx test/helpers/tiny-cli.ts train ...
 * UNET_TEST_SIGTERM_AT=N: rank 0 (or the single process) sends itself SIGTERM at its Nth training
 * batch, so a run stops at a known place inside an epoch.
 */
import { buildProgram } from '../../src/cli/program.js';
import { trainCommand } from '../../src/train/cli.js';
import { tinyUNet } from './tiny-unet.js';

const onlyTrain = async (): Promise<number> => {
  throw new Error('tiny-cli runs only `train`');
};
const stopAt = Number(process.env.UNET_TEST_SIGTERM_AT ?? 0);
let batches = 0;
const onTrainBatch = () => {
  if (++batches === stopAt && (process.env.RANK ?? '0') === '0') process.kill(process.pid, 'SIGTERM');
};
await buildProgram({ train: (cfg, out) => trainCommand(cfg, out, { createModel: (a) => tinyUNet(a), onTrainBatch }), predict: onlyTrain, evaluate: onlyTrain }).parseAsync(process.argv);
