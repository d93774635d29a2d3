# Sourced by side-by-side.sh and accuracy-kit.sh: the dataset of a measure and its held-out split.
#   in:  DATASET (camvid or isbi), NAME (the calling script, for messages); DATA, WORK, TRAIN_COUNT
#   out: DATA, COMMON (the train flags every arm shares), SCORE (evaluate's JSON field),
#        DEFAULT_BUDGET, work (removed at exit unless WORK was given), train and test (folders
#        holding imgs/ and masks/)
# camvid: train/ and val/. isbi: the split of scripts/accuracy.sh, the last 5 images by name held
# out; TRAIN_COUNT=N trains on the first N images only (a small-data run; the held-out 5 stay).
case "$DATASET" in
  camvid) DATA=${DATA:-../shared/data/camvid-12class}; DEFAULT_BUDGET=15m; COMMON=(-c 11 --ignore-index 11); SCORE=meanIoUAll ;;
  isbi) DATA=${DATA:-../shared/data/isbi2012-membranes}; DEFAULT_BUDGET=5m; COMMON=(-c 2); SCORE=referenceDice ;;
  *) echo "$NAME: the dataset is camvid or isbi, got '$DATASET'" >&2; exit 64 ;;
esac
bash scripts/setup.sh >&2

work=${WORK:-$(mktemp -d)}
mkdir -p "$work"
[ -n "${WORK:-}" ] || trap 'rm -rf "$work"' EXIT
if [ "$DATASET" = camvid ]; then
  train=$DATA/train test=$DATA/val
else
  train=$work/train test=$work/test
  mkdir -p "$train"/{imgs,masks} "$test"/{imgs,masks}
  mapfile -t names < <(ls "$DATA/imgs" | sort)
  for i in "${!names[@]}"; do
    part=$train; [ "$i" -ge $(( ${#names[@]} - 5 )) ] && part=$test
    [ "$part" = "$train" ] && [ -n "${TRAIN_COUNT:-}" ] && [ "$i" -ge "$TRAIN_COUNT" ] && continue
    ln -sf "$(realpath "$DATA/imgs/${names[$i]}")" "$part/imgs/${names[$i]}"
    ln -sf "$(realpath "$DATA/masks/${names[$i]}")" "$part/masks/${names[$i]}"
  done
fi
