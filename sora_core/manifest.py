"""``manifest.json``: what a shot folder holds and how it was made.

Written last and atomically, so a folder with a manifest that lists a frame means that frame
is complete. Light half: hosts read it to load the sequence without OpenImageIO.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def write_json_atomic(path: str | Path, data: dict, folder=None) -> None:
    """Write to a random, exclusively created temporary sibling and rename, so readers never see
    half a file and a planted link is never followed; ``folder`` is the ``safe_write.Folder``
    ``path`` lies in, when the caller holds it open."""
    from .safe_write import write_file_atomic

    text = (json.dumps(data, indent=2) + "\n").encode("utf-8")
    if folder is None:
        write_file_atomic(path, text)
    else:
        folder.write_bytes(Path(path).name, text)


def build_manifest(spec: dict, model: dict, frames: list[dict], timings: dict,
                   notices: list[str], pattern: str, software: dict) -> dict:
    numbers = [f["number"] for f in frames]
    return {
        "manifest_version": MANIFEST_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "software": software,
        "spec": spec,
        "model": model,
        "seed": spec.get("seed"),
        "pattern": pattern,
        "first_frame": min(numbers) if numbers else None,
        "last_frame": max(numbers) if numbers else None,
        "frames": frames,
        "timings": timings,
        "notices": notices,
    }


def write_manifest(folder: str | Path, manifest: dict, held=None) -> Path:
    """``manifest.json`` in ``folder`` (through ``held``, the folder held open, when given)."""
    path = Path(folder) / MANIFEST_NAME
    write_json_atomic(path, manifest, held)
    return path


def read_manifest(path: str | Path) -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / MANIFEST_NAME
    return json.loads(path.read_text(encoding="utf-8"))


def verify_frames(manifest_path: str | Path) -> list[str]:
    """Names of frames whose file is missing or whose checksum differs from the manifest."""
    folder = Path(manifest_path).parent if Path(manifest_path).is_file() else Path(manifest_path)
    bad = []
    for frame in read_manifest(manifest_path)["frames"]:
        file = folder / frame["file"]
        if not file.is_file() or sha256_file(file) != frame["sha256"]:
            bad.append(frame["file"])
    return bad
