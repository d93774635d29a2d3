/**
 * `train --encoder-weights FILE|DIR|NAME`: pretrained encoder weights from files the user already
 * has (nothing is ever downloaded). Reads a torchvision `.pth` state dict, a `.safetensors` file, a
 * timm / smp / Hugging Face hub folder (`model.safetensors` or `pytorch_model.bin`), or a bare
 * torchvision file name found in the torch hub cache. The keys are torchvision's (an smp model's
 * `encoder.*` keys are too); loading is strict, with the key diff of nn/module.ts.
 *
 * Input channels other than 3 follow smp's `patch_first_conv`, applied to the file's first
 * convolution before loading; `normalizationFor` gives the matching per-channel mean/std.
 */
import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, extname, join } from 'node:path';
import { UserError } from '../config/errors.js';
import * as E from '../engine/index.js';
import type { Tensor } from '../engine/index.js';
import { type PyValue, type RawTensor, loadPth } from '../io/pth.js';
import { loadSafetensors } from '../io/safetensors.js';
import { StateDictError } from '../nn/module.js';
import { fromRaw, isRaw } from './checkpoint.js';
import { type Encoder, type EncoderSpec, IMAGENET_MEAN, IMAGENET_STD } from './encoders/index.js';

/** The word `--encoder-weights imagenet`: the spec's torchvision ImageNet file, from the hub cache. */
export const IMAGENET = 'imagenet';

/** The mean/std the weights expect, per input channel (recorded as the model's `normalize`). */
export interface Normalize {
  mean: number[];
  std: number[];
}

/**
 * `from` (ImageNet's RGB statistics by default) for `nChannels` input channels, cycled the way the first convolution's
 * kernels are (channel i sees the kernel of RGB channel i % 3). One channel: its kernel is the sum
 * of the RGB kernels, i.e. it sees a grey image standing for R, G and B alike, so it gets the mean
 * of the three means and of the three stds (0.449, 0.226).
 */
export function normalizationFor(nChannels: number, from: Normalize = { mean: IMAGENET_MEAN, std: IMAGENET_STD }): Normalize {
  if (!Number.isInteger(nChannels) || nChannels < 1) throw new RangeError(`normalizationFor: channels must be a positive integer, got ${nChannels}`);
  const avg = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
  if (nChannels === 1) return { mean: [avg(from.mean)], std: [avg(from.std)] };
  const cycle = (xs: number[]) => Array.from({ length: nChannels }, (_, i) => xs[i % xs.length]);
  return { mean: cycle(from.mean), std: cycle(from.std) };
}

/**
 * smp's first-convolution rule for `inChannels` other than the file's 3: one channel sums the RGB
 * kernels; N channels take kernel i % 3 for channel i, all scaled by 3/N (so a constant image
 * gives the same response). `w` is [out, 3, kh, kw]; returns a new tensor (caller disposes).
 */
export function adaptFirstConv(w: Tensor, inChannels: number): Tensor {
  const given = w.shape[1];
  return E.tidy(() => {
    if (inChannels === 1) return w.sum([1], true);
    const picked = E.cat(
      Array.from({ length: inChannels }, (_, i) => w.narrow(1, i % given, 1)),
      1,
    );
    return picked.mul(given / inChannels);
  });
}

// ------------------------------------------------------------------------------------------------
// Finding the file

/** The folders torch.hub keeps downloaded weights in, in torch's order of preference. */
export function torchHubDirs(env: NodeJS.ProcessEnv = process.env): string[] {
  const dirs: string[] = [];
  if (env.TORCH_HOME) dirs.push(join(env.TORCH_HOME, 'hub', 'checkpoints'));
  if (env.XDG_CACHE_HOME) dirs.push(join(env.XDG_CACHE_HOME, 'torch', 'hub', 'checkpoints'));
  dirs.push(join(homedir(), '.cache', 'torch', 'hub', 'checkpoints'));
  return [...new Set(dirs)];
}

/** The weight files a hub-style folder may hold, in the order they are tried. */
const FOLDER_FILES = ['model.safetensors', 'pytorch_model.bin', 'open_clip_pytorch_model.bin'];

const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();

/** Where torchvision's ImageNet file `file` of encoder `name` comes from. */
function whereToGet(file: string, name: string): string {
  return (
    `Get it on a machine with network access from https://download.pytorch.org/models/${file}, or in Python with ` +
    `torchvision.models.${name}(weights="IMAGENET1K_V1") (it lands in ~/.cache/torch/hub/checkpoints/), then copy the file here`
  );
}

/**
 * The file `--encoder-weights` names: an existing file, a hub folder's weight file, or a bare
 * name (or `imagenet`) looked up in the torch hub cache. Missing => a UserError naming the file,
 * every place looked and where such files come from.
 */
export function resolveEncoderWeights(value: string, spec: EncoderSpec, name: string, env: NodeJS.ProcessEnv = process.env): string {
  const flag = '--encoder-weights';
  if (isDir(value)) {
    const found = FOLDER_FILES.map((f) => join(value, f)).find(existsSync);
    if (found) return found;
    throw new UserError(`${flag} ${value}: the folder holds none of ${FOLDER_FILES.join(', ')}; give a folder as timm / smp / Hugging Face save it (config.json + model.safetensors), or the weight file itself`);
  }
  if (existsSync(value)) return value;
  const bare = !value.includes('/') && !value.includes('\\');
  if (!bare) throw new UserError(`${flag} ${value}: no such file or folder. ${whereToGet(spec.torchvisionFile, name)}`);
  const file = value === IMAGENET ? spec.torchvisionFile : value;
  const dirs = torchHubDirs(env);
  const hit = dirs.map((d) => join(d, file)).find(existsSync);
  if (hit) return hit;
  throw new UserError(
    `${flag} ${value}: ${file} is not in the current folder nor in the torch hub cache (looked in ${dirs.join(', ')}; ` + `TORCH_HOME or XDG_CACHE_HOME move it). Nothing is downloaded. ${whereToGet(spec.torchvisionFile, name)}`,
  );
}

// ------------------------------------------------------------------------------------------------
// Reading and matching the keys

/** Containers a training script may have wrapped the state dict in (timm's train script, Lightning...). */
const NESTED = ['state_dict', 'model_state_dict', 'model', 'module'];

function tensorsOf(v: PyValue, path: string): Map<string, RawTensor> {
  for (let depth = 0; depth < 3; depth++) {
    const rec = v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Map) && !isRaw(v) ? (v as Record<string, PyValue>) : null;
    if (!rec) break;
    const tensors = Object.entries(rec).filter(([, t]) => isRaw(t)) as [string, RawTensor][];
    if (tensors.length > 0) return new Map(tensors);
    const inner = NESTED.find((k) => rec[k] !== undefined);
    if (!inner) break;
    v = rec[inner];
  }
  throw new UserError(`--encoder-weights ${path}: holds no state dict (a dict of tensor names to tensors)`);
}

/** The file's tensors by name, whatever its format. */
export async function readWeightFile(path: string): Promise<Map<string, RawTensor>> {
  try {
    if (extname(path) === '.safetensors') return new Map(Object.entries((await loadSafetensors(path)).tensors));
    return tensorsOf(await loadPth(path), path);
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`--encoder-weights: cannot read ${(e as Error).message}`, undefined, { cause: e });
  }
}

/** Wrapper prefixes stripped from every key: DataParallel's `module.`, timm/Lightning's `model.`. */
const WRAPPERS = ['module.', 'model.'];

/**
 * The file's keys as the encoder's: wrapper prefixes stripped, only the `encoder.*` part of an smp
 * model file (decoder and head dropped), and the torchvision classifier / unused stages dropped.
 */
export function encoderKeys<T>(sd: Map<string, T>, spec: EncoderSpec, depth: number): Map<string, T> {
  let entries = [...sd];
  for (const w of WRAPPERS) if (entries.every(([k]) => k.startsWith(w))) entries = entries.map(([k, v]) => [k.slice(w.length), v]);
  if (entries.some(([k]) => k.startsWith('encoder.'))) entries = entries.filter(([k]) => k.startsWith('encoder.')).map(([k, v]) => [k.slice(8), v]);
  return new Map(entries.filter(([k]) => !spec.unused(k, depth)));
}

/**
 * Loads `--encoder-weights` into `encoder` (built for `inChannels` and `depth`): strict, with the
 * key diff on any difference; the first convolution adapted to `inChannels` by smp's rule.
 */
export async function loadEncoderWeights(encoder: Encoder, value: string, spec: EncoderSpec, name: string, inChannels: number, depth: number): Promise<string> {
  const path = resolveEncoderWeights(value, spec, name);
  const raw = encoderKeys(await readWeightFile(path), spec, depth);
  const own = encoder.stateDict();
  if (spec.family !== 'resnet' && ![...raw.keys()].some((k) => own.has(k))) {
    throw new UserError(
      `--encoder-weights ${path}: none of its keys (e.g. ${[...raw.keys()].slice(0, 3).join(', ')}) are ${name}'s torchvision keys (e.g. ${[...own.keys()].slice(0, 3).join(', ')}); ` +
        `for the ${spec.family} family only torchvision-layout files are read (timm's differ): use torchvision's file ${spec.torchvisionFile}`,
    );
  }
  const sd = new Map<string, Tensor>();
  try {
    for (const [k, r] of raw) sd.set(k, fromRaw(r));
    const first = sd.get(spec.firstConv);
    if (first && inChannels !== first.shape[1] && first.shape[1] === 3) {
      sd.set(spec.firstConv, adaptFirstConv(first, inChannels).keep());
      first.dispose();
    }
    encoder.loadStateDict(sd);
  } catch (e) {
    if (e instanceof StateDictError) throw new StateDictError(`--encoder-weights ${basename(path)} (${path}) does not fit the ${name} encoder: ${e.message}`, e.report);
    throw e;
  } finally {
    E.dispose([...sd.values()]);
  }
  return path;
}
