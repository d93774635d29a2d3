#!/usr/bin/env node
// Files over MAX_FILE lines and functions over MAX_FUNCTION lines in src/ (TypeScript) and native/
// (C++), the house limits of issue 13. A function made of one table (an object or array literal)
// is not counted. Prints the offenders; exits 1 if there are any (--report: always 0).
//   node scripts/sizes.mjs [--report] [ROOT]     (ROOT: another tree with src/ and native/, for its test)
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

const MAX_FILE = 450;
const MAX_FUNCTION = 80;
const root = process.argv.slice(2).find((a) => !a.startsWith('--')) ?? new URL('..', import.meta.url).pathname;

function walk(dir) {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

const files = ['src', 'native'].filter((d) => existsSync(join(root, d))).flatMap((d) => walk(join(root, d))).filter((f) => /\.(ts|cpp|h)$/.test(f) && !f.includes('/shim/'));
const long = [];
const functions = [];
for (const file of files) {
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n').length;
  const rel = relative(root, file);
  if (lines > MAX_FILE) long.push(`${rel}: ${lines} lines`);
  if (!file.endsWith('.ts')) continue;
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const visit = (node) => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const end = sf.getLineAndCharacterOfPosition(node.end).line;
      const body = node.body;
      const isTable = ts.isBlock(body) && body.statements.length === 1 && ts.isReturnStatement(body.statements[0]) && body.statements[0].expression &&
        (ts.isObjectLiteralExpression(body.statements[0].expression) || ts.isArrayLiteralExpression(body.statements[0].expression));
      if (end - start + 1 > MAX_FUNCTION && !isTable) {
        const name = node.name?.getText(sf) ?? (ts.isVariableDeclaration(node.parent) ? node.parent.name.getText(sf) : '(anonymous)');
        functions.push(`${rel}:${start + 1} ${name}: ${end - start + 1} lines`);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
}
console.log(`files over ${MAX_FILE} lines: ${long.length}`);
for (const l of long) console.log(`  ${l}`);
console.log(`functions over ${MAX_FUNCTION} lines: ${functions.length}`);
for (const f of functions) console.log(`  ${f}`);
process.exit(process.argv.includes('--report') || long.length + functions.length === 0 ? 0 : 1);
