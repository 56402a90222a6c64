"""The flipbook's picture: frame A, or A against B as a wipe or side by side, fitted to the
widget with its aspect kept. Drag in wipe mode to move the split."""

from __future__ import annotations

import numpy as np

from .compat import Qt, QtCore, QtGui, QtWidgets, Signal

COMPARE_MODES = ("off", "wipe", "side by side")


def to_qimage(pixels: np.ndarray) -> QtGui.QImage:
    """An HxWx3 uint8 array as a QImage that keeps the array alive with it."""
    pixels = np.ascontiguousarray(pixels)
    h, w, _ = pixels.shape
    image = QtGui.QImage(pixels.data, w, h, 3 * w, QtGui.QImage.Format_RGB888)
    image._pixels = pixels           # QImage does not own the buffer
    return image


class ImageView(QtWidgets.QWidget):
    """Paints the current images; ``wipe_moved(float)`` when the split is dragged."""

    wipe_moved = Signal(float)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.a: QtGui.QImage | None = None
        self.b: QtGui.QImage | None = None
        self.mode = "off"
        self.wipe = 0.5
        self.message = ""
        self.setMinimumSize(320, 180)
        self.setSizePolicy(QtWidgets.QSizePolicy.Expanding, QtWidgets.QSizePolicy.Expanding)
        self.setAttribute(Qt.WA_OpaquePaintEvent)

    def set_images(self, a: QtGui.QImage | None, b: QtGui.QImage | None = None) -> None:
        self.a, self.b = a, b
        self.update()

    def set_mode(self, mode: str) -> None:
        if mode not in COMPARE_MODES:
            raise ValueError(f"compare mode {mode!r} is not one of {', '.join(COMPARE_MODES)}")
        self.mode = mode
        self.update()

    def set_message(self, text: str) -> None:
        self.message = text
        self.update()

    def _fit(self, image: QtGui.QImage, area: QtCore.QRect) -> QtCore.QRect:
        size = image.size().scaled(area.size(), Qt.KeepAspectRatio)
        x = area.x() + (area.width() - size.width()) // 2
        y = area.y() + (area.height() - size.height()) // 2
        return QtCore.QRect(x, y, size.width(), size.height())

    def image_rect(self) -> QtCore.QRect:
        """Where A is drawn (the whole widget area in wipe mode)."""
        if self.a is None:
            return QtCore.QRect()
        area = self.rect()
        if self.mode == "side by side" and self.b is not None:
            area.setWidth(area.width() // 2)
        return self._fit(self.a, area)

    def paintEvent(self, event):
        painter = QtGui.QPainter(self)
        painter.fillRect(self.rect(), QtGui.QColor(24, 24, 24))
        painter.setRenderHint(QtGui.QPainter.SmoothPixmapTransform, False)
        if self.a is not None:
            target = self.image_rect()
            painter.drawImage(target, self.a)
            if self.b is not None and self.mode == "side by side":
                half = QtCore.QRect(self.rect().width() // 2, 0, self.rect().width() - self.rect().width() // 2,
                                    self.rect().height())
                painter.drawImage(self._fit(self.b, half), self.b)
                self._label(painter, target, "A")
                self._label(painter, self._fit(self.b, half), "B")
            elif self.b is not None and self.mode == "wipe":
                split = target.x() + round(self.wipe * target.width())
                painter.save()
                painter.setClipRect(QtCore.QRect(split, target.y(), target.right() - split + 1, target.height()))
                painter.drawImage(target, self.b)
                painter.restore()
                painter.setPen(QtGui.QPen(QtGui.QColor(255, 200, 0), 2))
                painter.drawLine(split, target.top(), split, target.bottom())
                self._label(painter, target, "A")
                self._label(painter, QtCore.QRect(split, target.y(), target.right() - split, 20), "B")
        if self.message:
            painter.setPen(QtGui.QColor(230, 120, 110))
            painter.drawText(self.rect().adjusted(12, 12, -12, -12), Qt.AlignCenter | Qt.TextWordWrap,
                             self.message)
        painter.end()

    @staticmethod
    def _label(painter, rect: QtCore.QRect, text: str) -> None:
        painter.setPen(QtGui.QColor(255, 255, 255))
        painter.drawText(rect.adjusted(6, 4, 0, 0), Qt.AlignLeft | Qt.AlignTop, text)

    def mousePressEvent(self, event):
        self._drag(event)

    def mouseMoveEvent(self, event):
        self._drag(event)

    def _drag(self, event):
        if self.mode != "wipe" or self.a is None:
            return
        target = self.image_rect()
        x = event.position().x() if hasattr(event, "position") else event.x()
        self.wipe = min(1.0, max(0.0, (x - target.x()) / max(target.width(), 1)))
        self.wipe_moved.emit(self.wipe)
        self.update()
