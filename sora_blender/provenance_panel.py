"""The Provenance sub-panel: the shown shot's verification (signer; verified, unsigned or
tampered, naming each failing frame) and the scene's export (progress, cancel, result).

Draws only from the live state (:mod:`.provenance` computes it in the worker's Python, off the
draw path); the shot is found from names alone (:func:`.provenance.shot_folder`).
"""

from __future__ import annotations

from pathlib import Path

from . import live
from .nodes.run import SORA_PT_shot_nodes
from .panels import PANELS, SoraSidebar, _wrap, sub_panel
from .provenance import exporting, shot_folder

MAX_PROBLEMS = 8


def draw_verification(layout, folder: str) -> None:
    state = live.verification(folder, create=False)
    if state is None or state.state == "IDLE":
        layout.label(text="Not verified yet", icon="QUESTION")
    elif state.state == "RUNNING":
        layout.label(text="Verifying ...", icon="TIME")
    elif state.state == "ERROR":
        _wrap(layout, f"Not checked: {state.error}", "ERROR")
    elif state.verdict == "tampered":
        layout.label(text=f"Tampered: {len(state.problems)} check(s) failed", icon="ERROR")
        for problem in state.problems[:MAX_PROBLEMS]:
            _wrap(layout, problem, "BLANK1")
        if len(state.problems) > MAX_PROBLEMS:
            layout.label(text=f"... and {len(state.problems) - MAX_PROBLEMS} more", icon="BLANK1")
    elif state.verdict == "verified":
        layout.label(text="Verified: signature valid, frames match", icon="CHECKMARK")
    else:
        layout.label(text="Unverified: not signed (frames match the manifest)", icon="QUESTION")
    if state is not None and state.state == "DONE" and state.signer:
        org = f" ({state.organization})" if state.organization else ""
        layout.label(text=f"Signer: {state.signer}{org}", icon="USER")
        if not state.trusted:
            _wrap(layout, "untrusted: the signer is not on this machine's trust list "
                          "(Preferences > Signing > Trust Anchors)", "INFO")


def draw_export(layout, scene, folder: str) -> None:
    state = live.export_job(scene.session_uid)
    row = layout.row(align=True)
    sub = row.row(align=True)
    sub.enabled = not exporting(scene)
    sub.operator("sora.export_deliverable", icon="RENDER_RESULT").folder = folder
    if exporting(scene):
        row.operator("sora.cancel_export", text="", icon="CANCEL")
        layout.progress(factor=state.overall, type="BAR", text=state.message or "starting")
    elif state.state == "DONE":
        _wrap(layout, state.message, "CHECKMARK")
    elif state.state == "CANCELLED":
        layout.label(text="Export cancelled; nothing written", icon="CANCEL")
    elif state.state == "ERROR":
        _wrap(layout, state.error, "ERROR")
        if state.hint:
            _wrap(layout, "Fix: " + state.hint, "QUESTION")


def draw_provenance(layout, context) -> None:
    folder = shot_folder(context)
    if not folder:
        layout.label(text="No shot yet", icon="INFO")
        return
    path = Path(folder)
    row = layout.row()
    row.label(text=f"{path.parent.name}/{path.name}", icon="FILE_FOLDER")
    row.operator("sora.verify_shot", text="Verify", icon="FILE_REFRESH").folder = folder
    draw_verification(layout, folder)
    draw_export(layout, context.scene, folder)


class SoraProvenanceMixin(SoraSidebar):
    bl_label = "Provenance"

    def draw(self, context):
        draw_provenance(self.layout, context)


classes = tuple(sub_panel(p, SoraProvenanceMixin, "provenance") for p in (*PANELS, SORA_PT_shot_nodes))
