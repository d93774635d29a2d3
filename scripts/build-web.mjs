// Builds the two browser pages (both type-checked by `tsc -p tsconfig.web.json`) with esbuild:
// - dist/web/: the predictor page, src/predictor-page/main.ts bundled with its imports (onnxruntime-web,
//   fast-png) into app.js, plus index.html, style.css and onnxruntime-web's wasm build (the two files
//   the page loads, 14 MB of the package's 143 MB: onnxruntime-web is a dev dependency, and the
//   package ships these copies). `unet export --format web` copies the folder.
// - dist/dashboard/: the dashboard and report page, src/tracking/client/main.ts as app.js (a
//   classic script: the report inlines it) and style.css as app.css. uPlot stays its own file.
import { copyFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const common = { bundle: true, platform: 'browser', target: 'es2022', minify: true, logLevel: 'warning' };

const web = join(root, 'dist/web');
mkdirSync(web, { recursive: true });
await build({ ...common, entryPoints: [join(root, 'src/predictor-page/main.ts')], outfile: join(web, 'app.js'), format: 'esm', sourcemap: true });
for (const f of ['index.html', 'style.css']) copyFileSync(join(root, 'src/predictor-page', f), join(web, f));
const ort = dirname(createRequire(join(root, 'package.json')).resolve('onnxruntime-web/ort-wasm-simd-threaded.wasm'));
for (const f of ['ort-wasm-simd-threaded.wasm', 'ort-wasm-simd-threaded.mjs']) copyFileSync(join(ort, f), join(web, f));

const dashboard = join(root, 'dist/dashboard');
mkdirSync(dashboard, { recursive: true });
await build({ ...common, entryPoints: [join(root, 'src/tracking/client/main.ts')], outfile: join(dashboard, 'app.js'), format: 'iife' });
copyFileSync(join(root, 'src/tracking/client/style.css'), join(dashboard, 'app.css'));
