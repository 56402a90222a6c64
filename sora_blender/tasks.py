"""Tasks: a list of steps advanced by a ``bpy.app.timers`` timer, never blocking the UI.

A *step* prepares its spec only when its turn comes (so a node can use the result of the node
before it), may be skipped (cached) or done in Blender without a job (``local``), runs one
worker job and then finishes (import into the compositor, update a node). While the worker
starts (in a thread, see :mod:`.worker.service`) the task just waits for the next tick. In
background mode (``blender -b``) :func:`run_blocking` drives the same task to completion and
prints one line per event for farm logs.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Callable

import bpy

from sora_core import protocol
from sora_core.errors import SoraError

from . import live
from .worker import service

POLL_INTERVAL = 0.1
_tasks: dict[str, "Task"] = {}


class Step:
    """One worker job. ``prepare()`` -> (ShotSpec, output_root) or None to skip (cached);
    a ``local`` step does its work in ``prepare`` and never runs a job."""

    def __init__(self, label: str, prepare: Callable, finish: Callable[[dict], None],
                 on_event: Callable[[dict], None] | None = None,
                 on_fail: Callable[[SoraError], None] | None = None,
                 on_skip: Callable[[], None] | None = None, local: bool = False):
        self.label = label
        self.prepare = prepare
        self.finish = finish
        self.on_event = on_event
        self.on_fail = on_fail
        self.on_skip = on_skip
        self.local = local


class Task:
    def __init__(self, key: str, steps: list[Step], on_finish: Callable[["Task"], None] | None = None,
                 echo: bool = False):
        self.key = key
        self.steps = list(steps)
        self.on_finish = on_finish
        self.echo = echo
        self.index = 0
        self.job = None
        self.pending: tuple | None = None      # (spec, root) waiting for the worker to be ready
        self.state = "running"          # running, done, error, cancelled
        self.error: SoraError | None = None
        self.ran: list[str] = []        # labels of steps that ran a job
        self.skipped: list[str] = []    # labels of steps served from the cache
        self.local: list[str] = []      # labels of steps done in Blender without a job
        self.changed = True             # something to redraw since the last tick

    @property
    def finished(self) -> bool:
        return self.state != "running"

    def _print(self, text: str) -> None:
        if self.echo:
            print(f"sora: {text}", flush=True)

    def update(self) -> bool:
        """Advance without blocking; return True when the task has finished."""
        if self.finished:
            return True
        try:
            self._advance()
        except SoraError as exc:
            self._fail(exc)
        except Exception as exc:        # a bug in a callback must not kill the timer
            self._fail(SoraError("internal", f"{type(exc).__name__}: {exc}"))
        return self.finished

    def _next_job(self) -> bool:
        """Prepare steps until one needs a job (True) or none is left (the task is done)."""
        while self.pending is None:
            if self.index >= len(self.steps):
                self._end("done")
                return False
            step = self.steps[self.index]
            prepared = step.prepare()
            if prepared is not None:
                self.pending = prepared
                break
            if step.local:                  # done in Blender (e.g. compositor import)
                self.local.append(step.label)
                self._print(f"[{step.label}] done")
            else:
                self.skipped.append(step.label)
                self._print(f"[{step.label}] cached, not run again")
                if step.on_skip:
                    step.on_skip()
            self.index += 1
        return True

    def _advance(self) -> None:
        if self.job is None:
            if not self._next_job():
                return
            client = service.ready_client()     # None while the worker starts (in a thread)
            if client is None:
                return
            spec, root = self.pending
            step = self.steps[self.index]
            self._print(f"[{step.label}] {spec.mode} {spec.model} -> {Path(root) / spec.output.dir}")
            self.job = client.submit(spec, root)
            self.pending = None
            self.ran.append(step.label)
        step = self.steps[self.index]
        for event in self.job.poll():
            self.changed = True
            kind = event.get("event")
            if kind in ("progress", "loading", "notice", "error", "done"):
                self._print(f"[{step.label}] {protocol.describe(event)}")
            if step.on_event:
                step.on_event(event)
            if kind == "done":
                self.job = None
                self.index += 1
                step.finish(event)
                return
            if kind == "error":
                self.job = None
                self._fail(SoraError.from_event(event))
                return

    def _fail(self, err: SoraError) -> None:
        if self.index < len(self.steps) and self.steps[self.index].on_fail:
            try:
                self.steps[self.index].on_fail(err)
            except Exception:
                pass
        self.error = err
        self._end("cancelled" if err.code == "cancelled" else "error")

    def _end(self, state: str) -> None:
        self.state = state
        _tasks.pop(self.key, None)
        live.invalidate()                  # frames were written (or removed)
        if self.on_finish:
            try:
                self.on_finish(self)
            except Exception as exc:
                print(f"sora: finishing {self.key} failed: {exc}", file=sys.stderr)

    def cancel(self) -> None:
        if self.finished:
            return
        if self.job is not None:
            self.job.cancel()
        else:
            self._fail(SoraError("cancelled", "cancelled by the user"))

    def abort(self, reason: str) -> None:
        """The worker is going away: end now (the job dies with the worker)."""
        if not self.finished:
            self.job = None
            self._fail(SoraError("cancelled", f"cancelled: {reason}"))


def _abort_all(reason: str) -> None:
    for task in list(_tasks.values()):
        task.abort(reason)
    _tasks.clear()


service.on_stop(_abort_all)


def start(task: Task) -> Task:
    """Run ``task`` in the background of the UI, advanced by a timer. Returns at once: the
    worker starts in a thread when it is not running yet."""
    old = _tasks.get(task.key)
    if old is not None and not old.finished:
        raise SoraError("invalid_input", f"{task.key} is already running", hint="cancel it first")
    _tasks[task.key] = task
    task.update()
    if not task.finished and not bpy.app.timers.is_registered(tick):
        bpy.app.timers.register(tick, first_interval=POLL_INTERVAL)
    return task


def run_blocking(task: Task, timeout: float | None = None) -> Task:
    """Drive ``task`` to completion (background mode, farm, tests)."""
    _tasks[task.key] = task
    deadline = None if timeout is None else time.monotonic() + timeout
    while not task.update():
        if deadline is not None and time.monotonic() > deadline:
            task.cancel()
            deadline = None
        time.sleep(0.03)
    return task


def get_task(key: str) -> Task | None:
    return _tasks.get(key)


def active_tasks() -> dict[str, Task]:
    return dict(_tasks)


def tick():
    """The timer: poll every task, redraw when one had news, stay registered while one runs."""
    changed = False
    for task in list(_tasks.values()):
        task.update()
        changed |= task.changed or task.finished
        task.changed = False
    if changed:
        live.redraw()
    return POLL_INTERVAL if _tasks else None


def unregister() -> None:
    if bpy.app.timers.is_registered(tick):
        bpy.app.timers.unregister(tick)
