#!/usr/bin/env bash
# Issue 23's measures, on top of `train --auto` (the project's best recipe), mean ± sd over seeds:
#   ema-tta   --auto against --auto --ema --ema-warmup auto scored with --tta flip (camvid: hflip),
#             side by side under one budget
#             (scripts/side-by-side.sh; its table also shows optimizer steps and evaluation seconds)
#   folds     --auto --folds 5 per seed (budget K x FOLD_BUDGET): each fold's best model and the
#             5-model ensemble scored on the held-out images; --postprocess auto against none on
#             the out-of-fold predictions it was decided on (from cv-summary.json)
#
#   scripts/accuracy-kit.sh ema-tta isbi             # BUDGET=5m (camvid: 15m), seeds 0 1 2
#   FOLD_BUDGET=2m scripts/accuracy-kit.sh folds isbi
# The TTA timing goal (views x one view + 10%) is `unet bench --predict --tta flip`.
set -euo pipefail
cd "$(dirname "$0")/.."
PART=${1:?usage: accuracy-kit.sh ema-tta|folds camvid|isbi}
DATASET=${2:-isbi}
if [ "$PART" = ema-tta ]; then
  # The EMA's warm-up fitted to the run's planned steps (Ultralytics' tau 2000 is for runs of many
  # thousand); images with an up (CamVid: --auto plans --upright) get the views they trained on.
  tta=flip
  [ "$DATASET" = camvid ] && tta=hflip
  exec scripts/side-by-side.sh "$DATASET" 'auto:--auto' "ema+tta:--auto --ema --ema-warmup auto|--tta $tta"
fi
[ "$PART" = folds ] || { echo "accuracy-kit: the part is ema-tta or folds, got '$PART'" >&2; exit 64; }

SEEDS=${SEEDS:-0 1 2}
K=${K:-5}
FOLD_BUDGET=${FOLD_BUDGET:-2m}
export UNET_THREADS=${THREADS:-1}
NAME=accuracy-kit
source scripts/held-out.sh
# the cross-validation's budget: K x FOLD_BUDGET, shared equally by the folds (the plan comes first)
total=$(node -e 'const m = /^(\d+(?:\.\d+)?)(s|m|h)?$/.exec(process.argv[1]); if (!m) process.exit(64); console.log(`${Math.round(Number(m[1]) * { s: 1, m: 60, h: 3600 }[m[2] ?? "s"] * Number(process.argv[2]))}s`)' "$FOLD_BUDGET" "$K")
echo "accuracy-kit folds: $DATASET, $K folds, budget $total (the plan, then an equal share per fold), seeds $SEEDS" >&2

fold_seed() {
  local seed=$1
  local dir="$work/cv-$seed"
  node bin/unet.js train --imgs "$train/imgs" --masks "$train/masks" "${COMMON[@]}" --auto --folds "$K" --time-budget "$total" --seed "$seed" \
    --checkpoint-dir "$dir" --logdir "$dir/runs" --no-tensorboard >"$dir.log" 2>&1 || { echo "accuracy-kit: cv seed $seed failed" >&2; tail -20 "$dir.log" >&2; return 1; }
  local models=()
  for f in $(seq 0 $((K - 1))); do
    node bin/unet.js evaluate -m "$dir/fold$f/best_model.pth" --imgs "$test/imgs" --masks "$test/masks" --json "$dir.fold$f.json" >/dev/null 2>>"$dir.log"
    models+=(-m "$dir/fold$f/best_model.pth")
  done
  node bin/unet.js evaluate "${models[@]}" --imgs "$test/imgs" --masks "$test/masks" --json "$dir.ensemble.json" >/dev/null 2>>"$dir.log"
  node -e '
    const [dir, k, seed, score] = process.argv.slice(1);
    const fs = require("node:fs");
    const read = (f) => JSON.parse(fs.readFileSync(f, "utf8"));
    const folds = Array.from({ length: Number(k) }, (_, f) => read(`${dir}.fold${f}.json`)[score]);
    const cv = read(`${dir}/cv-summary.json`);
    console.log(JSON.stringify({ seed: Number(seed), folds, bestFold: Math.max(...folds), ensemble: read(`${dir}.ensemble.json`)[score],
      outOfFoldNone: cv.postprocess.perClass.reduce((a, d) => a + d.dice, 0) / cv.postprocess.perClass.length, outOfFoldAuto: cv.postprocess.meanDice, cleaned: cv.postprocess.classes }));
  ' "$dir" "$K" "$seed" "$SCORE"
}

# two seeds at a time, one thread each
set -- $SEEDS
while [ $# -gt 0 ]; do
  fold_seed "$1" >"$work/cv-$1.row" & a=$!; b=
  if [ $# -gt 1 ]; then fold_seed "$2" >"$work/cv-$2.row" & b=$!; fi
  wait $a; [ -z "$b" ] || wait $b
  cat "$work/cv-$1.row"; [ $# -gt 1 ] && cat "$work/cv-$2.row"
  shift $(( $# > 1 ? 2 : 1 ))
done | tee "$work/cv-rows.jsonl"

node -e '
  const rows = require("node:fs").readFileSync(process.argv[1], "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const stat = (xs) => { const m = xs.reduce((a, b) => a + b, 0) / xs.length; const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1)) : 0; return `${m.toFixed(4)} ± ${sd.toFixed(4)}`; };
  const col = (f) => `${stat(rows.map(f))} (${rows.map((r) => f(r).toFixed(4)).join(", ")})`;
  console.log("| measure | mean ± sd (per seed) |\n|---|---|");
  console.log(`| best single fold, held-out | ${col((r) => r.bestFold)} |`);
  console.log(`| ${rows[0].folds.length}-fold ensemble, held-out | ${col((r) => r.ensemble)} |`);
  console.log(`| ensemble - best fold | ${col((r) => r.ensemble - r.bestFold)} |`);
  console.log(`| out-of-fold mean foreground Dice, --postprocess none | ${col((r) => r.outOfFoldNone)} |`);
  console.log(`| out-of-fold mean foreground Dice, --postprocess auto | ${col((r) => r.outOfFoldAuto)} |`);
' "$work/cv-rows.jsonl"
