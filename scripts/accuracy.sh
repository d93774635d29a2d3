#!/usr/bin/env bash
# Held-out accuracy of unet-ts against the project's PyTorch reference trainer on ISBI 2012.
#
# Both sides train with the reference's flags on the same 25 images (3 seeds each: initialisation,
# split and shuffling), and one evaluator (test/reference/heldout.py: evaluate.py's Dice, PIL
# preprocessing, batch 1) scores each run's last checkpoint on the same 5 held-out images (the
# last 5 by name), with BatchNorm in eval mode (the checkpoint's running statistics) and in train
# mode (each image's own statistics). PRECISE_BN=N adds runs of ours with --precise-bn N.
#
#   scripts/accuracy.sh                        # -e 5 -b 1 -l 1e-5 -s 0.25 -v 10 -c 2, seeds 0 1 2
#   EPOCHS=10 SCALE=0.5 PRECISE_BN=8 scripts/accuracy.sh [DATA_DIR]
#   THREADS=1 PARALLEL=1 ...     # one thread per trainer, a seed's trainers side by side (busy machines)
#
# Prints one JSON line per run and a Markdown table (mean ± sd over the seeds).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:-../shared/data/isbi2012-membranes}
EPOCHS=${EPOCHS:-5}
SCALE=${SCALE:-0.25}
SEEDS=${SEEDS:-0 1 2}
PRECISE_BN=${PRECISE_BN:-0}
PY=${PYTHON:-/usr/bin/python3}
THREADS=${THREADS:-$(nproc)}
PARALLEL=${PARALLEL:-0}
export UNET_THREADS=$THREADS
FLAGS=(-e "$EPOCHS" -b 1 -l 1e-5 -s "$SCALE" -v 10 -c 2)
[ -d "$DATA/imgs" ] && [ -d "$DATA/masks" ] || { echo "accuracy: $DATA needs imgs/ and masks/ (e.g. ../shared/data/isbi2012-membranes)" >&2; exit 1; }
bash scripts/setup.sh >&2  # builds what is missing or stale (dist/, the addon)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{train,test}/{imgs,masks}
mapfile -t names < <(ls "$DATA/imgs" | sort)
held=5
for i in "${!names[@]}"; do
  n=${names[$i]}
  part=train; [ "$i" -ge $(( ${#names[@]} - held )) ] && part=test
  ln -s "$(realpath "$DATA/imgs/$n")" "$work/$part/imgs/$n"
  ln -s "$(realpath "$DATA/masks/$n")" "$work/$part/masks/$n"
done
echo "accuracy: ${#names[@]} images, $(( ${#names[@]} - held )) for training, $held held out; flags ${FLAGS[*]}; seeds $SEEDS" >&2

ckpts=()
# run NAME COMMAND...: logs to $work/NAME.log, says how long it took
run() {
  local name=$1 start=$SECONDS
  shift
  "$@" >"$work/$name.log" 2>&1 || { echo "accuracy: $name failed:" >&2; tail -20 "$work/$name.log" >&2; return 1; }
  echo "accuracy: $name: $(( SECONDS - start )) s" >&2
}
ours() { # NAME SEED [more flags]
  local name=$1 seed=$2
  shift 2
  run "$name-$seed" node bin/unet.js train --imgs "$work/train/imgs" --masks "$work/train/masks" "${FLAGS[@]}" --seed "$seed" \
    --checkpoint-dir "$work/$name-$seed" --logdir "$work/runs" --no-tensorboard "$@"
}
reference() { # SEED
  run "ref-$1" "$PY" test/reference/trainer.py --imgs "$work/train/imgs" --masks "$work/train/masks" "${FLAGS[@]}" --seed "$1" \
    --threads "$THREADS" --save "$work/ref-$1.pth"
}
for seed in $SEEDS; do
  pids=()
  if [ "$PARALLEL" = 1 ]; then
    ours ours "$seed" & pids+=($!)
    [ "$PRECISE_BN" -gt 0 ] && { ours pbn "$seed" --precise-bn "$PRECISE_BN" & pids+=($!); }
    reference "$seed" & pids+=($!)
    for p in "${pids[@]}"; do wait "$p"; done
  else
    ours ours "$seed"
    [ "$PRECISE_BN" -gt 0 ] && ours pbn "$seed" --precise-bn "$PRECISE_BN"
    reference "$seed"
  fi
  ckpts+=("$work/ours-$seed/checkpoint_epoch$EPOCHS.pth")
  [ "$PRECISE_BN" -gt 0 ] && ckpts+=("$work/pbn-$seed/checkpoint_epoch$EPOCHS.pth")
  ckpts+=("$work/ref-$seed.pth")
done

"$PY" test/reference/heldout.py --threads "$THREADS" --imgs "$work/test/imgs" --masks "$work/test/masks" -s "$SCALE" "${ckpts[@]}" >"$work/scores.jsonl"
cat "$work/scores.jsonl"
"$PY" - "$work/scores.jsonl" "$PRECISE_BN" <<'PYEOF'
import json, statistics, sys, os
rows = [json.loads(l) for l in open(sys.argv[1])]
def kind(p):
    b = os.path.basename(os.path.dirname(p)) if p.endswith('.pth') and 'checkpoint_epoch' in p else os.path.basename(p)
    return 'ours' if b.startswith('ours-') else f'ours --precise-bn {sys.argv[2]}' if b.startswith('pbn-') else 'PyTorch reference'
groups = {}
for r in rows:
    groups.setdefault(kind(r['model']), []).append(r)
fmt = lambda xs: f'{statistics.mean(xs):.4f} ± {statistics.stdev(xs) if len(xs) > 1 else 0:.4f}'
print('| trainer | held-out Dice (eval mode) | same weights, BN in train mode | per seed (eval mode) |')
print('|---|---|---|---|')
for k in ('ours', f'ours --precise-bn {sys.argv[2]}', 'PyTorch reference'):
    if k in groups:
        g = groups[k]
        print(f"| {k} | {fmt([r['dice_eval'] for r in g])} | {fmt([r['dice_train_bn'] for r in g])} | {', '.join('%.4f' % r['dice_eval'] for r in g)} |")
PYEOF
