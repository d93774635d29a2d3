#!/usr/bin/env node
// The `unet` command. Built TypeScript lives in dist/ (npm run build).
import { existsSync } from 'node:fs';
const entry = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  console.error('unet: not built yet. Run `npm run build` in the project folder first.');
  process.exit(1);
}
await import(entry.href);
