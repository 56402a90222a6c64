"""Small input widgets of the shot panel: paths with drag and drop, "auto" number boxes, the
prompt schedule and the keyframe list. Each emits ``changed`` so the panel can re-plan."""

from __future__ import annotations

from pathlib import Path

from .compat import QtWidgets, Signal

AUTO = "auto"


def dropped_paths(event) -> list[str]:
    """Local file paths of a drag (files from a file manager, or a host's path text)."""
    mime = event.mimeData()
    if mime.hasUrls():
        return [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]
    if mime.hasText():
        return [line.strip() for line in mime.text().splitlines() if line.strip()]
    return []


class PathField(QtWidgets.QWidget):
    """A path line edit with a browse button; drop a file, a folder or a sequence onto it."""

    changed = Signal()

    def __init__(self, placeholder: str = "", folder: bool = False, parent=None):
        super().__init__(parent)
        self.folder = folder
        self.edit = QtWidgets.QLineEdit()
        self.edit.setPlaceholderText(placeholder)
        self.edit.textChanged.connect(self.changed)
        browse = QtWidgets.QToolButton()
        browse.setText("…")
        browse.setToolTip("browse")
        browse.clicked.connect(self._browse)
        row = QtWidgets.QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        row.addWidget(browse)
        self.setAcceptDrops(True)

    def text(self) -> str:
        return self.edit.text().strip()

    def setText(self, text: str | None) -> None:
        self.edit.setText(text or "")

    def dragEnterEvent(self, event):
        if dropped_paths(event):
            event.acceptProposedAction()

    def dropEvent(self, event):
        paths = dropped_paths(event)
        if paths:
            self.setText(paths[0])
            event.acceptProposedAction()

    def _browse(self):
        start = self.text() or str(Path.cwd())
        if self.folder:
            path = QtWidgets.QFileDialog.getExistingDirectory(self, "Choose a folder", start)
        else:
            path, _ = QtWidgets.QFileDialog.getOpenFileName(
                self, "Choose a file (a frame of a sequence picks the sequence)", start,
                "Images (*.exr *.png *.jpg *.jpeg *.tif *.tiff);;All files (*)")
        if path:
            self.setText(path)


def auto_spin(low, high, step=1, decimals: int | None = None) -> QtWidgets.QAbstractSpinBox:
    """A number box whose lowest value (one step below ``low``) reads "auto" and means None."""
    box = QtWidgets.QSpinBox() if decimals is None else QtWidgets.QDoubleSpinBox()
    if decimals is not None:
        box.setDecimals(decimals)
    box.setRange(low - step, high)
    box.setSingleStep(step)
    box.setSpecialValueText(AUTO)
    box.setValue(low - step)
    box.setKeyboardTracking(False)
    return box


def spin_value(box):
    """The box's value, or None when it shows "auto"."""
    return None if box.value() == box.minimum() else box.value()


def set_spin(box, value) -> None:
    box.setValue(box.minimum() if value is None else value)


def table_with_buttons(owner: QtWidgets.QWidget, table, on_add, on_remove, add_tip: str = ""):
    """Lay ``table`` out in ``owner`` with a + and a − button beside it (every editable list)."""
    add, remove = QtWidgets.QToolButton(), QtWidgets.QToolButton()
    add.setText("+")
    add.setToolTip(add_tip)
    remove.setText("−")
    add.clicked.connect(on_add)
    remove.clicked.connect(on_remove)
    buttons = QtWidgets.QVBoxLayout()
    buttons.addWidget(add)
    buttons.addWidget(remove)
    buttons.addStretch(1)
    layout = QtWidgets.QHBoxLayout(owner)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(table, 1)
    layout.addLayout(buttons)


class RowTable(QtWidgets.QWidget):
    """A two-column table with add/remove buttons; rows are (number, text)."""

    changed = Signal()

    def __init__(self, headers: tuple[str, str], number_kind=float, parent=None):
        super().__init__(parent)
        self.number_kind = number_kind
        self.table = QtWidgets.QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(list(headers))
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.verticalHeader().setVisible(False)
        self.table.setMinimumHeight(60)
        self.table.setMaximumHeight(84)
        self.table.itemChanged.connect(lambda *_: self.changed.emit())
        table_with_buttons(self, self.table, lambda: self.add_row(), self._remove)

    def add_row(self, number=None, text: str = "") -> None:
        row = self.table.rowCount()
        if number is None:
            rows = self.rows(strict=False)
            number = (rows[-1][0] + (2 if self.number_kind is float else 8)) if rows else 0
        self.table.blockSignals(True)
        self.table.insertRow(row)
        self.table.setItem(row, 0, QtWidgets.QTableWidgetItem(str(number)))
        self.table.setItem(row, 1, QtWidgets.QTableWidgetItem(text))
        self.table.blockSignals(False)
        self.changed.emit()

    def _remove(self):
        rows = sorted({i.row() for i in self.table.selectedIndexes()} or {self.table.rowCount() - 1})
        for row in reversed(rows):
            if row >= 0:
                self.table.removeRow(row)
        self.changed.emit()

    def set_rows(self, rows) -> None:
        self.table.blockSignals(True)
        self.table.setRowCount(0)
        self.table.blockSignals(False)
        for number, text in rows:
            self.add_row(number, text)
        self.changed.emit()

    def rows(self, strict: bool = True) -> list[tuple]:
        """(number, text) of every row; a number that does not parse raises ValueError
        naming the row (``strict``) or the row is skipped."""
        out = []
        for row in range(self.table.rowCount()):
            cells = [self.table.item(row, c) for c in (0, 1)]
            number, text = [(c.text().strip() if c else "") for c in cells]
            try:
                out.append((self.number_kind(number), text))
            except ValueError:
                if strict:
                    raise ValueError(f"row {row + 1}: {number!r} is not a number") from None
        return out


class KeyframeTable(RowTable):
    """Keyframes as (index, path) rows; dropping image files adds rows."""

    def __init__(self, parent=None):
        super().__init__(("frame index", "image"), number_kind=int, parent=parent)
        self.setAcceptDrops(True)
        self.table.setAcceptDrops(False)

    def dragEnterEvent(self, event):
        if dropped_paths(event):
            event.acceptProposedAction()

    def dropEvent(self, event):
        for path in dropped_paths(event):
            self.add_row(None, path)
        event.acceptProposedAction()



class FormRows(QtWidgets.QWidget):
    """Label/field rows in a grid, each shown only for the modes it belongs to (works the same
    in Qt 5 and 6, unlike ``QFormLayout.setRowVisible``)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.grid = QtWidgets.QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setColumnStretch(1, 1)
        self._rows: list[tuple[QtWidgets.QWidget, QtWidgets.QWidget, set | None]] = []

    def add(self, label: str, field, modes=None):
        """Append a row; ``field`` may be a widget or a layout; ``modes`` None shows it always."""
        row = self.grid.rowCount()
        text = QtWidgets.QLabel(label)
        if isinstance(field, QtWidgets.QLayout):
            holder = QtWidgets.QWidget()
            field.setContentsMargins(0, 0, 0, 0)
            holder.setLayout(field)
            field = holder
        text.setBuddy(field)
        self.grid.addWidget(text, row, 0)
        self.grid.addWidget(field, row, 1)
        self._rows.append((text, field, set(modes) if modes else None))
        return field

    def show_for(self, mode: str) -> None:
        for text, field, modes in self._rows:
            visible = modes is None or mode in modes
            text.setVisible(visible)
            field.setVisible(visible)
