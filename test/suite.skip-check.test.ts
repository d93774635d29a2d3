// scripts/run-tests.sh (what `npm test` runs every test file through): under CI=true a skipped or
// todo test fails the run, elsewhere skips are listed with their reasons and allowed. Checked on
// small fake test files.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT } from './helpers/cli.js';
import { tempDir } from './helpers/workdir.js';

const dir = tempDir('skipcheck');

function file(name: string, body: string): string {
  const p = join(dir, name);
  writeFileSync(p, `import { describe, test } from 'node:test';\n${body}\n`);
  return p;
}
const passing = file('pass.test.ts', "test('adds', () => { if (1 + 1 !== 2) throw new Error('math'); });");
const skipping = file(
  'skip.test.ts',
  [
    "test('runs', () => {});",
    "test('needs a widget', { skip: 'the widget is not installed' }, () => {});",
    "test('decides at run time', (t) => { t.skip('no gizmo here'); });",
    "describe('group', () => { test('inner', { skip: 'inner reason' }, () => {}); });",
  ].join('\n'),
);
const todo = file('todo.test.ts', "test('later', { todo: 'write it' }, () => {});");
const failing = file('fail.test.ts', "test('breaks', () => { throw new Error('boom'); });");

function run(files: string[], ci: string | undefined) {
  const r = spawnSync('bash', [join(ROOT, 'scripts', 'run-tests.sh'), ...files], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 120_000,
    env: { ...process.env, CI: ci },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('CI=true: passing files pass', () => {
  const r = run([passing], 'true');
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /adds/, 'the spec output is shown');
  assert.doesNotMatch(r.err, /skipped/);
});

test('CI=true: any skipped test fails the run, each named with its reason', () => {
  const r = run([passing, skipping], 'true');
  assert.equal(r.code, 1, r.err);
  assert.match(r.err, /3 skipped, 0 todo/);
  assert.match(r.err, /needs a widget # SKIP the widget is not installed/);
  assert.match(r.err, /decides at run time # SKIP no gizmo here/);
  assert.match(r.err, /inner # SKIP inner reason/);
  assert.match(r.err, /nothing may skip/);
  assert.equal(run([skipping], '1').code, 1, 'CI=1 counts as CI');
});

test('CI=true: a todo test fails the run too', () => {
  const r = run([todo], 'true');
  assert.equal(r.code, 1, r.err);
  assert.match(r.err, /0 skipped, 1 todo[\s\S]*later # TODO write it/);
});

test('outside CI, skips are listed with their reasons and allowed', () => {
  for (const ci of [undefined, 'false']) {
    const r = run([passing, skipping], ci);
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /3 skipped[\s\S]*needs a widget # SKIP the widget is not installed/);
    assert.doesNotMatch(r.err, /nothing may skip/);
  }
});

test('a failing test fails the run with or without CI; no files is an error', () => {
  assert.notEqual(run([passing, failing], undefined).code, 0);
  assert.notEqual(run([failing], 'true').code, 0);
  const none = run([], 'true');
  assert.equal(none.code, 1);
  assert.match(none.err, /no test files/);
});
