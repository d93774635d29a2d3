// unet plan and train --plan: the planner against our transcription of nnU-Net's 2D planning
// (test/reference/nnunet_plan2d.py), the deliberate differences, `unet plan` on tiny data, and a
// plan edited and passed back with --plan.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { type Handlers, buildProgram } from '../src/cli/program.js';
import { EXIT } from '../src/config/errors.js';
import { type TrainConfig, planOptions, trainOptions } from '../src/config/options.js';
import { type Fingerprint, HalfCounts, boundaryEdges, pixelMedianArea, regionAreas, totalVariation } from '../src/plan/fingerprint.js';
import { plan2d } from '../src/plan/nnunet2d.js';
import { MIN_STEPS, type StepTimer, isUpright, makePlan } from '../src/plan/rules.js';
import { augmentOptions } from '../src/train/setup.js';
import { Rng, sampleAugment } from '../src/data/index.js';
import { ROOT } from './helpers/cli.js';
import { demoDataDir } from './helpers/workdir.js';

interface Case {
  median: [number, number];
  n: number;
  classes: number;
  gb?: number;
}
interface NnPlan {
  patch: [number, number];
  batch: number;
  num_pool: [number, number];
  stages: number;
}

// Sizes of real 2D datasets (ISBI, CamVid, Carvana, Cityscapes-like) and edge cases: tiny, odd,
// fractional medians, elongated, huge, large memory targets.
const CASES: Case[] = [
  { median: [512, 512], n: 30, classes: 2 },
  { median: [360, 480], n: 367, classes: 12 },
  { median: [1280, 1918], n: 5088, classes: 2 },
  { median: [64, 64], n: 12, classes: 3 },
  { median: [96, 700], n: 50, classes: 2 },
  { median: [2000, 3000], n: 10, classes: 4 },
  { median: [256, 256], n: 1000, classes: 5 },
  { median: [33, 47], n: 8, classes: 2 },
  { median: [360.5, 480], n: 4, classes: 3 },
  { median: [1024, 1024], n: 200, classes: 2, gb: 80 },
  { median: [720, 1280], n: 3000, classes: 19, gb: 24 },
  { median: [128, 4096], n: 20, classes: 2 },
  { median: [100, 100], n: 500, classes: 2 },
  { median: [200, 150], n: 40, classes: 6, gb: 2 },
  { median: [2048, 2048], n: 50, classes: 2 },
];

const nnunet: NnPlan[] = JSON.parse(execFileSync('python3', [join(ROOT, 'test/reference/nnunet_plan2d.py')], { input: JSON.stringify(CASES) }).toString());

const fingerprint = (c: Case): Fingerprint => ({
  count: c.n,
  sampled: c.n,
  maskSuffix: '',
  channels: 3,
  shapes: [],
  medianShape: c.median,
  minShape: c.median,
  maxShape: c.median,
  intensity: { mean: [0.5], std: [0.2], foregroundMean: [0.5], foregroundStd: [0.2] },
  maskValues: Array.from({ length: c.classes }, (_, i) => i),
  classes: Array.from({ length: c.classes }, () => ({ frequency: 1 / c.classes, images: c.n, medianObjectArea: 400, typicalObjectSize: 20, thickness: 10 })),
  foregroundFraction: 0.5,
  halves: { topBottom: 0, leftRight: 0 },
});

/** A step time proportional to batch x pixels x width²: `perPixel` seconds per pixel at width 32. */
const modelTimer =
  (perPixel: number): StepTimer =>
  async (s) => ({ seconds: (perPixel * s.batch * s.patch[0] * s.patch[1] * s.baseChannels ** 2) / 32 ** 2, note: 'model' });

const gpuPlan = (c: Case) => makePlan({ fp: fingerprint(c), device: { kind: 'cuda', memoryGB: c.gb ?? 8, memorySource: 'test' }, budgetSeconds: 1e6, validation: 0, timer: modelTimer(1e-12) });

describe('the planner against nnU-Net v2 2D planning (our transcription)', () => {
  test('nnunet2d.ts = nnunet_plan2d.py: patch, batch and poolings on every fingerprint', () => {
    CASES.forEach((c, i) => {
      const ours = plan2d(c.median, c.n, { baseFeatures: 32, maxFeatures: 512, inChannels: 3, classes: c.classes }, { targetGB: c.gb ?? 8 });
      assert.deepEqual({ patch: ours.patch, batch: ours.batch, num_pool: ours.numPool }, { patch: nnunet[i].patch, batch: nnunet[i].batch, num_pool: nnunet[i].num_pool }, JSON.stringify(c));
    });
    // The memory rule is exercised: it shrank at least one patch below the clipped median shape.
    assert.ok(CASES.some((c, i) => nnunet[i].patch[0] < c.median[0] - 64));
  });

  test('a plan with time to spare on a GPU: patch and batch as nnU-Net; depth as nnU-Net where its rule allows', async () => {
    for (const [i, c] of CASES.entries()) {
      const p = await gpuPlan(c);
      const nn = nnunet[i];
      assert.deepEqual(p.train.patchSize, nn.patch, JSON.stringify(c));
      // Ours cannot batch more images than the training set holds (nnU-Net samples with replacement).
      assert.equal(p.train.batchSize, Math.min(nn.batch, c.n), JSON.stringify(c));
      const [a, b] = nn.num_pool;
      // Deliberate differences: our UNet pools both axes together (depth = the smaller count), and it
      // doubles the width without nnU-Net's 512 cap, so depth stops at a 1024-channel bottleneck (5 at width 32).
      assert.equal(p.train.depth, Math.min(a, b, 5), JSON.stringify(c));
      if (a === b && a <= 5) assert.equal(p.train.depth, nn.stages - 1);
    }
  });

  test('deliberate difference: a short budget on a CPU gets batch 2, width 16 and a smaller patch, not a schedule cut short', async () => {
    const c = CASES[0]; // 512x512: nnU-Net's 512x512 patch
    const p = await makePlan({ fp: fingerprint(c), device: { kind: 'cpu', memoryGB: 8, memorySource: 'test' }, budgetSeconds: 300, validation: 10, timer: modelTimer(4e-6) });
    assert.equal(p.train.batchSize, 2);
    assert.equal(p.train.baseChannels, 16);
    const [h, w] = p.train.patchSize as number[];
    assert.ok(h * w < 512 * 512 && h % 2 ** (p.train.depth as number) === 0 && w % 2 ** (p.train.depth as number) === 0, `${h}x${w}`);
    assert.ok((p.timing.steps as number) >= MIN_STEPS * 0.9, `${p.timing.steps} steps`);
    assert.equal(p.train.timeBudget, 300);
    assert.equal(p.train.preciseBn, 16, 'batches of 2: BatchNorm statistics recomputed before each validation');
    assert.equal(p.train.keepLast, 3, 'hundreds of short epochs must not fill the disk with checkpoints');
    assert.deepEqual([p.train.ema, p.train.emaWarmup], [0.9999, 'auto'], 'an average of the weights over the last tenth of the run');
    assert.equal(p.train.valLast, 1, 'validation at the first and the last epoch: the poly schedule and the average make the last the best');
    const roomy = await gpuPlan(CASES[12]); // 100x100 images: a large batch
    assert.ok((roomy.train.batchSize as number) > 4 && roomy.train.preciseBn === 0, `batch ${roomy.train.batchSize}, precise BN ${roomy.train.preciseBn}`);
  });

  test("deliberate difference: context before resolution: the patch keeps half of nnU-Net's per side, then the scale halves (CamVid-sized, 15 min on a CPU)", async () => {
    // A step time as measured here: 0.3 s for 2 patches of 96x144 at width 16
    const p = await makePlan({ fp: fingerprint(CASES[1]), device: { kind: 'cpu', memoryGB: 11, memorySource: 'test' }, budgetSeconds: 900, validation: 10, timer: modelTimer(4.3e-5) });
    const [h, w] = p.train.patchSize as number[];
    assert.equal(p.train.scale, 0.5);
    assert.ok(2 * h >= 384 * 0.5 && 2 * w >= 512 * 0.5, `patch ${h}x${w} at scale 0.5: at least half of nnU-Net's 384x512, scaled, per side`);
    assert.match(p.reasons.patchSize, /base width 16 \(CPU\), scale 0\.5, patch /);
    // With an hour the full resolution stays and only the patch shrinks
    const hour = await makePlan({ fp: fingerprint(CASES[1]), device: { kind: 'cpu', memoryGB: 11, memorySource: 'test' }, budgetSeconds: 3600, validation: 10, timer: modelTimer(4.3e-5) });
    assert.equal(hour.train.scale, 1);
    // A class of thin lines (ISBI's membranes: 5.5 px) would be 2.75 px at half the resolution: the patch shrinks instead.
    const fp = fingerprint(CASES[1]);
    fp.classes[0].thickness = 5.5;
    const thin = await makePlan({ fp, device: { kind: 'cpu', memoryGB: 11, memorySource: 'test' }, budgetSeconds: 900, validation: 10, timer: modelTimer(4.3e-5) });
    const [th, tw] = thin.train.patchSize as number[];
    assert.equal(thin.train.scale, 1);
    assert.ok(th * tw < h * w * 4, `patch ${th}x${tw} at scale 1 against ${h}x${w} at 0.5`);
    assert.match(thin.reasons.scale, /^native resolution .*; class 0 is 5\.5 px thick, under 3 px at half the resolution$/);
    assert.match(p.reasons.scale, /the thinnest 5\.0 px thick$/);
  });

  test('--folds K: each fold is planned on its 1/K of the budget and validates 1/K of the images', async () => {
    const cpu = { kind: 'cpu', memoryGB: 11, memorySource: 'test' } as const;
    const one = await makePlan({ fp: fingerprint(CASES[1]), device: cpu, budgetSeconds: 900, validation: 20, timer: modelTimer(4.3e-5) });
    // 5 folds of 75 minutes: each fold has 15 of them, so the same shape as one 15-minute run (not the hour's full resolution)
    const cv = await makePlan({ fp: fingerprint(CASES[1]), device: cpu, budgetSeconds: 4500, validation: 10, folds: 5, timer: modelTimer(4.3e-5) });
    assert.deepEqual([cv.train.scale, cv.train.patchSize, cv.train.batchSize], [one.train.scale, one.train.patchSize, one.train.batchSize]);
    assert.equal(cv.train.scale, 0.5);
    assert.equal(cv.timing.steps, one.timing.steps);
    assert.deepEqual([cv.train.timeBudget, cv.train.folds], [4500, 5], 'the command-wide budget, shared by the folds at run time');
    assert.match(cv.reasons.timeBudget, /90% of 900 s, a fold's 1\/5 of 4500 s$/);
    assert.equal(one.train.folds, undefined);
  });

  test('--encoder: the encoder UNet is what gets timed; its depth is fixed (patches multiples of 2^depth) and its width not shrunk', async () => {
    const seen: { baseChannels: number; depth: number; patch: [number, number] }[] = [];
    const timer: StepTimer = async (s) => (seen.push(s), { seconds: 4e-5 * s.batch * s.patch[0] * s.patch[1], note: 'encoder' });
    const fp = fingerprint(CASES[1]);
    const p = await makePlan({ fp, device: { kind: 'cpu', memoryGB: 11, memorySource: 'test' }, budgetSeconds: 900, validation: 10, timer, encoder: { name: 'resnet34', depth: 5 } });
    assert.ok(seen.length > 0 && seen.every((s) => s.baseChannels === 32 && s.depth === 5 && s.patch.every((v) => v % 32 === 0)), JSON.stringify(seen));
    assert.ok((p.train.patchSize as number[]).every((v) => v % 32 === 0));
    assert.match(p.reasons.depth, /--encoder resnet34: its 5 stages/);
    assert.doesNotMatch(p.reasons.patchSize, /base width/);
    // The plain UNet under the same timer: its width is the first thing a CPU gives up
    const plain = await makePlan({ fp, device: { kind: 'cpu', memoryGB: 11, memorySource: 'test' }, budgetSeconds: 900, validation: 10, timer: modelTimer(4.3e-5) });
    assert.equal(plain.train.baseChannels, 16);
  });

  test('--ignore-index: the void value is not a class; deep supervision only where the depth allows it', async () => {
    const camvid = { ...fingerprint(CASES[1]), maskValues: Array.from({ length: 12 }, (_, i) => i) };
    const p = await makePlan({ fp: camvid, device: { kind: 'cuda', memoryGB: 8, memorySource: 'test' }, budgetSeconds: 1e6, validation: 0, timer: modelTimer(1e-12), ignoreIndex: 11 });
    assert.equal(p.train.classes, 11);
    assert.equal(p.train.ignoreIndex, 11);
    assert.equal((await gpuPlan(CASES[1])).train.classes, 12);
    const tiny = await makePlan({
      fp: fingerprint({ median: [16, 16], n: 8, classes: 2 }),
      device: { kind: 'cuda', memoryGB: 8, memorySource: 'test' },
      budgetSeconds: 1e6,
      validation: 0,
      timer: modelTimer(1e-12),
    });
    assert.ok((tiny.train.depth as number) < 3 && tiny.train.deepSupervision === false, `depth ${tiny.train.depth}`);
  });
});

test("upright images (an up: sky above, road below): told by the masks' halves; --upright keeps horizontal flips only", async () => {
  // 5 rows x 4 columns: class 1 fills the top two rows, class 2 the bottom two but one pixel; the middle row (0) is in neither half
  const road = Uint8Array.from([1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 2, 0]);
  const h = new HalfCounts(3);
  h.add(road, 5, 4);
  assert.deepEqual([...h.top, ...h.bottom], [0, 8, 0, 1, 0, 7]);
  assert.deepEqual([...h.left, ...h.right], [2, 4, 4, 3, 4, 3]);
  assert.equal(h.distances().topBottom, 1);
  assert.equal(totalVariation(Float64Array.from([1, 3]), Float64Array.from([2, 2])), 0.25);
  assert.equal(totalVariation(Float64Array.from([0, 0]), Float64Array.from([2, 2])), 0, 'an empty half tells nothing');
  assert.ok(isUpright({ topBottom: 0.83, leftRight: 0.07 }), "CamVid's halves");
  assert.ok(!isUpright({ topBottom: 0.005, leftRight: 0.03 }), "ISBI's halves");
  assert.ok(!isUpright({ topBottom: 0.4, leftRight: 0.3 }), 'as different left/right: no single up');
  // The plan: --upright with its reason, and the augmentation it leaves
  const withHalves = (halves: Fingerprint['halves']) => makePlan({ fp: { ...fingerprint(CASES[1]), halves }, device: { kind: 'cpu', memoryGB: 8, memorySource: 'test' }, budgetSeconds: 1e6, validation: 0, timer: modelTimer(1e-12) });
  const [up, flat] = await Promise.all([withHalves({ topBottom: 0.83, leftRight: 0.07 }), withHalves({ topBottom: 0.005, leftRight: 0.03 })]);
  assert.deepEqual([up.train.upright, flat.train.upright, up.train.augment], [true, false, true]);
  assert.match(up.reasons.upright, /top\/bottom by 0\.83, left\/right by 0\.07: the images have an up/);
  assert.match(up.reasons.augment, /^horizontal flips, scale and brightness/);
  // What the loader draws: never upside down or turned with --upright; every view without it
  const draws = (upright: boolean) => {
    const rng = new Rng(3);
    const opts = augmentOptions({ augment: true, upright });
    return Array.from({ length: 200 }, () => sampleAugment(rng, opts === true ? {} : opts || {}));
  };
  const [kept, all] = [draws(true), draws(false)];
  assert.ok(kept.every((p) => !p.vflip && p.rot === 0) && kept.some((p) => p.hflip));
  assert.ok(all.some((p) => p.vflip) && all.some((p) => p.rot !== 0));
  assert.equal(augmentOptions({ augment: false, upright: true }), false, '--upright alone adds no augmentation');
});

test('fingerprint regions: 4-connected areas per class (diagonal pixels are separate objects); budgets as durations', () => {
  // 0 0 1 1
  // 0 1 0 1      class 1: {2,3,7,11} (4 px) and {5} (1 px, only diagonal to the others)
  // 2 0 0 1      class 2: {8} and {13,14} ; class 0: {0,1,4}, {6,9,10}, {12}, {15}
  // 0 2 2 0
  const mask = Uint8Array.from([0, 0, 1, 1, 0, 1, 0, 1, 2, 0, 0, 1, 0, 2, 2, 0]);
  const areas = regionAreas(mask, 4, 3).map((a) => a.sort((x, y) => x - y));
  assert.deepEqual(areas, [
    [1, 1, 3, 3],
    [1, 4],
    [1, 2],
  ]);
  // Thickness = 2 x pixels / boundary edges: 4-neighbour edges to another class, counted for both sides.
  assert.deepEqual(boundaryEdges(mask, 4, 3), [16, 9, 7]);
  const strip = new Uint8Array(20 * 20).map((_, i) => (i % 20 >= 8 && i % 20 < 12 ? 1 : 0)); // a 4 px wide line, top to bottom
  const e = boundaryEdges(strip, 20, 2);
  assert.deepEqual([(2 * 80) / e[1], e[0]], [4, 40], 'a strip 4 px wide is 4 px thick; the image border is no boundary');
  // The typical object: half the pixels lie in regions at least this large; specks do not pull it down.
  assert.equal(pixelMedianArea([1, 1, 1, 1, 1, 1, 400]), 400);
  assert.equal(pixelMedianArea([1, 4]), 4);
  assert.equal(pixelMedianArea([]), 0);
  const d = (raw: string) => planOptions.timeBudget.parse(raw, '--time-budget');
  assert.deepEqual(['90s', '15m', '1h', '1h30m', '45', '2.5m'].map(d), [90, 900, 3600, 5400, 45, 150]);
  for (const bad of ['', '0', 'm', '15x', '-5m', '1h-30m']) assert.throws(() => d(bad), /--time-budget expects a duration such as 90s, 15m/, bad);
});

const { root, data } = demoDataDir('plan', { count: 6, size: 32, classes: 3 });

/** Parses a command line with a train handler that only records its config; errors as run() reports them. */
async function parse(argv: string[]): Promise<{ train?: TrainConfig; error?: string; exitCode?: number; out: string }> {
  const got: { train?: TrainConfig; error?: string; exitCode?: number; out: string } = { out: '' };
  const handlers: Handlers = { train: async (c) => ((got.train = c), 0), predict: async () => 0, evaluate: async () => 0 };
  const [log, error] = [console.log, console.error];
  const errors: string[] = [];
  console.log = (s: string) => (got.out += `${s}\n`);
  console.error = (s: string) => errors.push(s);
  try {
    await buildProgram(handlers, { exitOverride: true }).parseAsync(argv, { from: 'user' });
  } finally {
    [console.log, console.error] = [log, error];
    got.exitCode = Number(process.exitCode ?? 0);
    process.exitCode = 0;
  }
  if (errors.some((e) => !/^(note|Fingerprinting|Timing)/.test(e))) got.error = errors.join('\n');
  return got;
}

describe('unet plan and train --plan', () => {
  const planFile = join(root, 'plan.json');

  test('unet plan prints the table and writes plan.json; train --plan honours an edited plan value by value', async () => {
    const r = await parse(['plan', '--imgs', join(data, 'imgs'), '--masks', join(data, 'masks'), '--time-budget', '10h', '--device', 'cpu', '-o', planFile]);
    assert.equal(r.exitCode, 0, r.error);
    assert.match(r.out, /Dataset fingerprint:[\s\S]*mask values +\[0,127,255\][\s\S]*Plan \(value, reason\):[\s\S]*patchSize +32x32 +nnU-Net 2D/);
    const plan = JSON.parse(readFileSync(planFile, 'utf8'));
    assert.equal(plan.version, 1);
    assert.equal(plan.fingerprint.count, 6);
    assert.equal(plan.train.timeBudget, 36000);
    for (const k of Object.keys(plan.train)) assert.ok(plan.reasons[k], `a reason for ${k}`);

    Object.assign(plan.train, { batchSize: 3, learningRate: 0.02, epochs: 7, scheduler: 'cosine', momentum: 0.95, augment: false, scale: 0.5 });
    writeFileSync(planFile, JSON.stringify(plan));
    const t = await parse(['train', '--plan', planFile, '--weight-decay', '0.001']);
    assert.ok(t.train, t.error);
    const cfg = t.train as unknown as Record<string, unknown>;
    for (const [k, v] of Object.entries(plan.train)) {
      if (!Object.hasOwn(trainOptions, k)) continue; // CONTRACT keys of other branches, skipped with a note
      if (k === 'weightDecay') assert.equal(cfg[k], 0.001, 'a flag overrides the plan');
      else assert.deepEqual(cfg[k], v, k);
    }
    assert.equal(cfg.plan, planFile, 'config.json records the plan');
    assert.equal(cfg.nesterov, true);
  });

  test('--device cuda --assume-memory 80G plans for a GPU that is not here: step times estimated, and said so', async () => {
    const E = await import('../src/engine/index.js');
    const out = join(root, 'gpu.json');
    const r = await parse(['plan', '--imgs', join(data, 'imgs'), '--masks', join(data, 'masks'), '--device', 'cuda', '--assume-memory', '80G', '-o', out]);
    assert.equal(r.exitCode, 0, r.error);
    assert.match(r.out, E.cudaIsAvailable() ? /amp +true[\s\S]*measured on cuda/ : /amp +true[\s\S]*estimated, not measured/);
    assert.match(JSON.parse(readFileSync(out, 'utf8')).reasons.batchSize, /80\.0 GiB \(--assume-memory\)/);
    if (E.cudaIsAvailable()) return; // a GPU is here: planning for it needs no --assume-memory
    const none = await parse(['plan', '--imgs', join(data, 'imgs'), '--masks', join(data, 'masks'), '--device', 'cuda', '-o', out]);
    assert.equal(none.exitCode, EXIT.usage);
    assert.match(none.error ?? '', /--device cuda: no CUDA device here; add --assume-memory/);
  });

  test('train --auto plans (table printed, plan-<time>.json in --logdir), then trains with it; flags still win', async () => {
    const logdir = join(root, 'runs');
    const r = await parse(['train', '--auto', '--imgs', join(data, 'imgs'), '--masks', join(data, 'masks'), '--logdir', logdir, '--device', 'cpu', '-e', '3']);
    assert.ok(r.train, r.error);
    assert.match(r.out, /Plan \(value, reason\):[\s\S]*optimizer +sgd/);
    assert.match(r.train.plan, new RegExp(`^${logdir}/plan-\\d{8}-\\d{6}\\.json$`));
    assert.equal(JSON.parse(readFileSync(r.train.plan, 'utf8')).train.optimizer, 'sgd');
    assert.equal(r.train.auto, false, 'recorded resolved: a replay of config.json does not plan again');
    assert.equal(r.train.optimizer, 'sgd');
    assert.equal(r.train.scheduler, 'poly');
    assert.equal(r.train.epochs, 3);
    // --folds: the folds share the budget, so each is planned on its part; --fold I runs one on all of it.
    const cv = await parse(['train', '--auto', '--folds', '3', '--time-budget', '9m', '--imgs', join(data, 'imgs'), '--masks', join(data, 'masks'), '--logdir', logdir, '--device', 'cpu']);
    assert.ok(cv.train, cv.error);
    assert.match(JSON.parse(readFileSync(cv.train.plan, 'utf8')).reasons.timeBudget, /90% of 180 s, a fold's 1\/3 of 540 s$/);
    assert.deepEqual([cv.train.timeBudget, cv.train.folds], [540, 3]);
    const one = await parse(['train', '--auto', '--folds', '3', '--fold', '1', '--time-budget', '9m', '--imgs', join(data, 'imgs'), '--masks', join(data, 'masks'), '--logdir', logdir, '--device', 'cpu']);
    assert.match(JSON.parse(readFileSync(one.train?.plan ?? '', 'utf8')).reasons.timeBudget, /90% of 540 s$/);
  });

  test('a plan with a bad value or an unknown key is refused naming the key', async () => {
    const plan = JSON.parse(readFileSync(planFile, 'utf8'));
    const bad = join(root, 'bad.json');
    writeFileSync(bad, JSON.stringify({ ...plan, train: { ...plan.train, batchSize: 0 } }));
    let r = await parse(['train', '--plan', bad]);
    assert.equal(r.exitCode, EXIT.usage);
    assert.match(r.error ?? '', /--plan .*bad\.json: batchSize: --batch-size expects a positive integer, got '0'/);
    writeFileSync(bad, JSON.stringify({ ...plan, train: { ...plan.train, batchSise: 2 } }));
    r = await parse(['train', '--plan', bad]);
    assert.match(r.error ?? '', /unknown key 'batchSise' \(did you mean 'batchSize'\?\)/);
    r = await parse(['train', '--plan', planFile, '--momentum', '0']);
    assert.equal(r.exitCode, EXIT.usage);
    assert.match(r.error ?? '', /--nesterov needs --momentum above 0/);
    // --config overrides the plan; a run's config.json (plan recorded) replays without re-planning.
    const conf = join(root, 'conf.json');
    writeFileSync(conf, JSON.stringify({ epochs: 2, plan: planFile }));
    r = await parse(['train', '--config', conf]);
    assert.equal(r.train?.epochs, 2);
    assert.equal(r.train?.batchSize, plan.train.batchSize);
  });
});
