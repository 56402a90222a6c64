#!/usr/bin/env bash
# Create or refresh the project's virtual environment in .venv.
#   scripts/setup.sh            worker extras (enough to generate shots)
#   scripts/setup.sh test       worker + test extras (bpy, pytest, PySide6, the watermark)
# Re-installs only when pyproject.toml changed since the last install.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="worker"
[ "${1:-}" = "test" ] && extras="worker,test,qt,watermark"
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "[setup] creating .venv with $($python --version)"
    "$python" -m venv .venv
fi
stamp=".venv/.sora-installed-$extras"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "[setup] installing sora-core[$extras] (torch pinned to the CPU build 2.13.0)"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[$extras]"
    touch "$stamp"
fi
