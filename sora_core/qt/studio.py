"""Sora Studio: the shot panel, the flipbook, a queue of shots on one warm worker and the
history of shots under the output root, in one window."""

from __future__ import annotations

import copy
from pathlib import Path

from ..errors import SoraError
from ..manifest import read_manifest
from ..spec import ShotSpec
from .compat import Qt, QtWidgets
from .flipbook import Flipbook
from .history import HistoryView, ShotRecord
from .panel import ShotPanel
from .queue import QueueEntry, ShotQueue
from .queue_view import QueueView


class Studio(QtWidgets.QMainWindow):
    def __init__(self, output_root: str, client=None, models_dirs=(), parent=None):
        super().__init__(parent)
        self.setWindowTitle("Sora Studio")
        self.queue = ShotQueue(client, self)
        self.panel = ShotPanel(queue=self.queue, output_root=output_root, models_dirs=models_dirs,
                               queueing=True)
        self.flipbook = Flipbook()
        self.queue_view = QueueView(self.queue)
        self.history = HistoryView(output_root)
        self.setCentralWidget(self.flipbook)
        self._dock("Shot", self.panel, Qt.LeftDockWidgetArea)
        queue_dock = self._dock("Queue", self.queue_view, Qt.RightDockWidgetArea)
        history_dock = self._dock("History", self.history, Qt.RightDockWidgetArea)
        self.splitDockWidget(queue_dock, history_dock, Qt.Vertical)
        self.queue.event.connect(self._on_event)
        self.history.open_shot.connect(self.open_shot)
        self.history.compare_shot.connect(self.compare_shot)
        self.history.use_as_input.connect(self.use_as_input)
        self.panel.root.changed.connect(lambda: self._set_root(self.panel.output_root))
        self.history.refresh()
        self.statusBar().showMessage(f"output root: {output_root}")

    def _dock(self, title: str, widget, area):
        dock = QtWidgets.QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setWidget(widget)
        dock.setFeatures(QtWidgets.QDockWidget.DockWidgetMovable | QtWidgets.QDockWidget.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        return dock

    def _set_root(self, root: str) -> None:
        self.history.root = root
        self.history.refresh()
        self.statusBar().showMessage(f"output root: {root}")

    def open_shot(self, folder: str) -> None:
        try:
            self.flipbook.load(folder)
        except SoraError as err:
            self.statusBar().showMessage(str(err))

    def compare_shot(self, folder: str) -> None:
        """Show ``folder`` as B against the open shot (wipe unless a compare mode is set)."""
        try:
            self.flipbook.load_b(folder)
        except SoraError as err:
            self.statusBar().showMessage(str(err))

    def use_as_input(self, mode: str, folder: str) -> ShotSpec:
        """Make the panel's shot continue from a finished one (extend, animate, restyle)."""
        record = ShotRecord(Path(folder), read_manifest(folder))
        try:
            spec = self.panel.spec()
        except SoraError:
            spec = copy.deepcopy(self.panel._base)
        spec = copy.deepcopy(spec)
        spec.mode = mode
        spec.prompt = spec.prompt or str(record.spec.get("prompt", ""))
        spec.model = str(record.spec.get("model") or spec.model)
        if mode == "animate":
            spec.inputs.image = str(record.frame_paths()[-1])
        else:
            spec.inputs.frames = record.pattern()
        spec.output.dir = f"shots/{record.folder.name}_{mode}"
        spec.output.first_frame = None
        self.panel.set_spec(spec)
        self.statusBar().showMessage(f"{mode} from {folder}")
        return spec

    def _on_event(self, entry: QueueEntry, event: dict) -> None:
        if event.get("event") == "done":
            self.history.refresh()
            if self.queue.running is None:         # the last shot of the line: show it
                self.open_shot(event["dir"])
        elif event.get("event") == "error" and event.get("code") != "cancelled":
            self.statusBar().showMessage(f"{entry.label()} failed: {event.get('message', '')}")

    def closeEvent(self, event):
        self.queue.close()
        self.flipbook.close()
        super().closeEvent(event)
