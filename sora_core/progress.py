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


def eta_text(seconds: float) -> str:
    """``12 s``, ``3 min 05 s``, ``1 h 02 min``: an ETA as every host prints it."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def progress_line(event: dict) -> str:
    """``pass 2/3 denoise 5/20 · 47% · ETA 12 s`` for a ``progress`` event (the pass only for
    long shots; the share and ETA are the whole shot's)."""
    where = f"pass {event['pass']}/{event['passes']} " if event.get("passes", 1) > 1 else ""
    line = f"{where}{event.get('phase', 'working')} {event.get('step')}/{event.get('total')}"
    if event.get("overall") is not None:
        line += f" · {round(100 * event['overall'])}%"
    if event.get("eta_s") is not None:
        line += f" · ETA {eta_text(event['eta_s'])}"
    return line


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
