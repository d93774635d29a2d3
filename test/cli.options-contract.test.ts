// The options contract over every command's table (src/config/options.ts): each flag is in the
// command's --help, commander knows no flag that is not in the table (besides the four that steer
// the command itself), and for the commands with --config every option round-trips through a
// config file.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { type Handlers, buildProgram } from '../src/cli/program.js';
import * as O from '../src/config/options.js';

const TABLES: Record<string, Record<string, O.OptionSpec<unknown>>> = {
  train: O.trainOptions,
  plan: O.planOptions,
  predict: O.predictOptions,
  evaluate: O.evaluateOptions,
  export: O.exportOptions,
  serve: O.serveOptions,
  demo: O.demoOptions,
  bench: O.benchOptions,
  dashboard: O.dashboardOptions,
  env: O.envOptions,
};
/** Flags that steer the command rather than describe the run, so no config file or config.json holds them. */
const COMMAND_FLAGS = new Set(['--config', '--json', '--print-config', '--resume', '--help']);

const longFlag = (flags: string) => /--[a-z0-9-]+/.exec(flags)?.[0] ?? '';
const sub = (name: string): Command => {
  const cmd = buildProgram(undefined, { exitOverride: true }).commands.find((c) => c.name() === name);
  assert.ok(cmd, `unet ${name}`);
  return cmd;
};

test('every command of `unet` has its table here (a new command gets a contract)', () => {
  const names = buildProgram(undefined, { exitOverride: true })
    .commands.map((c) => c.name())
    .filter((n) => n !== 'help');
  assert.deepEqual(names.sort(), Object.keys(TABLES).sort());
});

for (const [name, table] of Object.entries(TABLES)) {
  test(`unet ${name}: every flag of its table is in --help, and every flag it accepts is in its table`, () => {
    const cmd = sub(name);
    const help = cmd.helpInformation();
    for (const [key, spec] of Object.entries(table)) {
      assert.ok(help.includes(longFlag(spec.flags)), `${key}: ${longFlag(spec.flags)} missing from unet ${name} --help`);
    }
    const inTable = new Set(Object.values(table).flatMap((s) => [longFlag(s.flags), ...(s.alias ? [longFlag(s.alias)] : [])]));
    for (const o of cmd.options) {
      const flag = o.long ?? '';
      assert.ok(inTable.has(flag) || COMMAND_FLAGS.has(flag), `unet ${name} accepts ${flag}, which is in no options table`);
    }
  });
}

const dir = mkdtempSync(join(tmpdir(), 'options-contract-'));
for (const name of ['train', 'predict', 'evaluate'] as const) {
  test(`unet ${name} --config: a file holding every option of the table (at its default) gives what the defaults give`, async () => {
    const table = TABLES[name];
    const file = join(dir, `${name}.yaml`);
    // required options have no default worth writing; -m is given for predict and evaluate
    const values = Object.fromEntries(Object.entries(O.defaults(table)).filter(([, v]) => v !== undefined));
    writeFileSync(file, stringify(values));
    const got: unknown[] = [];
    const handlers: Handlers = { train: async (c) => (got.push(c), 0), predict: async (c) => (got.push(c), 0), evaluate: async (c) => (got.push(c), 0) };
    const model = name === 'train' ? [] : ['-m', 'a.pth'];
    await buildProgram(handlers, { exitOverride: true }).parseAsync([name, ...model], { from: 'user' });
    await buildProgram(handlers, { exitOverride: true }).parseAsync([name, ...model, '--config', file], { from: 'user' });
    assert.equal(got.length, 2);
    assert.deepEqual(got[1], got[0]);
  });
}
