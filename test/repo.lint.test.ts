// Biome's lint (biome.json; the disabled rules and why: docs/internals.md) finds nothing, not even
// an info, and its formatter has nothing to change. Biome is also run on a small fake tree with the same rules to prove it can fail.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ROOT } from './helpers/cli.js';

const BIOME = join(ROOT, 'node_modules', '.bin', 'biome');
const biome = (cwd: string, paths: string[]) => {
  const r = spawnSync(BIOME, ['lint', '--error-on-warnings', '--colors=off', ...paths], { cwd, encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
};

// Every linted folder (biome.json's includes say which files in them).
const CLEAN = ['src', 'test', 'scripts', 'native', 'bin'];

function assertClean(r: { status: number | null; out: string }, minFiles: number): void {
  assert.equal(r.status, 0, r.out);
  assert.doesNotMatch(r.out, /^Found \d+ (error|warning|info)/m, r.out);
  const checked = Number(/^Checked (\d+) files?/m.exec(r.out)?.[1]);
  assert.ok(checked >= minFiles, `biome checked ${checked} files, expected at least ${minFiles}:\n${r.out}`);
}

test('biome lint: no diagnostic in the whole tree', () => {
  assertClean(biome(ROOT, CLEAN), 300);
});

test('biome format: the whole tree is formatted (biome.json: 2 spaces, single quotes, 240 columns; three hand-laid tables excepted)', () => {
  const r = spawnSync(BIOME, ['format', '--colors=off', ...CLEAN], { cwd: ROOT, encoding: 'utf8' });
  const out = `${r.stdout}${r.stderr}`;
  assert.equal(r.status, 0, `run \`npx biome format --write\`:\n${out}`);
  assert.ok(Number(/^Checked (\d+) files?/m.exec(out)?.[1]) >= 300, out);
});

test('a fake tree: an unformatted file fails the format check', () => {
  const fake = mkdtempSync(join(tmpdir(), 'unet-format-'));
  after(() => rmSync(fake, { recursive: true, force: true }));
  const config = JSON.parse(readFileSync(join(ROOT, 'biome.json'), 'utf8'));
  delete config.$schema;
  writeFileSync(join(fake, 'biome.json'), JSON.stringify(config));
  mkdirSync(join(fake, 'src'));
  writeFileSync(join(fake, 'src', 'a.ts'), 'export const a = {b:1};\n');
  const r = spawnSync(BIOME, ['format', '--colors=off', 'src'], { cwd: fake, encoding: 'utf8' });
  assert.equal(r.status, 1, `${r.stdout}${r.stderr}`);
});

test('a fake tree with the same rules: an unused import fails, its removal passes', () => {
  const fake = mkdtempSync(join(tmpdir(), 'unet-lint-'));
  after(() => rmSync(fake, { recursive: true, force: true }));
  const config = JSON.parse(readFileSync(join(ROOT, 'biome.json'), 'utf8'));
  delete config.$schema;
  writeFileSync(join(fake, 'biome.json'), JSON.stringify(config));
  mkdirSync(join(fake, 'src'));
  const file = join(fake, 'src', 'a.ts');
  writeFileSync(file, "import { join } from 'node:path';\nexport const a = 1;\n");
  const r = biome(fake, ['src']);
  assert.equal(r.status, 1, r.out);
  assert.match(r.out, /src\/a\.ts:1:\d+ lint\/correctness\/noUnusedImports/);
  writeFileSync(file, 'export const a = 1;\n');
  assertClean(biome(fake, ['src']), 1);
});
