/**
 * `unet bench --data`: decode + resize throughput of our loader against the reference loader's
 * method (PIL: open, BICUBIC/NEAREST resize, numpy, float) on the same files, per CPU core, and
 * proof that epochs after the first decode nothing (the cache serves them).
 *
 * Per core = CPU seconds, not wall time: sharp decodes on several libuv threads, PIL on one, so
 * images per CPU-second is the fair comparison; wall time is printed as well.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SegmentationDataset } from '../data/dataset.js';
import { DataError } from '../data/errors.js';
import { DataLoader } from '../data/loader.js';
import type { MaskValues } from '../data/masks.js';
import { listPairs } from '../data/pairs.js';
import { makeJpegDataset } from '../data/synthetic.js';

export interface DataBenchOptions {
  /** Folder with imgs/ and masks/; default: synthetic Carvana-sized JPEG/GIF pairs (made once, reused). */
  dir?: string;
  /** Pairs to generate when `dir` is not given. */
  count: number;
  scale: number;
  epochs: number;
  /** Compare with PIL run by this python (needs numpy and PIL); null: ours only. */
  python: string | null;
}

/** The reference's `load_image` + `preprocess`, timed with process CPU time (PIL runs on one core). */
const PIL_PY = `
import sys, json, time
import numpy as np
from PIL import Image
a = json.loads(sys.argv[1]); scale = a['scale']; values = a['maskValues']
def load(path, is_mask):
    img = Image.open(path)
    w, h = img.size; nw, nh = int(scale * w), int(scale * h)
    img = img.resize((nw, nh), resample=Image.NEAREST if is_mask else Image.BICUBIC)
    arr = np.asarray(img)
    if is_mask:
        out = np.zeros((nh, nw), dtype=np.int64)
        for i, v in enumerate(values):
            if arr.ndim == 2: out[arr == v] = i
            else: out[(arr == v).all(-1)] = i
        return out
    arr = arr[np.newaxis, ...] if arr.ndim == 2 else arr.transpose((2, 0, 1))
    if (arr > 1).any(): arr = arr / 255.0
    return np.ascontiguousarray(arr, dtype=np.float32)
c0 = time.process_time(); t0 = time.perf_counter()
for img, mask in a['pairs']: load(img, False); load(mask, True)
cpu = time.process_time() - c0; wall = time.perf_counter() - t0; n = len(a['pairs'])
print(json.dumps({'impl': 'PIL', 'samples': n, 'cpu_ms_per_sample': round(cpu / n * 1000, 2), 'wall_ms_per_sample': round(wall / n * 1000, 2)}))
`;

export async function benchData(o: DataBenchOptions): Promise<Record<string, unknown>[]> {
  let dir = o.dir;
  if (!dir) {
    dir = join(tmpdir(), `unet-ts-bench-carvana-${o.count}`);
    if (!existsSync(join(dir, 'done'))) {
      await rm(dir, { recursive: true, force: true });
      process.stderr.write(`Writing ${o.count} synthetic 1918x1280 JPEG/GIF pairs to ${dir} (once; reused by later runs)…\n`);
      await makeJpegDataset(dir, { count: o.count });
      await writeFile(join(dir, 'done'), '');
    }
  }
  for (const sub of ['imgs', 'masks']) {
    if (!existsSync(join(dir, sub))) {
      throw new DataError(`bench --data: ${join(dir, sub)} does not exist`, {
        file: dir,
        hint: 'bench --data DIR expects DIR/imgs and DIR/masks (the training layout); leave out DIR for synthetic JPEGs.',
      });
    }
  }
  const { pairs } = await listPairs({ imgsDir: join(dir, 'imgs'), masksDir: join(dir, 'masks') });
  // Mask values come from a scan, untimed on both sides (the reference scans in a Pool beforehand too).
  const maskValues: MaskValues = await new SegmentationDataset(pairs, { scale: o.scale, cache: false }).scan();
  // First decode + resize alone (no sample cache to fill: the work PIL's loop does), then as
  // training reads: epoch 1 decodes and fills the sample cache, later epochs read from it.
  const decodeOnly = new SegmentationDataset(pairs, { scale: o.scale, maskValues, cache: false });
  const lines: Record<string, unknown>[] = [await timedPass(decodeOnly, { pass: 'decode', cache: false, scale: o.scale, dir })];
  const ds = new SegmentationDataset(pairs, { scale: o.scale, maskValues });
  for (let epoch = 1; epoch <= o.epochs; epoch++) {
    const before = ds.cacheStats().decoded;
    const line = await timedPass(ds, { epoch, cache: true, scale: o.scale, dir });
    lines.push({ ...line, decoded: ds.cacheStats().decoded - before });
  }
  if (o.python) {
    const arg = JSON.stringify({ scale: o.scale, maskValues, pairs: pairs.map((p) => [p.image, p.mask]) });
    const r = spawnSync(o.python, ['-c', PIL_PY, arg], { encoding: 'utf8', maxBuffer: 1 << 24 });
    if (r.status !== 0) {
      throw new DataError(`bench: the PIL run failed: ${r.stderr.trim().split('\n').pop()}`, {
        hint: `It needs numpy and PIL for ${o.python} (Debian: python3-numpy, python3-pil); leave out --reference to time ours only.`,
      });
    }
    const pil = JSON.parse(r.stdout.trim().split('\n').pop() as string);
    lines.push(pil);
    // Against the decode pass: the same work as PIL's loop (decode + resize, no cache to fill).
    const first = lines[0] as { cpu_ms_per_sample: number; wall_ms_per_sample: number };
    lines.push({
      throughput_per_core_ours_over_pil: round2(pil.cpu_ms_per_sample / first.cpu_ms_per_sample),
      wall_ours_over_pil: round2(pil.wall_ms_per_sample / first.wall_ms_per_sample),
    });
  }
  return lines;
}

const round2 = (x: number) => Math.round(x * 100) / 100;

/** One pass over the dataset as the trainer's loader reads it: CPU and wall ms per sample. */
async function timedPass(ds: SegmentationDataset, fields: Record<string, unknown>): Promise<Record<string, unknown>> {
  const loader = new DataLoader(
    ds,
    Array.from({ length: ds.length }, (_, i) => i),
    { batchSize: 1, reuseBuffers: true },
  );
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  let n = 0;
  for await (const b of loader) n += b.n;
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { impl: 'unet-ts', ...fields, samples: n, cpu_ms_per_sample: round2((c.user + c.system) / 1000 / n), wall_ms_per_sample: round2(wall / n) };
}
