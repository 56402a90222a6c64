"""An invisible watermark for 8-bit deliverables (``--watermark``), through ``invisible-watermark``.

The mark carries 32 bits: the first 8 hex digits of the shot's canonical manifest sha256, so a
copy whose C2PA manifest was stripped still points at the shot it came from. It is a frequency
domain mark (``dwtDctSvd``: DWT, then DCT blocks, then SVD; no model weights), embedded in each
8-bit frame before encoding. It survives H.264 only partly (``bench/watermark_survival.py``,
figures in ``docs/provenance.md``), so ``sora verify`` reports it and never fails on it: the
signed C2PA manifest is the proof, the watermark a hint. Frames need at least 256x256 pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import SoraError

METHOD = "dwtDctSvd"
BITS = 32
MIN_PIXELS = 256 * 256


def _lib():
    try:
        from imwatermark import WatermarkDecoder, WatermarkEncoder
    except ImportError as exc:
        raise SoraError("not_found", f"--watermark needs the invisible-watermark package ({exc})",
                        hint="pip install 'sora-core[watermark]'") from None
    return WatermarkEncoder, WatermarkDecoder


def describe(shot_sha256: str) -> dict:
    """What ``org.sora.export`` records about the mark (and what ``embed`` puts in)."""
    _lib()
    return {"library": "invisible-watermark", "method": METHOD, "bits": BITS, "payload": shot_sha256[:BITS // 4]}


def _check_size(shape) -> None:
    if shape[0] * shape[1] < MIN_PIXELS:
        raise SoraError("invalid_input", f"--watermark: frames of {shape[1]}x{shape[0]} are too small "
                        "(the watermark needs at least 256x256 pixels)", field="watermark")


def embed(display: np.ndarray, mark: dict) -> np.ndarray:
    """A display-referred float frame with the mark embedded, on 8-bit code values (exactly
    representable, so an 8-bit encoder sees the marked codes)."""
    from .encode import quantize

    encoder_cls, _ = _lib()
    _check_size(display.shape)
    encoder = encoder_cls()
    encoder.set_watermark("bytes", bytes.fromhex(mark["payload"]))
    bgr = np.ascontiguousarray(quantize(display, 8)[..., ::-1])
    marked = encoder.encode(bgr, mark.get("method", METHOD))
    return np.ascontiguousarray(marked[..., ::-1], dtype=np.float32) / 255.0


def read(pixels: np.ndarray, method: str = METHOD) -> str:
    """The 32-bit payload read from an 8-bit RGB frame, as hex."""
    _, decoder_cls = _lib()
    if pixels.shape[0] * pixels.shape[1] < MIN_PIXELS:
        return ""
    bits = decoder_cls("bits", BITS).decode(np.ascontiguousarray(pixels[..., ::-1]), method)
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex()


def read_file(path: Path, mark: dict | None) -> str | None:
    """The payload most frames of ``path`` (a still, or a video's first frames) carry; None
    when the library is missing."""
    try:
        _lib()
    except SoraError:
        return None
    method = (mark or {}).get("method", METHOD)
    if path.suffix.lower() in (".mp4", ".m4v", ".mov"):
        import av

        with av.open(str(path)) as container:
            frames = [f.to_ndarray(format="rgb24") for _, f in zip(range(8), container.decode(video=0))]
    else:
        from ..frames.exr import read_image
        from .encode import quantize

        frames = [quantize(read_image(path), 8)]
    found = [read(f, method) for f in frames]
    return max(set(found), key=found.count) if found else ""
