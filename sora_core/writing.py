"""Writing a pass's frames: converted and written on the frame pool, all or nothing.

Heavy half (OpenImageIO through ``frames.exr``). A :class:`PassWriter` takes a pass's
display-referred frames, converts each to scene linear, writes it atomically (``safe_write``:
an exclusive random temporary in the folder held open, then rename) with its provenance and
hashes it, on the pool's threads, while the caller goes on
(the next pass denoises). The frames the next pass is conditioned on go first, so it waits only
for those. Frame events come per frame, in frame order. When the last frame is on disk the pass
is handed to ``on_complete`` (the manifest lists it from then on). On a failure or a cancel
every frame of the pass is removed once the writes in flight have ended, so the folder holds
finished passes only.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

import numpy as np

from . import GENERATOR, __version__
from .errors import SoraError
from .spec import ShotSpec
from .timings import PassTimer


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


def cancelled() -> SoraError:
    return SoraError("cancelled", "cancelled by the user")


class PassWriter:
    """One pass's frames, ``numbers`` in frame order, converted and written on the pool.

    ``convert(display) -> linear`` runs per frame (after ``load(item) -> display`` when frames
    are submitted as something to read, such as a file); ``on_frame(number, path, count)``
    reports each frame once it and every frame before it are on disk; ``on_complete(records)``
    runs once the whole pass is written. ``numbers=None`` streams: frames are numbered as they
    are submitted and ``close()`` says there are no more. ``max_in_flight`` bounds the frames
    held by submitted, unfinished work (a decoded video); ``None`` submits without waiting.
    """

    def __init__(self, numbers, path_of: Callable[[int], Path], attrs: dict[str, str],
                 convert: Callable[[np.ndarray], np.ndarray],
                 on_frame: Callable[[int, Path, int], None], is_cancelled: Callable[[], bool],
                 timer: PassTimer, on_complete: Callable[[list[dict]], None] | None = None,
                 max_in_flight: int | None = None, load: Callable | None = None, folder=None):
        from .frames.pool import frame_pool

        self.closed = numbers is not None
        self.numbers = list(numbers or ())
        self.load = load
        self.path_of, self.attrs, self.convert = path_of, attrs, convert
        self.on_frame, self.is_cancelled, self.timer = on_frame, is_cancelled, timer
        self.on_complete = on_complete
        self.folder = folder        # the safe_write.Folder every frame goes into (None: each its own)
        self.pool = frame_pool()
        self.records: dict[int, dict] = {}
        self.written: list[Path] = []
        self.futures: dict[int, object] = {}
        self.error: BaseException | None = None
        self.finished = threading.Event()
        self._stop = False
        self._reported = 0
        self._handed_on = False
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_in_flight) if max_in_flight else None

    # -- feeding -------------------------------------------------------------------------------
    def submit(self, number: int, frame: np.ndarray) -> None:
        """Queue one frame; raises the pass's error (or a cancel) instead of queueing more."""
        self.check()
        if self._slots is not None:
            while not self._slots.acquire(timeout=0.1):
                self.check()
        if not self.closed:
            with self._lock:
                self.numbers.append(number)
        self.futures[number] = self.pool.submit(self._write, number, frame)

    def close(self) -> None:
        """A streamed pass has no more frames (it completes once they are written)."""
        with self._lock:
            self.closed = True
        self._complete_if_done()

    def submit_all(self, frames: dict[int, np.ndarray], first=()) -> None:
        """Queue a whole pass, the frame numbers in ``first`` before the others."""
        for number in [n for n in first if n in frames] + [n for n in self.numbers if n not in first]:
            self.submit(number, frames[number])

    # -- waiting -------------------------------------------------------------------------------
    def check(self) -> None:
        """Raise the pass's error now, if a frame has failed (cheap; called every denoise step)."""
        if self.error is not None:
            raise self.error
        if self.is_cancelled():
            raise cancelled()

    def wait_for(self, numbers) -> None:
        """Block until the given frames of this pass are on disk (others are not waited for)."""
        for number in numbers:
            future = self.futures.get(number)
            if future is not None:
                future.exception()
        if self.error is not None:
            raise self.error

    def wait(self) -> list[dict]:
        """Block until the whole pass is written and handed on; return its records."""
        for future in list(self.futures.values()):
            future.exception()
        if self.error is None and len(self.records) == len(self.numbers):
            self.finished.wait()
        if self.error is not None:
            self.abort()
            raise self.error
        if len(self.records) != len(self.numbers):
            raise SoraError("internal", f"pass writer ended with {len(self.records)} of "
                            f"{len(self.numbers)} frames")
        return self.sorted_records()

    @property
    def complete(self) -> bool:
        """Every frame is on disk and the pass was handed on (it is part of the shot)."""
        return self.finished.is_set() and self.error is None and len(self.records) == len(self.numbers)

    def abort(self) -> None:
        """Stop: let the writes in flight end, then remove every frame of this pass, unless it
        was completely written and handed on before (a finished pass stays)."""
        self._stop = True
        for future in list(self.futures.values()):
            future.cancel()
        for future in list(self.futures.values()):
            if not future.cancelled():
                future.exception()
        if self.complete:
            return
        with self._lock:
            for path in self.written:
                if self.folder is not None:
                    self.folder.unlink(path.name)
                else:
                    path.unlink(missing_ok=True)
            self.written.clear()

    def sorted_records(self) -> list[dict]:
        return [self.records[n] for n in sorted(self.records)]

    # -- on the pool ---------------------------------------------------------------------------
    def _write(self, number: int, frame: np.ndarray) -> None:
        from .frames.exr import write_exr_in
        from .safe_write import Folder

        try:
            if self._stop or self.error is not None:
                return
            if self.is_cancelled():
                raise cancelled()
            if self.load is not None:
                t_read = time.perf_counter()
                frame = self.load(frame)
                self.timer.add("load_s", time.perf_counter() - t_read)
            t0 = time.perf_counter()
            linear = self.convert(frame)
            t1 = time.perf_counter()
            path = self.path_of(number)
            if self.folder is not None:
                digest = write_exr_in(self.folder, path.name, linear, self.attrs)
            else:
                with Folder.open(path.parent) as folder:
                    digest = write_exr_in(folder, path.name, linear, self.attrs)
            with self._lock:
                self.written.append(path)
            record = {"number": number, "file": path.name, "sha256": digest}
            self.timer.add("color_s", t1 - t0)
            self.timer.add("write_s", time.perf_counter() - t1)
            self._finished_frame(number, record)
        except BaseException as exc:    # noqa: BLE001 - kept for the caller, who raises it
            with self._lock:
                if self.error is None:
                    self.error = exc
            self._stop = True
            self.finished.set()
        finally:
            if self._slots is not None:
                self._slots.release()

    def _finished_frame(self, number: int, record: dict) -> None:
        with self._lock:
            self.records[number] = record
            while self._reported < len(self.numbers) and self.numbers[self._reported] in self.records:
                n = self.numbers[self._reported]
                self._reported += 1
                self.on_frame(n, self.path_of(n), self._reported)
        self._complete_if_done()

    def _complete_if_done(self) -> None:
        with self._lock:
            if self._handed_on or not self.closed or len(self.records) != len(self.numbers) \
                    or self.error is not None:
                return
            self._handed_on = True
        self.timer.finish()
        if self.on_complete is not None:
            self.on_complete(self.sorted_records())
        self.finished.set()
