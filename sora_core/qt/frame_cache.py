"""What the flipbook plays: a shot folder or any image sequence, and its decoded frames.

``Sequence.load`` reads a shot's manifest (frames, fps, the shot's view transform) or lists a
sequence with the core's ``find_sequence``. ``FrameCache`` turns a frame into 8-bit display
pixels (scene linear x 2^exposure through the core's ``ViewTransform``) on a thread pool
(OpenImageIO and OpenColorIO release the GIL) and keeps the newest within a byte budget, so
a second loop plays from memory. No Qt here.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import SoraError
from ..frames.sequence import find_sequence
from ..manifest import MANIFEST_NAME, read_manifest

DEFAULT_FPS = 24.0
LINEAR_EXTS = (".exr", ".hdr")


@dataclass
class Sequence:
    """Frames in order, with the shot's fps and colour when a manifest says them."""

    path: str
    frames: list[tuple[int, Path]]
    fps: float = DEFAULT_FPS
    color: dict = field(default_factory=dict)   # spec.color: config, display, view, look
    manifest: dict | None = None
    folder: Path | None = None

    @classmethod
    def load(cls, path: str | os.PathLike, fps: float | None = None) -> "Sequence":
        """A shot folder (its manifest's frames), or a pattern, folder or file of images."""
        path = Path(path).expanduser()
        if (path / MANIFEST_NAME).is_file():
            try:
                manifest = read_manifest(path)
                frames = [(int(f["number"]), path / f["file"]) for f in manifest["frames"]]
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise SoraError("invalid_input", f"{path / MANIFEST_NAME} cannot be read: {exc}") from None
            if not frames:
                raise SoraError("not_found", f"{path} lists no finished frames yet",
                                hint="wait for the first pass to finish, or open another shot")
            spec = manifest.get("spec") or {}
            return cls(str(path), sorted(frames), float(fps or spec.get("fps") or DEFAULT_FPS),
                       dict(spec.get("color") or {}), manifest, path)
        frames = find_sequence(path, field="flipbook")
        return cls(str(path), frames, float(fps or DEFAULT_FPS))

    def __len__(self) -> int:
        return len(self.frames)

    def number(self, index: int) -> int:
        return self.frames[index][0]


def to_display_u8(path: Path, transform, exposure: float = 0.0) -> np.ndarray:
    """One frame as HxWx3 uint8 display pixels: EXR through the view (after exposure in stops),
    other images (already display-referred) with the same gain."""
    from ..frames.exr import read_image

    rgb = read_image(path)
    gain = float(2.0 ** exposure)
    if gain != 1.0:
        rgb *= gain
    if path.suffix.lower() in LINEAR_EXTS:
        rgb = transform.to_display(rgb)
    return to_u8(rgb)


def to_u8(display: np.ndarray) -> np.ndarray:
    """[0, 1] display values -> rounded 8-bit codes."""
    out = np.clip(display, 0.0, 1.0)
    out *= 255.0
    out += 0.5
    return out.astype(np.uint8)


class FrameCache:
    """Decoded display frames by (sequence slot, index), newest kept within ``budget_bytes``.

    ``request`` decodes in the background and calls ``on_ready(slot, index)`` from a pool
    thread when done; ``get`` returns a decoded frame or None. ``reset`` (a new view or
    exposure) drops everything and ignores decodes still running.
    """

    def __init__(self, budget_bytes: int = 1 << 30, threads: int | None = None,
                 on_ready: Callable[[str, int], None] | None = None):
        self.budget = budget_bytes
        self.on_ready = on_ready
        self._pool = ThreadPoolExecutor(max_workers=threads or os.cpu_count() or 2,
                                        thread_name_prefix="sora-flipbook")
        self._frames: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()
        self._pending: dict[tuple[str, int], Future] = {}
        self._bytes = 0
        self._generation: dict[str, int] = {}   # per slot: bumped by set_source
        self.failed: dict[tuple[str, int], str] = {}   # frames that could not be read, why
        self._lock = threading.Lock()
        self.decoded = 0                     # frames decoded (not served from memory)
        self.sources: dict[str, tuple[Sequence, object, float]] = {}

    def set_source(self, slot: str, seq: Sequence | None, transform, exposure: float) -> None:
        """What slot ``a`` (or ``b``) shows and through which view; drops that slot's frames."""
        with self._lock:
            self._generation[slot] = self._generation.get(slot, 0) + 1
            self.failed = {k: v for k, v in self.failed.items() if k[0] != slot}
            if seq is None:
                self.sources.pop(slot, None)
            else:
                self.sources[slot] = (seq, transform, exposure)
            for key in [k for k in self._frames if k[0] == slot]:
                self._bytes -= self._frames.pop(key).nbytes
            self._pending = {k: f for k, f in self._pending.items() if k[0] != slot}

    @property
    def nbytes(self) -> int:
        return self._bytes

    def get(self, slot: str, index: int) -> np.ndarray | None:
        with self._lock:
            frame = self._frames.get((slot, index))
            if frame is not None:
                self._frames.move_to_end((slot, index))
            return frame

    def load_now(self, slot: str, index: int) -> np.ndarray:
        """Decode on the calling thread when the frame is not cached (stepping, tests)."""
        frame = self.get(slot, index)
        if frame is None:
            frame = self._decode(slot, index, self._generation.get(slot, 0))
        return frame

    def request(self, slot: str, index: int) -> None:
        key = (slot, index)
        with self._lock:
            if key in self._frames or key in self._pending or slot not in self.sources:
                return
            seq = self.sources[slot][0]
            if not 0 <= index < len(seq):
                return
            self._pending[key] = self._pool.submit(self._decode, slot, index, self._generation.get(slot, 0), True)

    def fits(self, frames: int) -> bool:
        """Whether ``frames`` more frames of the current size stay within the budget."""
        with self._lock:
            size = next(iter(self._frames.values())).nbytes if self._frames else 0
        return self._bytes + frames * size <= self.budget

    def _decode(self, slot: str, index: int, generation: int, notify: bool = False) -> np.ndarray | None:
        try:
            seq, transform, exposure = self.sources[slot]
            frame = to_display_u8(seq.frames[index][1], transform, exposure)
        except (SoraError, OSError, KeyError) as exc:
            with self._lock:
                self._pending.pop((slot, index), None)
                self.failed[(slot, index)] = str(exc)
            if not notify:
                raise
            if self.on_ready:
                self.on_ready(slot, index)
            return None
        with self._lock:
            self._pending.pop((slot, index), None)
            if generation != self._generation.get(slot, 0):
                return frame             # decoded for a view that is gone: do not keep it
            self.decoded += 1
            if (slot, index) not in self._frames:
                self._frames[(slot, index)] = frame
                self._bytes += frame.nbytes
            while self._bytes > self.budget and len(self._frames) > 1:
                _, old = self._frames.popitem(last=False)
                self._bytes -= old.nbytes
        if notify and self.on_ready:
            self.on_ready(slot, index)
        return frame

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
