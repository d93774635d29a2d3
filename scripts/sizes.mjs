#!/usr/bin/env node
// Files over MAX_FILE lines and functions over MAX_FUNCTION lines in src/ (TypeScript) and native/
// (C++: function bodies found by cppFunctions), the house limits of issue 13. A function made of one table (an object or array literal)
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

/**
 * C++ function bodies: the blocks whose header (the text since the last ';', '{' or '}') ends with a
 * parameter list, outside any other function (lambdas count as part of theirs), not a control
 * statement. Comments, strings and character literals are blanked first. Returns name, first line
 * (the header's) and length in lines.
 */
export function cppFunctions(text) {
  const clean = text.replace(/\/\/[^\n]*|\/\*[\s\S]*?\*\/|"(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'/g, (m) => m.replace(/[^\n]/g, ' '));
  const out = [];
  const stack = []; // per open brace: a function record or null
  let headerStart = 0;
  let line = 1;
  const lineAt = [];
  for (let i = 0; i < clean.length; i++) {
    lineAt[i] = line;
    if (clean[i] === '\n') line++;
  }
  for (let i = 0; i < clean.length; i++) {
    const c = clean[i];
    if (c === ';') headerStart = i + 1;
    else if (c === '{') {
      const header = clean.slice(headerStart, i).trim();
      const inFunction = stack.some((f) => f !== null);
      const isFunction = !inFunction && /\)\s*(const\s*)?(noexcept\s*)?(override\s*)?(->\s*[\w:<>&*\s]+)?$/.test(header) && !/^(if|for|while|switch|catch)\b/.test(header) && !/=\s*\[/.test(header);
      if (isFunction) {
        const name = /([~\w:]+)\s*\([^()]*(\([^()]*\)[^()]*)*\)[^)]*$/.exec(header)?.[1] ?? '(function)';
        const offset = headerStart + (clean.slice(headerStart, i).length - clean.slice(headerStart, i).trimStart().length);
        stack.push({ name, line: lineAt[offset] });
      } else stack.push(null);
      headerStart = i + 1;
    } else if (c === '}') {
      const f = stack.pop();
      if (f) out.push({ name: f.name, line: f.line, lines: lineAt[i] - f.line + 1 });
      headerStart = i + 1;
    }
  }
  return out;
}

const files = ['src', 'native']
  .filter((d) => existsSync(join(root, d)))
  .flatMap((d) => walk(join(root, d)))
  .filter((f) => /\.(ts|cpp|h)$/.test(f) && !f.includes('/shim/'));
const long = [];
const functions = [];
for (const file of files) {
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n').length;
  const rel = relative(root, file);
  if (lines > MAX_FILE) long.push(`${rel}: ${lines} lines`);
  if (!file.endsWith('.ts')) {
    for (const f of cppFunctions(text)) if (f.lines > MAX_FUNCTION) functions.push(`${rel}:${f.line} ${f.name}: ${f.lines} lines`);
    continue;
  }
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const visit = (node) => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const end = sf.getLineAndCharacterOfPosition(node.end).line;
      const body = node.body;
      const isTable =
        ts.isBlock(body) &&
        body.statements.length === 1 &&
        ts.isReturnStatement(body.statements[0]) &&
        body.statements[0].expression &&
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
process.exitCode = process.argv.includes('--report') || long.length + functions.length === 0 ? 0 : 1;
