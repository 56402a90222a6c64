"""The studio's history: every shot folder under the output root, newest first, with a
thumbnail (its contact sheet, else its middle frame through its view), a filter by prompt and
model, and the actions a reviewer needs: open, use as input, copy spec, reveal."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path

from ..manifest import MANIFEST_NAME, read_manifest
from .compat import Qt, QtCore, QtGui, QtWidgets, Signal

THUMB = 160
SHEET_NAME = "contact_sheet.png"
MAX_DEPTH = 4            # shots/<name> and a little deeper; never the whole disk


@dataclass
class ShotRecord:
    folder: Path
    manifest: dict

    @property
    def spec(self) -> dict:
        return self.manifest.get("spec") or {}

    @property
    def model(self) -> str:
        return str((self.manifest.get("model") or {}).get("name") or self.spec.get("model", "?"))

    def frame_paths(self) -> list[Path]:
        return [self.folder / f["file"] for f in self.manifest.get("frames") or []]

    def pattern(self) -> str:
        return str(self.folder / (self.manifest.get("pattern") or "shot.####.exr"))


def find_shots(root: str | Path) -> list[ShotRecord]:
    """Shot folders (a manifest listing frames) under ``root``, newest first."""
    root = Path(root)
    found = []
    for depth in range(MAX_DEPTH + 1):
        for path in root.glob("/".join(["*"] * depth + [MANIFEST_NAME])):
            try:
                manifest = read_manifest(path)
            except (OSError, ValueError):
                continue
            if manifest.get("frames"):
                found.append(ShotRecord(path.parent, manifest))
    return sorted(found, key=lambda r: (r.manifest.get("created", ""), str(r.folder)), reverse=True)


def thumbnail_pixels(record: ShotRecord):
    """uint8 RGB of the shot's contact sheet, or of its middle frame through its view."""
    from ..frames.color import ViewTransform
    from ..frames.exr import read_image
    from .frame_cache import to_display_u8, to_u8

    sheet = record.folder / SHEET_NAME
    if sheet.is_file():
        return to_u8(read_image(sheet))
    frames = record.frame_paths()
    color = record.spec.get("color") or {}
    view = ViewTransform(color.get("config"), color.get("display"), color.get("view"), color.get("look"))
    return to_display_u8(frames[len(frames) // 2], view)


class HistoryView(QtWidgets.QWidget):
    open_shot = Signal(str)              # a shot folder
    compare_shot = Signal(str)           # a shot folder to show as the flipbook's B
    use_as_input = Signal(str, str)      # mode (extend, animate, restyle), shot folder
    _thumb = Signal(str, object)

    def __init__(self, root: str, parent=None):
        super().__init__(parent)
        self.root = root
        self.records: list[ShotRecord] = []
        self._thumbs: dict[str, QtGui.QIcon] = {}
        self.filter = QtWidgets.QLineEdit()
        self.filter.setPlaceholderText("filter by prompt")
        self.model = QtWidgets.QComboBox()
        self.list = QtWidgets.QListWidget()
        self.list.setIconSize(QtCore.QSize(THUMB, THUMB * 9 // 16))
        self.list.setWordWrap(True)
        self.list.itemDoubleClicked.connect(lambda item: self.open_shot.emit(item.data(Qt.UserRole)))
        self.list.setContextMenuPolicy(Qt.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._menu)
        top = QtWidgets.QHBoxLayout()
        top.addWidget(self.filter, 2)
        top.addWidget(self.model, 1)
        refresh = QtWidgets.QToolButton()
        refresh.setText("Refresh")
        refresh.clicked.connect(self.refresh)
        top.addWidget(refresh)
        actions = QtWidgets.QHBoxLayout()
        for name, slot in (("Open", lambda r: self.open_shot.emit(str(r.folder))),
                           ("Compare (B)", lambda r: self.compare_shot.emit(str(r.folder))),
                           ("Extend", lambda r: self.use_as_input.emit("extend", str(r.folder))),
                           ("Copy spec", self.copy_spec), ("Reveal", self.reveal)):
            button = QtWidgets.QToolButton()
            button.setText(name)
            button.setSizePolicy(QtWidgets.QSizePolicy.Expanding, QtWidgets.QSizePolicy.Fixed)
            button.clicked.connect(lambda _=False, s=slot: self._on_selected(s))
            actions.addWidget(button)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.list, 1)
        layout.addLayout(actions)
        self.filter.textChanged.connect(self._fill)
        self.model.currentTextChanged.connect(self._fill)
        self._thumb.connect(self._set_thumb, Qt.QueuedConnection)

    def refresh(self) -> None:
        self.records = find_shots(self.root)
        models = sorted({r.model for r in self.records})
        current = self.model.currentText()
        self.model.blockSignals(True)
        self.model.clear()
        self.model.addItems(["all models", *models])
        self.model.setCurrentText(current if current in models else "all models")
        self.model.blockSignals(False)
        self._fill()
        missing = [r for r in self.records if str(r.folder) not in self._thumbs]
        if missing:
            threading.Thread(target=self._make_thumbs, args=(missing,), daemon=True).start()

    def visible_records(self) -> list[ShotRecord]:
        text = self.filter.text().strip().lower()
        model = self.model.currentText()
        return [r for r in self.records if text in str(r.spec.get("prompt", "")).lower()
                and model in ("", "all models", r.model)]

    def selected(self) -> ShotRecord | None:
        item = self.list.currentItem()
        if item is None:
            return None
        return next((r for r in self.records if str(r.folder) == item.data(Qt.UserRole)), None)

    def copy_spec(self, record: ShotRecord) -> str:
        text = json.dumps(record.spec, indent=2)
        QtWidgets.QApplication.clipboard().setText(text)
        return text

    def reveal(self, record: ShotRecord) -> None:
        QtGui.QDesktopServices.openUrl(QtCore.QUrl.fromLocalFile(str(record.folder)))

    def _fill(self, *_):
        self.list.clear()
        for r in self.visible_records():
            spec = r.spec
            prompt = str(spec.get("prompt", ""))
            text = (f"{prompt if len(prompt) <= 60 else prompt[:59] + '…'}\n{r.model} · {spec.get('mode')} · seed {spec.get('seed')} · "
                    f"{len(r.manifest.get('frames') or [])} frames\n{r.folder.name}")
            item = QtWidgets.QListWidgetItem(text)
            item.setData(Qt.UserRole, str(r.folder))
            item.setToolTip(prompt)
            if str(r.folder) in self._thumbs:
                item.setIcon(self._thumbs[str(r.folder)])
            self.list.addItem(item)

    def _make_thumbs(self, records) -> None:
        for r in records:
            try:
                self._thumb.emit(str(r.folder), thumbnail_pixels(r))
            except Exception:       # a shot that cannot be read keeps its text-only row
                continue

    def _set_thumb(self, folder: str, pixels) -> None:
        from .viewer import to_qimage

        image = to_qimage(pixels).scaled(THUMB, THUMB * 9 // 16, Qt.KeepAspectRatio, Qt.FastTransformation)
        self._thumbs[folder] = QtGui.QIcon(QtGui.QPixmap.fromImage(image))
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.UserRole) == folder:
                self.list.item(i).setIcon(self._thumbs[folder])

    def _on_selected(self, slot) -> None:
        record = self.selected()
        if record is not None:
            slot(record)

    def _menu(self, pos) -> None:
        record = self.selected()
        if record is None:
            return
        menu = QtWidgets.QMenu(self)
        menu.addAction("Open in flipbook", lambda: self.open_shot.emit(str(record.folder)))
        menu.addAction("Compare with the open shot (B)", lambda: self.compare_shot.emit(str(record.folder)))
        for mode in ("extend", "animate", "restyle"):
            menu.addAction(f"Use as input: {mode}", lambda m=mode: self.use_as_input.emit(m, str(record.folder)))
        menu.addAction("Copy spec", lambda: self.copy_spec(record))
        menu.addAction("Reveal in file manager", lambda: self.reveal(record))
        menu.popup(self.list.mapToGlobal(pos))
