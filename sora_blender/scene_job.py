"""The scene panel's job: a spec run as a one-step task whose events feed the live state.

A finished shot goes into the compositor. A cancelled or failed long shot keeps the passes it
finished (the core removes only the unfinished pass's frames and its manifest lists what is
kept): those frames go into the compositor too, and the live state keeps the spec so that
Resume runs it again into the same folder, where the worker continues after the last kept pass.
"""

from __future__ import annotations

from pathlib import Path

import bpy

from sora_core.errors import SoraError
from sora_core.manifest import MANIFEST_NAME, read_manifest

from . import compositor, live, shots, tasks


def scene_key(scene) -> str:
    return f"scene:{scene.name}"


def _scene(uid: int):
    return next((sc for sc in bpy.data.scenes if sc.session_uid == uid), None)


def set_error(state: live.JobState, err: SoraError) -> None:
    state.state = "CANCELLED" if err.code == "cancelled" else "ERROR"
    state.error = f"[{err.code}] {err.message}"[:1000]
    state.hint = err.hint or ""
    state.message = "cancelled" if err.code == "cancelled" else "failed"


def kept_frames(shot_dir: Path) -> dict | None:
    """What a stopped shot folder still holds, as a ``done``-like dict (None: nothing kept)."""
    try:
        manifest = read_manifest(shot_dir / MANIFEST_NAME)
    except (OSError, ValueError):
        return None
    frames = manifest.get("frames") or []
    if not frames:
        return None
    return {"dir": str(shot_dir), "frames": len(frames), "first_frame": manifest.get("first_frame"),
            "pattern": manifest.get("pattern"), "manifest": str(shot_dir / MANIFEST_NAME),
            "passes": len(manifest.get("passes") or []), "passes_total": manifest.get("passes_total") or 0}


def scene_task(scene, spec, root, echo: bool) -> tasks.Task:
    """Run ``spec`` for the scene's panel; import the shot (or its kept passes) into the compositor."""
    uid, shot_dir = scene.session_uid, Path(root) / spec.output.dir
    state = live.job(scene)
    state.kept = state.resume = None

    def on_event(event):
        kind = event.get("event")
        if kind == "progress":
            state.take_progress(event)
        elif kind == "loading":
            state.message = f"loading {event.get('model')}"
        elif kind == "notice":
            state.add_notice(event.get("message", ""))

    def finish(done):
        sc = _scene(uid)
        if sc is None:
            return
        compositor.import_shot(sc, done, spec.output.name, sc.sora.link_composite, sc.sora.add_strip)
        sc.sora.last_dir = done["dir"]
        state.state, state.overall, state.eta_s = "DONE", 1.0, None
        state.message = f"{done['frames']} frames -> {done['dir']}"

    def on_fail(err):
        set_error(state, err)
        kept = kept_frames(shot_dir)
        if kept is None:
            shots.remove_if_empty(shot_dir)
            return
        state.kept, state.resume = kept, (spec, str(root))
        sc = _scene(uid)
        if sc is not None:
            compositor.import_shot(sc, kept, spec.output.name, sc.sora.link_composite, sc.sora.add_strip)
            sc.sora.last_dir = kept["dir"]

    step = tasks.Step(spec.output.name, lambda: (spec, str(root)), finish, on_event, on_fail)
    return tasks.Task(scene_key(scene), [step], echo=echo)


def run(scene, spec, root, blocking: bool, notices=()) -> tasks.Task:
    """Start (or, ``blocking``, run to the end) the scene's job; the live state says RUNNING."""
    state = live.job(scene)
    state.error = state.hint = ""
    state.notices = []
    for note in notices:
        state.add_notice(note)
    state.state, state.overall, state.eta_s, state.step, state.total = "RUNNING", 0.0, None, 0, 0
    state.pass_index = state.passes = 0
    state.phase, state.message = "starting", "starting worker"
    task = scene_task(scene, spec, root, echo=blocking)
    try:
        return tasks.run_blocking(task) if blocking else tasks.start(task)
    except SoraError as err:
        set_error(state, err)
        raise
