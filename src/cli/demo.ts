/**
 * `unet demo` (the README's main command): makes a small synthetic 3-class dataset when data/ is
 * absent, trains a few epochs on CPU (a few minutes on 2 cores), predicts one image and says
 * where everything went.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { makeDemoDataset } from '../data/index.js';
import { type DemoConfig, defaults, trainOptions } from '../config/options.js';

export async function demoCommand(o: DemoConfig): Promise<number> {
  const imgs = join(o.dir, 'imgs');
  const masks = join(o.dir, 'masks');
  if (!existsSync(imgs) || !existsSync(masks)) {
    console.log(`Making a synthetic demo dataset in ${o.dir}/ (48 pairs, 128x128, 3 classes: background, circles, rectangles)...`);
    await makeDemoDataset(o.dir, { count: 48, size: 128, classes: 3, seed: 0 });
  } else {
    console.log(`Using the existing dataset in ${imgs} and ${masks}`);
  }
  const cfg = {
    ...defaults(trainOptions),
    imgs,
    masks,
    epochs: o.epochs,
    batchSize: 4,
    learningRate: 1e-3,
    scale: 1,
    validation: 20,
    classes: 3,
    bilinear: true,
    optimizer: 'adam' as const,
    // 39 training images in batches of 4 would validate after every batch on the reference's
    // cadence, cutting the lr 100x per epoch: the demo validates (and steps the scheduler) per epoch.
    valEvery: 0,
    device: 'cpu',
    name: 'demo',
  };
  // A previous demo's checkpoints are replaced; any other run's are refused (train's check).
  const { describeOtherRun } = await import('../train/run-folder.js');
  if ((await describeOtherRun(cfg.checkpointDir))?.configName === 'demo') cfg.existOk = true;
  console.log(`Training: unet train --imgs ${imgs} --masks ${masks} -e ${cfg.epochs} -b 4 -l 1e-3 -s 1 -v 20 -c 3 --bilinear --optimizer adam --val-every 0 --device cpu${cfg.existOk ? ' --exist-ok' : ''}\n`);
  const { trainCommand } = await import('../train/command.js');
  const code = await trainCommand(cfg);
  if (code !== 0) return code;
  const { predictCommand } = await import('../predict/command.js');
  const sample = join(imgs, '000.png');
  if (existsSync(sample)) {
    console.log(`\nPredicting ${sample} with the best model (mask + overlay in demo-output/)...`);
    return predictCommand(
      {
        ...defaults((await import('../config/options.js')).predictOptions),
        model: join(cfg.checkpointDir, 'best_model.pth'),
        input: [sample],
        outputDir: 'demo-output',
        viz: true,
        scale: 1,
        device: 'cpu',
      },
      false,
      false,
    );
  }
  return 0;
}
