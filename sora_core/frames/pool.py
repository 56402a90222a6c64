"""One thread pool for the frame path: converting, writing, hashing and reading frames.

OpenColorIO's processors, OpenImageIO's readers and writers and hashlib release the GIL while
they work, so frames run in parallel on every core while the main thread denoises the next
pass. The pool lives as long as the process (a warm worker reuses its threads across jobs).
``SORA_FRAME_THREADS`` overrides its size (default: ``os.cpu_count()``).
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_POOL: ThreadPoolExecutor | None = None
_LOCK = threading.Lock()


def threads() -> int:
    env = os.environ.get("SORA_FRAME_THREADS", "")
    return max(1, int(env)) if env.isdigit() else max(1, os.cpu_count() or 1)


def frame_pool() -> ThreadPoolExecutor:
    global _POOL
    with _LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(threads(), thread_name_prefix="sora-frames")
        return _POOL


def read_frames(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``[fn(item) for item in items]`` on the pool, in order; the first error is raised once
    every started read has ended (none is left running behind the caller)."""
    futures = [frame_pool().submit(fn, item) for item in items]
    error = None
    results = []
    for future in futures:
        try:
            results.append(future.result())
        except BaseException as exc:     # noqa: BLE001 - re-raised below, after the others end
            error = error or exc
            for other in futures:
                other.cancel()
    if error is not None:
        raise error
    return results
