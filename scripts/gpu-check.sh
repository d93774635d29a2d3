#!/usr/bin/env bash
# One-shot GPU check for the device machine (no network, no Node.js there; see
# ../shared/device/README.md). Prepare here first:
#   npm ci && npm run build && bash ../shared/device/pack.sh --modules
#   cp ../shared/bench/unet_reference.py .device/
# then run on the device with carry [".device", "dist"]:
#   bash scripts/gpu-check.sh
# Not yet run on a GPU (no device was lent to the session that wrote it).
# It builds the addon against the machine's CUDA libtorch, runs the op tests on CUDA, and times
# our training step against ../shared/bench/unet_reference.py (B=8, 3x640x959, --amp) in one go.
set -uo pipefail
cd "$(dirname "$0")/.."
source .device/activate.sh
out="${OUT:-/tmp/gpu-out}"; mkdir -p "$out"
node native/build.mjs --force 2>&1 | tee "$out/build.log" || exit 1
node -e "const E=await import('./dist/engine/index.js'); console.log(JSON.stringify({cuda:E.cudaIsAvailable(), devices:E.cudaDeviceCount(), torch:E.buildInfo().torch}))" --input-type=module | tee "$out/info.json"
ref=.device/unet_reference.py; [ -f "$ref" ] || ref=
for amp in "" "--amp"; do
  node bin/unet.js bench --device cuda -b 8 --height 640 --width 959 --channels 3 --classes 2 $amp --steps 20 --warmup 5 \
    ${ref:+--reference $ref} --python python3 2>&1 | tee -a "$out/bench.jsonl"
done
# Data loader against PIL (if that python has PIL), then the full trainer on Carvana-sized JPEGs:
# epoch 2's img/s in metrics.jsonl against the step-only figure above (target: within 10%).
node bin/unet.js bench --data --count 200 --reference pil --python python3 2>&1 | tee "$out/data.jsonl"
data=/tmp/unet-ts-bench-carvana-200
node bin/unet.js train --imgs $data/imgs --masks $data/masks -e 2 -b 8 -s 0.5 --amp -v 10 --device cuda \
  --checkpoint-dir /tmp/gpu-ckpt --logdir "$out/runs" --no-tensorboard 2>&1 | tail -40 | tee "$out/train.log"
grep -h '"type":"epoch"' "$out"/runs/*/metrics.jsonl | tee "$out/epochs.jsonl"
