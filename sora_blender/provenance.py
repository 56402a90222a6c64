"""A shot's provenance in Blender: ``sora verify`` and ``sora export`` run by the worker's Python.

Blender never reads a key or a signature: the worker's Python checks and signs (c2pa,
cryptography, OpenImageIO are there), with the identity of the preferences passed as paths
(:func:`.settings.sign_env`). Both run as :class:`.cli_process.CliProcess`; one timer takes their
output into the live state (a shot folder's :class:`.live.Verification`, a scene's
:class:`.live.ExportState`), which the Provenance sub-panel draws. Nothing of it is saved in the
.blend. In background mode (farm, scripts) the operators wait for the process.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import bpy
from bpy.props import BoolProperty, EnumProperty, IntProperty, StringProperty

from sora_core.errors import SoraError
from sora_core.provenance.export import deliverable_path

from . import live
from .cli_process import CliProcess
from .settings import output_root

POLL_INTERVAL = 0.2
FORMAT_ITEMS = [
    ("mp4", "MP4 (H.264)", "H.264 4:2:0 8-bit at the shot's fps, colour-tagged"),
    ("mov", "MOV (ProRes 422)", "ProRes 422 4:2:2 10-bit at the shot's fps, colour-tagged"),
    ("png", "PNG", "8-bit PNG stills: one frame, or every frame into a new folder"),
    ("jpeg", "JPEG", "8-bit JPEG stills (quality 95): one frame, or every frame into a new folder"),
]
SIGNING_HINT = ("set Signing Chain and Signing Key in the add-on's preferences (Signing), or "
                "SORA_SIGN_CERT/SORA_SIGN_KEY; sora keys new DIR makes a pair for trying it out")
_verifying: dict[str, CliProcess] = {}      # shot folder -> sora verify
_exporting: dict[int, CliProcess] = {}      # scene session_uid -> sora export


def shot_folder(context) -> str:
    """The shot the panel is about, from names only (no disk access): the active Sora Shots node's
    result, else the compositor's active shot node, else the scene's last shot."""
    space = getattr(context, "space_data", None)
    tree = getattr(space, "edit_tree", None) if getattr(space, "tree_type", "") == "SoraShotTree" else None
    node = tree.nodes.active if tree is not None else None
    if node is not None and getattr(node, "result_dir", ""):
        return os.path.normpath(bpy.path.abspath(node.result_dir))
    comp = context.scene.node_tree
    node = comp.nodes.active if comp is not None else None
    if node is not None and node.get("sora_dir"):
        return os.path.normpath(node["sora_dir"])
    last = context.scene.sora.last_dir
    return os.path.normpath(bpy.path.abspath(last)) if last else ""


def _ensure_timer() -> None:
    if not bpy.app.timers.is_registered(poll):
        bpy.app.timers.register(poll, first_interval=POLL_INTERVAL)


def verify(folder: str) -> CliProcess:
    """Start ``sora verify FOLDER --json`` (once at a time per folder)."""
    folder = os.path.normpath(folder)
    if folder in _verifying:
        return _verifying[folder]
    state = live.verification(folder)
    state.state, state.error = "RUNNING", ""
    proc = _verifying[folder] = CliProcess(["verify", folder, "--json"], thread_name="sora-verify")
    _ensure_timer()
    return proc


def export_args(folder: str, fmt: str, out: str, frame: int | None = None, crf: int | None = None,
                watermark: bool = False, allow_unsigned: bool = False) -> list[str]:
    """``sora export`` with its JSON-lines events."""
    args = ["export", folder, "--format", fmt, "--out", out, "--events"]
    args += ["--frame", str(frame)] if frame is not None else []
    args += ["--crf", str(crf)] if crf is not None else []
    return args + (["--watermark"] if watermark else []) + (["--allow-unsigned"] if allow_unsigned else [])


def default_out(folder: str, fmt: str, one_frame: bool = False, where: str | None = None) -> str:
    """``<where, else output root/deliverables>/<shot>_<version>.<ext>`` (a folder for a sequence)."""
    shot = Path(folder)
    name = f"{shot.parent.name}_{shot.name}" if shot.name.startswith("v") else shot.name
    return str(deliverable_path(where or output_root() / "deliverables", name, fmt, one_frame))


def start_export(scene, folder: str, fmt: str, out: str, **options) -> CliProcess:
    """Start exporting the shot in ``folder``; its progress goes to the scene's live export state."""
    uid = scene.session_uid
    if uid in _exporting:
        raise SoraError("invalid_input", "a deliverable is already being exported", hint="wait, or cancel it")
    if not folder:
        raise SoraError("not_found", "no shot to export", hint="generate or import a shot first")
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    state = live.export_job(uid)
    state.state, state.error, state.hint, state.files = "RUNNING", "", "", []
    state.overall, state.step, state.total, state.message = 0.0, 0, 0, f"verifying {Path(folder).name}"
    _exporting[uid] = CliProcess(export_args(folder, fmt, out, **options), thread_name="sora-export")
    _ensure_timer()
    return _exporting[uid]


def cancel_export(scene) -> bool:
    proc = _exporting.get(scene.session_uid)
    if proc is None:
        return False
    live.export_job(scene.session_uid).state = "CANCELLED"
    proc.terminate()
    return True


def take_export_event(state: live.ExportState, event: dict) -> None:
    kind = event.get("event")
    if kind == "progress":
        state.take_progress(event)
    elif kind == "error" and state.state != "CANCELLED":
        state.state, state.error, state.hint = "ERROR", f"[{event.get('code')}] {event.get('message')}", \
            event.get("hint") or ""
        if event.get("field") in ("sign_cert", "sign_key"):        # the fix in Blender's words
            state.hint = SIGNING_HINT
    elif kind == "done":
        state.state, state.overall, state.files = "DONE", 1.0, list(event.get("files") or [])
        files = state.files
        where = files[0] if len(files) == 1 else f"{len(files)} files in {os.path.dirname(files[0])}"
        signer = (event.get("signer") or {}).get("common_name") or "?"
        state.message = f"{event.get('frames')} frame(s) -> {where}, signed by {signer}"


def run_export(folder: str, fmt: str, out: str, label: str, **options) -> tuple[int, live.ExportState]:
    """Farm and headless runs: export and wait, one ``sora: [label] ...`` line per event;
    returns the CLI's exit code (0, 2, 3, 65 ...) and the final state."""
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    state = live.ExportState(state="RUNNING")
    proc = CliProcess(export_args(folder, fmt, out, **options), thread_name="sora-export")
    print(f"sora: [{label}] export {fmt} {folder} -> {out}", flush=True)
    while not proc.ended:
        for event in proc.poll():
            take_export_event(state, event)
            text = state.message if event.get("event") in ("progress", "done") else state.error
            print(f"sora: [{label}] {'exported ' if state.state == 'DONE' else ''}{text}", flush=True)
        time.sleep(0.05)
    code = proc.returncode
    if code and state.state != "ERROR":
        state.state, state.error = "ERROR", f"[export] {proc.last_error()}"
    return code, state


def poll():
    """The timer (main thread): verification reports and export events into the live state."""
    for folder, proc in list(_verifying.items()):
        proc.poll()
        if proc.ended:
            del _verifying[folder]
            report, state = proc.document(), live.verification(folder)
            if isinstance(report, dict) and "verdict" in report:
                state.take(report)
            else:
                state.state, state.error = "ERROR", proc.last_error()[:500]
    for uid, proc in list(_exporting.items()):
        state = live.export_job(uid)
        for event in proc.poll():
            take_export_event(state, event)
        if proc.ended:
            del _exporting[uid]
            if state.state == "RUNNING":
                state.state, state.error = "ERROR", f"[export] {proc.last_error()}"[:1000]
            elif state.state == "CANCELLED":
                state.message = "cancelled; nothing written"
    live.redraw()
    return POLL_INTERVAL if (_verifying or _exporting) else None


def exporting(scene) -> bool:
    return scene.session_uid in _exporting


def wait_all(timeout: float = 1800.0) -> None:
    """Background mode: until every verification and export has ended."""
    deadline = time.monotonic() + timeout
    while _verifying or _exporting:
        poll()
        if time.monotonic() > deadline:
            raise SoraError("temporary", "verification or export took too long")
        time.sleep(0.05)


def stop_all() -> None:
    """A file load or disabling the add-on: cancel exports (they remove their temporaries)."""
    for proc in [*_verifying.values(), *_exporting.values()]:
        proc.terminate()
    _verifying.clear()
    _exporting.clear()
    if bpy.app.timers.is_registered(poll):
        bpy.app.timers.unregister(poll)


class SORA_OT_verify_shot(bpy.types.Operator):
    """Check the shot against its signatures (sora verify): every frame's hash, the header, the
    manifest's signature and its C2PA sidecar, run by the worker's Python"""

    bl_idname = "sora.verify_shot"
    bl_label = "Verify Shot"

    folder: StringProperty(name="Shot Folder", default="", options={"SKIP_SAVE"},
                           description="Empty: the shot the panel shows")

    def execute(self, context):
        folder = bpy.path.abspath(self.folder) if self.folder else shot_folder(context)
        if not folder:
            self.report({"ERROR"}, "no shot to verify: generate or import one first")
            return {"CANCELLED"}
        verify(folder)
        if bpy.app.background:
            wait_all()
            state = live.verification(os.path.normpath(folder))
            if state.state != "DONE":
                self.report({"ERROR"}, state.error or "the verification did not run")
                return {"CANCELLED"}
            self.report({"INFO"} if state.verdict == "verified" else {"WARNING"},
                        f"{state.verdict}: {folder}" + ("; " + "; ".join(state.problems) if state.problems else ""))
        return {"FINISHED"}


class SORA_OT_export_deliverable(bpy.types.Operator):
    """Export the shot as a signed deliverable (sora export): H.264 MP4, ProRes MOV or 8-bit
    PNG/JPEG, through the shot's view transform, with an embedded C2PA manifest whose parent
    ingredient is the shot's manifest. Runs in the worker's Python; Blender stays responsive"""

    bl_idname = "sora.export_deliverable"
    bl_label = "Export Deliverable"

    folder: StringProperty(name="Shot Folder", default="", options={"SKIP_SAVE"},
                           description="Empty: the shot the panel shows")
    format: EnumProperty(name="Format", items=FORMAT_ITEMS, default="mp4")
    filepath: StringProperty(name="Output", subtype="FILE_PATH", default="", options={"SKIP_SAVE"},
                             description="The file (a new folder for a PNG/JPEG sequence). Empty: "
                                         "<output root>/deliverables/<shot>_<version>")
    one_frame: BoolProperty(name="One Frame", default=False, description="PNG/JPEG: one still, not every frame")
    frame: IntProperty(name="Frame", default=1, description="The frame number of the still")
    crf: IntProperty(name="CRF", default=18, min=0, max=51, description="MP4: H.264 quality (lower is better)")
    watermark: BoolProperty(name="Watermark", default=False,
                            description="An invisible watermark carrying the shot's manifest id (MP4, PNG, JPEG)")
    allow_unsigned: BoolProperty(name="Allow Unsigned", default=False,
                                 description="Export a shot that was never signed (its frames must still match)")

    def invoke(self, context, event):
        self.frame = context.scene.frame_current
        return context.window_manager.invoke_props_dialog(self)

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "format")
        layout.prop(self, "filepath")
        if self.format in ("png", "jpeg"):
            row = layout.row(align=True)
            row.prop(self, "one_frame", toggle=True)
            sub = row.row(align=True)
            sub.enabled = self.one_frame
            sub.prop(self, "frame")
        if self.format == "mp4":
            layout.prop(self, "crf")
        if self.format != "mov":
            layout.prop(self, "watermark")
        layout.prop(self, "allow_unsigned")

    def execute(self, context):
        folder = bpy.path.abspath(self.folder) if self.folder else shot_folder(context)
        still = self.format in ("png", "jpeg") and self.one_frame
        out = bpy.path.abspath(self.filepath) if self.filepath else default_out(folder, self.format, still)
        options = {"frame": self.frame if still else None, "crf": self.crf if self.format == "mp4" else None,
                   "watermark": self.watermark, "allow_unsigned": self.allow_unsigned}
        try:
            start_export(context.scene, folder, self.format, out, **options)
        except (SoraError, OSError) as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        if bpy.app.background:
            wait_all()
            state = live.export_job(context.scene.session_uid)
            if state.state != "DONE":
                self.report({"ERROR"}, state.error or "the export failed")
                return {"CANCELLED"}
            self.report({"INFO"}, state.message)
        return {"FINISHED"}


class SORA_OT_cancel_export(bpy.types.Operator):
    """Stop the export: nothing of it is left on disk"""

    bl_idname = "sora.cancel_export"
    bl_label = "Cancel Export"

    def execute(self, context):
        return {"FINISHED"} if cancel_export(context.scene) else {"CANCELLED"}


classes = (SORA_OT_verify_shot, SORA_OT_export_deliverable, SORA_OT_cancel_export)
