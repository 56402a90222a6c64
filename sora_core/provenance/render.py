"""A shot's EXR frames as a display sees them, for export: the shot's own view transform.

The transform is the one the shot was made through (``manifest.spec.color``, resolved the same
way ``frames.color.ViewTransform`` resolved it then), so a deliverable looks like the shot did in
Blender. Frames are read and transformed on the frame pool a few at a time (a 121-frame 720p
shot is never held whole in memory). An optional invisible watermark is added in display space.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from .encode import quantize


class Renderer:
    """Display-referred frames of ``records`` (manifest frame records) of the shot in ``shot``."""

    def __init__(self, shot: Path, manifest: dict, records: list[dict], watermark_payload: str | bool = False):
        from ..frames.color import ViewTransform

        self.shot, self.records = shot, records
        spec = manifest.get("spec") or {}
        color = spec.get("color") or {}
        self.transform = ViewTransform(color.get("config"), color.get("display"), color.get("view"),
                                       color.get("look"))
        t = self.transform
        self.view = {"config": Path(t.config).name if t.config else "builtin", "config_sha256": t.config_hash(),
                     "display": t.display, "view": t.view, "look": t.look}
        self.fps = float(spec.get("fps") or 24.0)
        self.mark = None
        if watermark_payload:
            from .watermark import describe
            self.mark = describe(str(watermark_payload))

    def _one(self, record: dict) -> np.ndarray:
        from ..frames.exr import read_image

        display = self.transform.to_display(read_image(self.shot / record["file"]))
        if self.mark:
            from .watermark import embed
            display = embed(display, self.mark)
        return display

    def frames(self) -> Iterator[np.ndarray]:
        """Every frame in order, display-referred float32 in [0, 1]."""
        from ..frames.pool import read_frames, threads

        step = max(2, threads() * 2)
        for start in range(0, len(self.records), step):
            yield from read_frames(self._one, self.records[start:start + step])

    def still(self, index: int) -> np.ndarray:
        """Frame ``index`` as 8-bit code values."""
        return quantize(self._one(self.records[index]), 8)
