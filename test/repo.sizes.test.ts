// The house limits (issue 13): no source file in src/ or native/ over 450 lines, no TypeScript
// or C++ function over 80 lines except one that only returns a table (scripts/sizes.mjs). The script is
// also run on a small fake tree to prove it can fail.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT } from './helpers/cli.js';
import { tempDir } from './helpers/workdir.js';

const SCRIPT = join(ROOT, 'scripts', 'sizes.mjs');
const sizes = (...args: string[]) => spawnSync(process.execPath, [SCRIPT, ...args], { cwd: ROOT, encoding: 'utf8' });

test('no file over 450 lines and no function over 80 lines in src/ and native/', () => {
  const r = sizes();
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /^files over 450 lines: 0$/m);
  assert.match(r.stdout, /^functions over 80 lines: 0$/m);
});

test('a fake tree: a long file and a long function fail, a long table does not', () => {
  const fake = tempDir('sizes');
  mkdirSync(join(fake, 'src', 'a'), { recursive: true });
  mkdirSync(join(fake, 'native'), { recursive: true });
  const body = (n: number) => Array.from({ length: n }, (_, i) => `  x += ${i};`).join('\n');
  writeFileSync(join(fake, 'src', 'a', 'long.ts'), `export function long(): number {\n  let x = 0;\n${body(85)}\n  return x;\n}\n`);
  writeFileSync(join(fake, 'src', 'a', 'table.ts'), `export function table() {\n  return {\n${Array.from({ length: 90 }, (_, i) => `    k${i}: ${i},`).join('\n')}\n  };\n}\n`);
  writeFileSync(join(fake, 'native', 'big.cpp'), `${'// line\n'.repeat(460)}`);
  const r = sizes(fake);
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stdout, /native\/big\.cpp: 461 lines/);
  assert.match(r.stdout, /src\/a\/long\.ts:1 long: 89 lines/);
  assert.doesNotMatch(r.stdout, /table/);
  assert.equal(sizes('--report', fake).status, 0, '--report only reports');
});

test('a fake tree: a long C++ function fails; a long namespace of short functions, its lambdas and comments do not', () => {
  const fake = tempDir('sizes-cpp');
  mkdirSync(join(fake, 'native'), { recursive: true });
  const body = (n: number) => Array.from({ length: n }, (_, i) => `  x += ${i}; // a brace in a comment { and "a string {"`).join('\n');
  const short = (i: number) => `Napi::Value f${i}(const Napi::CallbackInfo& info) {\n  auto g = [&](int a) { return a + 1; };\n  return g(${i});\n}`;
  writeFileSync(join(fake, 'native', 'ops.cpp'), `namespace {\n${Array.from({ length: 30 }, (_, i) => short(i)).join('\n')}\n}  // namespace\n\nstatic int Long(int x) {\n  if (x) {\n${body(82)}\n  }\n  return x;\n}\n`);
  const r = sizes(fake);
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stdout, /^functions over 80 lines: 1$/m);
  assert.match(r.stdout, /native\/ops\.cpp:\d+ Long: 87 lines/);
});
