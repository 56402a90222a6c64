"""Before a job: the model resolved, the input sequence listed once, the given files checked,
and the plan made. Light half (it reads the disk but imports no torch), so the worker runs it
before loading anything and the CLI's ``--dry-run`` prints the very same plan.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from . import model_files, planning, presets
from .capabilities import SEQUENCE_MODES
from .errors import SoraError, invalid
from .frames.sequence import find_sequence, frame_path, gaps
from .models_index import resolve_model
from .provenance.policy import check_spec
from .output_dir import resolve_output_dir
from .spec import ShotSpec
from .upsampler_rules import with_file


def available_inputs(spec: ShotSpec) -> planning.Available:
    """List the input sequence once (the planner applies ``inputs.frame_range`` to it)."""
    if spec.mode not in SEQUENCE_MODES:
        return planning.Available()
    name = SEQUENCE_MODES[spec.mode]
    found = find_sequence(getattr(spec.inputs, name), field=f"inputs.{name}")
    return planning.Available(sequence=tuple((n, str(p)) for n, p in found))


def plan_shot(spec: ShotSpec, output_root: str | Path, models_dirs=()):
    """(plan, model, shot folder): the spec checked against the model and the files on disk."""
    spec.validate()
    check_spec(spec.to_dict())          # the studio policy, before anything is resolved or written
    out_dir = resolve_output_dir(spec, output_root)
    model = resolve_model(spec.model, models_dirs)
    if model.capabilities is None:
        raise invalid("model", f"{model.path} holds a {model.pipeline_class or 'unknown'} pipeline, "
                      "which no backend serves", hint="use a Wan, LTX-Video or the bundled model")
    model_files.check_present(spec.components, spec.loras)
    if (spec.components.given() or spec.loras) and model.family == "tinyworld":
        raise invalid("components", "the bundled model takes no component files or LoRAs",
                      hint="name a Wan or LTX-Video base folder with --model")
    available = available_inputs(spec)
    caps = with_file(model.capabilities, spec.components.upsampler, str(model.path))
    plan = planning.plan(spec, caps, available, presets.resolve(spec, model.path))
    given = {"animate": ("inputs.image", plan.first_known.values()),
             "interpolate": ("inputs.keyframes", plan.first_known.values()),
             "control": ("inputs.reference", [spec.inputs.reference] if spec.inputs.reference else [])}
    field_name, paths = given.get(spec.mode, ("", ()))
    for path in paths:
        if not Path(path).expanduser().is_file():
            raise SoraError("not_found", f"{field_name}: file not found: {path}", field=field_name)
    _refuse_overwriting_inputs(spec, plan, out_dir, available)
    return _note_gaps(spec, plan, available), model, out_dir


def _note_gaps(spec: ShotSpec, plan, available):
    """A sequence with gaps is used as if its frames were adjacent: say so (``inputs.strict``
    refuses it instead)."""
    if spec.mode not in SEQUENCE_MODES or not available.sequence:
        return plan
    name = f"inputs.{SEQUENCE_MODES[spec.mode]}"
    numbers = [n for n, _ in available.sequence]
    if spec.inputs.frame_range:
        first, last = spec.inputs.frame_range
        numbers = [n for n in numbers if first <= n <= last]
    missing = gaps(numbers)
    if not missing:
        return plan
    shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
    message = f"{name}: the sequence has gaps (missing {shown}); its frames are used in order as if adjacent"
    if spec.inputs.strict:
        raise invalid(name, message.split(": ", 1)[1], hint="render the missing frames, or drop "
                      "inputs.strict (--strict) to accept the sequence as it is")
    return dataclasses.replace(plan, notices=plan.notices + (message,))


def _refuse_overwriting_inputs(spec: ShotSpec, plan, out_dir: Path, available) -> None:
    """Inputs are read-only: a shot whose frames would land on any input file is refused."""
    given = [p for _, p in available.sequence or ()] + list(plan.first_known.values()) + list(plan.video)
    given += [spec.inputs.image, spec.inputs.reference] + [k.path for k in spec.inputs.keyframes]
    inputs = {os.path.realpath(Path(p).expanduser()) for p in given if p}
    if not inputs:
        return
    for number in plan.numbers:
        target = os.path.realpath(frame_path(out_dir, spec.output.name, number))
        if target in inputs:
            raise invalid("output.dir", f"frame {number} would be written over the input {target}; "
                          "inputs are never overwritten",
                          hint="write the shot to another folder or under another output.name")
