#!/usr/bin/env bash
# Runs the whole test suite. Node 20's runner finds no .ts files by itself, so the shell expands an
# explicit list; an empty list is an error, never a silent pass.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
shopt -s nullglob
files=(test/*.test.ts)
if [ ${#files[@]} -eq 0 ]; then echo "test: no test files found" >&2; exit 1; fi
exec node --import tsx --test --test-reporter=spec "${files[@]}"
