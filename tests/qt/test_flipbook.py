"""Flipbook on sequences written here (no worker): playback, loop, exposure, view, PNG, the
frame budget; drag and drop onto the panel; ``sora studio`` opening and closing."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sora_core.errors import SoraError
from sora_core.frames.color import ViewTransform
from sora_core.frames.exr import read_image, write_exr
from sora_core.qt import Flipbook, ShotPanel
from sora_core.qt.compat import QtCore, QtGui, QtWidgets
from sora_core.qt.flipbook import timecode
from sora_core.qt.frame_cache import FrameCache, Sequence

from .test_review import rgb


@pytest.fixture()
def plate(tmp_path):
    """Six 48x32 scene-linear EXR frames numbered 101..106, each a different brightness."""
    for i in range(6):
        lin = np.full((32, 48, 3), 0.05 + 0.1 * i, np.float32)
        lin[:, :8] = (2.0, 0.3, 0.01)
        write_exr(tmp_path / f"plate.{101 + i:04d}.exr", lin)
    return str(tmp_path / "plate.####.exr")


def shown(book) -> np.ndarray:
    return rgb(book.image) / 255.0


def test_a_sequence_plays_loops_and_follows_exposure_and_view(qtbot, plate):
    book = Flipbook()
    qtbot.addWidget(book)
    book.show()
    seq = book.load(plate)
    assert seq.fps == 24.0 and book.number == 101 and "00:00:00:00" in book.frame_label.text()
    numbers = []
    book.frame_changed.connect(numbers.append)
    book.fps.setValue(120)
    book.play()
    qtbot.waitUntil(lambda: numbers.count(101) >= 1 and len(numbers) >= 8, timeout=20_000)
    book.pause()
    first = numbers.index(106)
    assert numbers[first:first + 2] == [106, 101]          # looped
    assert numbers[:5] == [102, 103, 104, 105, 106]          # in order, none skipped

    book.set_frame(103)
    linear = read_image(Path(plate.replace("####", "0103")))
    assert np.abs(shown(book) - ViewTransform().to_display(linear)).max() <= 1 / 255 + 1e-6
    book.exposure.setValue(1.0)
    assert np.abs(shown(book) - ViewTransform().to_display(linear * 2)).max() <= 1 / 255 + 1e-6
    book.exposure.setValue(0.0)
    other = next(book.view_box.itemText(i) for i in range(book.view_box.count())
                 if book.view_box.itemText(i) != book.transform.view)
    book.view_box.setCurrentText(other)
    expected = ViewTransform(display=book.display.currentText(), view=other).to_display(linear)
    assert np.abs(shown(book) - expected).max() <= 1 / 255 + 1e-6
    with pytest.raises(SoraError, match="frame 99 is not in"):
        book.set_frame(99)

    book.loop.setChecked(False)
    book.set_frame(105)
    book.play()
    qtbot.waitUntil(lambda: not book.playing, timeout=10_000)
    assert book.number == 106                                # stopped at the end
    assert timecode(25, 24.0) == "00:00:01:01"


def test_playback_keeps_the_sequence_fps_not_a_rounded_timer_interval(qtbot, plate):
    """24 fps is 41.67 ms a frame: a fixed 42 ms timer plays 23.8 fps; deadlines keep 24."""
    book = Flipbook()
    qtbot.addWidget(book)
    book.show()
    book.load(plate)
    book.set_frame(106)                 # every frame decoded once: the loop plays from memory
    for n in range(101, 107):
        book.set_frame(n)
    book.shown_times.clear()
    book.play()
    qtbot.waitUntil(lambda: len(book.shown_times) >= 72, timeout=20_000)   # three seconds
    book.pause()
    assert abs(book.playback_rate() - 24.0) < 0.08, book.playback_rate()


def test_png_sequences_show_as_stored_and_the_cache_keeps_its_budget(qtbot, tmp_path, plate):
    import OpenImageIO as oiio

    pixels = (np.arange(16 * 16 * 3) % 256).astype(np.uint8).reshape(16, 16, 3)
    for n in (1, 2, 3):
        out = oiio.ImageOutput.create(str(tmp_path / f"still.{n:04d}.png"))
        out.open(str(tmp_path / f"still.{n:04d}.png"), oiio.ImageSpec(16, 16, 3, oiio.UINT8))
        out.write_image(pixels)
        out.close()
    book = Flipbook()
    qtbot.addWidget(book)
    book.load(str(tmp_path / "still.####.png"))
    assert np.array_equal(rgb(book.image).astype(np.uint8), pixels)

    frame_bytes = 32 * 48 * 3
    cache = FrameCache(budget_bytes=3 * frame_bytes, threads=2)
    cache.set_source("a", Sequence.load(plate), ViewTransform(), 0.0)
    for i in range(6):
        cache.load_now("a", i)
    assert cache.nbytes == 3 * frame_bytes and cache.get("a", 0) is None and cache.get("a", 5) is not None
    cache.close()


def test_dropping_a_file_on_an_input_fills_it(qtbot, tmp_path):
    panel = ShotPanel(output_root=str(tmp_path))
    qtbot.addWidget(panel)
    still = tmp_path / "still.png"
    still.write_bytes(b"")
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(still))])
    event = QtGui.QDropEvent(QtCore.QPointF(5, 5), QtCore.Qt.CopyAction, mime,
                             QtCore.Qt.LeftButton, QtCore.Qt.NoModifier)
    panel.image.dropEvent(event)
    assert panel.image.text() == str(still)
    panel.keyframes.dropEvent(event)
    assert panel.keyframes.rows() == [(0, str(still))]


def test_sora_studio_opens_a_shot_and_closes_cleanly_on_sigint(shot_pair):
    root, a, _ = shot_pair
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.Popen([sys.executable, "-m", "sora_core.cli", "studio", "--output-root", str(root),
                             "--open", a], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = proc.stdout.readline()
        second = proc.stdout.readline()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert first.strip() == f"sora studio: {root} (2 shots)"
    assert second.strip() == f"showing {a}"
    assert proc.returncode == 0, err
    assert "Traceback" not in err
