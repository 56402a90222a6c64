"""Before a job: the model resolved, the input sequence listed once, the given files checked,
and the plan made. Light half (it reads the disk but imports no torch), so the worker runs it
before loading anything and the CLI's ``--dry-run`` prints the very same plan.
"""

from __future__ import annotations

from pathlib import Path

from . import model_files, planning
from .capabilities import SEQUENCE_MODES
from .errors import SoraError, invalid
from .frames.sequence import find_sequence
from .models_index import resolve_model
from .provenance.policy import check_spec
from .spec import ShotSpec, resolve_output_dir


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
    plan = planning.plan(spec, model.capabilities, available_inputs(spec))
    given = {"animate": ("inputs.image", plan.first_known.values()),
             "interpolate": ("inputs.keyframes", plan.first_known.values()),
             "control": ("inputs.reference", [spec.inputs.reference] if spec.inputs.reference else [])}
    field_name, paths = given.get(spec.mode, ("", ()))
    for path in paths:
        if not Path(path).expanduser().is_file():
            raise SoraError("not_found", f"{field_name}: file not found: {path}", field=field_name)
    return plan, model, out_dir
