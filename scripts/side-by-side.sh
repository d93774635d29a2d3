#!/usr/bin/env bash
# Side-by-side accuracy measure: recipes ("arms") trained under the same wall-clock budget, at the
# same time, and scored on data no run trained or tuned on; mean ± sd over seeds.
#
#   scripts/side-by-side.sh DATASET 'NAME:TRAIN FLAGS[|EVALUATE FLAGS]' ...
#   scripts/side-by-side.sh isbi 'guide:-s 0.5 -l 1e-5' 'auto:--auto'
#   scripts/side-by-side.sh isbi 'auto:--auto' 'ema+tta:--auto --ema|--tta flip'
#
# camvid: trains on train/, scores mean IoU over classes 0-10 on val/ (void 11 ignored: -c 11
#         --ignore-index 11 for every arm). isbi: the split of scripts/accuracy.sh (last 5 images by
#         name held out), scores the reference's Dice.
# Environment: BUDGET (camvid 15m, isbi 5m), SEEDS (0 1 2), THREADS per run (1), JOBS runs at the
# same time (2: on 2 cores, two runs of one thread each; 1: one after another), TRAIN_COUNT=N
# (isbi: train on the first N images only), WORK=DIR (keep the runs there).
# Prints one JSON line per run (score, seconds and optimizer steps used of the budget, evaluation
# seconds) and a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
DATASET=${1:?usage: side-by-side.sh camvid|isbi 'NAME:TRAIN FLAGS[|EVALUATE FLAGS]' ...}
shift
[ $# -ge 1 ] || { echo "side-by-side: name at least one arm, e.g. 'auto:--auto'" >&2; exit 64; }
SEEDS=${SEEDS:-0 1 2}
THREADS=${THREADS:-1}
JOBS=${JOBS:-2}
export UNET_THREADS=$THREADS
NAME=side-by-side
source scripts/held-out.sh
BUDGET=${BUDGET:-$DEFAULT_BUDGET}
echo "side-by-side: $DATASET, budget $BUDGET, seeds $SEEDS, $THREADS thread(s) per run, arms: $*" >&2

# one ARM SEED: trains into $work/NAME-SEED, scores its best model on the held-out set
one() {
  local name=${1%%:*} rest=${1#*:} seed=$2
  local trainFlags=${rest%%|*} evalFlags=""
  [[ "$rest" == *"|"* ]] && evalFlags=${rest#*|}
  local dir="$work/$name-$seed"
  # shellcheck disable=SC2086 # the flags are words
  node bin/unet.js train --imgs "$train/imgs" --masks "$train/masks" "${COMMON[@]}" --time-budget "$BUDGET" --seed "$seed" \
    --checkpoint-dir "$dir" --logdir "$dir/runs" --no-tensorboard --json $trainFlags >"$dir.train.json" 2>"$dir.log" \
    || { echo "side-by-side: $name-$seed failed:" >&2; tail -20 "$dir.log" >&2; return 1; }
  local t0=$SECONDS
  # shellcheck disable=SC2086
  node bin/unet.js evaluate -m "$dir/best_model.pth" --imgs "$test/imgs" --masks "$test/masks" --json "$dir.eval.json" $evalFlags >/dev/null 2>>"$dir.log"
  node -e '
    const [name, seed, evalFile, runs, dataset, evalSeconds, scoreField] = process.argv.slice(1);
    const fs = require("node:fs");
    const e = JSON.parse(fs.readFileSync(evalFile, "utf8"));
    const run = fs.readdirSync(runs).find((d) => fs.existsSync(`${runs}/${d}/config.json`));
    const budget = JSON.parse(fs.readFileSync(`${runs}/${run}/config.json`, "utf8")).budget ?? {};
    const score = e[scoreField];
    console.log(JSON.stringify({ recipe: name, seed: Number(seed), score, metric: dataset === "camvid" ? "mean IoU, classes 0-10" : "Dice",
      budgetSeconds: budget.seconds, usedSeconds: budget.used, steps: budget.steps, evalSeconds: e.seconds, evalWallSeconds: Number(evalSeconds), tta: e.tta }));
  ' "$name" "$seed" "$dir.eval.json" "$dir/runs" "$DATASET" $((SECONDS - t0)) "$SCORE"
}

# runs in seed order, JOBS at a time (each waits for a free slot), rows printed in that order
runs=()
for seed in $SEEDS; do for arm in "$@"; do runs+=("$seed $arm"); done; done
for r in "${runs[@]}"; do
  seed=${r%% *} arm=${r#* }
  while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
  one "$arm" "$seed" >"$work/${arm%%:*}-$seed.json" &
done
wait
for r in "${runs[@]}"; do
  seed=${r%% *} arm=${r#* }
  cat "$work/${arm%%:*}-$seed.json"
done | tee "$work/rows.jsonl"

node -e '
  const rows = require("node:fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const stat = (xs) => { const m = xs.reduce((a, b) => a + b, 0) / xs.length; const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1)) : 0; return `${m.toFixed(4)} ± ${sd.toFixed(4)}`; };
  console.log(`| recipe | ${rows[0].metric} (mean ± sd) | per seed | seconds used of ${rows[0].budgetSeconds} | optimizer steps | evaluate s (its own timing) |`);
  console.log("|---|---|---|---|---|---|");
  for (const r of [...new Set(rows.map((x) => x.recipe))]) {
    const g = rows.filter((x) => x.recipe === r);
    const list = (f) => g.map(f).join(", ");
    console.log(`| ${r} | ${stat(g.map((x) => x.score))} | ${list((x) => x.score.toFixed(4))} | ${list((x) => Math.round(x.usedSeconds))} | ${list((x) => x.steps)} | ${list((x) => x.evalSeconds.toFixed(2))} |`);
  }
' "$work/rows.jsonl"
