"""The studio's queue: shots in order with their state; reorder, cancel one, retry a failed one."""

from __future__ import annotations

from .compat import Qt, QtWidgets
from .queue import QueueEntry, ShotQueue
from .status import progress_text


def entry_text(entry: QueueEntry) -> str:
    state = entry.state
    if state == "running" and entry.progress:
        state = progress_text(entry.progress)
    elif state == "failed" and entry.error:
        state = f"failed: {entry.error.get('message', '')[:60]}"
    elif state == "done" and entry.result:
        state = f"done · {entry.result.get('frames')} frames"
    return f"{entry.label()}\n    {state}"


class QueueView(QtWidgets.QWidget):
    def __init__(self, queue: ShotQueue, parent=None):
        super().__init__(parent)
        self.queue = queue
        self.list = QtWidgets.QListWidget()
        self.list.setAlternatingRowColors(True)
        self.list.setWordWrap(True)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.buttons = {}
        row = QtWidgets.QHBoxLayout()
        for name, action in (("Up", lambda e: queue.move(e, -1)), ("Down", lambda e: queue.move(e, 1)),
                             ("Cancel", queue.cancel), ("Retry", queue.retry)):
            button = QtWidgets.QPushButton(name)
            button.clicked.connect(lambda _=False, a=action: self._apply(a))
            row.addWidget(button)
            self.buttons[name] = button
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list, 1)
        layout.addLayout(row)
        queue.changed.connect(self.refresh)
        queue.event.connect(self._on_event)
        self.list.currentRowChanged.connect(self._update_buttons)
        self.refresh()

    def selected(self) -> QueueEntry | None:
        item = self.list.currentItem()
        return item.data(Qt.UserRole) if item else None

    def select(self, entry: QueueEntry) -> None:
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.UserRole) is entry:
                self.list.setCurrentRow(i)

    def refresh(self) -> None:
        keep = self.selected()
        self.list.clear()
        for entry in self.queue.entries:
            item = QtWidgets.QListWidgetItem(entry_text(entry))
            item.setData(Qt.UserRole, entry)
            self.list.addItem(item)
            if entry is keep:
                self.list.setCurrentItem(item)
        self._update_buttons()

    def _on_event(self, entry: QueueEntry, event: dict) -> None:
        if event.get("event") == "progress":
            for i in range(self.list.count()):
                if self.list.item(i).data(Qt.UserRole) is entry:
                    self.list.item(i).setText(entry_text(entry))

    def _apply(self, action) -> None:
        entry = self.selected()
        if entry is not None:
            action(entry)
            self.select(entry)

    def _update_buttons(self, *_):
        entry = self.selected()
        state = entry.state if entry else None
        self.buttons["Up"].setEnabled(state == "queued")
        self.buttons["Down"].setEnabled(state == "queued")
        self.buttons["Cancel"].setEnabled(state in ("queued", "running"))
        self.buttons["Retry"].setEnabled(state in ("failed", "cancelled"))
