"""Frame files through OpenImageIO: atomic half-float EXR out, EXR/PNG/JPEG in.

Heavy half (imports OpenImageIO). ``write_exr`` writes to a hidden, random, exclusively created
temporary name in the destination folder held open (``safe_write.Folder``) and renames it, so a
reader (the compositor, a farm checker) never sees half a frame and a planted link is never
followed; the temporary file is removed on any failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import SoraError
from ..safe_write import DISK_FULL, Folder, os_failure, probe_errno

COMPRESSIONS = ("zip", "piz")
STORED_TYPES = {"uint8": "UINT8", "uint16": "UINT16"}    # integer files read as stored
MAX_INPUT_PX = 8192         # a side; SORA_MAX_INPUT_PX changes it


def max_input_px() -> int:
    try:
        return max(1, int(os.environ.get("SORA_MAX_INPUT_PX", MAX_INPUT_PX)))
    except ValueError:
        return MAX_INPUT_PX


def _oiio():
    import OpenImageIO as oiio
    return oiio


def write_exr(path: str | os.PathLike, rgb: np.ndarray, attrs: dict[str, str] | None = None,
              compression: str = "zip") -> Path:
    """Write an HxWx3 scene-linear float image as a half-float RGB EXR, atomically.

    ``attrs`` become string header attributes (provenance such as ``sora:prompt``).
    ``compression`` is ``zip`` or ``piz``. Returns the final path.
    """
    path = Path(path)
    with Folder.open(path.parent) as folder:
        write_exr_in(folder, path.name, rgb, attrs, compression)
    return path


def write_exr_in(folder: Folder, name: str, rgb: np.ndarray, attrs: dict[str, str] | None = None,
                 compression: str = "zip") -> str:
    """``write_exr`` into a folder held open (``safe_write``); returns the file's sha256.

    No wall-clock header (OpenImageIO would stamp ``DateTime``): the same image and attributes
    give the same bytes, so a resumed shot's hashes equal an uninterrupted run's."""
    oiio = _oiio()
    if compression not in COMPRESSIONS:
        raise SoraError("invalid_input", f"EXR compression {compression!r} is not one of "
                        f"{', '.join(COMPRESSIONS)}", field="compression")
    rgb = np.asarray(rgb, dtype=np.float32)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise SoraError("internal", f"write_exr wants an HxWx3 image, got shape {rgb.shape}")
    if not np.isfinite(rgb).all():
        rgb = np.nan_to_num(rgb, nan=0.0, posinf=65504.0, neginf=-65504.0)
    h, w, _ = rgb.shape
    spec = oiio.ImageSpec(w, h, 3, "half")
    spec.channelnames = ("R", "G", "B")
    spec.attribute("compression", compression)
    for key, value in (attrs or {}).items():
        spec.attribute(str(key), str(value))
    spec.attribute("DateTime", "")          # empty: not written

    def fill(fd: int, target: str) -> None:
        out = oiio.ImageOutput.create("openexr")
        if out is None:
            raise SoraError("internal", f"OpenImageIO cannot write EXR: {oiio.geterror()}")
        if not out.open(target, spec):
            raise _failed(fd, folder.path / name, out.geterror(), h * w * 6)
        ok = out.write_image(np.ascontiguousarray(rgb))
        err = out.geterror() if not ok else ""
        closed = out.close()
        if not ok or not closed:
            raise _failed(fd, folder.path / name, err or out.geterror(), h * w * 6)
        full = probe_errno(fd)      # a final flush that failed is not always reported
        if full is not None:
            raise os_failure(full, folder.path, needed_mb=h * w * 6 / 2**20)

    return folder.write(name, fill)


def _failed(fd: int, path: Path, message: str, frame_bytes: int) -> BaseException:
    """OpenImageIO says a write failed but not why: ask the system (a full disk is exit 75)."""
    cause = probe_errno(fd)
    if cause is not None and cause.errno in DISK_FULL:
        return os_failure(cause, path.parent, needed_mb=frame_bytes / 2**20)
    return SoraError("internal", f"writing {path} failed: {message}", hint="check free disk space")


def _open(path: str | os.PathLike):
    oiio = _oiio()
    path = Path(path)
    if not path.is_file():
        raise SoraError("not_found", f"image not found: {path}")
    config = oiio.ImageSpec()
    config.attribute("oiio:UnassociatedAlpha", 1)   # PNG: keep colours as stored, not premultiplied
    inp = oiio.ImageInput.open(str(path), config)
    if inp is None:
        raise SoraError("invalid_input", f"cannot read {path}: it is not a readable image "
                        f"({oiio.geterror().strip() or 'unknown format'})",
                        hint="use an EXR, PNG or JPEG file")
    return inp


def _check_size(path: Path, spec) -> None:
    """Refuse an image larger than the input limit from its header, before any pixel is read."""
    limit = max_input_px()
    if spec.width > limit or spec.height > limit:
        raise SoraError("invalid_input", f"{path} is {spec.width}x{spec.height}, larger than the input "
                        f"limit of {limit} px a side", hint="scale the input down, or raise the limit "
                        "with the SORA_MAX_INPUT_PX environment variable")


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` from the header alone; an image over the input limit is refused."""
    inp = _open(path)
    try:
        spec = inp.spec()
    finally:
        inp.close()
    _check_size(Path(path), spec)
    return spec.width, spec.height


def read_attrs(path: str | os.PathLike) -> dict[str, str]:
    """Every header attribute of an image as strings (the ``sora:*`` keys hold the provenance)."""
    inp = _open(path)
    try:
        spec = inp.spec()
        attrs = {}
        for p in spec.extra_attribs:
            value = p.value
            attrs[p.name] = value if isinstance(value, str) else str(value)
        return attrs
    finally:
        inp.close()


def _rgb_channels(names: list[str]) -> list[int]:
    """Indices of R, G, B (plain or a layer's, preferring ``Combined``); gray -> its one channel."""
    upper = [n.upper() for n in names]
    if all(c in upper for c in "RGB"):
        return [upper.index(c) for c in "RGB"]
    layers = {}
    for i, n in enumerate(upper):
        prefix, _, last = n.rpartition(".")
        if prefix and last in ("R", "G", "B"):
            layers.setdefault(prefix, {})[last] = i
    full = [p for p, chans in layers.items() if len(chans) == 3]
    if full:
        best = next((p for p in full if "COMBINED" in p), full[0])
        return [layers[best][c] for c in "RGB"]
    if len(names) >= 3 and "A" not in upper[:3]:
        return [0, 1, 2]
    return [0, 0, 0]    # gray (Y, or Y+A): expand


def read_image(path: str | os.PathLike, as_stored: bool = False) -> np.ndarray:
    """An EXR/PNG/JPEG (any OIIO format) as HxWx3 float32; alpha dropped, gray expanded.

    EXR values are returned as stored (scene linear); 8/16-bit PNG/JPEG as [0, 1] display
    values, or with ``as_stored`` as their uint8/uint16 codes (what ``ViewTransform.to_linear``
    takes fastest). A missing file raises ``not_found``; a corrupt or truncated one ``invalid_input``.
    """
    oiio = _oiio()
    path = Path(path)
    inp = _open(path)
    try:
        spec = inp.spec()
        _check_size(path, spec)
        names = list(spec.channelnames) or [f"c{i}" for i in range(spec.nchannels)]
        chans = _rgb_channels(names)
        first = chans[0]
        adjacent = chans == [first, first + 1, first + 2]   # read just those, with no copy after
        begin, end = (first, first + 3) if adjacent else (0, spec.nchannels)
        stored = STORED_TYPES.get(str(spec.format)) if as_stored else None
        pixels = inp.read_image(0, 0, begin, end, getattr(oiio, stored or "FLOAT"))
        err = inp.geterror()
    finally:
        inp.close()
    if pixels is None or err or (hasattr(pixels, "size") and pixels.size == 0):
        raise SoraError("invalid_input", f"cannot read {path}: the file is corrupt or truncated"
                        + (f" ({err.strip().splitlines()[0]})" if err.strip() else ""),
                        hint="re-render or re-export the frame")
    pixels = np.asarray(pixels).reshape(spec.height, spec.width, end - begin)
    rgb = pixels if adjacent else pixels[..., chans]
    if stored:
        return np.ascontiguousarray(rgb)
    rgb = rgb.astype(np.float32, copy=False)
    if not np.isfinite(rgb).all():
        rgb = np.nan_to_num(rgb, nan=0.0, posinf=65504.0, neginf=0.0)
    return np.ascontiguousarray(rgb, dtype=np.float32)


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(width, height) from the header alone (no pixels decoded)."""
    inp = _open(path)
    try:
        spec = inp.spec()
        return spec.width, spec.height
    finally:
        inp.close()
