"""Flipbook A/B, the queue on one warm worker, the studio's history, the docs' examples."""

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np

from sora_core.client import WorkerClient
from sora_core.manifest import read_manifest
from sora_core.qt import Flipbook, ShotQueue, Studio
from sora_core.qt.compat import QtGui, QtWidgets

from .conftest import fast_spec

DOCS = Path(__file__).resolve().parents[2] / "docs"


def rgb(image: QtGui.QImage) -> np.ndarray:
    image = image.convertToFormat(QtGui.QImage.Format_RGB888)
    rows = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    return rows[:, :image.width() * 3].reshape(image.height(), image.width(), 3).astype(float)


def region(grab: np.ndarray, rect, x0: float, x1: float) -> np.ndarray:
    """The part of a grab inside ``rect`` between fractions ``x0`` and ``x1`` of its width."""
    left, width = rect.x(), rect.width()
    return grab[rect.y():rect.y() + rect.height(), left + int(x0 * width):left + int(x1 * width)]


def scaled(image: QtGui.QImage, rect) -> np.ndarray:
    return rgb(image.scaled(rect.width(), rect.height()))


def test_ab_compare_of_two_versions_as_a_wipe_and_side_by_side(qtbot, shot_pair):
    _, a, b = shot_pair
    book = Flipbook()
    qtbot.addWidget(book)
    book.resize(1000, 560)
    book.show()
    book.load(a)
    book.load_b(b)
    assert book.compare.currentText() == "wipe"
    book.set_frame(5)
    view = book.view
    assert view.a is not None and view.b is not None
    a_img, b_img = rgb(view.a), rgb(view.b)
    assert np.abs(a_img - b_img).mean() > 10.0         # two different versions
    view.wipe = 0.5
    view.repaint()
    target = view.image_rect()
    grab = rgb(view.grab().toImage())
    a_full, b_full = scaled(view.a, target), scaled(view.b, target)
    left, right = region(grab, target, 0.05, 0.45), region(grab, target, 0.55, 0.95)
    assert np.abs(left - region(a_full, target.translated(-target.x(), -target.y()), 0.05, 0.45)).mean() < \
        np.abs(left - region(b_full, target.translated(-target.x(), -target.y()), 0.05, 0.45)).mean()
    assert np.abs(right - region(b_full, target.translated(-target.x(), -target.y()), 0.55, 0.95)).mean() < \
        np.abs(right - region(a_full, target.translated(-target.x(), -target.y()), 0.55, 0.95)).mean()

    book.compare.setCurrentText("side by side")
    view.repaint()
    rect_a = view.image_rect()
    assert rect_a.right() < view.width() // 2 + 1
    grab = rgb(view.grab().toImage())
    shown_a = grab[rect_a.y():rect_a.bottom() + 1, rect_a.x():rect_a.right() + 1]
    assert np.abs(shown_a - scaled(view.a, rect_a)).mean() < np.abs(shown_a - scaled(view.b, rect_a)).mean()
    assert "verif" in book.provenance.verdict.text() or book.provenance.verify_button.isEnabled()
    with qtbot.waitSignal(book.provenance.verified, timeout=60_000) as got:
        book.provenance.verify()
    assert got.args[0].verdict in ("unsigned", "verified") and not got.args[0].problems


def test_queue_runs_shots_in_order_on_one_worker_with_reorder_cancel_and_retry(qtbot, tmp_path):
    client = WorkerClient()
    queue = ShotQueue(client)
    events = []
    queue.event.connect(lambda entry, event: events.append((entry.id, event)))
    try:
        first = queue.add(fast_spec("shots/q1", frames=2), str(tmp_path))
        second = queue.add(fast_spec("shots/q2", frames=2, seed=2), str(tmp_path))
        third = queue.add(fast_spec("shots/q3", frames=2, seed=3), str(tmp_path))
        assert first.state == "running" and second.state == third.state == "queued"
        queue.move(third, -1)                       # third now runs before second
        queue.cancel(second)
        assert second.state == "cancelled" and second.error["code"] == "cancelled"
        qtbot.waitUntil(lambda: third.state == "done", timeout=240_000)
        assert first.state == "done"
        order = [i for i, e in events if e["event"] == "done"]
        assert order == [first.id, third.id]
        queue.retry(second)
        qtbot.waitUntil(lambda: second.state == "done", timeout=240_000)
        loads = [e for i, e in events if e["event"] == "loading"]
        assert len(loads) == 1 and [i for i, e in events if e["event"] == "loading"] == [first.id]
        assert first.result["model_loads"] == third.result["model_loads"] == second.result["model_loads"] == 1
        assert (tmp_path / "shots" / "q2" / "manifest.json").is_file()
    finally:
        queue.close()


def test_studio_history_filters_opens_and_uses_a_shot_as_input(qtbot, shot_pair, client):
    root, a, b = shot_pair
    studio = Studio(str(root), client)
    qtbot.addWidget(studio)
    studio.resize(1400, 850)
    studio.show()
    history = studio.history
    assert {r.folder for r in history.records} == {Path(a), Path(b)}
    assert studio.minimumSizeHint().width() <= 1600          # fits a 1920 px screen with room
    assert isinstance(studio.panel.width(), int)             # no field shadows a QWidget method
    history.filter.setText("no such prompt")
    assert history.list.count() == 0
    history.filter.setText("red ball")
    assert history.list.count() == 2
    history.model.setCurrentText("tinyworld")
    assert history.list.count() == 2
    qtbot.waitUntil(lambda: all(not history.list.item(i).icon().isNull() for i in range(2)), timeout=30_000)

    history.list.setCurrentRow(0)
    record = history.selected()
    assert json.loads(history.copy_spec(record)) == read_manifest(record.folder)["spec"]
    assert json.loads(QtWidgets.QApplication.clipboard().text()) == record.spec
    history.open_shot.emit(str(record.folder))
    assert studio.flipbook.seq is not None and studio.flipbook.seq.folder == record.folder

    spec = studio.use_as_input("extend", str(record.folder))
    assert studio.panel.spec().to_dict() == spec.to_dict()
    assert spec.inputs.frames == str(record.folder / "shot.####.exr")
    assert studio.panel.plan_error is None and "frames 10–" in studio.panel.plan_label.text()
    studio.use_as_input("animate", str(record.folder))
    assert studio.panel.spec().inputs.image == str(record.folder / "shot.0009.exr")


def test_the_studio_generates_plays_compares_and_shows_provenance(qtbot, shot_pair, client, tmp_path):
    import shutil

    from sora_core.qt.compat import QtCore

    root = tmp_path / "root"
    shutil.copytree(shot_pair[0] / "shots", root / "shots")        # two older versions
    studio = Studio(str(root), client)
    qtbot.addWidget(studio)
    studio.resize(1400, 850)
    studio.show()
    panel = studio.panel
    qtbot.keyClicks(panel.prompt, "a red ball moving right, take three")
    panel.steps.setValue(1)
    panel.frames.setValue(9)
    panel.seed.setText("7")
    panel.shot_dir.setText("shots/v3")
    qtbot.waitUntil(panel.status.generate_button.isEnabled, timeout=3000)
    with qtbot.waitSignal(panel.finished, timeout=180_000) as done:
        qtbot.mouseClick(panel.status.generate_button, QtCore.Qt.LeftButton)
    new = Path(done.args[0]["dir"])
    qtbot.waitUntil(lambda: studio.flipbook.seq is not None and studio.flipbook.seq.folder == new, timeout=5000)
    assert len(studio.history.records) == 3 and studio.history.records[0].folder == new
    assert "done" in studio.queue_view.list.item(0).text()

    text = studio.flipbook.provenance.text.toPlainText()
    for expected in ("tinyworld", "take three", "seed", "7", "time", "total"):
        assert expected in text, expected
    studio.history.list.setCurrentRow(1)
    older = studio.history.selected().folder
    studio.history.compare_shot.emit(str(older))
    book = studio.flipbook
    assert book.seq_b.folder == older and book.compare.currentText() == "wipe"
    assert book.view.a is not None and book.view.b is not None
    shown = []
    book.frame_changed.connect(shown.append)
    book.play()
    qtbot.waitUntil(lambda: len(shown) >= 10, timeout=20_000)
    book.pause()
    assert shown[:8] == [2, 3, 4, 5, 6, 7, 8, 9] and shown[8] == 1      # played in order, looped

    with qtbot.waitSignal(book.provenance.verified, timeout=60_000) as got:
        book.provenance.verify()
    assert got.args[0].verdict == "unsigned" and not got.args[0].problems
    shutil.copyfile(new / "shot.0002.exr", new / "shot.0003.exr")     # a frame swapped on disk
    with qtbot.waitSignal(book.provenance.verified, timeout=60_000) as got:
        book.provenance.verify()
    assert got.args[0].verdict == "tampered" and any("shot.0003.exr" in p for p in got.args[0].problems)
    assert "tampered" in book.provenance.verdict.text()
    studio.use_as_input("restyle", str(new))
    assert panel.spec().mode == "restyle" and panel.spec().inputs.frames == str(new / "shot.####.exr")


def test_the_docs_embedding_example_runs_in_ten_lines(qtbot, tmp_path, monkeypatch):
    text = (DOCS / "qt.md").read_text(encoding="utf-8")
    code = re.search(r"<!-- embed-example -->\s*```python\n(.*?)```", text, re.S).group(1)
    assert len([line for line in code.splitlines() if line.strip()]) <= 10
    monkeypatch.chdir(tmp_path)
    scope = {"__name__": "docs_example"}
    exec(compile(code, "docs/qt.md", "exec"), scope)
    window = scope["window"]
    qtbot.addWidget(window)
    from sora_core.qt import ShotPanel
    assert isinstance(window, QtWidgets.QMainWindow) and isinstance(window.centralWidget(), ShotPanel)
    window.centralWidget().shutdown()


def test_host_snippets_are_valid_python():
    text = (DOCS / "hosts.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 3
    for block in blocks:
        ast.parse(block)
    for host in ("Nuke", "Houdini", "Maya"):
        assert f"## {host}" in text


BLOCK_QT = r"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {'PySide6', 'PySide2', 'torch', 'OpenImageIO', 'PyOpenColorIO'}:
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
import sora_core.qt, sora_core.cli, sora_core.planning, sora_core.client
from sora_core.errors import SoraError
try:
    sora_core.qt.ShotPanel
except SoraError as err:
    print(err.code, err.hint)
sys.exit(sora_core.cli.main(['studio']))
"""


def test_without_pyside_the_light_half_imports_and_studio_says_what_to_install():
    out = subprocess.run([sys.executable, "-c", BLOCK_QT], capture_output=True, text=True)
    assert out.returncode == 3, out.stderr
    assert "not_found pip install 'sora-core[qt]'" in out.stdout
    assert "needs PySide6" in out.stderr
