"""Writing a pass's frames: atomic EXRs with provenance, a record per frame, all or nothing.

Heavy half (OpenImageIO through ``frames.exr``). A pass's frames reach the disk only whole
(temporary name, then rename); if anything fails or the user cancels while a pass is being
written, the frames of that pass are removed, so the folder holds finished passes only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from . import GENERATOR, __version__
from .errors import SoraError
from .manifest import sha256_file
from .spec import ShotSpec


def frame_attributes(spec: ShotSpec, identity: dict) -> dict[str, str]:
    """Header attributes every frame carries, so a frame found alone still says where it came from."""
    return {
        "sora:generator": GENERATOR,
        "sora:version": __version__,
        "sora:model": identity.get("name", spec.model),
        "sora:model_hash": identity.get("hash", ""),
        "sora:prompt": spec.prompt,
        "sora:negative_prompt": spec.negative_prompt,
        "sora:seed": str(spec.seed),
        "sora:mode": spec.mode,
        "sora:spec_hash": spec.spec_hash(),
        "Software": f"{GENERATOR} {__version__}",
    }


def write_pass(frames, numbers: range, path_of: Callable[[int], Path], attrs: dict[str, str],
               on_frame: Callable[[int, Path, int], None],
               is_cancelled: Callable[[], bool]) -> list[dict]:
    """Write ``frames`` (scene linear, HxWx3 each) as ``numbers``; return their records.

    ``on_frame(number, path, written_so_far)`` reports each finished frame. On any failure or a
    cancel, every frame this call wrote is removed before the error propagates.
    """
    from .frames.exr import write_exr

    written: list[Path] = []
    records = []
    try:
        for number, frame in zip(numbers, frames):
            if is_cancelled():
                raise SoraError("cancelled", "cancelled by the user")
            path = path_of(number)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_exr(path, frame, attrs)
            written.append(path)
            records.append({"number": number, "file": path.name, "sha256": sha256_file(path)})
            on_frame(number, path, len(written))
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return records
