"""Drive a batch over an executor: dependencies, retries, cancel, the summary.

Not a scheduler of machines (Ray places the tasks): this only decides *what* is submitted
*when*. A shot is submitted once every shot it depends on is done; independent shots are all
submitted at once and run as far in parallel as the cluster's GPUs (or slots) allow.

Retry rules, from the exit code of an attempt:
- 0: done.
- 75 (out of memory, device busy, worker died, node lost): submitted again, up to
  ``retries`` more times; Ray places the new attempt wherever a GPU is free, so a shot whose
  node died runs elsewhere. The runner resumes after the last finished pass and rewrites the
  frames of the unfinished one under the same names, so no frame is duplicated or half-written.
- 2, 3, 1: failed, not retried (the same input would fail the same way).
- 130: cancelled.
Shots that depend on a shot that did not finish are ``blocked``.

An executor has ``submit(shot, attempt)``, ``poll(timeout) -> [(shot_id, attempt, result)]``,
``drain_events() -> [event]``, ``cancel(shot_id)`` and ``close()``; a result is the dict
:func:`sora_core.farm.shot_task.execute_shot` returns.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Protocol

from .batch import Batch, order
from .summary import ShotResult, build_summary

RETRYABLE_EXIT = 75
CANCELLED_EXIT = 130


class Executor(Protocol):
    def submit(self, shot, attempt: int) -> None: ...
    def poll(self, timeout: float) -> list[tuple[str, int, dict]]: ...
    def drain_events(self) -> list[dict]: ...
    def cancel(self, shot_id: str) -> None: ...
    def close(self) -> None: ...


class BatchRunner:
    def __init__(self, batch: Batch, executor: Executor, retries: int = 3, retry_delay: float = 1.0,
                 on_event: Callable[[dict], None] | None = None, cancel_grace: float = 15.0):
        self.batch = batch
        self.executor = executor
        self.retries = retries
        self.retry_delay = retry_delay
        self.on_event = on_event or (lambda e: None)
        self.cancel_grace = cancel_grace
        self.results = {s.id: ShotResult(s.id, s.spec_path, s.source, list(s.depends_on))
                        for s in order(batch.shots)}
        self._cancel = threading.Event()
        self._not_before: dict[str, float] = {}
        self._submitted_at: dict[str, float] = {}
        self.started = time.time()

    def cancel(self) -> None:
        """Stop the batch: running shots are cancelled (finished passes stay on disk for a resume)."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    # ---- the loop ----------------------------------------------------------------------------
    def run(self) -> dict:
        shots = self.batch.by_id()
        try:
            while True:
                if self._cancel.is_set():
                    self._wind_down()
                    break
                self._block_orphans()
                now = time.monotonic()
                for r in self.results.values():
                    if (r.status == "waiting" and now >= self._not_before.get(r.id, 0)
                            and all(self.results[d].status == "done" for d in r.depends_on)):
                        self._submit(shots[r.id], r)
                running = [r for r in self.results.values() if r.status == "running"]
                waiting = [r for r in self.results.values() if r.status == "waiting"]
                if not running and not waiting:
                    break
                finished = self.executor.poll(0.2 if running else 0.05)
                self._relay()
                for shot_id, attempt, result in finished:
                    self._finish(self.results[shot_id], attempt, result)
        except KeyboardInterrupt:
            self._cancel.set()
            self._wind_down()
        self._relay()
        summary = build_summary(list(self.results.values()), self.batch.output_root, self.started,
                                self.cancelled)
        self.on_event({"event": "batch_done", "exit_code": summary["exit_code"],
                       "counts": summary["counts"], "seconds": summary["seconds"]})
        return summary

    def _submit(self, shot, r: ShotResult) -> None:
        r.attempts += 1
        r.status = "running"
        self._submitted_at[r.id] = time.monotonic()
        self.on_event({"event": "submitted", "shot": r.id, "attempt": r.attempts})
        self.executor.submit(shot, r.attempts)

    def _finish(self, r: ShotResult, attempt: int, result: dict) -> None:
        if r.status != "running" or attempt != r.attempts:
            return          # a stale result (an attempt already written off)
        seconds = round(time.monotonic() - self._submitted_at.pop(r.id, time.monotonic()), 4)
        code = int(result.get("exit_code", 1))
        worker_seconds = result.get("seconds")
        r.seconds = round(r.seconds + (worker_seconds if worker_seconds is not None else seconds), 4)
        r.node = result.get("node") or r.node
        r.exit_code = code
        r.history.append({"attempt": attempt, "node": r.node, "exit_code": code,
                          "code": result.get("code"), "seconds": worker_seconds,
                          "wall_seconds": seconds, "job_seconds": result.get("job_seconds")})
        if code == 0:
            r.status, r.error = "done", None
            r.frames, r.manifest, r.skipped = result.get("frames", 0), result.get("manifest"), bool(result.get("skipped"))
            r.deliverables = list(result.get("deliverables") or [])
            self.on_event({"event": "shot_done", "shot": r.id, "attempt": attempt, "node": r.node,
                           "frames": r.frames, "manifest": r.manifest, "seconds": r.seconds,
                           "skipped": r.skipped, "deliverables": r.deliverables})
            return
        r.error = result.get("error") or f"exit code {code}"
        if code == CANCELLED_EXIT or self._cancel.is_set():
            r.status = "cancelled"
        elif code == RETRYABLE_EXIT and attempt <= self.retries:
            r.status = "waiting"
            self._not_before[r.id] = time.monotonic() + self.retry_delay
            self.on_event({"event": "retry", "shot": r.id, "attempt": attempt, "node": r.node,
                           "exit_code": code, "error": r.error, "next_attempt": attempt + 1})
            return
        else:
            r.status = "failed"
        self.on_event({"event": "shot_failed" if r.status == "failed" else "shot_cancelled",
                       "shot": r.id, "attempt": attempt, "node": r.node, "exit_code": code,
                       "error": r.error, "retryable": code == RETRYABLE_EXIT})

    def _block_orphans(self) -> None:
        changed = True
        while changed:
            changed = False
            for r in self.results.values():
                if r.status != "waiting":
                    continue
                bad = [d for d in r.depends_on if self.results[d].status in ("failed", "blocked", "cancelled")]
                if bad:
                    r.status, r.error, changed = "blocked", f"blocked: {', '.join(bad)} did not finish", True
                    self.on_event({"event": "shot_blocked", "shot": r.id, "by": bad})

    def _wind_down(self) -> None:
        """Cancel every running shot and wait (bounded) for their results."""
        running = [r for r in self.results.values() if r.status == "running"]
        for r in running:
            self.executor.cancel(r.id)
        deadline = time.monotonic() + self.cancel_grace
        while any(r.status == "running" for r in self.results.values()) and time.monotonic() < deadline:
            for shot_id, attempt, result in self.executor.poll(0.2):
                self._finish(self.results[shot_id], attempt, result)
            self._relay()
        for r in self.results.values():
            if r.status in ("running", "waiting"):
                r.status = "cancelled"
                r.error = r.error or "cancelled: the batch was cancelled"

    def _relay(self) -> None:
        for event in self.executor.drain_events():
            if event.get("shot") in self.results and event.get("node"):
                r = self.results[event["shot"]]
                if event.get("attempt") == r.attempts:
                    r.node = event["node"]
            self.on_event(event)
