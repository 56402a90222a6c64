"""Execute one shot: spec -> plan -> passes through the backend -> frames -> manifest.

Heavy half: imported by the worker only. The spec walks down once:
  1. plan      what the request becomes (``planning.plan``, the same the hosts preview), with
               every cheap check (model, inputs on disk) done before the model is loaded;
  2. execute   each pass conditioned on the frames before it (the given ones, or the last pass's
               as they are on disk, exactly what a resume sees), drift-corrected;
  3. write     each pass's frames converted and written on the frame pool (``writing``) while the
               next pass denoises; the frames the next pass needs are written first (an HDR
               model's frames are already scene linear and are written as they are); a sound
               track (LTX-2) is cut to each pass's new frames and written as ``<name>.wav``;
  4. manifest  rewritten after every pass (``shot_state``), ``complete`` at the end, then signed
               (``provenance``: ``manifest.jws`` and the C2PA sidecar) when an identity is set up.

Memory stays flat as a shot grows: a pass's frames are held until written, never the shot's.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

import numpy as np

from .capabilities import LINEAR_MODES, SEQUENCE_MODES
from .errors import SoraError, invalid
from .frames.audio import SoundTrack, frames_span
from .longshot import drift_correction, positions
from .manifest import MANIFEST_NAME
from .preflight import plan_shot
from .progress import ShotProgress
from .provenance.sign import clear_signatures, shot_signer, sign_shot
from .safe_write import Folder
from .shot_lock import ShotLock
from .shot_state import ShotState
from .spec import ShotSpec
from .timings import ShotTimings

Emit = Callable[[dict], None]


def run_shot(spec: ShotSpec, output_root: str | Path, cache, emit: Emit, job_id: str = "",
             is_cancelled: Callable[[], bool] = lambda: False, models_dirs=()) -> dict:
    """Make the shot pass by pass and return the ``done`` event; raise SoraError on failure.

    A cancel or failure keeps the finished passes (the manifest lists them) and removes only the
    frames of a pass not completely written; running the same spec again resumes after the last
    finished one. A pass whose frames are being written when a later pass fails (not a cancel)
    is finished first. The shot folder is held open and locked for the whole job (one writer
    per folder; every file is written through the folder held open, ``safe_write``).
    """
    plan, model, out_dir = plan_shot(spec, output_root, models_dirs)   # before any heavy import
    signer = shot_signer()          # a configured signing identity is loaded and checked first
    root = Path(output_root).resolve()
    folder = Folder.open(root, out_dir.relative_to(root) if out_dir != root else "")
    try:
        with ShotLock(folder):
            folder.clear_temporaries()      # a killed job's, never a live one's: we hold the lock
            state = ShotState(plan, out_dir, folder)
            try:
                return _make_shot(spec, plan, model, state, signer, cache, emit, job_id, is_cancelled)
            except BaseException as exc:
                state.release_claim()
                if isinstance(exc, SoraError) and exc.code == "disk_full":
                    raise _disk_full(exc, plan, state) from None
                raise
    finally:
        folder.close()


def _make_shot(spec, plan, model, state, signer, cache, emit, job_id, is_cancelled) -> dict:
    out_dir = state.out_dir
    clock = ShotTimings(state.pass_timings)

    from .backends import Request
    from .frames.color import ViewTransform, load_conditioning
    from .frames.pool import read_frames
    from .writing import PassWriter, frame_attributes

    def note(message: str, **extra) -> None:
        emit({"event": "notice", "job": job_id, "message": message, **extra})

    for message in plan.notices:
        note(message)
    if state.complete:
        note("this shot is already complete in its folder; nothing to do")
        sign_shot(out_dir, signer)
        return _done(plan, state, job_id, cache, clock.as_dict())
    state.claim({}, clock.as_dict())    # another shot in the folder is refused here
    clear_signatures(out_dir)       # the manifest is about to change: old signatures would lie
    if state.passes:
        note(f"resuming after pass {len(state.passes)} of {len(plan.passes)}")

    _check_input_sizes(spec, plan, note)    # headers only: before any pixel or the model
    color = spec.color
    transform = ViewTransform(color.config, color.display, color.view, color.look)
    state.color = transform.describe()      # builds the processors (a baked inverse is solved now)
    linear = spec.mode in LINEAR_MODES
    if linear:      # HDR: the view transform reads the input clip; the model's output is linear
        state.color["output"] = "scene-linear from the model (no inverse view transform)"
    track = SoundTrack(plan.backward)
    resumed = bool(state.passes)
    load = lambda path: load_conditioning(Path(path), transform, plan.width, plan.height)  # noqa: E731
    inputs = spec.inputs
    t_inputs = time.perf_counter()
    control = reference = video = None
    if spec.mode == "control":      # control passes are data: no view transform, same aspect
        control = np.stack(read_frames(lambda p: load_conditioning(Path(p), None, plan.width, plan.height,
                                                                   "inputs.control"), plan.video))
        reference = load(inputs.reference) if inputs.reference else None
    elif plan.video:
        video = np.stack(read_frames(load, plan.video))
    first_known = dict(zip(plan.first_known, read_frames(load, plan.first_known.values())))
    t_inputs = time.perf_counter() - t_inputs
    t_model = time.perf_counter()
    backend = cache.get(model, spec.runtime, emit, job_id, spec.components, spec.loras)
    clock.model_load_s = time.perf_counter() - t_model
    for prompt in dict.fromkeys(p.prompt for p in plan.passes):
        unknown = backend.unknown_words(prompt)
        if unknown:
            note("the model does not know these words: " + ", ".join(unknown), unknown_words=unknown)

    progress = ShotProgress(plan.passes, emit, job_id, done=len(state.passes))
    attrs = frame_attributes(spec, backend.identity)
    todo = plan.passes[len(state.passes):]
    writer: PassWriter | None = None       # the pass whose frames are still being written
    try:
        for p, after in zip(todo, list(todo[1:]) + [None]):
            timer = clock.start_pass(p.index)
            known_pos, write_pos = positions(p, plan.backward)
            t_load = time.perf_counter()
            if p.index == 0:
                known = first_known
                timer.add("load_s", t_inputs)
            else:   # the frames already on disk condition the next pass, exactly as a resume sees them
                numbers = _context_numbers(plan, p)
                if writer is not None:
                    writer.wait_for(numbers)
                state.folder.verify()
                names = [state.frame_path(n).name for n in numbers]     # read through the folder held
                known = dict(zip(known_pos, read_frames(load, map(state.folder.read_path, names))))
            timer.add("load_s", time.perf_counter() - t_load)
            request = Request(mode=spec.mode if p.index == 0 else "extend", prompt=p.prompt,
                              negative_prompt=spec.negative_prompt, seed=p.seed, steps=plan.steps,
                              guidance=plan.guidance, guidance_2=plan.guidance_2, upsample=plan.upsample,
                              width=plan.width, height=plan.height,
                              frames=p.frames, known=known, video=video, fps=plan.fps,
                              strength=inputs.strength if spec.mode == "restyle" else 1.0,
                              control=control, control_kind=inputs.control_kind,
                              control_strength=inputs.control_strength, reference=reference)
            last_step = [time.perf_counter()]

            def on_step(step: int, total: int, p=p, last_step=last_step) -> None:
                if is_cancelled():
                    raise SoraError("cancelled", "cancelled by the user")
                if writer is not None:
                    writer.check()              # a failed write stops the next pass at once
                last_step[0] = time.perf_counter()
                progress.report(p.index, "denoise", step, total)

            on_step(0, plan.steps)
            t_run = last_step[0]
            display = backend.run(request, on_step)
            sound = backend.take_audio()
            if sound is not None:
                track.add(frames_span(sound[0], sound[1], plan.fps, write_pos.start, p.new), sound[1])
            timer.add("denoise_s", last_step[0] - t_run)
            timer.add("decode_s", time.perf_counter() - last_step[0])
            if writer is not None:
                writer.wait()                   # the pass before is on disk and in the manifest
            state.folder.verify()
            writer = _write_pass(plan, p, state, display, known, write_pos, transform, attrs, emit,
                                 job_id, progress, is_cancelled, timer, backend.identity, clock,
                                 first=_context_numbers(plan, after) if after else (), linear=linear)
            display = known = None      # the pass's frames live until written, not through the next pass
        if writer is not None:
            writer.wait()
    except BaseException as exc:
        if writer is not None:
            own = writer.error is not None or (isinstance(exc, SoraError) and exc.code == "cancelled")
            try:
                writer.abort() if own else writer.wait()    # finish a good pass before failing
            except BaseException:   # noqa: BLE001 - the first failure is the one reported
                pass
        raise
    if track.parts and resumed:
        note("the sound track is not written: the passes made before the resume kept no sound")
    elif track.parts:
        state.audio = _write_sound(track, state)
    final = clock.as_dict()
    state.write(backend.identity, final, complete=True)
    sign_shot(out_dir, signer)
    return _done(plan, state, job_id, cache, final)


def _check_input_sizes(spec, plan, note) -> None:
    """Every input image within the size limit (``frames.exr``), and a sequence of mixed sizes
    noted (each frame is scaled to the shot's size) or, with ``inputs.strict``, refused."""
    from .frames.exr import image_size

    paths = list(dict.fromkeys([*plan.video, *plan.first_known.values()]))
    sizes: dict[tuple[int, int], str] = {}
    for path in paths:
        sizes.setdefault(image_size(path), Path(path).name)
    if len(sizes) > 1 and spec.mode in SEQUENCE_MODES:
        name = f"inputs.{SEQUENCE_MODES[spec.mode]}"
        shown = ", ".join(f"{w}x{h} ({file})" for (w, h), file in list(sizes.items())[:4])
        if spec.inputs.strict:
            raise invalid(name, f"the sequence mixes frame sizes: {shown}",
                          hint="render every frame at one size, or drop inputs.strict (--strict)")
        note(f"{name}: the sequence mixes frame sizes ({shown}); every frame is scaled to "
             f"{plan.width}x{plan.height}")


def _clear_temporaries(folder) -> None:
    for name in folder.names():
        if name.startswith(".") and TEMP_MARK in name:
            folder.unlink(name)


def _disk_full(exc: SoraError, plan, state: ShotState) -> SoraError:
    """The disk filled up: say how much to free (the frames still to write, at the size of those
    written) and which passes are kept."""
    sizes = []
    for record in state.records[-8:]:
        try:
            sizes.append(os.stat(record["file"], dir_fd=state.folder.fd).st_size)
        except OSError:
            pass
    frame = sum(sizes) / len(sizes) if sizes else plan.width * plan.height * 6
    left = plan.total - len(state.records)
    kept = (f"passes kept: {len(state.passes)} of {len(plan.passes)} (frames "
            f"{state.records[0]['number']}..{state.records[-1]['number']})" if state.records
            else "no pass was finished")
    return SoraError("disk_full", f"no space left on the device writing {state.out_dir}: free at least "
                     f"{max(1, round(left * frame / 2**20))} MB there for the {left} frames still to "
                     f"write; {kept}", hint="free the space and run the same spec again to resume")


def _context_numbers(plan, p) -> list[int]:
    """Frame numbers of the already-made frames that condition pass ``p`` (index > 0)."""
    before = plan.first_number + (p.start + p.new if plan.backward else p.start - p.context)
    return [before + j for j in range(p.context)]


def _write_sound(track, state) -> dict:
    """``<name>.wav`` beside the frames (through the folder held open), and its manifest record."""
    return track.write(state.folder, f"{state.plan.spec.output.name}.wav")


def _write_pass(plan, p, state, display, known, write_pos, transform, attrs, emit, job_id, progress,
                is_cancelled, timer, identity, clock, first, linear=False):
    """Start writing pass ``p`` on the pool; the manifest lists it once its last frame is on disk."""
    from .writing import PassWriter

    numbers = range(plan.first_number + p.start, plan.first_number + p.start + p.new)

    def on_frame(number: int, path: Path, count: int) -> None:
        emit({"event": "frame", "job": job_id, "path": str(path), "number": number, "pass": p.index + 1})
        progress.report(p.index, "write", count, p.new)

    def on_complete(records: list[dict]) -> None:
        state.add_pass(p, records)
        state.write(identity, clock.as_dict(), complete=False)

    writer = PassWriter(numbers, state.frame_path,
                        {**attrs, "sora:prompt": p.prompt, "sora:seed": str(p.seed)},
                        (lambda frame: frame) if linear else
                        _converter(display, known, plan.spec.passes.match, transform),
                        on_frame, is_cancelled, timer, on_complete, folder=state.folder)
    writer.submit_all(dict(zip(numbers, display[write_pos.start:write_pos.stop])), first=first)
    return writer


def _converter(display: np.ndarray, known: dict, match: str, transform) -> Callable:
    """Per frame: display -> scene linear, drift-corrected against the pass's given frames (the
    correction is measured once per pass on those frames, then streamed over the new ones)."""
    pos = sorted(known)
    if match == "none" or not pos:
        return transform.to_linear
    step = _sample_step(display.shape[1] * display.shape[2])
    produced = np.stack([display[i, ::step, ::step] for i in pos])
    reference = np.stack([known[i][::step, ::step] for i in pos])
    if match == "display":
        correct = drift_correction(produced, reference)
        return lambda frame: transform.to_linear(correct(frame).clip(0, 1))
    correct = drift_correction(transform.to_linear(produced), transform.to_linear(reference))
    return lambda frame: np.maximum(correct(transform.to_linear(frame)), 0.0)


def _sample_step(pixels: int, budget: int = 65536) -> int:
    """Pixel stride for measuring drift: a per-channel mean and spread need ~64 k pixels a frame,
    not a 1080p frame's 2 M (which would hold several float32 copies of the context at once)."""
    return max(1, int((pixels / budget) ** 0.5))


def _done(plan, state: ShotState, job_id: str, cache, timings: dict) -> dict:
    return {"event": "done", "job": job_id, "manifest": str(state.out_dir / MANIFEST_NAME),
            "dir": str(state.out_dir), "frames": len(state.records),
            "first_frame": state.records[0]["number"] if state.records else plan.first_number,
            "pattern": f"{plan.spec.output.name}.####.exr", "fps": plan.fps, "width": plan.width,
            "height": plan.height, "passes": len(plan.passes), "timings": timings,
            "model_loads": cache.loads,
            "audio": str(state.out_dir / state.audio["path"]) if state.audio else None}
