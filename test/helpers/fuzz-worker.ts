/**
 * Child process of reliability.fuzz.test.ts: feeds files to the real loaders, one at a time, and
 * reports each on stdout so that the parent can time every file and notice a crash or a hang.
 *
 *   node --import tsx fuzz-worker.ts LIST.json START
 *
 * LIST.json: [{ "file": path, "kind": "image" | "checkpoint" }, ...]. For each file from START:
 *   "S <i>"                          before it is read
 *   "D <i> <json {ok, error, name}>" after, with the error class and message if it failed
 * and at the end "L <json {liveTensors}>".
 *
 * Images go through readImage and readMask (the decoders of training, prediction and evaluation)
 * and through a SegmentationDataset (scan + load, as `unet train` reads them). Checkpoints go
 * through loadCheckpoint (`--load`, `-m`), then loadPredictor (`unet predict -m`), and for our own
 * format restore() of the training state into a narrow UNet's optimizer, scheduler and scaler
 * (`unet train --load`).
 */
import { readFileSync } from 'node:fs';
import { DataError, Rng, SegmentationDataset, readImage, readMask } from '../../src/data/index.js';
import * as E from '../../src/engine/index.js';
import { GradScaler, createOptimizer, createScheduler } from '../../src/optim/index.js';
import { loadPredictor } from '../../src/predict/predictor.js';
import { CheckpointError, loadCheckpoint } from '../../src/model/checkpoint.js';
import { EarlyStopping } from '../../src/train/early-stopping.js';
import { loadWeights, restore } from '../../src/train/train.js';
import { UNet } from '../../src/model/index.js';

E.setNumThreads(1);
const list = JSON.parse(readFileSync(process.argv[2], 'utf8')) as { file: string; kind: 'image' | 'checkpoint' }[];
const start = Number(process.argv[3] ?? 0);
const out = (s: string) => process.stdout.write(`${s}\n`);
/** Errors that explain themselves to the user (the CLI prints them without a stack). */
const EXPLAINED = new Set(['DataError', 'CheckpointError', 'PredictError']);

/** Whether the first stage (readImage; loadCheckpoint + restore) of the current file succeeded. */
let firstStageOk = false;

async function image(file: string): Promise<void> {
  const opts = { maxPixels: 4_000_000 };
  const settled = await Promise.allSettled([readImage(file, opts), readMask(file, opts), readImage(file, { ...opts, scale: 0.5 })]);
  firstStageOk = settled[0].status === 'fulfilled';
  // The file as both image and mask of a pair: colour images make too many mask values, which is
  // a DataError like any other.
  const ds = new SegmentationDataset([{ id: 'x', image: file, mask: file }], { scale: 1, workers: 1, maxPixels: opts.maxPixels });
  const more = await ds
    .scan()
    .then(() => ds.load(0))
    .then(
      () => null,
      (e: unknown) => e,
    );
  const errors = [...settled.filter((s) => s.status === 'rejected').map((s) => (s as PromiseRejectedResult).reason), ...(more ? [more] : [])];
  const odd = errors.find((e) => !(e instanceof DataError));
  if (odd) throw odd;
  if (errors.length) throw errors[0];
}

const EXPLAINED_LOAD = new Set([...EXPLAINED, 'StateDictError']);

/** `unet train --load` (load, weights into the model, restore the training state), then `unet predict -m` for every 4th file (it builds a full-size UNet). */
async function checkpoint(file: string, i: number): Promise<void> {
  const c = await loadCheckpoint(file);
  const errors: unknown[] = [];
  if (c.modelArgs) {
    const model = new UNet(c.modelArgs); // args record the narrowed width;
    try {
      loadWeights(model as unknown as UNet, c);
      if (c.kind === 'unet-ts') {
        const optimizer = createOptimizer('rmsprop', model.parameters(), { lr: 1e-5, weightDecay: 1e-8, momentum: 0.999 });
        const scheduler = createScheduler('plateau', optimizer, { epochs: 5, mode: 'max', patience: 5 });
        const scaler = new GradScaler({ enabled: false, device: 'cpu' });
        try {
          restore(c, { optimizer, scheduler, scaler, early: new EarlyStopping(10, 1e-3), dataRng: new Rng(1) });
        } finally {
          optimizer.dispose();
          scaler.dispose();
        }
      }
      firstStageOk = true;
    } catch (e) {
      errors.push(e);
    } finally {
      model.dispose();
    }
  }
  if (i % 4 === 0) {
    try {
      (await loadPredictor(file, { device: 'cpu' })).dispose();
    } catch (e) {
      errors.push(e);
    }
  }
  const odd = errors.find((e) => !EXPLAINED_LOAD.has((e as Error)?.name));
  if (odd) throw odd;
  if (errors.length) throw errors[0];
}

for (let i = start; i < list.length; i++) {
  const { file, kind } = list[i];
  out(`S ${i}`);
  firstStageOk = false;
  let res: { ok: boolean; firstStageOk?: boolean; name?: string; error?: string; explained?: boolean };
  try {
    await (kind === 'image' ? image(file) : checkpoint(file, i));
    res = { ok: true, firstStageOk };
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    res = { ok: false, firstStageOk, name: err.name, error: err.message.slice(0, 300), explained: EXPLAINED_LOAD.has(err.name) || err instanceof DataError || err instanceof CheckpointError };
  }
  out(`D ${i} ${JSON.stringify(res)}`);
}
out(`L ${JSON.stringify(E.memoryStats())}`);
