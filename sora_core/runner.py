"""Run one shot: spec -> conditioning frames -> backend -> linear EXR frames + manifest.

Heavy half: imported by the worker only. Everything that can be checked is checked before the
model is loaded; frames are written atomically and, on failure or cancel, the frames this job
wrote are removed so a folder never holds a half-made shot.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import GENERATOR, __version__
from .capabilities import Capabilities, fit_request
from .longshot import MAX_SHOT_SECONDS, Pass, match_statistics, plan_passes, positions, switch_frames
from .errors import SoraError, invalid
from .manifest import MANIFEST_NAME, build_manifest, read_manifest, sha256_file, verify_frames, write_manifest
from .models_index import ModelInfo, resolve_model
from .spec import ShotSpec, resolve_output_dir

Emit = Callable[[dict], None]


@dataclass
class Plan:
    """Everything decided before loading the model: sizes, passes, numbering, inputs."""

    spec: ShotSpec
    model: ModelInfo
    caps: Capabilities
    out_dir: Path
    width: int
    height: int
    steps: int
    guidance: float
    fps: float
    passes: list[Pass]
    first_number: int               # number of the earliest written frame
    backward: bool = False          # the chain grows towards the start (extend backward)
    notices: list[str] = field(default_factory=list)
    first_known: dict[int, Path] = field(default_factory=dict)  # pass 0's given frames by position
    video_paths: list[Path] = field(default_factory=list)       # restyle source

    @property
    def total(self) -> int:
        return sum(p.new for p in self.passes)


def plan_shot(spec: ShotSpec, output_root: str | Path, models_dirs=()) -> Plan:
    """Validate the spec against the model's capabilities and the input files on disk."""
    from .frames.sequence import find_sequence

    spec.validate()
    out_dir = resolve_output_dir(spec, output_root)
    model = resolve_model(spec.model, models_dirs)
    caps = model.capabilities
    if caps is None:
        raise invalid("model", f"{model.path} holds a {model.pipeline_class or 'unknown'} pipeline, "
                      "which no backend serves", hint="use a Wan, LTX-Video or the bundled model")
    mode, inputs = spec.mode, spec.inputs
    fps = spec.fps or caps.default_fps
    wanted = spec.frames or (round(spec.duration * fps) if spec.duration else None)
    if wanted and wanted / fps > MAX_SHOT_SECONDS:
        raise invalid("frames", f"{wanted} frames at {fps:g} fps is {wanted / fps:.0f} s; a shot can be "
                      f"at most {MAX_SHOT_SECONDS} s", hint="split it into several shots")
    # mode and size now; frame counts per mode below
    fitted = fit_request(caps, mode, caps.default_frames, spec.width or caps.default_size[0],
                         spec.height or caps.default_size[1])
    notices = [n for n in fitted.notices if not n.startswith("frames")]
    first_known: dict[int, Path] = {}
    video_paths: list[Path] = []
    backward = mode == "extend" and inputs.direction == "backward"
    schedule = [(c.start, c.prompt) for c in spec.prompt_schedule]
    chain = dict(pass_length=spec.passes.length, overlap=spec.passes.overlap, backward=backward)
    first_number = spec.output.first_frame if spec.output.first_frame is not None else 1

    if mode == "extend":
        seq = find_sequence(inputs.frames, inputs.frame_range)
        context = min(inputs.context or caps.default_context, len(seq), caps.max_frames - 1)
        new = wanted or (caps.default_frames - context)
        if new + context <= caps.max_frames and spec.passes.length is None:
            total_fit, note = caps.fit_frames(context + new)
            if total_fit - context < 1:
                raise invalid("frames", f"{context} context frames leave no room for new frames in "
                              f"one pass of {total_fit}", hint="lower inputs.context")
            if note:
                notices.append(f"new frames rounded from {new} to {total_fit - context} ({caps.family} "
                               f"needs {caps.frame_rule()} frames including {context} context frames)")
            new = total_fit - context
        passes = plan_passes(caps, new, spec.prompt, spec.seed, first_context=context,
                             switches=switch_frames(schedule, fps, new), **chain)
        p0 = passes[0]
        known_pos, _ = positions(p0, backward)
        given = seq[:context] if backward else seq[-context:]
        first_known = {pos: path for pos, (_, path) in zip(known_pos, given)}
        if spec.output.first_frame is None:
            first_number = seq[0][0] - new if backward else seq[-1][0] + 1
        if first_number < 0:
            raise invalid("output.first_frame", f"extending backwards from frame {seq[0][0]} by {new} "
                          "frames would number frames below 0",
                          hint="set output.first_frame to renumber the new frames")
    elif mode in ("generate", "animate"):
        total = wanted or caps.default_frames
        if total <= caps.max_frames and spec.passes.length is None:
            total, note = caps.fit_frames(total)
            notices += [note] if note else []
        passes = plan_passes(caps, total, spec.prompt, spec.seed,
                             switches=switch_frames(schedule, fps, total), **chain)
        if mode == "animate":
            first_known[0] = _existing(inputs.image, "inputs.image")
    else:   # interpolate and restyle make exactly one pass
        total = wanted or caps.default_frames
        if mode == "restyle":
            seq = find_sequence(inputs.frames, inputs.frame_range)
            total = spec.frames or min(len(seq), caps.max_frames)
            if total > len(seq):
                raise invalid("frames", f"restyle asks for {total} frames but the input has {len(seq)}")
        total, note = caps.fit_frames(total)
        if mode == "restyle" and total > len(seq):
            total -= caps.frame_multiple
            note = f"frames reduced to {total} to fit the {len(seq)} input frames"
        notices += [note] if note else []
        passes = [Pass(0, total, 0, total, 0, spec.prompt, spec.seed)]
        if mode == "restyle":
            video_paths = [p for _, p in seq[:total]]
        else:
            for key in inputs.keyframes:
                index = min(key.index, total - 1)
                if index != key.index:
                    notices.append(f"keyframe at index {key.index} moved to {index}, the last frame")
                first_known[index] = _existing(key.path, "inputs.keyframes")
            if len(first_known) < 2:
                raise invalid("inputs.keyframes", "keyframes collapse onto one frame after fitting")

    if len(passes) > 1:
        if not caps.supports("extend"):
            raise invalid("frames", f"{len(passes)} passes are needed, but {caps.family} models cannot "
                          "extend, so they cannot chain passes",
                          hint="use at most one pass of frames, or a model that can extend")
        notices.append(f"long shot: {sum(p.new for p in passes)} frames in {len(passes)} passes of up "
                       f"to {max(p.frames for p in passes)} frames")
    for text in {spec.prompt, *(c.prompt for c in spec.prompt_schedule)}:
        if len(text.split()) > caps.max_prompt_words:
            notices.append(f"prompt has {len(text.split())} words; {caps.family} reads about "
                           f"{caps.max_prompt_words}, the rest may be ignored")
    return Plan(spec, model, caps, out_dir, fitted.width, fitted.height,
                spec.steps or caps.default_steps,
                caps.default_guidance if spec.guidance is None else spec.guidance,
                fps, passes, first_number, backward, notices, first_known, video_paths)


def _existing(path: str, field_name: str) -> Path:
    p = Path(path).expanduser()
    if not p.is_file():
        raise SoraError("not_found", f"{field_name}: file not found: {p}", field=field_name)
    return p


class BackendCache:
    """Keeps the last loaded backend so a warm worker serves the next job without reloading."""

    def __init__(self):
        self.key = None
        self.backend = None
        self.loads = 0

    def get(self, model: ModelInfo, spec: ShotSpec, emit: Emit, job_id: str):
        from .backends import load_backend

        key = (str(model.path.resolve()), spec.runtime.device, spec.runtime.dtype, spec.runtime.memory)
        if key != self.key:
            self.backend = self.key = None  # drop the old model before loading the new one
            emit({"event": "loading", "job": job_id, "model": model.name, "path": str(model.path)})
            self.backend = load_backend(model.path, spec.runtime)
            self.key = key
            self.loads += 1
        return self.backend


def provenance(spec: ShotSpec, identity: dict) -> dict[str, str]:
    """Header attributes every frame carries, so a frame found alone still says where it came from."""
    return {
        "sora:generator": GENERATOR,
        "sora:version": __version__,
        "sora:model": identity.get("name", spec.model),
        "sora:model_hash": identity.get("hash", ""),
        "sora:prompt": spec.prompt,
        "sora:negative_prompt": spec.negative_prompt,
        "sora:seed": str(spec.seed),
        "sora:mode": spec.mode,
        "sora:spec_hash": spec.spec_hash(),
        "Software": f"{GENERATOR} {__version__}",
    }


class ShotState:
    """What is already on disk for this shot: finished passes and their frames (for resume).

    The manifest is rewritten after every pass with ``status: partial`` and at the end with
    ``status: complete``; it only lists frames that are fully written.
    """

    def __init__(self, plan: Plan, key: str):
        self.plan, self.key = plan, key
        self.records: list[dict] = []
        self.passes: list[dict] = []
        self.complete = False
        self.color: dict = {}
        path = plan.out_dir / MANIFEST_NAME
        if not path.is_file():
            return
        try:
            old = read_manifest(path)
        except (OSError, ValueError):
            return
        if old.get("resume_key") != key or (verify_frames(path) if old.get("frames") else False):
            return          # another shot, or its frames changed: start over
        self.records, self.passes = old["frames"], old.get("passes", [])
        self.complete = old.get("status") == "complete"

    def written(self, number: int) -> Path:
        from .frames.sequence import frame_path
        return frame_path(self.plan.out_dir, self.plan.spec.output.name, number)


def resume_key(spec: ShotSpec) -> str:
    """Equal keys mean the same frames in the same files: safe to resume or to skip."""
    data = spec.to_dict()
    data["output"].pop("dir")
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def run_shot(spec: ShotSpec, output_root: str | Path, cache: BackendCache, emit: Emit,
             job_id: str = "", is_cancelled: Callable[[], bool] = lambda: False,
             models_dirs=()) -> dict:
    """Make the shot pass by pass and return the ``done`` event; raise SoraError on failure.

    Frames go to disk as each pass finishes; a cancel or failure keeps the finished passes
    (the manifest lists them) and removes only the frames of the pass being written.
    Running the same spec again resumes after the last finished pass.
    """
    t0 = time.perf_counter()
    plan = plan_shot(spec, output_root, models_dirs)   # every cheap check before heavy imports

    from .backends import Request
    from .frames.color import ViewTransform, load_conditioning

    def note(message: str, **extra) -> None:
        emit({"event": "notice", "job": job_id, "message": message, **extra})

    for message in plan.notices:
        note(message)
    state = ShotState(plan, resume_key(spec))
    if state.complete:
        note("this shot is already complete in its folder; nothing to do")
        return _done(plan, state, job_id, cache, {"total_s": round(time.perf_counter() - t0, 4)})
    if state.passes:
        note(f"resuming after pass {len(state.passes)} of {len(plan.passes)}")

    transform = ViewTransform(spec.color.config, spec.color.display, spec.color.view, spec.color.look)
    state.color = transform.describe()
    load = lambda path: load_conditioning(path, transform, plan.width, plan.height)  # noqa: E731
    video = np.stack([load(p) for p in plan.video_paths]) if plan.video_paths else None
    backend = cache.get(plan.model, spec, emit, job_id)
    t_loaded = time.perf_counter()
    for prompt in dict.fromkeys(p.prompt for p in plan.passes):
        unknown = backend.unknown_words(prompt)
        if unknown:
            note("the model does not know these words: " + ", ".join(unknown), unknown_words=unknown)

    attrs = provenance(spec, backend.identity)
    for p in plan.passes[len(state.passes):]:
        known_pos, write_pos = positions(p, plan.backward)
        if p.index == 0:
            known = {i: load(path) for i, path in plan.first_known.items()}
        else:   # the frames already on disk condition the next pass, exactly as a resume sees them
            before = plan.first_number + (p.start + p.new if plan.backward else p.start - p.context)
            known = {pos: load(state.written(before + j)) for j, pos in enumerate(known_pos)}
        mode = spec.mode if p.index == 0 else "extend"
        request = Request(mode=mode, prompt=p.prompt, negative_prompt=spec.negative_prompt,
                          seed=p.seed, steps=plan.steps, guidance=plan.guidance, width=plan.width,
                          height=plan.height, frames=p.frames, known=known, video=video,
                          strength=spec.inputs.strength if spec.mode == "restyle" else 1.0,
                          fps=plan.fps)

        def on_step(step: int, total: int, p=p) -> None:
            if is_cancelled():
                raise SoraError("cancelled", "cancelled by the user")
            emit({"event": "progress", "job": job_id, "phase": "denoise", "step": step, "total": total,
                  "pass": p.index + 1, "passes": len(plan.passes)})

        on_step(0, plan.steps)
        display = backend.run(request, on_step)
        linear = _finish_frames(display, known, write_pos, spec.passes.match, transform)
        _write_pass(plan, state, p, linear, {**attrs, "sora:prompt": p.prompt, "sora:seed": str(p.seed)},
                    emit, job_id, is_cancelled)
        state.passes.append({"index": p.index, "start": p.start, "new": p.new, "frames": p.frames,
                             "context": p.context, "prompt": p.prompt, "seed": p.seed})
        _write_state(plan, state, backend, t0, t_loaded, complete=False)

    timings = _write_state(plan, state, backend, t0, t_loaded, complete=True)
    return _done(plan, state, job_id, cache, timings)


def _finish_frames(display: np.ndarray, known: dict, write_pos: range, match: str, transform):
    """The pass's new frames in scene linear, drift-corrected against its given frames.

    Whole passes go through the view transform at once: inverting a view like AgX is far
    cheaper for one array than frame by frame."""
    new = display[write_pos.start:write_pos.stop]
    pos = sorted(known)
    if match == "none" or not pos:
        return transform.to_linear(new)
    produced, reference = display[pos], np.stack([known[i] for i in pos])
    if match == "display":
        return transform.to_linear(match_statistics(new, produced, reference).clip(0, 1))
    lin, produced_lin, reference_lin = np.split(
        transform.to_linear(np.concatenate([new, produced, reference])), [len(new), len(new) + len(pos)])
    return np.maximum(match_statistics(lin, produced_lin, reference_lin), 0.0)


def _write_pass(plan: Plan, state: ShotState, p: Pass, linear: list, attrs: dict, emit: Emit,
                job_id: str, is_cancelled: Callable[[], bool]) -> None:
    """Write one pass's frames atomically; on any failure remove this pass's frames only."""
    from .frames.exr import write_exr

    plan.out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    records = []
    try:
        for j, frame in enumerate(linear):
            if is_cancelled():
                raise SoraError("cancelled", "cancelled by the user")
            number = plan.first_number + p.start + j
            path = state.written(number)
            write_exr(path, frame, attrs)
            written.append(path)
            records.append({"number": number, "file": path.name, "sha256": sha256_file(path)})
            emit({"event": "frame", "job": job_id, "path": str(path), "number": number,
                  "pass": p.index + 1})
            emit({"event": "progress", "job": job_id, "phase": "write", "step": j + 1,
                  "total": len(linear), "pass": p.index + 1, "passes": len(plan.passes)})
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    state.records = sorted(state.records + records, key=lambda r: r["number"])


def _write_state(plan: Plan, state: ShotState, backend, t0: float, t_loaded: float,
                 complete: bool) -> dict:
    timings = {"load_s": round(t_loaded - t0, 4), "generate_s": round(time.perf_counter() - t_loaded, 4),
               "total_s": round(time.perf_counter() - t0, 4)}
    software = {"generator": GENERATOR, "version": __version__, "python": platform.python_version()}
    resolved = plan.spec.to_dict()
    resolved.update(width=plan.width, height=plan.height, steps=plan.steps, guidance=plan.guidance,
                    fps=plan.fps)
    manifest = build_manifest(resolved, dict(backend.identity), state.records, timings, plan.notices,
                              f"{plan.spec.output.name}.####.exr", software)
    manifest.update(status="complete" if complete else "partial", resume_key=state.key,
                    passes=state.passes, passes_total=len(plan.passes), color=state.color)
    write_manifest(plan.out_dir, manifest)
    return timings


def _done(plan: Plan, state: ShotState, job_id: str, cache: BackendCache, timings: dict) -> dict:
    return {"event": "done", "job": job_id, "manifest": str(plan.out_dir / MANIFEST_NAME),
            "dir": str(plan.out_dir), "frames": len(state.records),
            "first_frame": state.records[0]["number"] if state.records else plan.first_number,
            "pattern": f"{plan.spec.output.name}.####.exr", "fps": plan.fps, "width": plan.width,
            "height": plan.height, "passes": len(plan.passes), "timings": timings,
            "model_loads": cache.loads}
