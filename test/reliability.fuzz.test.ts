// Fuzzing the loaders with 1,100 mutated image and checkpoint files: no crash, no hang, and
// every failure is an error that explains itself (DataError, CheckpointError, PredictError,
// StateDictError: the CLI prints those without a stack).
//
// The files go through the real entry points in a child process (test/helpers/fuzz-worker.ts),
// one at a time with a per-file timeout: images through readImage, readMask and a
// SegmentationDataset (what `unet train`, `predict` and `evaluate` call); checkpoints through
// loadCheckpoint, restore() of the training state (`unet train --load`) and loadPredictor
// (`unet predict -m`). A crash (signal) or a hang names the file and the test goes on with the
// next one. A sample also goes through the `unet predict` command line.
//
// Byte-level fuzzing of the .pth reader alone is in io.pth.test.ts; hand-made broken files in
// data.image.test.ts. UNET_LONG_TESTS=1 makes 5x as many files.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { encode as encodePng } from 'fast-png';
import sharp from 'sharp';
import { encodeGifIndices, encodeNpy } from '../src/data/index.js';
import * as E from '../src/engine/index.js';
import { DTYPE_ITEMSIZE, type PyValue, PyFloat, type RawTensor, decodePth, encodePth, savePth } from '../src/io/pth.js';
import { ZipReader, concatChunks, crc32, zipChunks } from '../src/io/zip.js';
import { UNet } from '../src/model/index.js';
import { GradScaler, createOptimizer, createScheduler } from '../src/optim/index.js';
import { EarlyStopping } from '../src/train/early-stopping.js';
import { segmentationLoss } from '../src/train/loss.js';
import { saveCheckpoint, saveReferenceStateDict } from '../src/model/checkpoint.js';
import { ROOT, TSX, assertNoCrashText, runCli } from './helpers/cli.js';
import { png, prng, rgbPattern } from './helpers/fixtures.js';
import { TinyUNet } from './helpers/tiny-unet.js';

const SCALE = process.env.UNET_LONG_TESTS === '1' ? 5 : 1;
const IMAGE_FILES = 700 * SCALE;
const CKPT_FILES = 400 * SCALE;
const PER_FILE_TIMEOUT_MS = 20_000;

let root = '';
const rand = prng(0xf022);
const ri = (n: number) => Math.floor(rand() * n);
const pick = <T>(a: readonly T[]): T => a[ri(a.length)];

before(() => {
  root = mkdtempSync(join(tmpdir(), 'unet-rel-fuzz-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

// ------------------------------------------------------------------------------------------------
// Seeds

async function imageSeeds(): Promise<{ name: string; bytes: Uint8Array }[]> {
  const w = 24;
  const h = 20;
  const rgb = rgbPattern(w, h);
  const grey = Uint8Array.from({ length: w * h }, (_, i) => (i * 13) % 256);
  const raw = (channels: 1 | 3) => sharp(channels === 3 ? rgb : grey, { raw: { width: w, height: h, channels } });
  const g16 = Uint16Array.from({ length: w * h }, (_, i) => (i * 977) % 65536);
  return [
    { name: 'grey.png', bytes: encodePng({ width: w, height: h, channels: 1, depth: 8, data: grey }) },
    { name: 'rgb.png', bytes: encodePng({ width: w, height: h, channels: 3, depth: 8, data: rgb }) },
    { name: 'rgba.png', bytes: encodePng({ width: w, height: h, channels: 4, depth: 8, data: Uint8Array.from({ length: w * h * 4 }, (_, i) => (i * 7) % 256) }) },
    { name: 'grey16.png', bytes: encodePng({ width: w, height: h, channels: 1, depth: 16, data: g16 }) },
    { name: 'palette.png', bytes: await raw(3).png({ palette: true, colours: 16 }).toBuffer() },
    { name: 'rgb.jpg', bytes: await raw(3).jpeg({ quality: 90 }).toBuffer() },
    { name: 'grey.jpg', bytes: await raw(1).toColourspace('b-w').jpeg().toBuffer() },
    { name: 'cmyk.jpg', bytes: await raw(3).toColourspace('cmyk').jpeg().toBuffer() },
    {
      name: 'mask.gif',
      bytes: encodeGifIndices(
        Uint8Array.from({ length: w * h }, (_, i) => i % 3),
        w,
        h,
        [
          [0, 0, 0],
          [255, 0, 0],
          [0, 255, 0],
        ],
      ),
    },
    { name: 'rgb.tif', bytes: await raw(3).tiff({ compression: 'lzw' }).toBuffer() },
    { name: 'rgb.webp', bytes: await raw(3).webp({ lossless: true }).toBuffer() },
    { name: 'u8.npy', bytes: encodeNpy(grey, [h, w]) },
    {
      name: 'f32.npy',
      bytes: encodeNpy(
        Float32Array.from(rgb, (v) => v / 255),
        [h, w, 3],
      ),
    },
  ];
}

async function checkpointSeeds(dir: string): Promise<{ name: string; bytes: Uint8Array }[]> {
  // A narrow UNet with the real key names after one RMSprop step: every part of our format.
  const args = { nChannels: 3, nClasses: 2, bilinear: true };
  const model = new TinyUNet(args);
  const opt = createOptimizer('rmsprop', model.parameters(), { lr: 1e-5, weightDecay: 1e-8, momentum: 0.999 });
  E.tidy(() => segmentationLoss(model.forward(E.rand([1, 3, 32, 32])), E.zeros([1, 32, 32], { dtype: 'int64' }), 2).backward());
  opt.step();
  const rng = E.getRngState();
  const ours = join(dir, 'ours.pth');
  const scheduler = createScheduler('plateau', opt, { epochs: 5, mode: 'max', patience: 5 });
  scheduler.step(0.5);
  const early = new EarlyStopping(10, 1e-3);
  early.update(0.5, 1);
  const scaler = new GradScaler({ enabled: false, device: 'cpu' });
  await saveCheckpoint(ours, {
    model: model.stateDict(),
    optimizer: opt.stateDict(),
    scheduler: scheduler.stateDict(),
    gradScaler: scaler.stateDict(),
    earlyStopping: early.stateDict(),
    epoch: 1,
    globalStep: 3,
    loss: 0.7,
    valScore: 0.5,
    maskValues: [0, 255],
    modelArgs: model.args,
    config: { epochs: 5, learningRate: 1e-5 },
    runDir: '/tmp/run',
    rng: { torch: rng, data: { state: 12345 } },
  });
  rng.dispose();
  const ref = join(dir, 'reference.pth');
  await saveReferenceStateDict(ref, model.stateDict(), [0, 255]);
  const fork = join(dir, 'fork.pth');
  const sd: Record<string, PyValue> = {};
  for (const [k, t] of model.stateDict()) sd[k] = { kind: 'tensor', dtype: t.dtype, shape: t.shape, data: t.bytes() } as RawTensor;
  await savePth(fork, { model_state_dict: sd, epoch: 3, mask_values: [0, 1] });
  opt.dispose();
  scaler.dispose();
  model.dispose();
  return ['ours.pth', 'reference.pth', 'fork.pth'].map((name) => ({ name, bytes: new Uint8Array(readFileSync(join(dir, name))) }));
}

// ------------------------------------------------------------------------------------------------
// Mutators

const SPECIAL = [0x00, 0xff, 0x7f, 0x80, 0x01, 0xfe, 0x41];

function byteMutate(src: Uint8Array): Uint8Array {
  let b = Uint8Array.from(src);
  const n = 1 + ri(3);
  for (let k = 0; k < n; k++) {
    const op = ri(8);
    const at = ri(Math.max(1, b.length));
    if (op === 0) b[at] ^= 1 << ri(8);
    else if (op === 1) for (let j = 0; j < 1 + ri(16); j++) b[ri(b.length)] ^= 1 << ri(8);
    else if (op === 2) b[at] = pick(SPECIAL);
    else if (op === 3)
      b = b.slice(0, ri(b.length)); // truncate
    else if (op === 4)
      b = Uint8Array.from([...b.subarray(0, at), ...b.subarray(Math.min(b.length, at + 1 + ri(64)))]); // delete
    else if (op === 5) {
      const len = 1 + ri(64);
      b = Uint8Array.from([...b.subarray(0, at), ...b.subarray(at, at + len), ...b.subarray(at)]); // duplicate
    } else if (op === 6)
      b = Uint8Array.from([...b.subarray(0, at), ...Array.from({ length: 1 + ri(32) }, () => ri(256)), ...b.subarray(at)]); // insert
    else for (let j = at; j < Math.min(b.length, at + 4); j++) b[j] = 0xff; // a big length/size field
  }
  return b;
}

/** PNG: change bytes inside chunks, then fix every CRC so the decoder sees the damage. */
function pngMutate(src: Uint8Array): Uint8Array {
  const b = Uint8Array.from(src);
  const dv = new DataView(b.buffer);
  const chunks: { type: string; start: number; len: number }[] = [];
  for (let p = 8; p + 12 <= b.length; ) {
    const len = dv.getUint32(p);
    if (p + 12 + len > b.length) break;
    chunks.push({ type: String.fromCharCode(...b.subarray(p + 4, p + 8)), start: p, len });
    p += 12 + len;
  }
  const ihdr = chunks.find((c) => c.type === 'IHDR');
  const op = ri(4);
  if (op === 0 && ihdr)
    dv.setUint32(ihdr.start + 8 + 4 * ri(2), pick([0, 1, 65535, 0x7fffffff, 0xffffffff, 100_000, 3000])); // width/height
  else if (op === 1 && ihdr)
    b[ihdr.start + 8 + 8 + ri(5)] = pick([0, 1, 2, 3, 4, 6, 7, 16, 255]); // depth, colour type, ...
  else {
    const c = pick(chunks.filter((x) => x.len > 0));
    if (c) for (let k = 0; k < 1 + ri(8); k++) b[c.start + 8 + ri(c.len)] ^= 1 << ri(8);
  }
  for (const c of chunks) dv.setUint32(c.start + 8 + c.len, crc32(b.subarray(c.start + 4, c.start + 8 + c.len)));
  return b;
}

/** NPY: edit the header text (shape, dtype, order) keeping its length. */
function npyMutate(src: Uint8Array): Uint8Array {
  const b = Uint8Array.from(src);
  const headerLen = b[8] | (b[9] << 8);
  const text = Buffer.from(b.subarray(10, 10 + headerLen)).toString('latin1');
  const edits: [RegExp, string][] = [
    [/\((\d+), (\d+)/, `(${pick(['0', '99999', '1', '-1', '2147483647', '20'])}, ${pick(['0', '99999', '24', '3'])}`],
    [/'<[uf]\d'/, pick(["'<f8'", "'>f4'", "'|b1'", "'<c8'", "'<U4'", "'|O'"])],
    [/False/, 'True '],
    [/'descr'/, "'dezcr'"],
    [/\}/, pick(['{', ')', ' '])],
  ];
  const [re, rep] = pick(edits);
  const t2 = text.replace(re, rep).padEnd(text.length, ' ').slice(0, text.length);
  b.set(Buffer.from(t2, 'latin1'), 10);
  return b;
}

/** GIF: logical screen size and frame fields. */
function gifMutate(src: Uint8Array): Uint8Array {
  const b = Uint8Array.from(src);
  const at = pick([6, 7, 8, 9, 10, 13 + ri(20), b.length - 1 - ri(8)]);
  b[at] = pick(SPECIAL);
  return b;
}

/** The zip records of a checkpoint, changed, and written back with correct CRCs. */
function rezip(bytes: Uint8Array, change: (name: string, data: Uint8Array) => Uint8Array | null): Uint8Array {
  const z = new ZipReader(bytes);
  const records = [...z.entries.keys()].map((name) => ({ name, data: z.read(name) }));
  const out = records.map((r) => ({ name: r.name, data: change(r.name, r.data) ?? r.data }));
  return concatChunks(zipChunks(out));
}

const isRaw = (v: unknown): v is RawTensor => typeof v === 'object' && v !== null && (v as RawTensor).kind === 'tensor';

/** Replaces a random node of a decoded checkpoint with something plausible but wrong. */
function valueMutate(root: PyValue): PyValue {
  const nodes: { parent: Record<string, PyValue> | PyValue[] | Map<string | number, PyValue>; key: string | number; value: PyValue }[] = [];
  const walk = (v: PyValue, depth: number) => {
    if (depth > 6 || v === null || typeof v !== 'object' || isRaw(v) || v instanceof PyFloat) return;
    if (Array.isArray(v)) v.forEach((x, i) => (nodes.push({ parent: v, key: i, value: x }), walk(x, depth + 1)));
    else if (v instanceof Map) for (const [k, x] of v) nodes.push({ parent: v, key: k, value: x }), walk(x, depth + 1);
    else for (const [k, x] of Object.entries(v)) nodes.push({ parent: v, key: k, value: x }), walk(x, depth + 1);
  };
  walk(root, 0);
  const weird = (old: PyValue): PyValue => {
    const t = isRaw(old) ? old : null;
    const options: (() => PyValue)[] = [
      () => null,
      () => -1,
      () => 0,
      () => 1e9,
      () => 2 ** 53,
      () => 10n ** 30n,
      () => new PyFloat(Number.NaN),
      () => new PyFloat(Number.POSITIVE_INFINITY),
      () => new PyFloat(-1e308),
      () => 'garbage',
      () => '',
      () => [],
      () => ({}),
      () => new Map([[0, 'x']]),
      () => [1, [2, [3]]],
      () => true,
      () => ({ kind: 'tensor', dtype: 'float32', shape: [2, 2], data: new Uint8Array(16) }) as RawTensor,
      () => ({ kind: 'tensor', dtype: 'uint8', shape: [0], data: new Uint8Array(0) }) as RawTensor,
      () => ({ kind: 'tensor', dtype: 'int64', shape: [1], data: new Uint8Array(8).fill(0xff) }) as RawTensor,
    ];
    if (t) {
      const numel = (shape: number[]) => shape.reduce((a, b) => a * b, 1);
      const sized = (dtype: RawTensor['dtype'], shape: number[], fill = 0): RawTensor => ({ kind: 'tensor', dtype, shape, data: new Uint8Array(numel(shape) * DTYPE_ITEMSIZE[dtype]).fill(fill) });
      options.push(
        () => ({ ...t, shape: [...t.shape].reverse() }), // same bytes, transposed shape
        () => sized(t.dtype, t.shape.length ? [t.shape[0]] : [1]), // fewer dimensions
        () => sized(t.dtype, [...t.shape, 2]), // one more
        () => sized('float64', t.shape), // another dtype
        () => sized('float16', t.shape),
        () => sized('bool', t.shape),
        () => ({ ...t, data: Uint8Array.from(t.data, () => 0xff) }), // NaN / -1 everywhere
      );
    }
    return pick(options)();
  };
  const n = 1 + ri(3);
  for (let k = 0; k < n && nodes.length; k++) {
    const node = pick(nodes);
    const v = ri(6) === 0 ? undefined : weird(node.value);
    if (node.parent instanceof Map) v === undefined ? node.parent.delete(node.key) : node.parent.set(node.key, v);
    else if (Array.isArray(node.parent)) (node.parent as PyValue[])[node.key as number] = v ?? null;
    else if (v === undefined) delete (node.parent as Record<string, PyValue>)[node.key as string];
    else (node.parent as Record<string, PyValue>)[node.key as string] = v;
  }
  // Sometimes the top-level fields the loaders read first.
  if (ri(3) === 0 && root && typeof root === 'object' && !Array.isArray(root) && !(root instanceof Map) && !isRaw(root) && !(root instanceof PyFloat)) {
    const r = root as Record<string, PyValue>;
    const key = pick(['model_args', 'epoch', 'global_step', 'mask_values', 'rng_state', 'format', 'optimizer_state_dict', 'scheduler_state_dict', 'early_stopping', 'model_state_dict']);
    r[key] = key === 'model_args' ? { n_channels: pick([3, 1, 0, -1, 1e7, 2 ** 31]), n_classes: pick([2, 1, 0, 300, 1e9]), bilinear: pick([true, false, 'yes']) } : weird(r[key] ?? null);
  }
  return root;
}

function checkpointMutate(seed: Uint8Array, k: number): Uint8Array {
  const kind = k % 10;
  if (kind < 2) return byteMutate(seed); // raw bytes: zip structure and CRC checks
  if (kind < 5) {
    // pickle bytes behind a valid zip
    return rezip(seed, (name, data) => (name.endsWith('data.pkl') ? byteMutate(data) : null));
  }
  if (kind < 6) {
    // a storage record of the wrong size
    return rezip(seed, (name, data) => (/\/data\/\d+$/.test(name) && ri(3) === 0 ? data.subarray(0, ri(data.length)) : null));
  }
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      return encodePth(valueMutate(decodePth(seed)));
    } catch {
      // the writer refuses some combinations (e.g. a cycle or a key type Python cannot hold): try again
    }
  }
  return byteMutate(seed);
}

// ------------------------------------------------------------------------------------------------
// Running the worker with a per-file timeout

interface Outcome {
  ok: boolean;
  /** readImage (images) or load + restore (checkpoints) succeeded */
  firstStageOk?: boolean;
  name?: string;
  error?: string;
  explained?: boolean;
}

async function runWorker(list: { file: string; kind: string }[]): Promise<{ outcomes: (Outcome | null)[]; crashes: string[]; hangs: string[]; live: number[]; ms: number[] }> {
  const listFile = join(root, `list-${list.length}.json`);
  writeFileSync(listFile, JSON.stringify(list));
  const outcomes: (Outcome | null)[] = list.map(() => null);
  const ms: number[] = list.map(() => 0);
  const crashes: string[] = [];
  const hangs: string[] = [];
  const live: number[] = [];
  let next = 0;
  while (next < list.length) {
    const child = spawn(process.execPath, ['--import', TSX, join(ROOT, 'test', 'helpers', 'fuzz-worker.ts'), listFile, String(next)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr = (stderr + s).slice(-4000)));
    let current = -1;
    let startedAt = 0;
    let timer: NodeJS.Timeout | undefined;
    let hung = false;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(
        () => {
          hung = true;
          child.kill('SIGKILL');
        },
        PER_FILE_TIMEOUT_MS + (current < 0 ? 60_000 : 0),
      ); // the first file also waits for start-up
    };
    arm();
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      const [tag, idx, ...rest] = line.split(' ');
      if (tag === 'S') {
        current = Number(idx);
        startedAt = performance.now();
        arm();
      } else if (tag === 'D') {
        const i = Number(idx);
        outcomes[i] = JSON.parse(rest.join(' ')) as Outcome;
        ms[i] = performance.now() - startedAt;
        next = i + 1;
        current = -1;
      } else if (tag === 'L') {
        live.push((JSON.parse([idx, ...rest].join(' ')) as { liveTensors: number }).liveTensors);
      }
    });
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((res) => child.on('close', (c, s) => res([c, s])));
    clearTimeout(timer);
    if (next >= list.length && code === 0) break;
    // The worker died or was stopped: blame the file in progress and go on after it.
    const culprit = current >= 0 ? current : next;
    const what = `${list[culprit]?.file} (${hung ? `no answer in ${PER_FILE_TIMEOUT_MS / 1000} s` : `exit ${code} ${signal ?? ''}`}) ${stderr.slice(-500)}`;
    (hung ? hangs : crashes).push(what);
    next = culprit + 1;
  }
  return { outcomes, crashes, hangs, live, ms };
}

// ------------------------------------------------------------------------------------------------

test(`fuzz: ${IMAGE_FILES + CKPT_FILES} mutated images and checkpoints through the real loaders: no crash, no hang, only explained errors`, { timeout: 1_200_000 }, async (t) => {
  const dir = join(root, 'files');
  mkdirSync(dir);
  const list: { file: string; kind: 'image' | 'checkpoint' }[] = [];
  const iseeds = await imageSeeds();
  for (let k = 0; k < IMAGE_FILES; k++) {
    const seed = iseeds[k % iseeds.length];
    let bytes: Uint8Array;
    const r = ri(10);
    if (r < 3 && seed.name.endsWith('.png')) bytes = pngMutate(seed.bytes);
    else if (r < 3 && seed.name.endsWith('.npy')) bytes = npyMutate(seed.bytes);
    else if (r < 3 && seed.name.endsWith('.gif')) bytes = gifMutate(seed.bytes);
    else if (r === 3) {
      const other = pick(iseeds).bytes; // splice two formats
      bytes = Uint8Array.from([...seed.bytes.subarray(0, ri(seed.bytes.length)), ...other.subarray(ri(other.length))]);
    } else bytes = byteMutate(seed.bytes);
    const file = join(dir, `img${k}_${seed.name}`);
    writeFileSync(file, bytes);
    list.push({ file, kind: 'image' });
  }
  const cseeds = await checkpointSeeds(root);
  for (let k = 0; k < CKPT_FILES; k++) {
    const seed = cseeds[k % cseeds.length];
    const file = join(dir, `ckpt${k}_${seed.name}`);
    writeFileSync(file, checkpointMutate(seed.bytes, Math.floor(k / cseeds.length)));
    list.push({ file, kind: 'checkpoint' });
  }
  // The unmutated seeds load (the harness itself works).
  for (const s of iseeds) writeFileSync(join(dir, `seed_${s.name}`), s.bytes);
  const seedList = [...iseeds.map((s) => ({ file: join(dir, `seed_${s.name}`), kind: 'image' as const })), ...cseeds.map((s) => ({ file: join(root, s.name), kind: 'checkpoint' as const }))];

  const t0 = performance.now();
  const seeds = await runWorker(seedList);
  // Seeds decode (images: readImage; checkpoints: load and restore; a narrow UNet is no model for `predict`).
  const bad = seeds.outcomes.map((o, i) => ({ o, f: seedList[i].file })).filter((x) => !x.o?.firstStageOk || (!x.o.ok && !x.o.explained));
  assert.deepEqual(bad, [], 'unmutated seeds load');

  const res = await runWorker(list);
  const seconds = (performance.now() - t0) / 1000;
  const done = res.outcomes.filter((o) => o !== null).length;
  const failed = res.outcomes.filter((o) => o && !o.ok) as Outcome[];
  const unexplained = res.outcomes.map((o, i) => ({ o, f: list[i].file })).filter((x) => x.o && !x.o.ok && !x.o.explained);
  const byName = new Map<string, number>();
  for (const o of failed) byName.set(o.name ?? '?', (byName.get(o.name ?? '?') ?? 0) + 1);
  const slowest = Math.max(...res.ms);
  const decoded = (kind: string) => res.outcomes.filter((o, i) => o?.firstStageOk && list[i].kind === kind).length;
  t.diagnostic(
    `${list.length} files (${IMAGE_FILES} images, ${CKPT_FILES} checkpoints) in ${seconds.toFixed(0)} s: ${decoded('image')} images still decoded, ` +
      `${decoded('checkpoint')} checkpoints still loaded and restored, ${done - failed.length} passed every stage, ` +
      `${failed.length} refused (${[...byName].map(([k, v]) => `${k} ${v}`).join(', ')}), crashes ${res.crashes.length}, hangs ${res.hangs.length}, ` +
      `slowest file ${(slowest / 1000).toFixed(2)} s, live tensors at the end ${res.live.join('/')}`,
  );
  assert.deepEqual(res.crashes, [], 'no loader crashed the process');
  assert.deepEqual(res.hangs, [], `no file took more than ${PER_FILE_TIMEOUT_MS / 1000} s`);
  assert.equal(done, list.length);
  assert.deepEqual(
    unexplained.slice(0, 10).map((x) => `${x.f}: ${x.o?.name}: ${x.o?.error}`),
    [],
    `${unexplained.length} failures were not explained errors`,
  );
  assert.ok(
    res.live.every((n) => n === 0),
    `worker ended with live tensors ${res.live}`,
  );
  // Refused files name themselves in the message.
  const unnamed = res.outcomes.map((o, i) => ({ o, f: list[i].file })).filter((x) => x.o && !x.o.ok && !x.o.error?.includes(x.f.split('/').pop() as string));
  assert.ok(
    unnamed.length <= failed.length * 0.02,
    `${unnamed.length} errors do not name their file, e.g. ${unnamed
      .slice(0, 3)
      .map((x) => x.o?.error)
      .join(' | ')}`,
  );
});

test('a sample of the mutated files through `unet predict`: exit codes 1/2 with per-file reasons, never a crash', { timeout: 300_000 }, async () => {
  const dir = join(root, 'files');
  // A full-size model (as `unet predict` needs): random weights are enough.
  const modelPath = join(root, 'model.pth');
  const model = new UNet({ nChannels: 3, nClasses: 2, bilinear: true });
  await saveReferenceStateDict(modelPath, model.stateDict(), [0, 255]);
  model.dispose();
  const files = readdirSync(dir)
    .filter((f) => f.startsWith('img'))
    .sort()
    .filter((_, i) => i % 60 === 0)
    .map((f) => join(dir, f));
  assert.ok(files.length >= 10);
  const out = join(root, 'pred');
  let r = await runCli(['predict', '-m', modelPath, '-i', ...files, '--output-dir', out, '--device', 'cpu'], { cwd: root, timeoutMs: 240_000 });
  assertNoCrashText(r, 'predict images');
  assert.equal(r.signal, null);
  assert.ok(r.code === 0 || r.code === 2 || r.code === 1, `exit ${r.code}\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /UNET_DEBUG/);
  const ckpts = readdirSync(dir)
    .filter((f) => f.startsWith('ckpt'))
    .sort()
    .filter((_, i) => i % 80 === 0)
    .map((f) => join(dir, f));
  for (const c of ckpts) {
    r = await runCli(['predict', '-m', c, '-i', files[0], '--output-dir', out, '--device', 'cpu'], { cwd: root, timeoutMs: 120_000 });
    assertNoCrashText(r, `predict -m ${c}`);
    assert.equal(r.signal, null);
    assert.notEqual(r.code, 0, `${c} cannot be a working model`);
    assert.match(r.stderr, /^error: /m);
    assert.doesNotMatch(r.stderr, /UNET_DEBUG/, r.stderr);
  }
});

test('checkpoints that ask for a gigantic model are refused before a model is built', { timeout: 120_000 }, async () => {
  const raw = (shape: number[], bytes = 0): RawTensor => ({ kind: 'tensor', dtype: 'float32', shape, data: new Uint8Array(bytes) });
  const cases: [string, PyValue, RegExp][] = [
    // Reference format (no model_args): the size comes from the weights, here without any data.
    ['empty-kernel.pth', { 'inc.double_conv.0.weight': raw([64, 1e9, 0, 0]), 'outc.conv.weight': raw([2, 64, 1, 1], 512), mask_values: [0, 1] }, /expected shapes/],
    ['huge-classes.pth', { 'inc.double_conv.0.weight': raw([64, 3, 3, 3], 64 * 27 * 4), 'outc.conv.weight': raw([1e9, 64, 0, 1]), mask_values: [0, 1] }, /expected shapes/],
    // Our format: model_args that the weights contradict.
    [
      'lying-args.pth',
      {
        format: 'unet-ts/1',
        model_state_dict: { 'inc.double_conv.0.weight': raw([64, 3, 3, 3], 64 * 27 * 4), 'outc.conv.weight': raw([2, 64, 1, 1], 512) },
        model_args: { n_channels: 10_000_000, n_classes: 2, bilinear: true },
      },
      /damaged: model_args/,
    ],
    [
      'huge-depth.pth',
      {
        format: 'unet-ts/1',
        model_state_dict: { 'inc.double_conv.0.weight': raw([64, 3, 3, 3], 64 * 27 * 4), 'outc.conv.weight': raw([2, 64, 1, 1], 512) },
        model_args: { n_channels: 3, n_classes: 2, bilinear: true, depth: 10, base_channels: 1_000_000 },
      },
      /damaged: model_args/,
    ],
  ];
  const image = join(root, 'input.png');
  writeFileSync(
    image,
    png(32, 32, 3, (i) => i % 256),
  );
  for (const [name, value, pattern] of cases) {
    const f = join(root, name);
    await savePth(f, value);
    const t0 = performance.now();
    const r = await runCli(['predict', '-m', f, '-i', image, '--device', 'cpu', '-n'], { cwd: root, timeoutMs: 60_000 });
    assert.equal(r.code, 1, `${name}: ${r.stderr}`);
    assert.match(r.stderr, pattern, name);
    assertNoCrashText(r, name);
    assert.ok(performance.now() - t0 < 30_000, `${name}: refused quickly`);
  }
});
