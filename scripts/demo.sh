#!/usr/bin/env bash
# Set up .venv (worker packages) and generate a demo shot with the bundled tinyworld model into
# shots/demo, with a contact sheet (shots/demo/contact_sheet.png). Extra flags go to `sora generate`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
.venv/bin/sora generate --model tinyworld --prompt "a red ball moving right on a gray background" \
    --out shots/demo --name demo --seed 0 "$@"
.venv/bin/sora sheet shots/demo
