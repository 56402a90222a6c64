"""Import Footage: a video or an image sequence made elsewhere, brought in as a scene-linear EXR
shot through ``sora ingest`` (run by the worker Python, which has OpenImageIO, OCIO and PyAV;
no model is loaded), then shown in the compositor like a generated shot.

The ingest runs as a :class:`.cli_process.CliProcess` whose JSON-lines events a timer on the
main thread takes (progress in the panel, the compositor import at the end), so Blender
never waits. In background mode the operator waits for it.
"""

from __future__ import annotations

import re
from pathlib import Path

import bpy
from bpy.props import StringProperty

from sora_core.errors import SoraError

from . import compositor, live, shots
from .cli_process import CliProcess
from .settings import output_root

POLL_INTERVAL = 0.2
_running: dict[int, tuple] = {}     # scene session_uid -> (CliProcess, shot name)


def ingest_args(src: str, root: Path, out: str, name: str, scene) -> list[str]:
    """``sora ingest`` of ``src`` into ``root/out`` through the scene's view, numbered from its start."""
    color = shots.scene_color(scene)
    args = ["ingest", src, "--out", out, "--name", name, "--output-root", str(root), "--first-frame",
            str(scene.frame_start), "--ocio-config", color.config, "--display", color.display, "--view",
            color.view, "--json"]
    return args + (["--look", color.look] if color.look else [])


def start(scene, src: str, name: str) -> CliProcess:
    """Start ingesting ``src`` as shot ``name`` (a new version folder, signed when an identity is
    set up); return the process."""
    uid = scene.session_uid
    if uid in _running:
        raise SoraError("invalid_input", "footage is already being imported", hint="wait for it to finish")
    if not Path(src).exists() and "#" not in src:
        raise SoraError("not_found", f"no such file: {src}", field="footage")
    root = output_root()
    out = shots.next_version(root, name)        # reserved: an empty folder ingest writes into
    proc = CliProcess(ingest_args(src, root, out, name, scene), thread_name="sora-ingest")
    _running[uid] = (proc, name)
    state = live.job(scene)
    state.state, state.error, state.hint, state.overall = "RUNNING", "", "", 0.0
    state.pass_index = state.passes = 0
    state.message = f"importing {Path(src).name}"
    if not bpy.app.timers.is_registered(poll):
        bpy.app.timers.register(poll, first_interval=POLL_INTERVAL)
    return proc


def poll():
    """The timer (main thread): move the events into the live state; import finished footage."""
    for uid in list(_running):
        proc, name = _running[uid]
        state = live.job_by_uid(uid)
        for event in proc.poll():
            kind = event.get("event")
            if kind == "progress":
                state.take_progress(event)
            elif kind == "error":
                state.state, state.error, state.hint = "ERROR", f"[{event.get('code')}] {event.get('message')}", \
                    event.get("hint") or ""
            elif kind == "done":
                _finish(uid, event, name, state)
        if proc.ended:
            _running.pop(uid, None)
            if state.state == "RUNNING":
                state.state, state.error = "ERROR", f"[ingest] {proc.last_error()}"[:1000]
    live.redraw()
    return POLL_INTERVAL if _running else None


def _finish(uid: int, done: dict, name: str, state) -> None:
    scene = next((sc for sc in bpy.data.scenes if sc.session_uid == uid), None)
    if scene is not None:
        compositor.import_shot(scene, done, name, scene.sora.link_composite, scene.sora.add_strip)
        scene.sora.last_dir = done["dir"]
    state.state, state.overall = "DONE", 1.0
    state.message = f"{done['frames']} frames of footage -> {done['dir']}"
    live.invalidate()


def wait(scene, timeout: float = 600.0) -> None:
    """Background mode: run the import to its end."""
    entry = _running.get(scene.session_uid)
    if entry is not None:
        entry[0].wait(timeout)
        poll()


def stop_all() -> None:
    """A file load or disabling the add-on: end the imports (their partial folders are removed by
    the ingest itself on the signal, or hold no manifest)."""
    for proc, _name in _running.values():
        proc.proc.kill()
    _running.clear()
    if bpy.app.timers.is_registered(poll):
        bpy.app.timers.unregister(poll)


class SORA_OT_import_footage(bpy.types.Operator):
    """Bring a video (MP4/MOV) or an image sequence made elsewhere into the compositor as a
    scene-linear EXR shot, through the scene's view transform (sora ingest; no model is loaded)"""

    bl_idname = "sora.import_footage"
    bl_label = "Import Footage"

    filepath: StringProperty(subtype="FILE_PATH", options={"SKIP_SAVE"})
    name: StringProperty(name="Shot", default="", description="Shot name; empty: the file's name",
                         options={"SKIP_SAVE"})

    def invoke(self, context, event):
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context):
        src = bpy.path.abspath(self.filepath)
        stem = Path(src).name.split(".")[0] if src else ""
        name = self.name or re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._-") or "footage"
        try:
            start(context.scene, src, shots.check_shot_name(name[:100]))
        except SoraError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        if bpy.app.background:
            wait(context.scene)
            state = live.job(context.scene)
            if state.state != "DONE":
                self.report({"ERROR"}, state.error or "the import failed")
                return {"CANCELLED"}
        return {"FINISHED"}


classes = (SORA_OT_import_footage,)
