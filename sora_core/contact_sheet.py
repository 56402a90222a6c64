"""A contact sheet PNG of a shot: every frame through the shot's own view transform, in a grid.

The quickest way for a person (or a reviewer reading a README) to see what a shot holds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import SoraError
from .manifest import MANIFEST_NAME, read_manifest


def contact_sheet(shot: str | Path, out_png: str | Path, columns: int = 8, scale: int = 2,
                  gap: int = 2) -> Path:
    """Tile the frames listed in the shot's manifest into ``out_png`` (sRGB, 8-bit)."""
    import OpenImageIO as oiio

    from .frames.color import ViewTransform
    from .frames.exr import read_image

    shot = Path(shot)
    if not (shot / MANIFEST_NAME).is_file():
        raise SoraError("not_found", f"{shot} holds no {MANIFEST_NAME}; is it a finished shot folder?")
    manifest = read_manifest(shot)
    color = manifest["spec"].get("color") or {}
    transform = ViewTransform(color.get("config"), color.get("display"), color.get("view"), color.get("look"))
    frames = [transform.to_display(read_image(shot / f["file"])) for f in manifest["frames"]]
    h, w = frames[0].shape[:2]
    cols = min(columns, len(frames))
    rows = -(-len(frames) // cols)
    sheet = np.full((rows * (h + gap) + gap, cols * (w + gap) + gap, 3), 0.15, np.float32)
    for i, frame in enumerate(frames):
        r, c = divmod(i, cols)
        y, x = gap + r * (h + gap), gap + c * (w + gap)
        sheet[y:y + h, x:x + w] = np.clip(frame, 0.0, 1.0)
    sheet = np.repeat(np.repeat(sheet, scale, axis=0), scale, axis=1)
    out_png = Path(out_png)
    spec = oiio.ImageSpec(sheet.shape[1], sheet.shape[0], 3, oiio.UINT8)
    buf = oiio.ImageBuf(spec)
    buf.set_pixels(oiio.ROI(), np.ascontiguousarray(sheet))
    if not buf.write(str(out_png)):
        raise OSError(f"cannot write {out_png}: {buf.geterror()}")
    return out_png
