"""Execute one shot: spec -> plan -> passes through the backend -> frames -> manifest.

Heavy half: imported by the worker only. The spec walks down once:
  1. plan      what the request becomes (``planning.plan``, the same the hosts preview), with
               every cheap check (model, inputs on disk) done before the model is loaded;
  2. execute   each pass conditioned on the frames before it (the given ones, or the last pass's
               as they are on disk, exactly what a resume sees), drift-corrected;
  3. write     each pass's frames atomically (``writing``), removed again if the pass fails;
  4. manifest  rewritten after every pass (``shot_state``), ``complete`` at the end.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np

from .errors import SoraError
from .longshot import match_statistics, positions
from .manifest import MANIFEST_NAME
from .preflight import plan_shot
from .progress import ShotProgress
from .shot_state import ShotState
from .spec import ShotSpec

Emit = Callable[[dict], None]


def run_shot(spec: ShotSpec, output_root: str | Path, cache, emit: Emit, job_id: str = "",
             is_cancelled: Callable[[], bool] = lambda: False, models_dirs=()) -> dict:
    """Make the shot pass by pass and return the ``done`` event; raise SoraError on failure.

    A cancel or failure keeps the finished passes (the manifest lists them) and removes only the
    frames of the pass being written; running the same spec again resumes after the last one.
    """
    t0 = time.perf_counter()
    plan, model, out_dir = plan_shot(spec, output_root, models_dirs)   # before any heavy import

    from .backends import Request
    from .frames.color import ViewTransform, load_conditioning
    from .writing import frame_attributes, write_pass

    def note(message: str, **extra) -> None:
        emit({"event": "notice", "job": job_id, "message": message, **extra})

    for message in plan.notices:
        note(message)
    state = ShotState(plan, out_dir)
    if state.complete:
        note("this shot is already complete in its folder; nothing to do")
        return _done(plan, state, job_id, cache, {"total_s": round(time.perf_counter() - t0, 4)})
    if state.passes:
        note(f"resuming after pass {len(state.passes)} of {len(plan.passes)}")

    color = spec.color
    transform = ViewTransform(color.config, color.display, color.view, color.look)
    state.color = transform.describe()
    load = lambda path: load_conditioning(Path(path), transform, plan.width, plan.height)  # noqa: E731
    inputs = spec.inputs
    control = reference = video = None
    if spec.mode == "control":      # control passes are data: no view transform, same aspect
        control = np.stack([load_conditioning(Path(p), None, plan.width, plan.height, "inputs.control")
                            for p in plan.video])
        reference = load(inputs.reference) if inputs.reference else None
    elif plan.video:
        video = np.stack([load(p) for p in plan.video])
    backend = cache.get(model, spec.runtime, emit, job_id)
    t_loaded = time.perf_counter()
    for prompt in dict.fromkeys(p.prompt for p in plan.passes):
        unknown = backend.unknown_words(prompt)
        if unknown:
            note("the model does not know these words: " + ", ".join(unknown), unknown_words=unknown)

    def timings() -> dict:
        return {"load_s": round(t_loaded - t0, 4), "generate_s": round(time.perf_counter() - t_loaded, 4),
                "total_s": round(time.perf_counter() - t0, 4)}

    progress = ShotProgress(plan.passes, emit, job_id, done=len(state.passes))
    attrs = frame_attributes(spec, backend.identity)
    for p in plan.passes[len(state.passes):]:
        known_pos, write_pos = positions(p, plan.backward)
        if p.index == 0:
            known = {i: load(path) for i, path in plan.first_known.items()}
        else:   # the frames already on disk condition the next pass, exactly as a resume sees them
            before = plan.first_number + (p.start + p.new if plan.backward else p.start - p.context)
            known = {pos: load(state.frame_path(before + j)) for j, pos in enumerate(known_pos)}
        request = Request(mode=spec.mode if p.index == 0 else "extend", prompt=p.prompt,
                          negative_prompt=spec.negative_prompt, seed=p.seed, steps=plan.steps,
                          guidance=plan.guidance, width=plan.width, height=plan.height, frames=p.frames,
                          known=known, video=video, fps=plan.fps,
                          strength=inputs.strength if spec.mode == "restyle" else 1.0,
                          control=control, control_kind=inputs.control_kind,
                          control_strength=inputs.control_strength, reference=reference)

        def on_step(step: int, total: int, p=p) -> None:
            if is_cancelled():
                raise SoraError("cancelled", "cancelled by the user")
            progress.report(p.index, "denoise", step, total)

        def on_frame(number: int, path: Path, count: int, p=p) -> None:
            emit({"event": "frame", "job": job_id, "path": str(path), "number": number, "pass": p.index + 1})
            progress.report(p.index, "write", count, p.new)

        on_step(0, plan.steps)
        display = backend.run(request, on_step)
        linear = _linear_frames(display, known, write_pos, spec.passes.match, transform)
        numbers = range(plan.first_number + p.start, plan.first_number + p.start + p.new)
        records = write_pass(linear, numbers, state.frame_path,
                             {**attrs, "sora:prompt": p.prompt, "sora:seed": str(p.seed)},
                             on_frame, is_cancelled)
        state.add_pass(p, records)
        state.write(backend.identity, timings(), complete=False)

    final = timings()
    state.write(backend.identity, final, complete=True)
    return _done(plan, state, job_id, cache, final)


def _linear_frames(display: np.ndarray, known: dict, write_pos: range, match: str, transform):
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


def _done(plan, state: ShotState, job_id: str, cache, timings: dict) -> dict:
    return {"event": "done", "job": job_id, "manifest": str(state.out_dir / MANIFEST_NAME),
            "dir": str(state.out_dir), "frames": len(state.records),
            "first_frame": state.records[0]["number"] if state.records else plan.first_number,
            "pattern": f"{plan.spec.output.name}.####.exr", "fps": plan.fps, "width": plan.width,
            "height": plan.height, "passes": len(plan.passes), "timings": timings,
            "model_loads": cache.loads}
