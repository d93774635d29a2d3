/**
 * The `unet` command line with a narrow UNet (the real one with widths / 16), for tests that run
 * `unet train` end to end (the data-parallel launcher re-runs this same file for its workers):
 *   node --import tsx test/helpers/tiny-cli.ts train ...
 */
import { buildProgram } from '../../src/cli/program.js';
import { trainCommand } from '../../src/train/cli.js';
import { tinyUNet } from './tiny-unet.js';

const onlyTrain = async (): Promise<number> => {
  throw new Error('tiny-cli runs only `train`');
};
await buildProgram({ train: (cfg, out) => trainCommand(cfg, out, { createModel: (a) => tinyUNet(a) }), predict: onlyTrain, evaluate: onlyTrain }).parseAsync(process.argv);
