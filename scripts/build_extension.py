#!/usr/bin/env python3
"""Build the Blender extension zip: sora_blender add-on + manifest + a sora_core wheel.

    python scripts/build_extension.py                 # -> dist/sora_blender-<version>.zip
    python scripts/build_extension.py --out-dir /tmp/ext --blender-ext /path/to/blender_ext.py

Steps (plain Python, no Blender needed):
1. build a ``sora_core`` wheel (pure Python, py3-none-any) from a copy of the repository, so
   the checkout gets no build/ or egg-info litter;
2. stage ``build/extension/``: the add-on's files at the root (``__init__.py`` ...), the
   manifest with ``wheels = ["./wheels/sora_core-<v>-py3-none-any.whl"]``, ``wheels/``;
3. run Blender's own ``blender_ext.py validate`` and ``build`` on the staging folder.

``blender_ext.py`` is found inside the ``bpy`` module when it is installed (``pip install
bpy==4.5.*``), or pass ``--blender-ext`` (it ships with every Blender 4.2+:
``<blender>/<version>/scripts/addons_core/bl_pkg/cli/blender_ext.py``).
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ADDON = ROOT / "sora_blender"
MANIFEST = ROOT / "blender_manifest.toml"


def find_blender_ext() -> Path:
    """Blender's extension CLI, from the installed bpy module."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("cannot find blender_ext.py: install bpy (pip install 'bpy==4.5.*') "
                         "or pass --blender-ext <blender>/<ver>/scripts/addons_core/bl_pkg/cli/blender_ext.py")
    base = Path(list(spec.submodule_search_locations)[0])
    hits = sorted(glob.glob(str(base / "*" / "scripts" / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py")))
    if not hits:
        raise SystemExit(f"no blender_ext.py under {base}")
    return Path(hits[-1])


def build_wheel(wheel_dir: Path) -> Path:
    """Build the sora_core wheel from a clean copy of the project (light + heavy half, weights)."""
    with tempfile.TemporaryDirectory(prefix="sora-wheel-") as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            if (ROOT / name).is_file():
                shutil.copy2(ROOT / name, src / name)
        shutil.copytree(ROOT / "sora_core", src / "sora_core",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", ".*"))
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
               "--disable-pip-version-check", "-q", "-w", str(wheel_dir), str(src)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout + proc.stderr)
            raise SystemExit(f"building the sora_core wheel failed (exit {proc.returncode})")
    wheels = sorted(wheel_dir.glob("sora_core-*.whl"))
    if not wheels:
        raise SystemExit("pip wheel produced no sora_core wheel")
    return wheels[-1]


def stage(stage_dir: Path) -> Path:
    if stage_dir.exists():
        shutil.rmtree(stage_dir)
    shutil.copytree(ADDON, stage_dir, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    wheel = build_wheel(stage_dir / "wheels")
    text = MANIFEST.read_text(encoding="utf-8")
    line = f'wheels = ["./wheels/{wheel.name}"]'
    text, n = re.subn(r"(?m)^wheels\s*=.*$", line, text)
    if n == 0:
        text = text.replace("\n[permissions]", f"\n{line}\n\n[permissions]", 1)
    (stage_dir / "blender_manifest.toml").write_text(text, encoding="utf-8")
    return wheel


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", default=str(ROOT / "dist"), help="where the zip goes (default dist/)")
    parser.add_argument("--stage-dir", default=str(ROOT / "build" / "extension"),
                        help="staging folder (default build/extension/)")
    parser.add_argument("--blender-ext", default=None, help="path to Blender's blender_ext.py")
    args = parser.parse_args(argv)

    blender_ext = Path(args.blender_ext) if args.blender_ext else find_blender_ext()
    stage_dir = Path(args.stage_dir).resolve()
    out_dir = Path(args.out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    wheel = stage(stage_dir)
    print(f"staged {stage_dir} (wheel {wheel.name})")
    env = dict(os.environ)
    subprocess.run([sys.executable, str(blender_ext), "validate", str(stage_dir)], check=True, env=env)
    subprocess.run([sys.executable, str(blender_ext), "build", "--source-dir", str(stage_dir),
                    "--output-dir", str(out_dir)], check=True, env=env)
    zips = sorted(out_dir.glob("sora_blender-*.zip"), key=lambda p: p.stat().st_mtime)
    if not zips:
        raise SystemExit("blender_ext build produced no zip")
    print(f"built {zips[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
