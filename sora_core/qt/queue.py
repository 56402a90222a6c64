"""Shots run one after another on one warm worker, with events delivered as Qt signals.

The worker client blocks (starting a worker, waiting for events), so each job is driven from
a plain thread; every event crosses back to the GUI thread through a queued signal and the
Qt event loop never waits. The shot panel runs its shots through a queue too (its own, or the
studio's shared one), so there is one path from a spec to a worker.
"""

from __future__ import annotations

import itertools
import threading

from ..client import WorkerClient
from ..errors import SoraError
from ..spec import ShotSpec
from .compat import QtCore, Signal

STATES = ("queued", "running", "done", "failed", "cancelled")
_ids = itertools.count(1)


class QueueEntry:
    """One shot in the queue: its spec, state and the last events it received."""

    def __init__(self, spec: ShotSpec, output_root: str):
        self.id = next(_ids)
        self.spec, self.output_root = spec, output_root
        self.state = "queued"
        self.progress: dict | None = None
        self.result: dict | None = None
        self.error: dict | None = None
        self.job = None
        self.cancel_requested = False

    def label(self) -> str:
        prompt = self.spec.prompt if len(self.spec.prompt) <= 48 else self.spec.prompt[:47] + "…"
        return f"#{self.id} {self.spec.mode}: {prompt or self.spec.output.dir}"


class ShotQueue(QtCore.QObject):
    """``add`` shots; they run in order on ``client``. ``event(entry, dict)`` carries every
    worker event, ``changed()`` any change of order or state."""

    event = Signal(object, object)
    changed = Signal()
    _incoming = Signal(object, object)      # from job threads, queued to the GUI thread

    def __init__(self, client: WorkerClient | None = None, parent=None):
        super().__init__(parent)
        self.client = client or WorkerClient()
        self.entries: list[QueueEntry] = []
        self._running: QueueEntry | None = None
        self._incoming.connect(self._on_event, QtCore.Qt.QueuedConnection)

    @property
    def running(self) -> QueueEntry | None:
        return self._running

    def add(self, spec: ShotSpec, output_root: str) -> QueueEntry:
        entry = QueueEntry(spec, output_root)
        self.entries.append(entry)
        self.changed.emit()
        self._start_next()
        return entry

    def cancel(self, entry: QueueEntry) -> None:
        """A queued shot leaves the line; the running one is asked to stop (the worker kills
        itself after the client's grace period if it does not)."""
        if entry.state == "queued":
            self._on_event(entry, SoraError("cancelled", "cancelled before it ran").to_event())
        elif entry.state == "running" and not entry.cancel_requested:
            entry.cancel_requested = True
            if entry.job is not None:
                entry.job.cancel()
            self.changed.emit()

    def retry(self, entry: QueueEntry) -> None:
        """Run a failed or cancelled shot again (its finished passes are resumed from disk)."""
        if entry.state in ("failed", "cancelled"):
            self.entries.remove(entry)
            self.entries.append(entry)
            entry.state, entry.error, entry.progress, entry.cancel_requested = "queued", None, None, False
            self.changed.emit()
            self._start_next()

    def move(self, entry: QueueEntry, delta: int) -> None:
        """Move a queued shot ``delta`` places among the queued ones."""
        queued = [e for e in self.entries if e.state == "queued"]
        if entry not in queued:
            return
        i = queued.index(entry)
        j = max(0, min(len(queued) - 1, i + delta))
        if i == j:
            return
        other = queued[j]
        a, b = self.entries.index(entry), self.entries.index(other)
        self.entries[a], self.entries[b] = other, entry
        self.changed.emit()

    def close(self) -> None:
        """Stop the running shot and shut the worker down."""
        for entry in list(self.entries):
            if entry.state == "queued":
                entry.state = "cancelled"
        if self._running is not None and self._running.job is not None:
            self._running.job.cancel(grace=0)
        self.client.close()

    # ---- running -------------------------------------------------------------------------
    def _start_next(self) -> None:
        if self._running is not None:
            return
        entry = next((e for e in self.entries if e.state == "queued"), None)
        if entry is None:
            return
        self._running, entry.state = entry, "running"
        self.changed.emit()
        threading.Thread(target=self._drive, args=(entry,), daemon=True,
                         name=f"sora-queue-{entry.id}").start()

    def _drive(self, entry: QueueEntry) -> None:
        """Job thread: submit (may start the worker), then forward events until the end."""
        try:
            job = self.client.submit(entry.spec, entry.output_root)
            entry.job = job
            if entry.cancel_requested:
                job.cancel()
            for event in job.events():
                self._forward(entry, event)
        except SoraError as err:
            self._forward(entry, err.to_event())
        except Exception as exc:        # a bug: the panel shows it instead of hanging
            self._forward(entry, SoraError("internal", f"{type(exc).__name__}: {exc}").to_event())

    def _forward(self, entry: QueueEntry, event: dict) -> None:
        try:
            self._incoming.emit(entry, event)
        except RuntimeError:            # the queue's Qt object is gone (its window closed)
            pass

    def _on_event(self, entry: QueueEntry, event: dict) -> None:
        """GUI thread: the entry's state is final before anyone hears a terminal event."""
        kind = event.get("event")
        if kind == "progress":
            entry.progress = event
        elif kind == "done":
            entry.state, entry.result = "done", event
        elif kind == "error":
            entry.state = "cancelled" if event.get("code") == "cancelled" else "failed"
            entry.error = event
        if kind in ("done", "error") and self._running is entry:
            self._running = None
        self.event.emit(entry, event)
        if kind in ("done", "error"):
            self.changed.emit()
            self._start_next()
