"""Render Control: the scene's control pass (depth, edges, layout, pose) for the panel's shot,
rendered by :mod:`.control_passes` at the size the model will make, over the scene's frame
range, into ``<output root>/<shot>/control/`` and shown in the compositor (``<shot> control``)
for a look before Follow Control uses it."""

from __future__ import annotations

from pathlib import Path

import bpy

from sora_core.errors import SoraError

from . import compositor, control_passes, live, shots
from .settings import output_root


def render_for_shot(scene, kind: str, folder: Path, size: tuple[int, int], layout_style: str,
                    label: str) -> dict:
    """Render ``kind`` over the scene's range into ``folder``; preview it as ``label``; return
    what a node's output holds ({dir, pattern, first, last})."""
    frames = range(scene.frame_start, scene.frame_end + 1)
    try:
        pattern = control_passes.render_control(scene, kind, folder, frames, size, layout_style)
    except ValueError as exc:           # no camera, a kind the scene cannot give
        raise SoraError("invalid_input", str(exc), field="control",
                        hint="add a camera (and, for pose, an armature)") from None
    done = {"dir": str(folder), "pattern": Path(pattern).name, "first_frame": frames.start,
            "frames": len(frames)}
    compositor.import_shot(scene, done, label, colorspace="Non-Color")
    live.invalidate()                   # new frames on disk: the panels plan again
    return {"dir": str(folder), "pattern": pattern, "first": frames.start, "last": frames.stop - 1}


class SORA_OT_render_control(bpy.types.Operator):
    """Render the control pass (depth, edges, layout or pose) of the scene's frame range at the
    model's size into <shot>/control/, shown in the compositor; Follow Control then uses it"""

    bl_idname = "sora.render_control"
    bl_label = "Render Control"

    def execute(self, context):
        scene, props = context.scene, context.scene.sora
        fitted = shots.panel_fit(scene)
        try:
            shot = shots.check_shot_name(props.shot_name)
            folder = shots.control_folder(output_root(), shot)
            result = render_for_shot(scene, props.control_kind, folder, (fitted.width, fitted.height),
                                     props.layout_style, f"{shot} control")
        except SoraError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        self.report({"INFO"}, f"{props.control_kind} pass: {result['pattern']}")
        return {"FINISHED"}


classes = (SORA_OT_render_control,)
