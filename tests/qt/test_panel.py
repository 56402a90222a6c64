"""ShotPanel with real widgets and a real worker: plan preview, generate, cancel, errors."""

import time
from pathlib import Path

import numpy as np
import pytest

from sora_core import planning
from sora_core.frames.color import ViewTransform
from sora_core.frames.exr import read_image
from sora_core.models_index import resolve_model
from sora_core.qt import Flipbook, ShotPanel, ShotQueue
from sora_core.qt.compat import QtCore
from sora_core.spec import ShotSpec

from .conftest import FAST


def make_panel(qtbot, root, client=None):
    queue = ShotQueue(client) if client else None
    panel = ShotPanel(client=None, queue=queue, output_root=str(root))
    qtbot.addWidget(panel)
    panel.resize(460, 700)
    panel.show()
    return panel


def test_panel_shows_the_planners_plan_and_keeps_what_it_has_no_widget_for(qtbot, tmp_path):
    panel = make_panel(qtbot, tmp_path)
    caps = resolve_model("tinyworld").capabilities
    assert [panel.mode.itemText(i) for i in range(panel.mode.count())] == list(caps.modes)
    assert "generate needs a prompt" in panel.plan_label.text()
    assert not panel.status.generate_button.isEnabled()

    qtbot.keyClicks(panel.prompt, "a red ball moving right")
    panel.frames.setValue(40)
    qtbot.waitUntil(lambda: "3 passes" in panel.plan_label.text(), timeout=3000)
    expected = planning.plan(panel.spec(), caps)
    assert panel.plan_label.text().startswith(expected.summary())
    assert panel.notices.text().splitlines() == list(expected.notices)
    assert panel.status.generate_button.isEnabled()

    spec = ShotSpec.from_dict({"mode": "extend", "prompt": "p", "duration": 3.0,
                               "inputs": {"frames": "/x/a.####.exr",
                               "context": 3, "direction": "backward", "frame_range": [1, 4]},
                               "color": {"view": "Standard"}, "runtime": {"device": "cpu"},
                               "output": {"dir": "shots/e", "name": "e", "first_frame": 100}})
    panel.set_spec(spec)
    assert panel.spec().to_dict() == spec.to_dict()
    assert panel.sequence.isVisible() and not panel.image.isVisible()
    assert "no frames found" in panel.plan_label.text() or "not found" in panel.plan_label.text()


def test_generate_through_a_real_worker_then_the_flipbook_scrubs_to_frame_8(qtbot, tmp_path, client):
    panel = make_panel(qtbot, tmp_path, client)
    qtbot.keyClicks(panel.prompt, "a red ball moving right")
    panel.steps.setValue(FAST["steps"])
    panel.frames.setValue(FAST["frames"])
    qtbot.waitUntil(panel.status.generate_button.isEnabled, timeout=3000)
    ticks = []
    beat = QtCore.QTimer(interval=50)
    beat.timeout.connect(lambda: ticks.append(time.monotonic()))
    beat.start()
    progress, shown = [], []
    panel.progress.connect(progress.append)
    panel.progress.connect(lambda e: shown.append((e, panel.status.bar.format())))
    started = time.monotonic()
    with qtbot.waitSignal(panel.finished, timeout=180_000) as done:
        qtbot.mouseClick(panel.status.generate_button, QtCore.Qt.LeftButton)
    elapsed = time.monotonic() - started
    beat.stop()
    event = done.args[0]
    assert event["frames"] == 9 and Path(event["dir"]) == tmp_path / "shots" / "shot"
    assert [e for e in progress if e.get("phase") == "denoise"]
    bars = [text for e, text in shown if e["event"] == "progress"]
    assert any(t.startswith("denoising") and "%" in t for t in bars), bars
    assert all("ETA" in text for e, text in shown if e.get("eta_s") is not None)
    assert panel.status.bar.value() == 1000 and "done" in panel.status.bar.format()
    gaps = np.diff([started, *ticks])
    # the event loop kept running throughout: a beat every 50 ms (half of them at least), never
    # a second without one, however long the warm worker took
    assert len(ticks) >= max(2, 0.5 * elapsed / 0.05) and gaps.max() < 1.0, (len(ticks), elapsed)

    book = Flipbook()
    qtbot.addWidget(book)
    book.resize(900, 500)
    book.show()
    book.load(event["dir"])
    book.slider.setValue(7)                        # scrub to the 8th frame
    assert book.number == 8 and "frame 8" in book.frame_label.text()
    shown = book.image
    pixels = np.frombuffer(shown.constBits(), np.uint8).reshape(shown.height(), shown.bytesPerLine())
    pixels = pixels[:, :shown.width() * 3].reshape(shown.height(), shown.width(), 3)
    expected = ViewTransform().to_display(read_image(Path(event["dir"]) / "shot.0008.exr"))
    assert np.abs(pixels / 255.0 - expected).max() <= 1 / 255 + 1e-6
    qtbot.keyClick(book, QtCore.Qt.Key_Right)
    assert book.number == 9
    qtbot.keyClick(book, QtCore.Qt.Key_Left)
    qtbot.keyClick(book, QtCore.Qt.Key_Left)
    assert book.number == 7


def test_cancel_mid_job_leaves_no_partial_frame(qtbot, tmp_path, client):
    panel = make_panel(qtbot, tmp_path, client)
    panel.prompt.setPlainText("a slow shot")
    panel.steps.setValue(400)
    panel.replan()
    entry = panel.generate()
    qtbot.waitUntil(lambda: (entry.progress or {}).get("step", 0) >= 1, timeout=120_000)
    assert panel.status.cancel_button.isEnabled()
    with qtbot.waitSignal(panel.failed, timeout=60_000) as failed:
        qtbot.mouseClick(panel.status.cancel_button, QtCore.Qt.LeftButton)
    assert failed.args[0]["code"] == "cancelled" and entry.state == "cancelled"
    assert panel.status.bar.format() == "cancelled"
    left = [p.name for p in tmp_path.rglob("*") if p.is_file() and p.name != "manifest.json"]
    assert left == []
    assert panel.status.generate_button.isEnabled()


def test_a_bad_input_shows_the_error_and_its_fix(qtbot, tmp_path, client):
    panel = make_panel(qtbot, tmp_path, client)
    panel.mode.setCurrentText("animate")
    panel.image.setText(str(tmp_path / "missing.png"))
    panel.replan()
    assert "file not found" in panel.plan_label.text()
    failed = []
    panel.failed.connect(failed.append)
    assert panel.generate() is None and failed[0]["code"] == "not_found"

    broken = tmp_path / "still.png"            # exists, so only the worker finds it unreadable
    broken.write_bytes(b"not an image at all")
    panel.image.setText(str(broken))
    panel.steps.setValue(FAST["steps"])
    panel.replan()
    with qtbot.waitSignal(panel.failed, timeout=120_000) as got:
        panel.generate()
    event = got.args[0]
    assert event["code"] == "invalid_input" and "still.png" in event["message"]
    text = panel.status.message.text()
    assert event["message"] in text and f"Fix: {event['hint']}" in text
    assert panel.status.message.property("kind") == "error"
    assert not list((tmp_path / "shots").rglob("*.exr")) if (tmp_path / "shots").exists() else True


def test_loras_come_from_drops_and_the_table_and_the_planner_checks_them(qtbot, tmp_path, tiny_wan_t2v):
    from sora_core.errors import SoraError
    from sora_core.model_files import Lora
    from sora_core.qt.compat import QtGui

    panel = ShotPanel(output_root=str(tmp_path), models_dirs=(str(Path(tiny_wan_t2v).parent),))
    qtbot.addWidget(panel)
    panel.show()
    assert not panel.loras.isEnabled()                    # the bundled model takes none
    panel.prompt.setPlainText("a red ball")
    panel.model.setCurrentIndex(panel.model.findData(tiny_wan_t2v))
    assert panel.loras.isEnabled() and panel.loras.isVisible()
    style = tmp_path / "style.safetensors"
    style.write_bytes(b"{}")
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(style))])
    panel.loras.dropEvent(QtGui.QDropEvent(QtCore.QPointF(5, 5), QtCore.Qt.CopyAction, mime,
                                           QtCore.Qt.LeftButton, QtCore.Qt.NoModifier))
    panel.loras.table.item(0, 1).setText("0.7")
    panel.loras.table.cellWidget(0, 2).setCurrentText("transformer")
    panel.replan()
    assert panel.plan_error is None, panel.plan_label.text()
    assert panel.spec().loras == [Lora(str(style), 0.7, "transformer")]
    again = ShotPanel(output_root=str(tmp_path), models_dirs=panel.models_dirs)
    qtbot.addWidget(again)
    again.set_spec(panel.spec())
    assert again.spec().to_dict() == panel.spec().to_dict()

    panel.loras.table.item(0, 1).setText("strong")
    panel.replan()
    assert panel.plan_error.field == "loras" and "'strong' is not a number" in panel.plan_label.text()
    panel.loras.table.item(0, 1).setText("1")
    panel.loras.add_row(str(tmp_path / "old.ckpt"))
    panel.replan()
    assert "pickle file" in panel.plan_label.text() and "Fix: convert it to .safetensors" in panel.plan_label.text()
    panel.loras.table.removeRow(1)
    panel.model.setCurrentIndex(0)                        # the bundled model, a LoRA still listed
    panel.replan()
    assert "takes no component files or LoRAs" in panel.plan_label.text()
    assert panel.loras.isEnabled()                        # so it can be removed
    assert not panel.status.generate_button.isEnabled()
    panel.loras.table.item(0, 1).setText("x")
    with pytest.raises(SoraError) as err:
        panel.spec()
    assert err.value.field == "loras"


def test_a_hosts_sequence_the_dice_and_the_models_limits(qtbot, tmp_path):
    """What a host integrator calls: ``use_sequence`` with a Nuke-style ``%04d`` pattern and a
    frame range; the dice; the number boxes carry the model's size step and limits."""
    from sora_core.frames.exr import write_exr
    from sora_core.qt.panel import SEED_MAX

    for n in range(1, 7):
        write_exr(tmp_path / f"plate.{n:04d}.exr", np.full((64, 64, 3), 0.1 * n, np.float32))
    panel = make_panel(qtbot, tmp_path)
    panel.prompt.setPlainText("the ball keeps rolling")
    panel.use_sequence(str(tmp_path / "plate.%04d.exr"), (2, 5))
    spec = panel.spec()
    assert spec.mode == "extend" and spec.inputs.frame_range == [2, 5]
    assert panel.plan_error is None, panel.plan_label.text()
    assert panel.sequence.isVisible() and panel.direction.isVisible()

    seeds = set()
    for _ in range(3):
        qtbot.mouseClick(panel.dice, QtCore.Qt.LeftButton)
        seeds.add(int(panel.seed.text()))
    assert len(seeds) >= 2 and all(0 <= s <= SEED_MAX for s in seeds)
    assert panel.spec().seed == int(panel.seed.text())

    caps = resolve_model("tinyworld").capabilities
    assert panel.width_box.singleStep() == caps.size_multiple and panel.width_box.maximum() == caps.max_size
    assert caps.frame_rule() in panel.frames.toolTip() and str(caps.max_frames) in panel.frames.toolTip()
    panel.width_box.setValue(caps.max_size + 100)            # the box stops at the model's limit
    assert panel.width_box.value() == caps.max_size
