/** `unet plan`: fingerprint the data, derive the training options, print them with reasons, write plan.json. */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, resolve } from 'node:path';
import { benchTrain } from '../bench/steps.js';
import { OptionError, type PlanConfig } from '../config/options.js';
import * as E from '../engine/index.js';
import { type Fingerprint, computeFingerprint } from './fingerprint.js';
import { featureMapSize } from './nnunet2d.js';
import { type Device, type PlanResult, type StepTimer, makePlan } from './rules.js';

const GiB = 2 ** 30;

/** Where the plan runs and how much memory it may fill: RAM on CPU; on CUDA, nnU-Net's 8 GB target (the engine does not report free GPU memory). */
export function planDevice(cfg: Pick<PlanConfig, 'device' | 'assumeMemory'>): { device: Device; here: boolean; name: string } {
  const wantsCuda = cfg.device.startsWith('cuda') || (cfg.device === 'auto' && E.cudaIsAvailable());
  const here = wantsCuda ? E.cudaIsAvailable() : true;
  if (wantsCuda && !here && !cfg.assumeMemory) {
    throw new OptionError(`--device ${cfg.device}: no CUDA device here; add --assume-memory SIZE (e.g. 80G) to plan for a GPU that is not here`);
  }
  const assumed = cfg.assumeMemory > 0;
  const memoryGB = assumed ? cfg.assumeMemory / GiB : wantsCuda ? 8 : (os.freemem() * 0.5) / GiB;
  const memorySource = assumed ? '--assume-memory' : wantsCuda ? "nnU-Net's 8 GB target; the engine reports no free GPU memory" : 'half the free RAM';
  return {
    device: { kind: wantsCuda ? 'cuda' : 'cpu', memoryGB, memorySource },
    here,
    name: here ? E.resolveDevice(wantsCuda ? cfg.device.replace('auto', 'cuda') : 'cpu') : cfg.device.replace('auto', 'cuda'),
  };
}

/** A few training steps of the planned UNet (depth, width; or the encoder's UNet) on this device, median seconds. */
function measuredTimer(device: string, channels: number, classes: number, amp: boolean, encoder?: { name: string; depth: number }): StepTimer {
  return async ({ batch, patch, baseChannels, depth }) => {
    const step = 2 ** depth;
    const side = (v: number) => Math.max(step, Math.ceil(v / step) * step);
    const r = benchTrain({
      device,
      batch,
      height: side(patch[0]),
      width: side(patch[1]),
      channels,
      classes,
      amp,
      bilinear: false,
      steps: 2,
      warmup: 1,
      mode: 'train',
      divisor: 1,
      depth,
      baseChannels,
      ...(encoder ? { encoder: encoder.name, encoderDepth: encoder.depth } : {}),
    });
    const note = `measured on ${device}, ${E.getNumThreads()} threads`;
    return { seconds: (r.ms_per_step as number) / 1000, note };
  };
}

/** No device to time on: nnU-Net's 2D step (~0.1 s at its memory reference on a recent GPU) scaled by the feature-map count. */
const estimatedTimer =
  (classes: number): StepTimer =>
  async ({ batch, patch, baseChannels, depth }) => {
    const strides = Array.from({ length: depth + 1 }, (_, i) => (i === 0 ? [1, 1] : [2, 2]));
    const features = strides.map((_, i) => baseChannels * 2 ** i);
    const elements = featureMapSize(patch, strides, features, classes) * batch;
    return { seconds: elements / 5e9, note: 'estimated, not measured (no such device here): 5e9 feature-map elements/s' };
  };

export interface PlanOutcome extends PlanResult {
  fingerprint: Fingerprint;
  file: string;
}

export async function planFor(cfg: PlanConfig, log: (l: string) => void): Promise<PlanOutcome> {
  const { device, here, name } = planDevice(cfg);
  log(`Fingerprinting ${cfg.imgs} + ${cfg.masks}...`);
  const fp = await computeFingerprint({ imgs: cfg.imgs, masks: cfg.masks, maskSuffix: cfg.maskSuffix, workers: cfg.workers, onWarning: (w) => log(`warning: ${w}`) });
  const classes = Math.max(2, fp.maskValues.length);
  const encoder = cfg.encoder !== 'plain' ? { name: cfg.encoder, depth: cfg.encoderDepth } : undefined;
  const timer = here ? measuredTimer(name, fp.channels, classes, device.kind === 'cuda', encoder) : estimatedTimer(classes);
  log(`Timing a few training steps on ${name}...`);
  const r = await makePlan({ fp, device, budgetSeconds: cfg.timeBudget, validation: cfg.validation, folds: cfg.folds, timer, ignoreIndex: cfg.ignoreIndex, encoder });
  const file = resolve(cfg.output);
  const { shapes, ...summary } = fp;
  const json = {
    version: 1,
    fingerprint: { ...summary, shapes: shapes.length <= 50 ? shapes : undefined },
    train: r.train,
    reasons: r.reasons,
    timing: { device: name, ...r.timing },
    nnunet: r.nnunet,
  };
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
  return { ...r, fingerprint: fp, file };
}

const fmt = (v: unknown): string => (Array.isArray(v) ? v.join(typeof v[0] === 'number' && v.length === 2 ? 'x' : ',') : String(v));

/** The readable table: fingerprint facts, then one row per planned value with its reason. */
export function planTable(o: PlanOutcome, data: { imgs: string; masks: string }): string {
  const fp = o.fingerprint;
  const pct = (x: number) => `${(x * 100).toFixed(x < 0.01 ? 2 : 1)}%`;
  const facts: [string, string][] = [
    ['images', `${fp.count} (${fp.channels} channel${fp.channels > 1 ? 's' : ''}, mask suffix '${fp.maskSuffix}')`],
    ['size', `median ${fp.medianShape.join('x')}, min ${fp.minShape.join('x')}, max ${fp.maxShape.join('x')} (HxW)${fp.sampled < fp.count ? `; statistics of ${fp.sampled} images spread over the ${fp.count}` : ''}`],
    ['intensity', `mean ${fp.intensity.mean.map((v) => v.toFixed(3)).join('/')}, sd ${fp.intensity.std.map((v) => v.toFixed(3)).join('/')}; normalisation: divided by the bit range to 0..1 (as train)`],
    ['mask values', `${JSON.stringify(fp.maskValues)}; foreground ${pct(fp.foregroundFraction)}`],
    ...fp.classes.map((c, k): [string, string] => [
      `class ${k}`,
      `${pct(c.frequency)} of pixels, in ${c.images} images, typical object ${c.typicalObjectSize.toFixed(0)} px${c.thickness === null ? '' : `, ${c.thickness.toFixed(1)} px thick`}`,
    ]),
    ['halves', `classes differ top/bottom by ${fp.halves.topBottom.toFixed(2)}, left/right by ${fp.halves.leftRight.toFixed(2)} (total variation)`],
  ];
  const rows = Object.entries(o.train).map(([k, v]): [string, string, string] => [k, fmt(v), o.reasons[k] ?? '']);
  const w0 = Math.max(...facts.map((f) => f[0].length), ...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  return [
    'Dataset fingerprint:',
    ...facts.map(([a, b]) => `  ${a.padEnd(w0)}  ${b}`),
    '',
    'Plan (value, reason):',
    ...rows.map(([a, b, c]) => `  ${a.padEnd(w0)}  ${b.padEnd(w1)}  ${c}`),
    '',
    `Written: ${o.file}`,
    `Train with: unet train --plan ${o.file} --imgs ${data.imgs} --masks ${data.masks} (flags override the plan)`,
  ].join('\n');
}

export async function planCommand(cfg: PlanConfig): Promise<number> {
  const o = await planFor(cfg, (l) => console.error(l));
  console.log(planTable(o, cfg));
  return 0;
}
