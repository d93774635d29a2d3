#!/usr/bin/env bash
# Issue 22's measure: the guide's recipe against `unet train --auto` under the same wall-clock
# budget, scored on data neither run trained or tuned on, mean ± sd over seeds.
#
#   (a) guide: -s 0.5 -l 1e-5 (RMSprop, plateau), as many epochs as --time-budget allows
#   (b) auto:  --auto --time-budget (plan, then train)
#
# camvid: trains on train/, scores mean IoU over classes 0-10 on val/ (void 11 ignored: -c 11
#         --ignore-index 11 on both sides). isbi: the split of scripts/accuracy.sh (last 5 images
#         by name held out), scores the reference's Dice.
#
#   scripts/auto-vs-guide.sh camvid                  # BUDGET=15m, seeds 0 1 2
#   BUDGET=5m scripts/auto-vs-guide.sh isbi
#   BUDGET=40s SEEDS=0 scripts/auto-vs-guide.sh isbi  # a smoke run
#
# THREADS=1 PARALLEL=1 (the default on 2 cores): (a) and (b) of a seed side by side, one thread
# each. Prints one JSON line per run (score, seconds used of the budget) and a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
DATASET=${1:-camvid}
SEEDS=${SEEDS:-0 1 2}
THREADS=${THREADS:-1}
PARALLEL=${PARALLEL:-1}
export UNET_THREADS=$THREADS
case "$DATASET" in
  camvid) DATA=${DATA:-../shared/data/camvid-12class}; BUDGET=${BUDGET:-15m}; COMMON=(-c 11 --ignore-index 11) ;;
  isbi) DATA=${DATA:-../shared/data/isbi2012-membranes}; BUDGET=${BUDGET:-5m}; COMMON=(-c 2) ;;
  *) echo "auto-vs-guide: the dataset is camvid or isbi, got '$DATASET'" >&2; exit 64 ;;
esac
bash scripts/setup.sh >&2

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ "$DATASET" = camvid ]; then
  train=$DATA/train test=$DATA/val
else
  train=$work/train test=$work/test
  mkdir -p "$train"/{imgs,masks} "$test"/{imgs,masks}
  mapfile -t names < <(ls "$DATA/imgs" | sort)
  for i in "${!names[@]}"; do
    part=$train; [ "$i" -ge $(( ${#names[@]} - 5 )) ] && part=$test
    ln -s "$(realpath "$DATA/imgs/${names[$i]}")" "$part/imgs/${names[$i]}"
    ln -s "$(realpath "$DATA/masks/${names[$i]}")" "$part/masks/${names[$i]}"
  done
fi
echo "auto-vs-guide: $DATASET, budget $BUDGET, seeds $SEEDS, $THREADS thread(s) per run" >&2

# one NAME SEED FLAGS...: trains into $work/NAME-SEED, scores its best model on the held-out set
one() {
  local name=$1 seed=$2 dir="$work/$1-$2"
  shift 2
  node bin/unet.js train --imgs "$train/imgs" --masks "$train/masks" "${COMMON[@]}" --time-budget "$BUDGET" --seed "$seed" \
    --checkpoint-dir "$dir" --logdir "$dir/runs" --no-tensorboard --json "$@" >"$dir.train.json" 2>"$dir.log" \
    || { echo "auto-vs-guide: $name-$seed failed:" >&2; tail -20 "$dir.log" >&2; return 1; }
  node bin/unet.js evaluate -m "$dir/best_model.pth" --imgs "$test/imgs" --masks "$test/masks" --json "$dir.eval.json" >/dev/null 2>>"$dir.log"
  node -e '
    const [name, seed, trainFile, evalFile, runs, dataset] = process.argv.slice(1);
    const fs = require("node:fs");
    const e = JSON.parse(fs.readFileSync(evalFile, "utf8"));
    const run = fs.readdirSync(runs).find((d) => fs.existsSync(`${runs}/${d}/config.json`));
    const budget = JSON.parse(fs.readFileSync(`${runs}/${run}/config.json`, "utf8")).budget ?? {};
    const score = dataset === "camvid" ? e.meanIoUAll : e.referenceDice;
    console.log(JSON.stringify({ recipe: name, seed: Number(seed), score, metric: dataset === "camvid" ? "mean IoU, classes 0-10" : "Dice", budgetSeconds: budget.seconds, usedSeconds: budget.used }));
  ' "$name" "$seed" "$dir.train.json" "$dir.eval.json" "$dir/runs" "$DATASET"
}

for seed in $SEEDS; do
  if [ "$PARALLEL" = 1 ]; then
    one guide "$seed" -s 0.5 -l 1e-5 >"$work/guide-$seed.json" & a=$!
    one auto "$seed" --auto >"$work/auto-$seed.json" & b=$!
    wait $a; wait $b
  else
    one guide "$seed" -s 0.5 -l 1e-5 >"$work/guide-$seed.json"
    one auto "$seed" --auto >"$work/auto-$seed.json"
  fi
  cat "$work/guide-$seed.json" "$work/auto-$seed.json"
done | tee "$work/rows.jsonl"

node -e '
  const rows = require("node:fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const stat = (xs) => { const m = xs.reduce((a, b) => a + b, 0) / xs.length; const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1)) : 0; return `${m.toFixed(4)} ± ${sd.toFixed(4)}`; };
  console.log(`| recipe | ${rows[0].metric} (mean ± sd) | per seed | seconds used of ${rows[0].budgetSeconds} |`);
  console.log("|---|---|---|---|");
  for (const r of ["guide", "auto"]) {
    const g = rows.filter((x) => x.recipe === r);
    console.log(`| ${r} | ${stat(g.map((x) => x.score))} | ${g.map((x) => x.score.toFixed(4)).join(", ")} | ${g.map((x) => Math.round(x.usedSeconds)).join(", ")} |`);
  }
' "$work/rows.jsonl"
