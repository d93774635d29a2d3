#!/usr/bin/env bash
# Issue 22's measure: the guide's recipe (-s 0.5 -l 1e-5: RMSprop, plateau, as many epochs as the
# budget allows) against `unet train --auto`, side by side under the same wall-clock budget.
#   scripts/auto-vs-guide.sh camvid                   # BUDGET=15m, seeds 0 1 2
#   BUDGET=5m scripts/auto-vs-guide.sh isbi
#   BUDGET=40s SEEDS=0 scripts/auto-vs-guide.sh isbi  # a smoke run
# See scripts/side-by-side.sh for the splits, scores and environment.
exec "$(dirname "$0")/side-by-side.sh" "${1:-camvid}" 'guide:-s 0.5 -l 1e-5' 'auto:--auto'
