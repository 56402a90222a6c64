"""The warm worker's loaded model: the next job on the same model, files and runtime skips the load."""

from __future__ import annotations

import os
from typing import Callable


def file_key(path: str) -> tuple:
    """A file by resolved path, size and modification time (a rewritten file is reloaded)."""
    st = os.stat(os.path.expanduser(path))
    return (os.path.realpath(os.path.expanduser(path)), st.st_size, st.st_mtime_ns)


class BackendCache:
    """Keeps the last loaded backend; a different model, component file or runtime drops it
    before loading. LoRAs are not part of the key: the backend swaps them in place."""

    def __init__(self):
        self.key = None
        self.backend = None
        self.loads = 0

    def get(self, model, runtime, emit: Callable[[dict], None], job_id: str, components=None,
            loras=()):
        from . import load_backend

        given = components.given() if components is not None else {}
        key = (str(model.path.resolve()), runtime.device, runtime.dtype, runtime.memory,
               tuple((name, file_key(path)) for name, path in sorted(given.items())))
        if key != self.key:
            self.drop()                 # free the old model before loading the new one
            emit({"event": "loading", "job": job_id, "model": model.name, "path": str(model.path)})
            self.backend = load_backend(model.path, runtime, given)
            self.key = key
            self.loads += 1
        if loras or getattr(self.backend, "loras", None):
            self.backend.set_loras(list(loras))
        return self.backend

    def drop(self) -> None:
        self.backend = self.key = None
