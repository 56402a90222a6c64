"""Run one shot: spec -> conditioning frames -> backend -> linear EXR frames + manifest.

Heavy half: imported by the worker only. Everything that can be checked is checked before the
model is loaded; frames are written atomically and, on failure or cancel, the frames this job
wrote are removed so a folder never holds a half-made shot.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import GENERATOR, __version__
from .capabilities import Capabilities, fit_request
from .errors import SoraError, invalid
from .manifest import build_manifest, sha256_file, write_manifest
from .models_index import ModelInfo, resolve_model
from .spec import ShotSpec, resolve_output_dir

Emit = Callable[[dict], None]


@dataclass
class Plan:
    """Everything decided before loading the model: sizes, counts, numbering, inputs."""

    spec: ShotSpec
    model: ModelInfo
    caps: Capabilities
    out_dir: Path
    frames: int                     # frames the model makes in this pass (context included)
    width: int
    height: int
    steps: int
    guidance: float
    fps: float
    first_number: int               # number of the first written frame
    keep: slice                     # which generated frames are written
    notices: list[str] = field(default_factory=list)
    known_paths: dict[int, Path] = field(default_factory=dict)
    video_paths: list[Path] = field(default_factory=list)


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
    width = spec.width or caps.default_size[0]
    height = spec.height or caps.default_size[1]
    known_paths: dict[int, Path] = {}
    video_paths: list[Path] = []
    notices: list[str] = []
    first_number = spec.output.first_frame if spec.output.first_frame is not None else 1

    if mode == "extend":
        seq = find_sequence(inputs.frames, inputs.frame_range)
        context = min(inputs.context or caps.default_context, len(seq))
        new = spec.frames or (caps.default_frames - context)
        fitted = fit_request(caps, mode, context + new, width, height)
        new_fitted = fitted.frames - context
        if new_fitted < 1:
            raise invalid("frames", f"{context} context frames leave no room for new frames in one "
                          f"pass of {fitted.frames}", hint="lower inputs.context")
        if new_fitted != new:
            notices.append(f"new frames rounded from {new} to {new_fitted} ({caps.family} needs "
                           f"{caps.frame_rule()} frames including {context} context frames)")
        notices += [n for n in fitted.notices if not n.startswith("frames")]
        total = fitted.frames
        if inputs.direction == "forward":
            for i, (_, path) in enumerate(seq[-context:]):
                known_paths[i] = path
            keep = slice(context, total)
            default_first = seq[-1][0] + 1
        else:
            for i, (_, path) in enumerate(seq[:context]):
                known_paths[total - context + i] = path
            keep = slice(0, total - context)
            default_first = seq[0][0] - new_fitted
        first_number = spec.output.first_frame if spec.output.first_frame is not None else default_first
        if first_number < 0:
            raise invalid("output.first_frame", f"extending backwards from frame {seq[0][0]} by "
                          f"{new_fitted} frames would number frames below 0",
                          hint="set output.first_frame to renumber the new frames")
    else:
        if mode == "restyle":
            seq = find_sequence(inputs.frames, inputs.frame_range)
            wanted = spec.frames or len(seq)
            if wanted > len(seq):
                raise invalid("frames", f"restyle asks for {wanted} frames but the input has {len(seq)}")
            fitted = fit_request(caps, mode, wanted, width, height)
            if fitted.frames > len(seq):
                fitted.frames -= caps.frame_multiple
                fitted.notices.append(f"frames reduced to {fitted.frames} to fit the input")
            video_paths = [p for _, p in seq[:fitted.frames]]
        else:
            fitted = fit_request(caps, mode, spec.frames or caps.default_frames, width, height)
        total = fitted.frames
        notices += fitted.notices
        keep = slice(0, total)
        if mode == "animate":
            known_paths[0] = _existing(inputs.image, "inputs.image")
        elif mode == "interpolate":
            for key in inputs.keyframes:
                index = key.index if key.index < total else total - 1
                if index != key.index:
                    notices.append(f"keyframe at index {key.index} moved to {index}, the last frame")
                known_paths[index] = _existing(key.path, "inputs.keyframes")
            if len(known_paths) < 2:
                raise invalid("inputs.keyframes", "keyframes collapse onto one frame after fitting")

    if len(spec.prompt.split()) > caps.max_prompt_words:
        notices.append(f"prompt has {len(spec.prompt.split())} words; {caps.family} reads about "
                       f"{caps.max_prompt_words}, the rest may be ignored")
    return Plan(spec, model, caps, out_dir, total, fitted.width, fitted.height,
                spec.steps or caps.default_steps,
                caps.default_guidance if spec.guidance is None else spec.guidance,
                spec.fps or caps.default_fps, first_number, keep, notices, known_paths, video_paths)


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


def run_shot(spec: ShotSpec, output_root: str | Path, cache: BackendCache, emit: Emit,
             job_id: str = "", is_cancelled: Callable[[], bool] = lambda: False,
             models_dirs=()) -> dict:
    """Make the shot and return the ``done`` event; raise SoraError on any failure."""
    t0 = time.perf_counter()
    plan = plan_shot(spec, output_root, models_dirs)   # every cheap check before heavy imports

    from .backends import Request
    from .frames.color import ViewTransform, load_conditioning
    from .frames.exr import write_exr
    from .frames.sequence import frame_path

    for note in plan.notices:
        emit({"event": "notice", "job": job_id, "message": note})
    transform = ViewTransform(spec.color.config, spec.color.display, spec.color.view, spec.color.look)
    known = {i: load_conditioning(p, transform, plan.width, plan.height) for i, p in plan.known_paths.items()}
    video = (np.stack([load_conditioning(p, transform, plan.width, plan.height) for p in plan.video_paths])
             if plan.video_paths else None)

    backend = cache.get(plan.model, spec, emit, job_id)
    t_loaded = time.perf_counter()
    unknown = getattr(backend, "unknown_words", lambda _p: [])(spec.prompt)
    if unknown:
        emit({"event": "notice", "job": job_id, "message": "the model does not know these words: "
              + ", ".join(unknown), "unknown_words": unknown})
    request = Request(mode=spec.mode, prompt=spec.prompt, negative_prompt=spec.negative_prompt,
                      seed=spec.seed, steps=plan.steps, guidance=plan.guidance, width=plan.width,
                      height=plan.height, frames=plan.frames, known=known, video=video,
                      strength=spec.inputs.strength if spec.mode == "restyle" else 1.0)

    def on_step(step: int, total: int) -> None:
        if is_cancelled():
            raise SoraError("cancelled", "cancelled by the user")
        emit({"event": "progress", "job": job_id, "phase": "denoise", "step": step, "total": total})

    emit({"event": "progress", "job": job_id, "phase": "denoise", "step": 0, "total": plan.steps})
    display = backend.run(request, on_step)
    if is_cancelled():
        raise SoraError("cancelled", "cancelled by the user")
    t_generated = time.perf_counter()

    plan.out_dir.mkdir(parents=True, exist_ok=True)
    attrs = provenance(spec, backend.identity)
    written: list[Path] = []
    records = []
    try:
        kept = display[plan.keep]
        for offset, frame in enumerate(kept):
            if is_cancelled():
                raise SoraError("cancelled", "cancelled by the user")
            number = plan.first_number + offset
            path = frame_path(plan.out_dir, spec.output.name, number)
            write_exr(path, transform.to_linear(frame), attrs)
            written.append(path)
            records.append({"number": number, "file": path.name, "sha256": sha256_file(path)})
            emit({"event": "frame", "job": job_id, "path": str(path), "number": number})
            emit({"event": "progress", "job": job_id, "phase": "write", "step": offset + 1,
                  "total": len(kept)})
        timings = {"load_s": round(t_loaded - t0, 4), "generate_s": round(t_generated - t_loaded, 4),
                   "write_s": round(time.perf_counter() - t_generated, 4),
                   "total_s": round(time.perf_counter() - t0, 4)}
        software = {"generator": GENERATOR, "version": __version__, "python": platform.python_version()}
        resolved = spec.to_dict()
        resolved.update(width=plan.width, height=plan.height, steps=plan.steps,
                        guidance=plan.guidance, fps=plan.fps)
        manifest = build_manifest(resolved, dict(backend.identity), records, timings, plan.notices,
                                  f"{spec.output.name}.####.exr", software)
        manifest_path = write_manifest(plan.out_dir, manifest)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return {"event": "done", "job": job_id, "manifest": str(manifest_path), "dir": str(plan.out_dir),
            "frames": len(records), "first_frame": plan.first_number,
            "pattern": f"{spec.output.name}.####.exr", "fps": plan.fps, "width": plan.width,
            "height": plan.height, "timings": timings, "model_loads": cache.loads}

