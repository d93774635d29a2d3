// --print-config prints the resolved options as YAML and runs nothing; --config reads it back to the same options.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse } from 'yaml';
import { type Handlers, buildProgram } from '../src/cli/program.js';

/** Runs `unet ARGV` with handlers that record what they were given; stdout captured. */
async function run(argv: string[]): Promise<{ out: string; given: unknown }> {
  let given: unknown = null;
  const handlers: Handlers = { train: async (c) => ((given = c), 0), predict: async (c) => ((given = c), 0), evaluate: async (c) => ((given = c), 0) };
  const write = process.stdout.write;
  let out = '';
  process.stdout.write = ((s: string) => ((out += s), true)) as typeof process.stdout.write;
  try {
    await buildProgram(handlers, { exitOverride: true }).parseAsync(argv, { from: 'user' });
  } finally {
    process.stdout.write = write;
  }
  return { out, given };
}

const dir = mkdtempSync(join(tmpdir(), 'print-config-'));

for (const argv of [
  ['train', '-e', '3', '-b', '4', '--optimizer', 'adam', '--class-names', 'bg,cell', '--patch-size', '64'],
  ['train', '--time-budget', '5m', '--ignore-index', '11', '-c', '11'],
  ['predict', '-m', 'a.pth', '-i', 'x.png', '--tile', '256', '--tta', 'flip'],
  ['evaluate', '-m', 'a.pth', '--surface-tol', '2'],
]) {
  test(`unet ${argv.join(' ')} --print-config: YAML that --config reads back to the same options, nothing run`, async () => {
    const printed = await run([...argv, '--print-config']);
    assert.equal(printed.given, null, 'nothing ran');
    const yaml = parse(printed.out) as Record<string, unknown>;
    assert.ok(Object.keys(yaml).length > 5, printed.out);
    const direct = await run(argv);
    const file = join(dir, `${argv[0]}-${argv.length}.yaml`);
    writeFileSync(file, printed.out);
    const replayed = await run([argv[0], ...(argv.includes('-m') ? ['-m', 'a.pth'] : []), '--config', file]);
    assert.deepEqual(replayed.given, direct.given);
  });
}

test('--time-budget without -e: epochs left out of the printed options (read back, they would cap the planned epochs)', async () => {
  const { out } = await run(['train', '--time-budget', '90s', '--print-config']);
  const yaml = parse(out) as Record<string, unknown>;
  assert.equal(yaml.timeBudget, 90);
  assert.equal('epochs' in yaml, false);
});
