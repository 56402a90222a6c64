"""Display-referred frames into deliverable files: H.264 MP4, ProRes 422 MOV, 8-bit PNG/JPEG.

Video goes through PyAV (libx264 / prores_ks) at the shot's fps, RGB converted to Y'CbCr with
the BT.709 matrix (swscale would otherwise use BT.601) in limited range, and the stream tagged
with the primaries, transfer and matrix of the display the shot's view transform renders to.
Stills go through OpenImageIO. Nothing here signs or renames: ``export`` owns the files.
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path
from typing import Iterable

import numpy as np

from ..errors import SoraError

# display name (lower case, a word it contains) -> (primaries, transfer, matrix), ISO/IEC 23091-2 codes
DISPLAY_TAGS = (("pq", (9, 16, 9)), ("hlg", (9, 18, 9)), ("2020", (9, 14, 9)), ("p3", (12, 13, 1)),
                ("srgb", (1, 13, 1)), ("1886", (1, 1, 1)), ("709", (1, 1, 1)))
VIDEO = {"mp4": ("libx264", "yuv420p", "rgb24", 8), "mov": ("prores_ks", "yuv422p10le", "rgb48le", 16)}
STILL_MIME = {"png": "image/png", "jpeg": "image/jpeg"}
VIDEO_MIME = {"mp4": "video/mp4", "mov": "video/quicktime"}
JPEG_QUALITY = 95


def colour_tags(display: str) -> tuple[int, int, int]:
    """(primaries, transfer, matrix) for a display device name, or a clear refusal."""
    name = display.lower()
    for word, tags in DISPLAY_TAGS:
        if word in name:
            return tags
    raise SoraError("invalid_input", f"display {display!r} has no known video colour tags",
                    field="color.display", hint="export through an sRGB, Display P3, Rec.1886, Rec.2020 "
                    "or Rec.2100 display (the shot's color.display)")


def rate(fps: float) -> Fraction:
    """The shot's fps as a frame rate (23.976 -> 24000/1001)."""
    ntsc = fps * 1001 / 1000
    if abs(ntsc - round(ntsc)) < 1e-3 and abs(fps - round(fps)) > 1e-3:
        return Fraction(round(ntsc) * 1000, 1001)
    return Fraction(fps).limit_denominator(1001)


def quantize(display: np.ndarray, bits: int) -> np.ndarray:
    """[0, 1] float -> uint8 or uint16 code values (rounded)."""
    top = (1 << bits) - 1
    out = np.rint(np.clip(display, 0.0, 1.0) * top)
    return np.ascontiguousarray(out.astype(np.uint8 if bits == 8 else np.uint16))


def encode_video(frames: Iterable[np.ndarray], path: Path, fmt: str, fps: float,
                 tags: tuple[int, int, int], crf: int) -> dict:
    """Encode display-referred HxWx3 float frames into ``path``; returns what was written."""
    import av
    from av.video.reformatter import ColorRange, Colorspace

    codec, pix_fmt, rgb_fmt, bits = VIDEO[fmt]
    frames = iter(frames)
    first = next(frames)
    height, width = first.shape[:2]
    if width % 2 or height % 2:
        raise SoraError("invalid_input", f"{fmt}: {width}x{height} cannot be encoded "
                        f"({codec} {pix_fmt} needs an even width and height)", field="format",
                        hint="export PNG/JPEG stills instead, or make the shot at an even size")
    matrix = Colorspace.ITU709 if tags[2] == 1 else Colorspace.BT2020
    count = 0
    with av.open(str(path), "w", format="mp4" if fmt == "mp4" else "mov") as container:
        stream = container.add_stream(codec, rate=rate(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.options = {"crf": str(crf), "preset": "medium"} if fmt == "mp4" else \
            {"profile": "standard", "vendor": "apl0"}
        ctx = stream.codec_context
        ctx.color_primaries, ctx.color_trc, ctx.colorspace = tags
        ctx.color_range = 1                 # limited ("tv") range
        for display in itertools.chain([first], frames):
            frame = av.VideoFrame.from_ndarray(quantize(display, bits), format=rgb_fmt)
            frame = frame.reformat(format=pix_fmt, dst_colorspace=matrix, dst_color_range=ColorRange.MPEG)
            container.mux(stream.encode(frame))
            count += 1
        container.mux(stream.encode())
    return {"codec": {"mp4": "H.264", "mov": "ProRes 422"}[fmt], "encoder": codec, "pix_fmt": pix_fmt,
            "width": width, "height": height,
            "crf": crf if fmt == "mp4" else None, "fps": float(fps), "frame_count": count,
            "colour_tags": {"primaries": tags[0], "transfer": tags[1], "matrix": tags[2], "range": "limited"}}


def write_still(pixels: np.ndarray, path: Path, fmt: str, srgb: bool) -> None:
    """One 8-bit PNG or JPEG (``pixels``: HxWx3 uint8)."""
    import OpenImageIO as oiio

    spec = oiio.ImageSpec(pixels.shape[1], pixels.shape[0], 3, "uint8")
    if srgb:
        spec.attribute("oiio:ColorSpace", "sRGB")
    if fmt == "jpeg":
        spec.attribute("Compression", f"jpeg:{JPEG_QUALITY}")
    out = oiio.ImageOutput.create("jpeg" if fmt == "jpeg" else "png")
    if out is None or not out.open(str(path), spec):
        raise SoraError("internal", f"cannot write {path.name}: {oiio.geterror()}")
    try:
        if not out.write_image(pixels):
            raise SoraError("internal", f"cannot write {path.name}: {out.geterror()}")
    finally:
        out.close()
