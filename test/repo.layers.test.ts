// The layering of src/ (scripts/layers.mjs): no import cycles, and every import goes to a lower
// layer. The script is also run on a small fake tree to prove it can fail.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { ROOT } from './helpers/cli.js';

const SCRIPT = join(ROOT, 'scripts', 'layers.mjs');
const layers = (dir?: string) => spawnSync(process.execPath, [SCRIPT, ...(dir ? [dir] : [])], { cwd: ROOT, encoding: 'utf8' });

const fake = mkdtempSync(join(tmpdir(), 'unet-layers-'));
after(() => rmSync(fake, { recursive: true, force: true }));
const write = (files: Record<string, string>) => {
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(dirname(join(fake, name)), { recursive: true });
    writeFileSync(join(fake, name), text);
  }
};

test('src/ has no import cycle and no import to a higher layer or a peer', () => {
  const r = layers();
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^import cycles: 0$/m);
  assert.match(r.stdout, /^imports not to a lower layer: 0$/m);
  assert.match(r.stdout, /^addon imports outside engine\/: 0$/m);
});

test('a fake tree: a cycle through a dynamic import, an upward import, a peer import and an unplaced folder all fail', () => {
  write({
    'engine/a.ts': "export const a = 1;\nexport async function later() { return (await import('./b.js')).b; }\n",
    'engine/b.ts': "import { a } from './a.js';\nexport const b = a + 1;\n",
    'model/c.ts': "import type { X } from '../cli/x.js';\nexport type C = X;\n",
    'cli/x.ts': "import { b } from '../engine/b.js';\nexport type X = typeof b;\n",
    'bench/t.ts': "export { p } from '../serve/p.js';\n",
    'serve/p.ts': "// import '../cli/x.js' in a comment is not an import\nexport const p = '../cli/x.js';\n",
  });
  let r = layers(fake);
  assert.equal(r.status, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /^import cycles: 1$/m);
  assert.match(r.stdout, /engine\/a\.ts <-> .*engine\/b\.ts/);
  assert.match(r.stdout, /^imports not to a lower layer: 2$/m);
  assert.match(r.stdout, /model\/c\.ts -> .*cli\/x\.ts {2}\(model imports cli, a higher layer\)/);
  assert.match(r.stdout, /bench\/t\.ts -> .*serve\/p\.ts {2}\(bench imports serve, a peer\)/);

  write({ 'misc/m.ts': 'export {};\n' });
  r = layers(fake);
  assert.match(r.stdout, /folder misc\/ is in no layer/);
});

test('a fake tree: only engine/ imports the addon (engine/native.ts)', () => {
  const tree = mkdtempSync(join(tmpdir(), 'unet-layers-addon-'));
  after(() => rmSync(tree, { recursive: true, force: true }));
  const put = (name: string, text: string) => {
    mkdirSync(dirname(join(tree, name)), { recursive: true });
    writeFileSync(join(tree, name), text);
  };
  put('engine/native.ts', 'export const N = {};\n');
  put('engine/ops.ts', "import { N } from './native.js';\nexport const ops = N;\n");
  let r = layers(tree);
  assert.equal(r.status, 0, r.stdout);
  assert.match(r.stdout, /^addon imports outside engine\/: 0$/m);
  put('data/resize.ts', "import { N } from '../engine/native.js';\nexport const r = N;\n");
  r = layers(tree);
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stdout, /^addon imports outside engine\/: 1$/m);
  assert.match(r.stdout, /data\/resize\.ts imports the addon/);
});
