"""The warm worker's loaded model: the next job on the same model and runtime skips the load."""

from __future__ import annotations

from typing import Callable


class BackendCache:
    """Keeps the last loaded backend; a different model or runtime drops it before loading."""

    def __init__(self):
        self.key = None
        self.backend = None
        self.loads = 0

    def get(self, model, runtime, emit: Callable[[dict], None], job_id: str):
        from . import load_backend

        key = (str(model.path.resolve()), runtime.device, runtime.dtype, runtime.memory)
        if key != self.key:
            self.drop()                 # free the old model before loading the new one
            emit({"event": "loading", "job": job_id, "model": model.name, "path": str(model.path)})
            self.backend = load_backend(model.path, runtime)
            self.key = key
            self.loads += 1
        return self.backend

    def drop(self) -> None:
        self.backend = self.key = None
