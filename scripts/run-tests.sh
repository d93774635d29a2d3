#!/usr/bin/env bash
# Runs the given test files with node's runner (spec output), then checks its summary for skips:
# under CI=true (or CI=1) a skipped or todo test fails the run; elsewhere they are listed with their
# reasons and allowed. scripts/test.sh calls this with every test file.
#   bash scripts/run-tests.sh test/a.test.ts test/b.test.ts
set -uo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then echo "run-tests: no test files given" >&2; exit 1; fi
tap=$(mktemp -t unet-tests-XXXXXX.tap)
trap 'rm -f "$tap"' EXIT
# NODE_TEST_CONTEXT is set when this runs under another node --test (the check's own test): unset,
# the runner reports here instead of to that parent.
env -u NODE_TEST_CONTEXT node --import tsx --test \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$tap" "$@"
rc=$?

# TAP summary lines: "# skipped N", "# todo N"; each such test: "ok N - name # SKIP reason".
count() { awk -v k="$1" '$1 == "#" && $2 == k { n = $3 } END { print n + 0 }' "$tap"; }
skipped=$(count skipped)
todo=$(count todo)
if ! grep -qE '^# (tests|pass) [0-9]+' "$tap"; then
  echo "run-tests: the runner printed no summary" >&2
  [ "$rc" -ne 0 ] || rc=1
fi
if [ $((skipped + todo)) -gt 0 ]; then
  echo "" >&2
  echo "run-tests: $skipped skipped, $todo todo:" >&2
  grep -E '^ *(not )?ok [0-9]+ - .* # (SKIP|TODO)' "$tap" | sed -E 's/^ *(not )?ok [0-9]+ - /  /' >&2
  case "${CI:-}" in
    true | 1)
      echo "run-tests: CI=${CI}: nothing may skip; install what the reasons name (bash scripts/setup.sh --test)" >&2
      [ "$rc" -ne 0 ] || rc=1
      ;;
  esac
fi
exit "$rc"
