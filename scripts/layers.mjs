#!/usr/bin/env node
/**
 * The layering check: walks every relative import of src/ (static, `export ... from`, `import type`
 * and dynamic `await import(...)`), then prints the import cycles and every import that does not go
 * to a lower layer. Exits 1 when either count is above 0. Usage: node scripts/layers.mjs [dir]
 * (default src/; the test passes a fake tree).
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

/**
 * The layers, bottom first: a folder may import only folders on lines above its own. Folders on
 * one line are peers and do not import each other.
 */
const LAYERS = [
  'config', //       the typed options tables: flags, help, config.json, checkpoint config
  'io', //           .pth and safetensors formats, pure TypeScript
  'tracking', //     run folder, metrics, TensorBoard, dashboard, report (plain data in, files out)
  'engine', //       the one importer of the native addon: tensors, ops, autograd
  'nn', //           Module and layers
  'model', //        UNet and the checkpoint format
  'data metrics optim', // images and masks; Dice/IoU; optimizers and schedulers
  'distributed', //  data-parallel processes and sharding
  'predict', //      prediction and evaluation
  'train', //        the training loop (its --patch-size validation uses predict's sliding window)
  'predictor-page', // the browser predictor page (bundled by esbuild; shares predict's palette and PNG writer)
  'export', //       exported model formats, the web folder, its server
  'bench serve', //  `unet bench`: times train, predict and export; `unet serve`: the model server
  'plan', //         `unet plan`: dataset fingerprint and training plan (times steps with bench's)
  'cli', //          wiring: the commander program and the small commands
].map((line) => line.split(' '));

const rank = new Map(LAYERS.flatMap((folders, i) => folders.map((f) => [f, i])));

const root = resolve(process.argv[2] ?? 'src');

/** Every .ts file under root (declaration files too: they can import). */
function sources(dir) {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sources(p);
    return name.endsWith('.ts') ? [p] : [];
  });
}

const files = sources(root);
const known = new Set(files);
/** './x.js' from a/b.ts -> a/x.ts (the ESM .js spelling of a .ts file), or a folder's index.ts. */
function resolveImport(from, spec) {
  const base = resolve(dirname(from), spec);
  for (const p of [base.replace(/\.js$/, '.ts'), base, `${base}.ts`, join(base, 'index.ts')]) if (known.has(p)) return p;
  return null;
}

const edges = new Map(); // file -> [imported files]
const unresolved = [];
for (const file of files) {
  const imports = ts
    .preProcessFile(readFileSync(file, 'utf8'), true, true)
    .importedFiles.map((f) => f.fileName)
    .filter((s) => s.startsWith('.'));
  edges.set(file, []);
  for (const spec of imports) {
    const to = resolveImport(file, spec);
    if (to) edges.get(file).push(to);
    else if (!/\.(css|html|json)$/.test(spec)) unresolved.push(`${rel(file)} imports ${spec}, which is not a file under ${rel(root) || '.'}`);
  }
}

function rel(p) {
  return relative(process.cwd(), p);
}
const folderOf = (file) => relative(root, file).split(sep)[0];

// Import cycles: the strongly connected components with more than one file (or a file importing itself).
function cycles() {
  let index = 0;
  const idx = new Map(),
    low = new Map(),
    stack = [],
    on = new Set(),
    out = [];
  const visit = (v) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of edges.get(v)) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const scc = [];
      let w;
      do {
        w = stack.pop();
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || edges.get(v).includes(v)) out.push(scc.sort());
    }
  };
  for (const f of files) if (!idx.has(f)) visit(f);
  return out;
}

const found = cycles();
const upward = [];
const unplaced = new Set();
for (const [from, tos] of edges) {
  const a = folderOf(from);
  if (!rank.has(a) && !a.endsWith('.ts')) unplaced.add(a);
  for (const to of tos) {
    const b = folderOf(to);
    if (a === b) continue;
    if (!rank.has(a) || !rank.has(b)) continue;
    if (rank.get(b) >= rank.get(a)) upward.push(`${rel(from)} -> ${rel(to)}  (${a} imports ${b}, ${rank.get(b) === rank.get(a) ? 'a peer' : 'a higher layer'})`);
  }
}

// The addon is loaded by engine/native.ts and reached through the engine's functions only.
const addonImports = [...edges].flatMap(([from, tos]) =>
  folderOf(from) !== 'engine' ? tos.filter((to) => relative(root, to) === join('engine', 'native.ts')).map(() => `${rel(from)} imports the addon (engine/native.ts): use the engine's functions`) : [],
);

console.log(`import cycles: ${found.length}`);
for (const c of found) console.log(`  ${c.map(rel).join(' <-> ')}`);
console.log(`imports not to a lower layer: ${upward.length}`);
for (const u of upward) console.log(`  ${u}`);
console.log(`addon imports outside engine/: ${addonImports.length}`);
for (const a of addonImports) console.log(`  ${a}`);
for (const f of unplaced) console.log(`folder ${f}/ is in no layer: add it to LAYERS in scripts/layers.mjs`);
for (const u of unresolved) console.log(u);
process.exitCode = found.length > 0 || upward.length > 0 || addonImports.length > 0 || unplaced.size > 0 || unresolved.length > 0 ? 1 : 0;
