"""Flipbook: play a shot folder or any EXR/PNG sequence through the shot's view transform.

Plays at the sequence's fps: frame k is due at start + k / fps on the monotonic clock and a
single-shot precise timer is re-armed for each deadline, so the rate is the fps itself rather
than 1000 / round(1000 / fps) (41.7 ms rounded to 42 ms played 23.8 fps); a frame shown late
(the process starved for a moment) is caught up on the next ones, and a frame not yet decoded
holds the picture rather than skipping (the clock restarts from it).
scrubs, loops and steps (arrow keys); shows the frame number and timecode; exposure and the
display/view/look pickers go through the core's ``ViewTransform``; A/B compares two versions
as a wipe or side by side; the side panel shows the provenance. Frames are decoded ahead on a
thread pool and kept within a memory budget (``FrameCache``), so the second loop plays from
memory.
"""

from __future__ import annotations

import math
import time
from collections import deque
from pathlib import Path

import numpy as np

from ..errors import SoraError
from .compat import Qt, QtCore, QtWidgets, Signal
from .frame_cache import FrameCache, Sequence
from .provenance_view import ProvenancePanel
from .viewer import COMPARE_MODES, ImageView, to_qimage

PREFETCH = 12            # frames decoded ahead of the playhead
CATCH_UP_S = 0.25        # a frame shown up to this late keeps the clock (the next ones come
                         # sooner, none skipped); later than that, the clock restarts from it
NO_LOOK = "(no look)"


def timecode(index: int, fps: float) -> str:
    """``HH:MM:SS:FF`` of the ``index``-th frame (0-based) at ``fps``."""
    base = max(1, round(fps))
    seconds, frames = divmod(index, base)
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}:{frames:02d}"


class Flipbook(QtWidgets.QWidget):
    """``load(path)`` a shot folder or sequence pattern; ``load_b(path)`` a version to compare."""

    frame_changed = Signal(int)         # the frame number now shown
    _ready = Signal(str, int)

    def __init__(self, parent=None, cache_mb: int = 1024):
        super().__init__(parent)
        self.seq: Sequence | None = None
        self.seq_b: Sequence | None = None
        self.index = 0
        self.transform = None
        self.cache = FrameCache(cache_mb << 20, on_ready=self._ready.emit)
        self.shown_times: deque = deque(maxlen=240)   # monotonic time of each frame shown
        self._timer = QtCore.QTimer(self, singleShot=True)
        self._timer.setTimerType(Qt.PreciseTimer)
        self._clock = (0.0, 0)          # (monotonic start, frames shown since) of the playback
        self._playing = False
        self._timer.timeout.connect(self._tick)
        self._ready.connect(self._on_ready, Qt.QueuedConnection)
        self._build()
        self.setFocusPolicy(Qt.StrongFocus)

    # ---- public API -----------------------------------------------------------------------
    def load(self, path) -> Sequence:
        """Show a shot folder (manifest, fps and view transform) or a sequence pattern."""
        self.pause()
        try:
            seq = Sequence.load(path)
            self._use_view(seq.color)
        except SoraError as err:
            self.view.set_message(str(err))
            raise
        self.seq, self.index = seq, 0
        self.slider.setRange(0, len(seq) - 1)
        self.fps.setValue(seq.fps)
        self.provenance.set_shot(seq.folder, seq.manifest)
        self.title.setText(Path(seq.path).name)
        self._reset_cache()
        self.view.set_message("")
        self.show_index(0, wait=True)
        return seq

    def load_b(self, path) -> Sequence | None:
        """Compare against another version (None clears B)."""
        self.seq_b = Sequence.load(path) if path else None
        self.b_label.setText(Path(self.seq_b.path).name if self.seq_b else "no B")
        self._reset_cache()
        if self.seq_b and self.compare.currentText() == "off":
            self.compare.setCurrentText("wipe")
        self.show_index(self.index, wait=True)
        return self.seq_b

    @property
    def number(self) -> int | None:
        """The frame number shown (as numbered on disk)."""
        return self.seq.number(self.index) if self.seq else None

    def set_frame(self, number: int) -> None:
        """Show frame ``number`` (a frame number, not a position)."""
        if self.seq is None:
            return
        numbers = [n for n, _ in self.seq.frames]
        if number not in numbers:
            raise SoraError("not_found", f"frame {number} is not in {self.seq.path} "
                            f"({numbers[0]}..{numbers[-1]})")
        self.show_index(numbers.index(number), wait=True)

    def show_index(self, index: int, wait: bool = False) -> bool:
        """Show position ``index``; decode it here when ``wait`` (stepping), else only if cached.
        Returns whether the picture changed."""
        if self.seq is None:
            return False
        index = max(0, min(len(self.seq) - 1, index))
        frame = self.cache.load_now("a", index) if wait else self.cache.get("a", index)
        if frame is None:
            self.cache.request("a", index)
            error = self.cache.failed.get(("a", index))
            if error:
                self.view.set_message(error)
            return False
        b = None
        if self.seq_b is not None and self.compare.currentText() != "off" and len(self.seq_b):
            b_index = min(index, len(self.seq_b) - 1)
            b = self.cache.load_now("b", b_index) if wait else self.cache.get("b", b_index)
            if b is None:
                self.cache.request("b", b_index)
                return False
        self.index = index
        self.image = to_qimage(frame)
        self.view.set_images(self.image, to_qimage(b) if b is not None else None)
        self.shown_times.append(time.monotonic())
        self._prefetch()
        self.slider.blockSignals(True)
        self.slider.setValue(index)
        self.slider.blockSignals(False)
        number = self.seq.number(index)
        self.frame_label.setText(f"frame {number}  ·  {timecode(index, self.seq.fps)}  ·  "
                                 f"{index + 1}/{len(self.seq)}")
        if not self.playing:
            self._show_header()
        self.frame_changed.emit(number)
        return True

    def play(self) -> None:
        if self.seq is not None:
            self._playing = True
            self._clock = (time.monotonic(), 0)
            self._arm()
            self.play_button.setText("Pause")

    @property
    def playing(self) -> bool:
        return self._playing

    def pause(self) -> None:
        self._playing = False
        self._timer.stop()
        self.play_button.setText("Play")
        self._show_header()

    def step(self, delta: int) -> None:
        self.pause()
        if self.seq is not None:
            self.show_index(self._wrap(self.index + delta), wait=True)

    def playback_rate(self) -> float:
        """Frames per second shown over the recent frames: the slope of a line fitted through
        their display times (one late frame does not move it as a first-to-last span would)."""
        times = list(self.shown_times)
        if len(times) < 3 or times[-1] <= times[0]:
            return 0.0
        t = np.asarray(times) - times[0]
        k = np.arange(len(t), dtype=float)
        return float(1.0 / np.polyfit(k, t, 1)[0])

    def closeEvent(self, event):
        self.pause()
        self.cache.close()
        super().closeEvent(event)

    # ---- building ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.view = ImageView()
        self.title = QtWidgets.QLabel("no shot")
        self.play_button = QtWidgets.QPushButton("Play")
        self.play_button.clicked.connect(lambda: self.pause() if self.playing else self.play())
        back, fwd = QtWidgets.QToolButton(), QtWidgets.QToolButton()
        back.setText("◀")
        fwd.setText("▶")
        back.clicked.connect(lambda: self.step(-1))
        fwd.clicked.connect(lambda: self.step(1))
        self.loop = QtWidgets.QCheckBox("loop")
        self.loop.setChecked(True)
        self.fps = QtWidgets.QDoubleSpinBox(decimals=2, minimum=0.5, maximum=240.0, suffix=" fps")
        self.fps.valueChanged.connect(lambda: self.play() if self.playing else None)
        self.slider = QtWidgets.QSlider(Qt.Horizontal)
        self.slider.valueChanged.connect(lambda i: self.show_index(i, wait=True))
        self.frame_label = QtWidgets.QLabel("frame –")
        self.display, self.view_box, self.look = (QtWidgets.QComboBox() for _ in range(3))
        self.display.currentTextChanged.connect(self._display_changed)
        self.view_box.currentTextChanged.connect(self._view_changed)
        self.look.currentTextChanged.connect(self._view_changed)
        self.exposure = QtWidgets.QDoubleSpinBox(decimals=1, minimum=-10.0, maximum=10.0, singleStep=0.5,
                                                 suffix=" EV")
        self.exposure.valueChanged.connect(self._view_changed)
        self.compare = QtWidgets.QComboBox()
        self.compare.addItems(list(COMPARE_MODES))
        self.compare.currentTextChanged.connect(self._compare_changed)
        self.b_label = QtWidgets.QLabel("no B")
        b_button = QtWidgets.QPushButton("B…")
        b_button.clicked.connect(self._choose_b)
        self.provenance = ProvenancePanel()

        top, scrub, transport, colour = (QtWidgets.QHBoxLayout() for _ in range(4))
        top.addWidget(self.title, 1)                    # shot name left, what it is compared with right
        scrub.addWidget(self.slider, 1)
        scrub.addWidget(self.frame_label)
        for w in (back, self.play_button, fwd, self.loop, self.fps):
            transport.addWidget(w)
        transport.addStretch(1)
        for row, pairs in ((top, (("compare", self.compare),)), (transport, (("exposure", self.exposure),)),
                           (colour, (("display", self.display), ("view", self.view_box), ("look", self.look)))):
            for label, w in pairs:
                row.addWidget(QtWidgets.QLabel(label))
                if isinstance(w, QtWidgets.QComboBox):
                    w.setSizeAdjustPolicy(QtWidgets.QComboBox.AdjustToMinimumContentsLengthWithIcon)
                    w.setMinimumContentsLength(8 if w is self.compare else 10)
                row.addWidget(w, 1 if row is colour else 0)
        top.addWidget(b_button)
        top.addWidget(self.b_label)
        left = QtWidgets.QVBoxLayout()
        left.addLayout(top)
        left.addWidget(self.view, 1)
        left.addLayout(scrub)
        left.addLayout(transport)
        left.addLayout(colour)
        holder = QtWidgets.QWidget()
        holder.setLayout(left)
        split = QtWidgets.QSplitter(Qt.Horizontal)
        split.addWidget(holder)
        split.addWidget(self.provenance)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setSizes([760, 300])          # the side panel's share before the user drags it
        self.provenance.setMinimumWidth(220)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(split)

    # ---- colour -----------------------------------------------------------------------------
    def _use_view(self, color: dict) -> None:
        """The shot's own view transform, and its config's displays/views/looks in the pickers."""
        from ..frames.color import ViewTransform

        self.transform = ViewTransform(color.get("config"), color.get("display"), color.get("view"),
                                       color.get("look"))
        cfg = self.transform.ocio_config()
        for box in (self.display, self.view_box, self.look):
            box.blockSignals(True)
        self.display.clear()
        self.display.addItems(list(cfg.getDisplays()))
        self.display.setCurrentText(self.transform.display)
        self._fill_views()
        self.look.clear()
        self.look.addItems([NO_LOOK, *cfg.getLookNames()])
        self.look.setCurrentText(self.transform.look or NO_LOOK)
        for box in (self.display, self.view_box, self.look):
            box.blockSignals(False)

    def _fill_views(self) -> None:
        cfg = self.transform.ocio_config()
        self.view_box.blockSignals(True)
        self.view_box.clear()
        self.view_box.addItems(list(cfg.getViews(self.display.currentText())))
        self.view_box.setCurrentText(self.transform.view)
        self.view_box.blockSignals(False)

    def _display_changed(self, *_):
        if self.transform is not None:
            self._fill_views()
            self._view_changed()

    def _view_changed(self, *_):
        if self.transform is None:
            return
        from ..frames.color import ViewTransform

        self.transform = ViewTransform(self.transform.config or None, self.display.currentText(),
                                       self.view_box.currentText(),
                                       None if self.look.currentText() == NO_LOOK else self.look.currentText())
        self._reset_cache()
        self.show_index(self.index, wait=True)

    def _reset_cache(self) -> None:
        exposure = self.exposure.value()
        self.cache.set_source("a", self.seq, self.transform, exposure)
        self.cache.set_source("b", self.seq_b, self.transform, exposure)

    # ---- playback ---------------------------------------------------------------------------
    def _wrap(self, index: int) -> int:
        n = len(self.seq)
        return index % n if self.loop.isChecked() else max(0, min(n - 1, index))

    def _arm(self) -> None:
        """Wake at the next frame's deadline (whole milliseconds; the deadline itself is exact,
        so rounding never accumulates)."""
        start, shown = self._clock
        due = start + (shown + 1) / self.fps.value()
        self._timer.start(max(0, math.ceil((due - time.monotonic()) * 1000)))

    def _tick(self) -> None:
        if self.seq is None or not self._playing:
            return
        nxt = self.index + 1
        if nxt >= len(self.seq) and not self.loop.isChecked():
            self.pause()
            return
        start, shown = self._clock
        period = 1.0 / self.fps.value()
        now = time.monotonic()
        if now < start + (shown + 1) * period - 0.0005:     # woke early (ms rounding): wait
            self._arm()
            return
        if self.show_index(self._wrap(nxt)):
            late = now - (start + (shown + 1) * period)
            self._clock = (now, 0) if late > CATCH_UP_S else (start, shown + 1)   # far behind: restart
        else:                                           # not decoded yet: hold, retry in 5 ms
            self._clock = (now - period + 0.005, 0)
        self._arm()

    def _prefetch(self) -> None:
        for k in range(1, PREFETCH + 1):
            index = self._wrap(self.index + k)
            if not self.cache.fits(1) and self.cache.get("a", index) is None:
                break
            self.cache.request("a", index)
            if self.seq_b is not None and self.compare.currentText() != "off":
                self.cache.request("b", min(index, len(self.seq_b) - 1))

    def _on_ready(self, slot: str, index: int) -> None:
        if self.seq is not None and index == self.index and not self.playing:
            self.show_index(index)

    def _compare_changed(self, mode: str) -> None:
        self.view.set_mode(mode)
        self.show_index(self.index, wait=True)

    def _choose_b(self) -> None:
        path = QtWidgets.QFileDialog.getExistingDirectory(self, "Shot to compare (B)")
        if path:
            self.load_b(path)

    def _show_header(self) -> None:
        if self.seq is None:
            return
        from ..frames.exr import read_attrs

        try:
            self.provenance.set_header(read_attrs(self.seq.frames[self.index][1]))
        except SoraError:
            self.provenance.set_header({})

    def keyPressEvent(self, event):
        key = event.key()
        if key in (Qt.Key_Left, Qt.Key_Right):
            self.step(-1 if key == Qt.Key_Left else 1)
        elif key == Qt.Key_Space:
            self.play_button.click()
        elif key in (Qt.Key_Home, Qt.Key_End) and self.seq is not None:
            self.step((0 if key == Qt.Key_Home else len(self.seq) - 1) - self.index)
        else:
            super().keyPressEvent(event)
