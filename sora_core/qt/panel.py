"""ShotPanel: build a shot spec, preview the plan, run it on a worker, show progress.

What the panel shows is the planner's own answer (``preflight.plan_shot``, the same call the
worker makes before loading a model), so every rounding notice and error is the worker's.
Shots run through a :class:`ShotQueue` (the panel's own, or the studio's), whose events arrive
as Qt signals: the event loop never waits on the worker.
"""

from __future__ import annotations

import copy
import os
import random

from ..capabilities import CHAIN_MODES, CONTROL_KINDS
from ..errors import SoraError
from ..models_index import list_models
from ..preflight import plan_shot
from ..spec import DIRECTIONS, RANGES, ShotSpec
from .compat import QtCore, QtGui, QtWidgets, Signal
from .fields import FormRows, KeyframeTable, PathField, RowTable, auto_spin, set_spin, spin_value
from .loras import LoraTable
from .queue import QueueEntry, ShotQueue
from .status import JobStatus

SEED_MAX = 2**31 - 1        # what the dice rolls (any seed up to 2**63 - 1 can be typed)


class ShotPanel(QtWidgets.QWidget):
    """A shot panel for any Qt host. ``progress(dict)``, ``finished(dict)`` (the ``done``
    event) and ``failed(dict)`` (the ``error`` event) report the job started by ``generate()``."""

    progress = Signal(dict)
    finished = Signal(dict)
    failed = Signal(dict)
    planned = Signal(object)        # the Plan of the current settings, or None when it fails

    def __init__(self, parent=None, client=None, queue: ShotQueue | None = None,
                 output_root: str | None = None, models_dirs=(), queueing: bool = False):
        super().__init__(parent)
        self.queueing = queueing    # Generate stays enabled while a shot runs (the studio's queue)
        self.queue = queue or ShotQueue(client, self)
        self._own_queue = queue is None
        self.models_dirs = tuple(models_dirs)
        self._base = ShotSpec()
        self._entry: QueueEntry | None = None
        self._filling = False
        self.plan_error: SoraError | None = None
        self._timer = QtCore.QTimer(self, singleShot=True, interval=120)
        self._timer.timeout.connect(self.replan)
        self._build(output_root or os.environ.get("SORA_OUTPUT_ROOT") or os.getcwd())
        self.queue.event.connect(self._on_queue_event)
        self.set_spec(ShotSpec(prompt=""))

    # ---- public API ----------------------------------------------------------------------
    def spec(self) -> ShotSpec:
        """The spec the widgets describe (validated; raises SoraError naming the field)."""
        data = self._base.to_dict()
        seed_text = self.seed.text().strip() or "0"
        data.update(mode=self.mode.currentText(), prompt=self.prompt.toPlainText().strip(),
                    negative_prompt=self.negative.text().strip(), model=self.model.currentData(),
                    seed=int(seed_text), steps=spin_value(self.steps), guidance=spin_value(self.guidance),
                    width=spin_value(self.width_box), height=spin_value(self.height_box),
                    frames=spin_value(self.frames), fps=spin_value(self.fps),
                    duration=self._base.duration if spin_value(self.frames) is None else None)
        if data["mode"] in CHAIN_MODES:
            try:
                data["prompt_schedule"] = [{"start": s, "prompt": p} for s, p in self.schedule.rows()]
            except ValueError as exc:
                raise SoraError("invalid_input", f"prompt_schedule: {exc}", field="prompt_schedule") from None
        else:
            data["prompt_schedule"] = []
        try:
            data["loras"] = self.loras.rows()
        except ValueError as exc:
            raise SoraError("invalid_input", f"loras: {exc}", field="loras") from None
        inputs = data["inputs"]
        inputs.update(image=self.image.text() or None, frames=self.sequence.text() or None,
                      direction=self.direction.currentText(), context=spin_value(self.context),
                      strength=self.strength.value(), control=self.control.text() or None,
                      control_kind=self.control_kind.currentText(),
                      control_strength=self.control_strength.value(),
                      reference=self.reference.text() or None)
        try:
            inputs["keyframes"] = [{"index": i, "path": p} for i, p in self.keyframes.rows()]
        except ValueError as exc:
            raise SoraError("invalid_input", f"inputs.keyframes: {exc}", field="inputs.keyframes") from None
        data["output"].update(dir=self.shot_dir.text().strip(), name=self.shot_name.text().strip())
        return ShotSpec.from_dict(data)

    def set_spec(self, spec: ShotSpec) -> None:
        """Show ``spec``; fields the panel has no widget for (colour, runtime, passes, output
        numbering, frame range) are kept and come back from :meth:`spec`."""
        self._base = copy.deepcopy(spec)
        self._filling = True
        try:
            self._select_model(spec.model)
            self._model_changed()
            self.mode.setCurrentText(spec.mode)
            self.prompt.setPlainText(spec.prompt)
            self.negative.setText(spec.negative_prompt)
            self.seed.setText(str(spec.seed))
            for box, value in ((self.steps, spec.steps), (self.guidance, spec.guidance),
                               (self.width_box, spec.width), (self.height_box, spec.height),
                               (self.frames, spec.frames), (self.fps, spec.fps)):
                set_spin(box, value)
            self.schedule.set_rows([(c.start, c.prompt) for c in spec.prompt_schedule])
            self.loras.set_rows(spec.loras)
            i = spec.inputs
            self.image.setText(i.image)
            self.sequence.setText(i.frames)
            self.direction.setCurrentText(i.direction)
            set_spin(self.context, i.context)
            self.strength.setValue(i.strength)
            self.keyframes.set_rows([(k.index, k.path) for k in i.keyframes])
            self.control.setText(i.control)
            self.control_kind.setCurrentText(i.control_kind)
            self.control_strength.setValue(i.control_strength)
            self.reference.setText(i.reference)
            self.shot_dir.setText(spec.output.dir)
            self.shot_name.setText(spec.output.name)
        finally:
            self._filling = False
        self._mode_changed()
        self.replan()

    def use_sequence(self, path: str, frame_range: tuple[int, int] | None = None,
                     mode: str = "extend") -> None:
        """Take a host's sequence (a Nuke Read node, a Houdini ROP's output) as the input of
        ``mode`` (extend or restyle), optionally only frames ``first..last``."""
        self._base.inputs.frame_range = list(frame_range) if frame_range else None
        self.mode.setCurrentText(mode)
        self.sequence.setText(path)
        self.replan()

    @property
    def output_root(self) -> str:
        return self.root.text() or os.getcwd()

    def set_output_root(self, path: str) -> None:
        self.root.setText(path)

    def plan(self):
        """The planner's Plan for the current settings (raises SoraError)."""
        return plan_shot(self.spec(), self.output_root, self.models_dirs)[0]

    def generate(self) -> QueueEntry | None:
        """Queue the shot; None (and ``failed``) when the planner refuses it."""
        try:
            spec = self.spec()
            plan_shot(spec, self.output_root, self.models_dirs)
        except SoraError as err:
            self.status.show_error(err.to_event())
            self.failed.emit(err.to_event())
            return None
        self._entry = self.queue.add(spec, self.output_root)
        self.status.started()
        if self._entry.state == "queued":
            self.status.bar.setFormat(f"queued ({sum(e.state == 'queued' for e in self.queue.entries)} waiting)")
        self._sync_buttons()
        return self._entry

    def cancel(self) -> None:
        if self._entry is not None:
            self.queue.cancel(self._entry)

    def shutdown(self) -> None:
        """Stop the panel's own worker (a shared queue is closed by its owner)."""
        if self._own_queue:
            self.queue.close()

    def closeEvent(self, event):
        self.shutdown()
        super().closeEvent(event)

    # ---- building --------------------------------------------------------------------------
    def _build(self, output_root: str) -> None:
        self.model = QtWidgets.QComboBox()
        for info in list_models(self.models_dirs):
            ref = info.name if info.bundled else str(info.path)
            self.model.addItem(info.name + (" (bundled)" if info.bundled else ""), ref)
            caps = info.capabilities
            self.model.setItemData(self.model.count() - 1, caps.describe() if caps else
                                   f"{info.pipeline_class}: no backend serves it", QtCore.Qt.ToolTipRole)
        self.mode = QtWidgets.QComboBox()
        self.prompt = QtWidgets.QPlainTextEdit()
        self.prompt.setPlaceholderText("describe the shot")
        self.prompt.setFixedHeight(64)
        self.negative = QtWidgets.QLineEdit()
        self.negative.setPlaceholderText("what to avoid")
        self.schedule = RowTable(("from (s)", "prompt"))
        self.loras = LoraTable()
        self.seed = QtWidgets.QLineEdit()
        self.seed.setValidator(QtGui.QRegularExpressionValidator(QtCore.QRegularExpression(r"\d{1,18}")))
        self.dice = dice = QtWidgets.QToolButton()
        dice.setText("Roll")
        dice.setToolTip("a random seed")
        dice.clicked.connect(lambda: self.seed.setText(str(random.randint(0, SEED_MAX))))
        seed_row = QtWidgets.QHBoxLayout()
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(dice)
        self.steps = auto_spin(1, RANGES["steps"][2])
        self.guidance = auto_spin(0.0, RANGES["guidance"][2], 0.5, decimals=2)
        self.width_box, self.height_box = auto_spin(16, 8192, 16), auto_spin(16, 8192, 16)
        self.frames = auto_spin(1, RANGES["frames"][2])
        self.fps = auto_spin(1.0, RANGES["fps"][2], 1.0, decimals=3)
        size_row, sample_row = QtWidgets.QHBoxLayout(), QtWidgets.QHBoxLayout()
        for row, pairs in ((size_row, (("", self.width_box), ("×", self.height_box), ("frames", self.frames),
                                       ("fps", self.fps))),
                           (sample_row, (("", self.steps), ("guidance", self.guidance)))):
            for label, box in pairs:
                if label:
                    row.addWidget(QtWidgets.QLabel(label))
                row.addWidget(box, 1)
        self.image = PathField("still image (PNG, JPEG or EXR)")
        self.sequence = PathField("sequence: name.####.exr, a folder or a frame")
        self.direction = QtWidgets.QComboBox()
        self.direction.addItems(list(DIRECTIONS))
        self.context = auto_spin(1, RANGES["inputs.context"][2])
        self.strength = QtWidgets.QDoubleSpinBox(decimals=2, singleStep=0.05, minimum=0.0, maximum=1.0)
        self.keyframes = KeyframeTable()
        self.control = PathField("control sequence: name.####.png")
        self.control_kind = QtWidgets.QComboBox()
        self.control_kind.addItems(list(CONTROL_KINDS))
        self.control_strength = QtWidgets.QDoubleSpinBox(decimals=2, singleStep=0.1, minimum=0.0, maximum=2.0)
        self.reference = PathField("look reference image (optional)")
        self.root = PathField("output root", folder=True)
        self.root.setText(output_root)
        self.shot_dir, self.shot_name = QtWidgets.QLineEdit(), QtWidgets.QLineEdit()
        out_row = QtWidgets.QHBoxLayout()
        out_row.addWidget(self.shot_dir, 2)
        out_row.addWidget(QtWidgets.QLabel("name"))
        out_row.addWidget(self.shot_name, 1)

        self.rows = FormRows()
        add = self.rows.add
        add("Model", self.model)
        add("Mode", self.mode)
        add("Prompt", self.prompt)
        add("Negative", self.negative)
        add("Schedule", self.schedule, CHAIN_MODES)
        add("LoRAs", self.loras)
        add("Still", self.image, ("animate",))
        add("Frames in", self.sequence, ("extend", "restyle"))
        add("Direction", self.direction, ("extend",))
        add("Context", self.context, ("extend",))
        add("Strength", self.strength, ("restyle",))
        add("Keyframes", self.keyframes, ("interpolate",))
        add("Control", self.control, ("control",))
        add("Shows", self.control_kind, ("control",))
        add("Follow", self.control_strength, ("control",))
        add("Reference", self.reference, ("control",))
        add("Seed", seed_row)
        add("Size", size_row)
        add("Steps", sample_row)
        add("Output root", self.root)
        add("Shot folder", out_row)

        self.plan_label = QtWidgets.QLabel()
        self.plan_label.setWordWrap(True)
        self.plan_label.setObjectName("plan")
        self.notices = QtWidgets.QLabel()
        self.notices.setWordWrap(True)
        self.notices.setStyleSheet("color: #c69026")
        self.status = JobStatus()
        if self.queueing:
            self.status.generate_button.setText("Add to queue")
        self.status.generate_button.clicked.connect(self.generate)
        self.status.cancel_button.clicked.connect(self.cancel)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.rows)
        layout.addWidget(self.plan_label)
        layout.addWidget(self.notices)
        layout.addWidget(self.status)
        layout.addStretch(1)

        self.model.currentIndexChanged.connect(self._model_changed)
        self.mode.currentTextChanged.connect(self._mode_changed)
        for signal in (self.prompt.textChanged, self.negative.textChanged, self.seed.textChanged,
                       self.schedule.changed, self.loras.changed, self.image.changed, self.sequence.changed,
                       self.direction.currentTextChanged, self.keyframes.changed, self.control.changed,
                       self.control_kind.currentTextChanged, self.reference.changed, self.root.changed,
                       self.shot_dir.textChanged, self.shot_name.textChanged):
            signal.connect(self._changed)
        for box in (self.steps, self.guidance, self.width_box, self.height_box, self.frames, self.fps,
                    self.context, self.strength, self.control_strength):
            box.valueChanged.connect(self._changed)

    # ---- reacting ------------------------------------------------------------------------------
    def _select_model(self, ref: str) -> None:
        for i in range(self.model.count()):
            if ref in (self.model.itemData(i), self.model.itemText(i).split(" (")[0]):
                self.model.setCurrentIndex(i)
                return
        self.model.addItem(ref, ref)
        self.model.setCurrentIndex(self.model.count() - 1)

    def capabilities(self):
        """The current model's Capabilities (None for a folder no backend serves)."""
        ref = self.model.currentData()
        for info in list_models(self.models_dirs):
            if ref in (info.name, str(info.path)):
                return info.capabilities
        return None

    def _model_changed(self) -> None:
        """Offer the model's modes only and its limits on the number boxes."""
        caps = self.capabilities()
        current = self.mode.currentText()
        self.mode.blockSignals(True)
        self.mode.clear()
        self.mode.addItems(list(caps.modes) if caps else [])
        self.mode.setCurrentText(current)
        self.mode.blockSignals(False)
        if caps:
            for box in (self.width_box, self.height_box):
                keep = spin_value(box)
                box.setRange(caps.min_size - caps.size_multiple, caps.max_size)
                box.setSingleStep(caps.size_multiple)
                set_spin(box, keep)
                box.setToolTip(f"{caps.min_size}..{caps.max_size}, a multiple of {caps.size_multiple}; "
                               f"auto: {caps.default_size[0]}×{caps.default_size[1]}")
            self.frames.setToolTip(f"{caps.frame_rule()}, up to {caps.max_frames} a pass"
                                   + ("; longer shots chain passes" if caps.chains else ""))
            self.steps.setToolTip(f"auto: {caps.default_steps}")
            self.guidance.setToolTip(f"auto: {caps.default_guidance}")
            self.fps.setToolTip(f"auto: {caps.default_fps:g}")
            self.control_kind.setEnabled(bool(caps.control_kinds))
            self.loras.setEnabled(caps.family != "tinyworld" or bool(self.loras.table.rowCount()))
            self.loras.setToolTip("the bundled model takes no LoRAs" if caps.family == "tinyworld" else
                                  "LoRA files applied to the model, each at its strength")
        self._mode_changed()

    def _mode_changed(self, *_):
        self.rows.show_for(self.mode.currentText())
        self._changed()

    def _changed(self, *_):
        if not self._filling:
            self._timer.start()

    def replan(self) -> None:
        """Ask the planner what the settings become; show its summary, notices or error."""
        self._timer.stop()
        try:
            plan = self.plan()
        except SoraError as err:
            self.plan_error = err
            self.plan_label.setText(f"<span style='color:#d9534f'>{err.message}</span>"
                                    + (f"<br>Fix: {err.hint}" if err.hint else ""))
            self.notices.setText("")
            self.status.generate_button.setEnabled(False)
            self.planned.emit(None)
            return
        self.plan_error = None
        self.plan_label.setText(f"{plan.summary()} · {plan.width}×{plan.height} · {plan.fps:g} fps · "
                                f"{plan.steps} steps · guidance {plan.guidance:g} · frames "
                                f"{plan.numbers.start}–{plan.numbers.stop - 1}")
        self.notices.setText("\n".join(plan.notices))
        self._sync_buttons()
        self.planned.emit(plan)

    def _sync_buttons(self) -> None:
        running = self._entry is not None and self._entry.state in ("queued", "running")
        self.status.generate_button.setEnabled(self.plan_error is None and (self.queueing or not running))
        self.status.cancel_button.setEnabled(running)

    def _on_queue_event(self, entry: QueueEntry, event: dict) -> None:
        if entry is not self._entry:
            return
        self.status.update_event(event)
        self._sync_buttons()
        kind = event.get("event")
        if kind in ("progress", "loading"):
            self.progress.emit(event)
        elif kind == "done":
            self.finished.emit(event)
        elif kind == "error":
            self.failed.emit(event)
        if kind in ("done", "error"):
            self.replan()
