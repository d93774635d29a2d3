/**
 * `--config FILE` (JSON or YAML): option values for train, predict or evaluate. Keys are the
 * option names as a run's config.json writes them (`batchSize`) or as flags (`batch-size`,
 * `batch_size`); values are checked by the same parsers as the flags. Precedence: defaults <
 * the file < the command line. A run's own config.json replays that run: the facts it records
 * beside the options (mask values, image counts, world size, versions) are accepted and ignored.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { OptionError, type OptionSpec, longFlag } from '../config/options.js';

/** Recorded in runs/<run>/config.json by `unet train` beside the options. */
export const RUN_RECORD_KEYS = ['maskValues', 'nChannels', 'trainImages', 'valImages', 'worldSize', 'versions', 'budget'];

const camel = (k: string) => k.replace(/[-_]([a-z0-9])/g, (_, c: string) => c.toUpperCase());

function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  }
  return d[a.length][b.length];
}

export function readMapping(file: string, flag = '--config'): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new OptionError(`${flag} ${file}: ${code === 'ENOENT' ? 'file not found' : (e as Error).message}`);
  }
  let data: unknown;
  const json = extname(file).toLowerCase() === '.json';
  try {
    data = json ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new OptionError(`${flag} ${file}: not valid ${json ? 'JSON' : 'YAML'}: ${(e as Error).message.split('\n')[0]}`);
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new OptionError(`${flag} ${file}: expected a mapping of option names to values (e.g. epochs: 10)`);
  }
  return data as Record<string, unknown>;
}

function convert(where: string, key: string, spec: OptionSpec<unknown>, v: unknown): unknown {
  if (JSON.stringify(v) === JSON.stringify(spec.default)) return Array.isArray(v) ? [...v] : v;
  const flag = longFlag(spec);
  if (!spec.parse) {
    if (typeof v !== 'boolean') throw new OptionError(`${where}: ${key} (${flag}) must be true or false, got ${JSON.stringify(v)}`);
    return v;
  }
  const parse = spec.parse;
  // A list option that is one flag value on the command line (--class-names a,b): a YAML/JSON list too.
  if (Array.isArray(v) && Array.isArray(spec.default) && !spec.variadic && v.every((x) => typeof x === 'string')) v = v.join(',');
  // A size as a JSON pair ([h, w]) or weights as a list (--class-weights 1,2, as config.json records them): the flag's spelling (HxW, w0,w1).
  if (Array.isArray(v) && !Array.isArray(spec.default) && !spec.variadic && v.length > 0 && v.every((x) => typeof x === 'number')) v = v.join(key === 'patchSize' ? 'x' : ',');
  const one = (x: unknown) => {
    if (typeof x !== 'string' && typeof x !== 'number') throw new OptionError(`${where}: ${key} (${flag}) expects a ${spec.variadic ? 'list of strings' : 'single value'}, got ${JSON.stringify(x)}`);
    try {
      return parse(String(x), flag);
    } catch (e) {
      throw new OptionError(`${where}: ${key}: ${(e as Error).message}`);
    }
  };
  return spec.variadic ? (Array.isArray(v) ? v : [v]).map(one) : one(v);
}

/** The file's values for a table's options; unknown keys are refused, naming the key and the file. */
export function readConfigFile(file: string, table: Record<string, OptionSpec<unknown>>, ignore: readonly string[] = []): Record<string, unknown> {
  return configValues(`--config ${file}`, readMapping(file), table, ignore);
}

/** A mapping's values for a table's options, checked by the flags' parsers; `where` starts each error ('--config FILE'). */
export function configValues(where: string, data: Record<string, unknown>, table: Record<string, OptionSpec<unknown>>, ignore: readonly string[] = []): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [raw, v] of Object.entries(data)) {
    if (ignore.includes(raw)) continue;
    // Own keys only: 'toString' or 'constructor' are not options.
    const key = Object.hasOwn(table, raw) ? raw : camel(raw);
    const spec = Object.hasOwn(table, key) ? table[key] : undefined;
    if (!spec) {
      const near = Object.keys(table)
        .map((k) => ({ k, d: Math.min(distance(raw, k), distance(camel(raw), k)) }))
        .sort((a, b) => a.d - b.d)[0];
      const hint = near && near.d <= 3 ? ` (did you mean '${near.k}'?)` : '';
      throw new OptionError(`${where}: unknown key '${raw}'${hint}; keys are option names such as ${Object.keys(table).slice(0, 3).join(', ')} (see --help)`);
    }
    if (key === 'classes' && Object.hasOwn(table, 'classNames') && v !== null && typeof v === 'object' && !Array.isArray(v)) {
      Object.assign(out, classesMap(where, v as Record<string, unknown>));
      continue;
    }
    out[key] = convert(where, raw, spec, v);
  }
  return out;
}

/** `classes: {0: background, 1: sky}`: the number of classes and their names, by class index. */
function classesMap(where: string, map: Record<string, unknown>): { classes: number; classNames: string[] } {
  const entries = Object.entries(map);
  const names = entries.map((_, i) => map[String(i)]);
  if (entries.length === 0 || names.some((n) => typeof n !== 'string' || n.trim() === '') || !entries.every(([k]) => /^(0|[1-9]\d*)$/.test(k))) {
    throw new OptionError(`${where}: classes is a number, or a map of class indices 0..n-1 to names (e.g. {0: background, 1: sky}); got ${JSON.stringify(map)}`);
  }
  return { classes: entries.length, classNames: (names as string[]).map((n) => n.trim()) };
}
