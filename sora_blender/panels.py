"""The "Sora" sidebar tab in the Compositor, the Video Sequencer and the 3D viewport."""

from __future__ import annotations

from pathlib import Path

import bpy

from sora_core.manifest import MANIFEST_NAME, read_manifest
from sora_core.timings import PHASES

from . import live, model_files, schedule, shots, tasks
from .properties import MODE_ITEMS
from .scene_job import scene_key


def _wrap(layout, text: str, icon: str = "NONE", width: int = 48) -> None:
    """Labels do not wrap: split long messages into lines."""
    first = True
    for para in text.splitlines() or [""]:
        words, line = para.split(), ""
        for word in words:
            if line and len(line) + len(word) + 1 > width:
                layout.label(text=line, icon=icon if first else "BLANK1")
                first, line = False, word
            else:
                line = f"{line} {word}".strip()
        if line or not words:
            layout.label(text=line, icon=icon if first else "BLANK1")
            first = False


def draw_sora(layout, context) -> None:
    """Draws from the plan made once per settings change (``shots.panel_fit``) and the live
    state: no file is read or stat-ed here."""
    scene = context.scene
    props = scene.sora
    fitted = shots.panel_fit(scene)
    caps = fitted.caps

    col = layout.column()
    col.prop(props, "shot_name")
    col.prop(props, "model", icon="PACKAGE")
    if caps is not None:
        col.label(text=f"{caps.family}: {caps.frame_rule()} frames up to {caps.max_frames}, "
                       f"size x{caps.size_multiple}", icon="INFO")

    # modes: the ones the model cannot do are greyed out, with the reason
    box = layout.box()
    box.label(text="Mode")
    grid = box.column(align=True)
    for ident, _name, _desc, _icon, _n in MODE_ITEMS:
        row = grid.row(align=True)
        row.enabled = caps is None or caps.supports(ident)
        row.prop_enum(props, "mode", ident)
    if caps is not None and not caps.supports(props.mode):
        _wrap(box, f"{caps.family} cannot {props.mode}; it can: {', '.join(caps.modes)}", "ERROR")
    elif caps is not None:
        unsupported = [m for m, *_ in MODE_ITEMS if not caps.supports(m)]
        if unsupported:
            _wrap(box, f"Greyed out: {caps.family} cannot {', '.join(unsupported)}", "INFO")

    _draw_inputs(layout, props, fitted)

    col = layout.column()
    col.prop(props, "prompt", text="", icon="TEXT")
    col.prop(props, "negative_prompt", text="", icon="REMOVE")
    if props.mode in shots.CHAIN_MODES:
        schedule.draw(layout, props)

    box = layout.box()
    row = box.row(align=True)
    if props.mode == "extend":
        row.prop(props, "extend_frames")
    elif props.mode in ("generate", "animate"):
        row.prop(props, "use_scene_frames", toggle=True,
                 text=f"Scene Range ({scene.frame_end - scene.frame_start + 1} frames)")
        sub = row.row(align=True)
        sub.enabled = not props.use_scene_frames
        sub.prop(props, "frames")
    if caps is not None and not fitted.problem:
        passes = "one pass" if fitted.passes == 1 else f"{fitted.passes} passes"
        box.label(text=f"Frames: {fitted.frames} in {passes}")
    row = box.row(align=True)
    row.prop(props, "use_scene_fps", text="", icon="SCENE_DATA")
    sub = row.row(align=True)
    sub.enabled = not props.use_scene_fps
    sub.prop(props, "fps")
    row = box.row(align=True)
    row.prop(props, "use_scene_size", text="", icon="SCENE_DATA")
    sub = row.row(align=True)
    sub.enabled = not props.use_scene_size
    sub.prop(props, "width")
    sub.prop(props, "height")
    box.label(text=f"Size: {fitted.width} x {fitted.height}")
    for note in fitted.notes:
        _wrap(box, note, "INFO")

    row = layout.row(align=True)
    row.prop(props, "seed")
    row.operator("sora.randomize_seed", text="", icon="FILE_REFRESH")
    row = layout.row(align=True)
    row.prop(props, "steps")
    row.prop(props, "guidance")
    if caps is not None and caps.experts >= 2:
        layout.prop(props, "guidance_2")
    if caps is not None and caps.upsampler:
        layout.row().prop(props, "upsample", expand=True)
    if caps is not None and caps.family != "tinyworld":     # the bundled model takes no files
        model_files.draw(layout, props, caps)
    row = layout.row(align=True)
    row.prop(props, "link_composite", toggle=True)
    row.prop(props, "add_strip", toggle=True)

    task = tasks.get_task(scene_key(scene))
    running = task is not None and not task.finished
    state = live.job(scene)
    row = layout.row()
    row.scale_y = 1.5
    sub = row.row()
    sub.enabled = not running and not fitted.problem
    sub.operator("sora.generate", icon="RENDER_ANIMATION")
    if running:
        row.operator("sora.cancel", icon="CANCEL")
    elif state.resume is not None:
        row.operator("sora.resume", icon="PLAY")
    if fitted.problem and not running:
        _wrap(layout, fitted.problem, "ERROR")

    layout.operator("sora.import_footage", icon="FILE_MOVIE")
    importing = state.running and not running
    if running or importing:
        layout.progress(factor=state.overall, type="BAR", text=state.message or "starting")
    elif state.state == "DONE":
        _wrap(layout, state.message, "CHECKMARK")
    if state.kept and not running:
        kept = state.kept
        _wrap(layout, f"Kept {kept['frames']} frames from {kept['first_frame']} ({kept['passes']} of "
                      f"{kept['passes_total']} passes), in the compositor. Resume continues after them.", "INFO")
    extra = [n for n in state.notices if n not in fitted.notes]     # each notice once
    if extra:
        _wrap(layout, "\n".join(extra), "INFO")
    if state.error:
        _wrap(layout, state.error, "ERROR")
        if state.hint:
            _wrap(layout, "Fix: " + state.hint, "QUESTION")


def _draw_inputs(layout, props, fitted) -> None:
    mode = props.mode
    if mode == "generate":
        return
    box = layout.box()
    if mode == "animate":
        box.prop(props, "still_source")
        if props.still_source == "IMAGE":
            box.template_ID(props, "still_image", open="image.open")
        elif props.still_source == "FILE":
            box.prop(props, "still_path")
        elif bpy.data.images.get("Render Result") is None:
            box.label(text="Render a frame (F12) first", icon="INFO")
        return
    if mode == "control":
        box.prop(props, "control_kind")
        if props.control_kind == "layout":
            box.prop(props, "layout_style")
        box.prop(props, "control_source")
        if props.control_source == "PATH":
            box.prop(props, "control_path")
        else:
            box.operator("sora.render_control", icon="RENDER_ANIMATION")
        box.prop(props, "control_strength", slider=True)
        return
    box.prop(props, "seq_source")
    if props.seq_source == "PATH":
        box.prop(props, "seq_path")
    elif fitted.source_error:
        box.label(text=fitted.source_error, icon="ERROR")
    else:
        box.label(text=fitted.source, icon="FILE_IMAGE")
    row = box.row(align=True)
    row.prop(props, "use_scene_range", text="", icon="SCENE_DATA")
    sub = row.row(align=True)
    sub.enabled = not props.use_scene_range
    sub.prop(props, "seq_start")
    sub.prop(props, "seq_end")
    if mode == "extend":
        box.row().prop(props, "direction", expand=True)
        box.prop(props, "context_frames")
    elif mode == "interpolate":
        row = box.row(align=True)
        row.prop(props, "key_a")
        row.prop(props, "key_b")
    elif mode == "restyle":
        box.prop(props, "strength", slider=True)


class SoraSidebar:
    """Where every Sora panel lives: the sidebar's Sora tab."""

    bl_region_type = "UI"
    bl_category = "Sora"


class SoraPanelMixin(SoraSidebar):
    bl_label = "Sora Shot"

    def draw(self, context):
        draw_sora(self.layout, context)


class SORA_PT_compositor(SoraPanelMixin, bpy.types.Panel):
    bl_idname = "SORA_PT_compositor"
    bl_space_type = "NODE_EDITOR"

    @classmethod
    def poll(cls, context):
        space = context.space_data
        return space is not None and getattr(space, "tree_type", "") == "CompositorNodeTree"


class SORA_PT_sequencer(SoraPanelMixin, bpy.types.Panel):
    bl_idname = "SORA_PT_sequencer"
    bl_space_type = "SEQUENCE_EDITOR"


class SORA_PT_view3d(SoraPanelMixin, bpy.types.Panel):
    bl_idname = "SORA_PT_view3d"
    bl_space_type = "VIEW_3D"


PANELS = (SORA_PT_compositor, SORA_PT_sequencer, SORA_PT_view3d)


def last_timings(scene) -> dict:
    """The last shot's ``timings`` from its manifest: read once per shot (and disk change)."""
    folder = scene.sora.last_dir

    def read():
        try:
            return read_manifest(Path(folder) / MANIFEST_NAME).get("timings") or {}
        except (OSError, ValueError):
            return {}
    return live.memo("timings", scene.session_uid, (folder, live.generation), read) if folder else {}


def _split(t: dict) -> str:
    return " · ".join(f"{k[:-2]} {t.get(k, 0):.2f}" for k in PHASES) + f" · total {t.get('total_s', 0):.2f} s"


def draw_timings(layout, context) -> None:
    """Where the last shot's time went: per phase, in total and per pass."""
    timings = last_timings(context.scene)
    if not timings:
        layout.label(text="No shot yet", icon="INFO")
        return
    layout.label(text=f"Shot: {_split(timings)}", icon="TIME")
    for p in timings.get("passes", []):
        layout.label(text=f"Pass {p.get('pass', '?')}: {_split(p)}")


class SoraTimingsMixin(SoraSidebar):
    bl_label = "Timings"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context):
        draw_timings(self.layout, context)


def sub_panel(parent, mixin, suffix: str):
    """A sub-panel class drawn by ``mixin`` under ``parent`` (``<parent id>_<suffix>``)."""
    return type(f"SORA_PT_{parent.bl_idname[8:]}_{suffix}", (mixin, bpy.types.Panel),
                {"bl_idname": f"{parent.bl_idname}_{suffix}", "bl_space_type": parent.bl_space_type,
                 "bl_parent_id": parent.bl_idname})


TIMING_PANELS = tuple(sub_panel(p, SoraTimingsMixin, "timings") for p in PANELS)
classes = PANELS + TIMING_PANELS
