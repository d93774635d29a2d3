/**
 * `unet export --format web`: a self-contained static folder that predicts in the browser:
 * index.html + app.js + style.css (the page, built from src/predictor-page/ into dist/web/), model.onnx,
 * model.json (what the page needs to pre- and post-process) and onnxruntime-web's wasm build, copied
 * from dist/web/ (the build puts it there; the package ships it). Any static file server can serve it; nothing is fetched from elsewhere.
 * An ensemble (several -m) is one model.onnx whose output is the mean probabilities
 * (model.json's `output` tells the page which it gets).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../io/files.js';
import type { RawTensor } from '../io/pth.js';
import type { UNetArgs } from '../model/index.js';
import type { WebModelInfo } from '../predictor-page/infer.js';
import { type OnnxExport, type OnnxMetadata, writeOnnx, writeOnnxEnsemble } from './onnx.js';

export const PAGE_FILES = ['index.html', 'app.js', 'style.css'] as const;
/** onnxruntime-web's WebAssembly build (one thread, SIMD) and its loader. */
export const WASM_FILES = ['ort-wasm-simd-threaded.wasm', 'ort-wasm-simd-threaded.mjs'] as const;

/** dist/web, from src/export (tsx) or dist/export (built). */
function pageDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const dir = [join(here, '../web'), join(here, '../../dist/web')].find((d) => existsSync(join(d, 'app.js')));
  if (!dir) throw new Error('the browser page is not built (dist/web/app.js is missing): run `npm run build`');
  return dir;
}

/** onnxruntime-web's file as the build copied it beside the page (the package ships it there). */
function wasmFile(name: string): string {
  const file = join(pageDir(), name);
  if (!existsSync(file)) throw new Error(`onnxruntime-web's ${name} is not in ${pageDir()}: run \`npm run build\` (it copies it from the onnxruntime-web dev dependency)`);
  return file;
}

/** Writes the folder; returns the ONNX export's figures. */
export async function writeWebSite(dir: string, members: readonly { weights: Map<string, RawTensor>; args: UNetArgs }[], meta: OnnxMetadata, source: string): Promise<OnnxExport> {
  const { args } = members[0];
  const page = pageDir();
  const wasm = WASM_FILES.map(wasmFile);
  for (const f of wasm) if (!existsSync(f)) throw new Error(`${f} is missing: reinstall onnxruntime-web (\`npm install\`)`);
  mkdirSync(dir, { recursive: true });
  const ensemble = members.length > 1;
  const onnx = ensemble ? await writeOnnxEnsemble(join(dir, 'model.onnx'), members, meta) : await writeOnnx(join(dir, 'model.onnx'), members[0].weights, args, meta);
  const info: WebModelInfo = {
    model: 'model.onnx',
    n_channels: args.nChannels,
    n_classes: args.nClasses,
    bilinear: args.bilinear,
    mask_values: JSON.parse(meta.mask_values),
    scale: Number(meta.scale),
    min_size: Number(meta.min_size),
    source,
    output: ensemble ? 'probabilities' : 'logits',
    ...(meta.class_names ? { class_names: JSON.parse(meta.class_names) as string[] } : {}),
  };
  // Every file atomically: a failed export (full disk) leaves no torn file in an earlier folder.
  await writeFileAtomic(join(dir, 'model.json'), [Buffer.from(`${JSON.stringify(info, null, 1)}\n`)]);
  for (const f of PAGE_FILES) await writeFileAtomic(join(dir, f), [readFileSync(join(page, f))]);
  for (const [i, f] of WASM_FILES.entries()) await writeFileAtomic(join(dir, f), [readFileSync(wasm[i])]);
  return onnx;
}
