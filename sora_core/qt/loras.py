"""The shot panel's LoRA list: file, strength and target expert per row, as ``spec.loras``.

Dropping ``.safetensors`` files adds rows; the checks (safetensors only, strength -10..10, file
present, a model that takes LoRAs) are the spec's and the planner's, shown by the panel.
"""

from __future__ import annotations

from ..model_files import LORA_TARGETS
from .compat import QtWidgets, Signal
from .fields import dropped_paths, table_with_buttons


class LoraTable(QtWidgets.QWidget):
    """Rows of (LoRA file, strength, target); ``rows()`` gives the dicts ``spec.loras`` takes."""

    changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.table = QtWidgets.QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["LoRA file (.safetensors)", "strength", "target"])
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QtWidgets.QHeaderView.Stretch)
        header.setSectionResizeMode(1, QtWidgets.QHeaderView.ResizeToContents)
        header.setSectionResizeMode(2, QtWidgets.QHeaderView.ResizeToContents)
        self.table.verticalHeader().setVisible(False)
        self.table.setMinimumHeight(56)
        self.table.setMaximumHeight(84)
        self.table.itemChanged.connect(lambda *_: self.changed.emit())
        self.table.setAcceptDrops(False)
        table_with_buttons(self, self.table, self._browse, self._remove, "add a LoRA file")
        self.setAcceptDrops(True)

    def add_row(self, path: str, strength: float = 1.0, target: str = "all") -> None:
        row = self.table.rowCount()
        self.table.blockSignals(True)
        self.table.insertRow(row)
        self.table.setItem(row, 0, QtWidgets.QTableWidgetItem(path))
        self.table.setItem(row, 1, QtWidgets.QTableWidgetItem(f"{strength:g}"))
        box = QtWidgets.QComboBox()
        box.addItems(list(LORA_TARGETS))
        box.setCurrentText(target)
        box.setToolTip("all, or one expert of a two-expert model (transformer: high noise, "
                       "transformer_2: low noise)")
        box.currentTextChanged.connect(lambda *_: self.changed.emit())
        self.table.setCellWidget(row, 2, box)
        self.table.blockSignals(False)
        self.changed.emit()

    def set_rows(self, loras) -> None:
        """Show ``spec.loras`` (Lora objects or dicts)."""
        self.table.setRowCount(0)
        for lora in loras:
            get = lora.get if isinstance(lora, dict) else lambda k, d=None, x=lora: getattr(x, k, d)
            self.add_row(get("path"), get("strength", 1.0), get("target", "all"))
        self.changed.emit()

    def rows(self) -> list[dict]:
        """``[{"path", "strength", "target"}]``; a strength that does not parse raises ValueError."""
        out = []
        for row in range(self.table.rowCount()):
            path = (self.table.item(row, 0).text() if self.table.item(row, 0) else "").strip()
            text = (self.table.item(row, 1).text() if self.table.item(row, 1) else "").strip()
            try:
                strength = float(text)
            except ValueError:
                raise ValueError(f"row {row + 1}: strength {text!r} is not a number") from None
            out.append({"path": path, "strength": strength, "target": self.table.cellWidget(row, 2).currentText()})
        return out

    def dragEnterEvent(self, event):
        if dropped_paths(event):
            event.acceptProposedAction()

    def dropEvent(self, event):
        for path in dropped_paths(event):
            self.add_row(path)
        event.acceptProposedAction()

    def _browse(self) -> None:
        paths, _ = QtWidgets.QFileDialog.getOpenFileNames(self, "LoRA files", "", "LoRA (*.safetensors)")
        for path in paths:
            self.add_row(path)

    def _remove(self) -> None:
        rows = sorted({i.row() for i in self.table.selectedIndexes()} or {self.table.rowCount() - 1})
        for row in reversed(rows):
            if row >= 0:
                self.table.removeRow(row)
        self.changed.emit()
