"""The batch summary: one record per shot, and the batch exit code.

Shot status: ``done`` (every frame written; ``skipped`` when a rerun found it complete),
``failed`` (its last attempt ended with a non-zero exit code), ``blocked`` (a shot it depends on
did not finish, so it never ran), ``cancelled`` (the batch was cancelled before it finished) or
``waiting``/``running`` while the batch runs.

The batch exit code is 0 only when every shot is done; 130 when the batch was cancelled;
otherwise the exit code the failed shots share (2, 3, 75, 1), or 1 when they differ or when
shots were only blocked.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..manifest import write_json_atomic

SUMMARY_VERSION = 1
FINAL = ("done", "failed", "blocked", "cancelled")


@dataclass
class ShotResult:
    id: str
    spec: str | None = None             # spec file, when the shot has one
    source: str = ""
    depends_on: list[str] = field(default_factory=list)
    status: str = "waiting"
    exit_code: int | None = None
    error: str | None = None            # the last error, "code: message"
    node: str | None = None             # the node of the last attempt ("ip/node-id")
    attempts: int = 0
    seconds: float = 0.0                # time the attempts ran on their nodes (queueing not counted)
    frames: int = 0
    manifest: str | None = None
    skipped: bool = False               # a rerun found the shot already complete
    deliverables: list[str] = field(default_factory=list)   # --export: the signed files written
    history: list[dict] = field(default_factory=list)   # one record per attempt

    @property
    def final(self) -> bool:
        return self.status in FINAL


def batch_exit_code(results: list[ShotResult], cancelled: bool = False) -> int:
    if all(r.status == "done" for r in results):
        return 0
    if cancelled or any(r.status == "cancelled" for r in results):
        return 130
    codes = {r.exit_code for r in results if r.status == "failed"}
    return codes.pop() if len(codes) == 1 and None not in codes else 1


def build_summary(results: list[ShotResult], output_root: str | Path, started: float,
                  cancelled: bool = False, extra: dict | None = None) -> dict:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    return {
        "summary_version": SUMMARY_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "output_root": str(output_root),
        "seconds": round(time.time() - started, 3),
        "exit_code": batch_exit_code(results, cancelled),
        "cancelled": cancelled,
        "counts": counts,
        **(extra or {}),
        "shots": [asdict(r) for r in results],
    }


def write_summary(path: str | Path, summary: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, summary)
    return path


def read_summary(path: str | Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))
