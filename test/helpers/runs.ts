/** Small CPU training runs for the behaviour tests, and readers for what a run leaves behind. */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { type TrainConfig, defaults, trainOptions } from '../../src/config/options.js';
import type { RawTensor } from '../../src/io/pth.js';

/** The guide's defaults on `data/{imgs,masks}`, CPU, files under `dir`, 2 decoders, then `over`. */
export function runConfig(data: string, dir: string, over: Partial<TrainConfig> = {}): TrainConfig {
  return {
    ...defaults(trainOptions),
    imgs: join(data, 'imgs'),
    masks: join(data, 'masks'),
    checkpointDir: join(dir, 'checkpoints'),
    logdir: join(dir, 'runs'),
    device: 'cpu',
    workers: 2,
    ...over,
  };
}

/** train() hooks that print nothing. */
export const quiet = { log: (): void => {}, warn: (): void => {} };

export const readJsonl = <T = Record<string, unknown>>(path: string): T[] =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as T);

export interface EpochRecord {
  type: 'epoch';
  epoch: number;
  step: number;
  loss: number;
  valDice: number;
  lr: number;
}
export interface ScalarsRecord {
  type: 'scalars';
  step: number;
  values: Record<string, number | string>;
}

/** metrics.jsonl of a run: its epoch records and its scalars records. */
export function runRecords(runDir: string): { all: Record<string, unknown>[]; epochs: EpochRecord[]; scalars: ScalarsRecord[] } {
  const all = readJsonl(join(runDir, 'metrics.jsonl'));
  return { all, epochs: all.filter((r) => r.type === 'epoch') as unknown as EpochRecord[], scalars: all.filter((r) => r.type === 'scalars') as unknown as ScalarsRecord[] };
}

/** (step, value) of every logged scalar with this tag, in file order. */
export function scalarSeries(scalars: ScalarsRecord[], tag: string): [number, number][] {
  return scalars.filter((r) => tag in r.values).map((r) => [r.step, Number(r.values[tag])]);
}

/** The run's TensorBoard event file. */
export function eventFileOf(runDir: string): string {
  const f = readdirSync(runDir).filter((n) => n.startsWith('events.out.tfevents.'));
  if (f.length !== 1) throw new Error(`${runDir}: expected one event file, found ${f.length}`);
  return join(runDir, f[0]);
}

/** A float32 checkpoint tensor's values. */
export function floats(t: RawTensor): Float32Array {
  if (t.dtype !== 'float32') throw new Error(`expected float32, got ${t.dtype}`);
  return new Float32Array(Uint8Array.from(t.data).buffer);
}

/** Whether two checkpoint weight maps hold the same keys and bit-identical tensors. */
export function sameWeights(a: Map<string, RawTensor>, b: Map<string, RawTensor>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, t] of a) {
    const u = b.get(k);
    if (!u || u.dtype !== t.dtype || !Buffer.from(u.data).equals(Buffer.from(t.data))) return false;
  }
  return true;
}
