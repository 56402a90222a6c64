"""Where a shot's time goes: seconds per phase, per pass and in total.

Phases: ``load_s`` (the model and each pass's conditioning frames), ``denoise_s`` (the pipeline
call up to its last step), ``decode_s`` (the rest of the call: VAE decode, post-processing),
``color_s`` and ``write_s`` (converting to scene linear; writing and hashing EXRs: seconds of
pool threads, which run while the next pass denoises), ``total_s`` (wall clock; for a pass, from
its start to its last frame on disk). Light half: the manifest and ``sora info`` read these.
"""

from __future__ import annotations

import threading
import time

PHASES = ("load_s", "denoise_s", "decode_s", "color_s", "write_s")


def _rounded(values: dict) -> dict:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in values.items()}


class PassTimer:
    """One pass's phases; thread-safe (pool threads add colour and write seconds)."""

    def __init__(self, index: int):
        self.index = index
        self.t0 = time.perf_counter()
        self.seconds = dict.fromkeys(PHASES, 0.0)
        self.total_s: float | None = None
        self._lock = threading.Lock()

    def add(self, phase: str, seconds: float) -> None:
        with self._lock:
            self.seconds[phase] += seconds

    def finish(self) -> None:
        self.total_s = time.perf_counter() - self.t0

    def as_dict(self) -> dict:
        with self._lock:
            total = self.total_s if self.total_s is not None else time.perf_counter() - self.t0
            return _rounded({"pass": self.index + 1, **self.seconds, "total_s": total})


class ShotTimings:
    """A job's timings: the model load, every pass of this run, and the passes of earlier runs
    (a resumed shot keeps what its finished passes cost)."""

    def __init__(self, earlier: list[dict] | None = None):
        self.t0 = time.perf_counter()
        self.model_load_s = 0.0
        self.earlier = list(earlier or [])
        self.passes: list[PassTimer] = []

    def start_pass(self, index: int) -> PassTimer:
        timer = PassTimer(index)
        self.passes.append(timer)
        return timer

    def as_dict(self) -> dict:
        """Totals of this run (``load_s`` includes the model load) and the split of every
        finished pass (earlier runs' first)."""
        mine = [t.as_dict() for t in self.passes]
        totals = {phase: sum(p[phase] for p in mine) for phase in PHASES}
        totals["load_s"] += self.model_load_s
        finished = [d for t, d in zip(self.passes, mine) if t.total_s is not None]
        return _rounded({**totals, "model_load_s": self.model_load_s,
                         "total_s": time.perf_counter() - self.t0}) | {"passes": self.earlier + finished}


def format_table(timings: dict) -> list[str]:
    """``sora info SHOT_DIR``: one line per pass and the total, a column per phase."""
    head = f"{'':8}" + "".join(f"{p[:-2]:>9}" for p in PHASES) + f"{'total':>9}"
    lines = [head]
    for p in timings.get("passes", []):
        lines.append(f"pass {p.get('pass', '?'):<3}" + "".join(f"{p.get(k, 0):9.2f}" for k in PHASES)
                     + f"{p.get('total_s', 0):9.2f}")
    lines.append(f"{'total':8}" + "".join(f"{timings.get(k, 0):9.2f}" for k in PHASES)
                 + f"{timings.get('total_s', 0):9.2f}")
    return lines
