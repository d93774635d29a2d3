/** Versions recorded in config.json and checkpoints. */
import { readFileSync } from 'node:fs';
import * as E from '../engine/index.js';

export function versions(): Record<string, string> {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  const info = E.buildInfo();
  return { unetTs: pkg.version, node: process.version, libtorch: info.torch, cuda: String(info.cuda) };
}
