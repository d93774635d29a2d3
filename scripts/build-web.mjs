// Builds the browser predictor page into dist/web/: src/web/main.ts (type-checked by
// `tsc -p tsconfig.web.json`) bundled with its imports (onnxruntime-web, fast-png) by esbuild
// into app.js, plus index.html and style.css. `unet export --format web` copies this folder.
import { copyFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist/web');
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(root, 'src/web/main.ts')],
  outfile: join(out, 'app.js'),
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  sourcemap: true,
  logLevel: 'warning',
});
for (const f of ['index.html', 'style.css']) copyFileSync(join(root, 'src/web', f), join(out, f));
