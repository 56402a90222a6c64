"""Progress of a whole shot: pass k of n, the overall fraction and an ETA, in every event.

A long shot is many passes; a bar that restarts every pass says nothing about when the shot
ends. Each pass weighs its frame count; inside a pass denoising is most of the work and
writing the rest. The ETA extrapolates the time this run has taken for the fraction it has
done (passes resumed from disk cost nothing and count as done). Light half.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

DENOISE_SHARE = 0.9


class ShotProgress:
    def __init__(self, passes, emit: Callable[[dict], None], job_id: str, done: int = 0):
        self.weights = [max(p.frames, 1) for p in passes]
        self.emit, self.job_id = emit, job_id
        self.total_weight = sum(self.weights)
        self.start_fraction = sum(self.weights[:done]) / self.total_weight
        self.t0 = time.monotonic()
        self.last = self.start_fraction
        self._lock = threading.Lock()

    def fraction(self, index: int, phase: str, step: int, total: int) -> float:
        within = step / max(total, 1)
        within = DENOISE_SHARE * within if phase == "denoise" else DENOISE_SHARE + (1 - DENOISE_SHARE) * within
        return (sum(self.weights[:index]) + self.weights[index] * within) / self.total_weight

    def report(self, index: int, phase: str, step: int, total: int) -> None:
        """Emit a ``progress`` event for pass ``index`` (0-based). A pass's frames are written
        while the next pass denoises, so the overall fraction only ever grows."""
        with self._lock:
            overall = self.last = max(self.last, self.fraction(index, phase, step, total))
        done_here = overall - self.start_fraction
        elapsed = time.monotonic() - self.t0
        eta = elapsed * (1 - overall) / done_here if done_here > 1e-6 else None
        self.emit({"event": "progress", "job": self.job_id, "phase": phase, "step": step, "total": total,
                   "pass": index + 1, "passes": len(self.weights), "overall": round(overall, 4),
                   "eta_s": None if eta is None else round(eta, 1)})
