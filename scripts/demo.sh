#!/usr/bin/env bash
# Set up .venv (worker packages) and generate a demo shot into shots/demo with a contact sheet.
# Uses the bundled tinyworld model; while its weights are not in the package yet, a tiny random
# LTX pipeline is built in code instead (the frames are then noise, but every part runs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
model=tinyworld
size=()
if [ ! -f sora_core/models/tinyworld/weights/model_index.json ]; then
    model=.cache/demo-tiny-ltx
    echo "[demo] bundled weights not present: building a tiny random LTX pipeline in $model"
    .venv/bin/python -c "import sys; from tests.fixtures.tiny_models import build_ltx; build_ltx(sys.argv[1])" "$model"
    size=(--width 64 --height 64 --frames 17 --steps 4)
fi
.venv/bin/sora generate --model "$model" --prompt "a red ball moving right on a gray background" \
    --out shots/demo --name demo --seed 1 "${size[@]}" "$@"
.venv/bin/sora sheet shots/demo
