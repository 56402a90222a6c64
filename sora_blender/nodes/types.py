"""The node types of the "Sora Shots" editor: Prompt, Generate, Animate, Extend, Interpolate,
Restyle, Follow Control, HDR, Render Input, Render Control and Compositor Output, the tree and
its sockets (Model Files and Lora nodes: ``model_nodes``).

Shot sockets carry a frame sequence (folder, ``name.####.exr``, first and last number). A node
keeps its last result (folder, frames, spec hash) in the .blend; its live status (queued,
running, progress) is in :mod:`..live` and never saved.
"""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import BoolProperty, CollectionProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from .. import live, schedule
from ..properties import CONTROL_KIND_ITEMS, LAYOUT_STYLE_ITEMS, UPSAMPLE_ITEMS
from .graph import status_icon

TREE_ID = "SoraShotTree"
JOB_NODES = ("SoraGenerateNode", "SoraAnimateNode", "SoraExtendNode", "SoraInterpolateNode",
             "SoraRestyleNode", "SoraControlNode", "SoraHDRNode")
CONTROL_NODE = "SoraRenderControlNode"


# ---- tree and sockets ------------------------------------------------------------------------
class SoraShotTree(bpy.types.NodeTree):
    """Shots as a graph: chain Generate into Extend to build a long sequence"""

    bl_idname = TREE_ID
    bl_label = "Sora Shots"
    bl_icon = "SEQUENCE"


class SocketLook:
    """A socket drawn as its name, in ``color``."""

    color = (0.5, 0.5, 0.5, 1.0)

    def draw(self, context, layout, node, text):
        layout.label(text=text)

    @classmethod
    def draw_color_simple(cls):
        return cls.color


class SoraShotSocket(SocketLook, bpy.types.NodeSocket):
    """A frame sequence (a generated shot or rendered frames)"""

    bl_idname = "SoraShotSocket"
    bl_label = "Shot"
    color = (0.95, 0.6, 0.2, 1.0)


class SoraPromptSocket(SocketLook, bpy.types.NodeSocket):
    """A prompt (text)"""

    bl_idname = "SoraPromptSocket"
    bl_label = "Prompt"
    color = (0.6, 0.4, 0.9, 1.0)


# ---- nodes -------------------------------------------------------------------------------------
class SoraNode:
    bl_width_default = 220

    @classmethod
    def poll(cls, ntree):
        return ntree.bl_idname == TREE_ID


def _status_ui(node, layout) -> None:
    """The node's live status (else its last saved result) and a whole-shot progress bar."""
    state = live.node(node)
    status = state.status or (f"result {Path(node.result_dir).name}" if getattr(node, "result_dir", "") else "")
    if status:
        layout.label(text=status, icon=status_icon(status))
    if state.status.startswith("running"):
        layout.progress(factor=state.overall, type="BAR", text=state.message)
    if state.error:
        layout.label(text=state.error[:80], icon="ERROR")


def _run_button(node, layout) -> None:
    op = layout.operator("sora.run_node", icon="PLAY")
    op.tree = node.id_data.name
    op.node = node.name


class JobNode(SoraNode):
    """Common properties of the nodes that run a worker job."""

    model: StringProperty(name="Model", default="", description="Empty: the scene panel's model")
    prompt: StringProperty(name="Prompt", description="Used when no Prompt node is linked")
    seed: IntProperty(name="Seed", default=0, min=0)
    steps: IntProperty(name="Steps", default=0, min=0, description="0: the model's default")
    frames: IntProperty(name="Frames", default=0, min=0, description="0: the model's default")
    guidance_2: FloatProperty(name="Guidance 2", default=-1.0, min=-1.0, max=50.0,
                              description="The low-noise expert's guidance (Wan 2.2 A14B); -1: the model's")
    upsample: EnumProperty(name="Two Stages", items=UPSAMPLE_ITEMS, default="auto",
                           description="LTX-2 with a latent upsampler: half size, upsampled x2, refined")
    shot_name: StringProperty(name="Shot", default="", description="Folder and frame name; empty: tree_node")
    spec_hash: StringProperty(name="Spec Hash", default="")
    result_dir: StringProperty(name="Result", default="", subtype="DIR_PATH")
    result_pattern: StringProperty(default="")
    result_first: IntProperty(default=0)
    result_count: IntProperty(default=0)
    mode = "generate"

    def init(self, context):
        self.inputs.new("SoraPromptSocket", "Prompt")
        self.inputs.new("SoraModelSocket", "Model")     # model_nodes: Model Files, Lora
        self.outputs.new("SoraShotSocket", "Shot")

    def draw_common(self, layout):
        layout.prop(self, "prompt", text="")
        row = layout.row(align=True)
        row.prop(self, "seed")
        row.prop(self, "steps")

    def draw_buttons(self, context, layout):
        self.draw_common(layout)
        self.draw_mode(layout)
        _run_button(self, layout)
        _status_ui(self, layout)

    def draw_buttons_ext(self, context, layout):
        layout.prop(self, "model")
        layout.prop(self, "shot_name")
        layout.prop(self, "frames")
        layout.prop(self, "guidance_2")
        layout.prop(self, "upsample")
        self.draw_buttons(context, layout)
        if self.spec_hash:
            layout.label(text=f"spec {self.spec_hash}")
        if self.result_dir:
            layout.label(text=self.result_dir)

    def draw_mode(self, layout):
        pass


class SoraPromptNode(SoraNode, bpy.types.Node):
    """A prompt shared by the nodes it is linked to"""

    bl_idname = "SoraPromptNode"
    bl_label = "Prompt"
    bl_icon = "TEXT"

    prompt: StringProperty(name="Prompt")
    negative_prompt: StringProperty(name="Negative")
    prompt_schedule: CollectionProperty(type=schedule.SoraPromptChange, name="Prompt Schedule",
                                        description="Later prompts of a long shot, each from a time on")
    schedule_index: IntProperty(default=0)

    def init(self, context):
        self.outputs.new("SoraPromptSocket", "Prompt")

    def draw_buttons(self, context, layout):
        layout.prop(self, "prompt", text="")
        layout.prop(self, "negative_prompt", text="", icon="REMOVE")
        if len(self.prompt_schedule):
            layout.label(text=f"then {len(self.prompt_schedule)} later prompt(s)", icon="TIME")

    def draw_buttons_ext(self, context, layout):
        self.draw_buttons(context, layout)
        schedule.draw(layout, self, self.id_data.name, self.name)


class SoraRenderInputNode(SoraNode, bpy.types.Node):
    """Rendered frames (the scene's render output or a sequence path) or a single image"""

    bl_idname = "SoraRenderInputNode"
    bl_label = "Render Input"
    bl_icon = "RENDER_RESULT"

    source: EnumProperty(name="Source", items=[
        ("RENDER_OUTPUT", "Render Output", "The scene's render output path and frame range"),
        ("SEQUENCE", "Sequence", "A frame sequence: name.####.exr"),
        ("IMAGE", "Image", "One image file"),
    ], default="RENDER_OUTPUT")
    path: StringProperty(name="Path", subtype="FILE_PATH")
    first: IntProperty(name="First", default=0, min=0, description="0 with Last 0: the scene's range")
    last: IntProperty(name="Last", default=0, min=0)

    def init(self, context):
        self.outputs.new("SoraShotSocket", "Shot")

    def draw_buttons(self, context, layout):
        layout.prop(self, "source", text="")
        if self.source != "RENDER_OUTPUT":
            layout.prop(self, "path", text="")
        if self.source != "IMAGE":
            row = layout.row(align=True)
            row.prop(self, "first")
            row.prop(self, "last")


class SoraGenerateNode(JobNode, bpy.types.Node):
    """Generate a shot from the prompt"""

    bl_idname = "SoraGenerateNode"
    bl_label = "Generate"
    bl_icon = "PLAY"
    mode = "generate"

    def draw_mode(self, layout):
        layout.prop(self, "frames")


class SoraAnimateNode(JobNode, bpy.types.Node):
    """Animate the first frame of the linked shot (or a Render Input image)"""

    bl_idname = "SoraAnimateNode"
    bl_label = "Animate"
    bl_icon = "IMAGE_DATA"
    mode = "animate"

    def init(self, context):
        self.inputs.new("SoraShotSocket", "Image")
        JobNode.init(self, context)


class SoraExtendNode(JobNode, bpy.types.Node):
    """Extend the linked shot forwards or backwards; the new frames continue its numbering"""

    bl_idname = "SoraExtendNode"
    bl_label = "Extend"
    bl_icon = "FRAME_NEXT"
    mode = "extend"

    direction: EnumProperty(name="Direction", items=[("forward", "Forward", ""), ("backward", "Backward", "")],
                            default="forward")
    context_frames: IntProperty(name="Context", default=0, min=0, description="0: the model's default")

    def init(self, context):
        self.inputs.new("SoraShotSocket", "Shot")
        JobNode.init(self, context)

    def draw_mode(self, layout):
        layout.row().prop(self, "direction", expand=True)
        row = layout.row(align=True)
        row.prop(self, "frames", text="New")
        row.prop(self, "context_frames")


class SoraInterpolateNode(JobNode, bpy.types.Node):
    """Fill the frames between the last frame of From and the first frame of To"""

    bl_idname = "SoraInterpolateNode"
    bl_label = "Interpolate"
    bl_icon = "IPO_EASE_IN_OUT"
    mode = "interpolate"

    def init(self, context):
        self.inputs.new("SoraShotSocket", "From")
        self.inputs.new("SoraShotSocket", "To")
        JobNode.init(self, context)


class SoraRestyleNode(JobNode, bpy.types.Node):
    """Re-generate the linked shot with the prompt"""

    bl_idname = "SoraRestyleNode"
    bl_label = "Restyle"
    bl_icon = "BRUSH_DATA"
    mode = "restyle"

    strength: FloatProperty(name="Strength", default=0.6, min=0.01, max=1.0)

    def init(self, context):
        self.inputs.new("SoraShotSocket", "Shot")
        JobNode.init(self, context)

    def draw_mode(self, layout):
        layout.prop(self, "strength", slider=True)


class SoraControlNode(JobNode, bpy.types.Node):
    """Make a shot that follows the linked control pass (a Render Control node or a sequence)"""

    bl_idname = "SoraControlNode"
    bl_label = "Follow Control"
    bl_icon = "OUTLINER_OB_CAMERA"
    mode = "control"

    control_kind: EnumProperty(name="Control", items=CONTROL_KIND_ITEMS, default="depth",
                               description="What the linked sequence shows (a Render Control node says it itself)")
    control_strength: FloatProperty(name="Control Strength", default=1.0, min=0.0, max=2.0)

    def init(self, context):
        self.inputs.new("SoraShotSocket", "Control")
        JobNode.init(self, context)

    def draw_mode(self, layout):
        layout.prop(self, "control_kind")
        layout.prop(self, "control_strength", slider=True)


class SoraHDRNode(JobNode, bpy.types.Node):
    """Turn the linked shot (display-referred: a render or a generated shot) into scene-linear
    HDR with an LTX-2 HDR model; its frames keep values above 1.0"""

    bl_idname = "SoraHDRNode"
    bl_label = "HDR"
    bl_icon = "LIGHT_SUN"
    mode = "hdr"

    def init(self, context):
        self.inputs.new("SoraShotSocket", "Shot")
        JobNode.init(self, context)


class SoraRenderControlNode(SoraNode, bpy.types.Node):
    """Render a control pass of the scene (depth, edges, layout, pose) over its frame range"""

    bl_idname = CONTROL_NODE
    bl_label = "Render Control"
    bl_icon = "RENDER_ANIMATION"

    control_kind: EnumProperty(name="Control", items=CONTROL_KIND_ITEMS, default="depth")
    layout_style: EnumProperty(name="Layout Style", items=LAYOUT_STYLE_ITEMS, default="colors")
    shot_name: StringProperty(name="Shot", default="", description="Writes <shot>/control/; empty: tree_node")
    result_dir: StringProperty(name="Result", default="", subtype="DIR_PATH")
    result_pattern: StringProperty(default="")
    result_first: IntProperty(default=0)
    result_count: IntProperty(default=0)

    def init(self, context):
        self.outputs.new("SoraShotSocket", "Control")

    def draw_buttons(self, context, layout):
        layout.prop(self, "control_kind", text="")
        if self.control_kind == "layout":
            layout.prop(self, "layout_style", text="")
        _run_button(self, layout)
        _status_ui(self, layout)


class SoraCompositorOutputNode(SoraNode, bpy.types.Node):
    """Load the linked shot into the scene's compositor (an image sequence node)"""

    bl_idname = "SoraCompositorOutputNode"
    bl_label = "Compositor Output"
    bl_icon = "NODE_COMPOSITING"

    shot_name: StringProperty(name="Node Name", default="", description="Compositor node name; empty: this node's name")
    link_composite: BoolProperty(name="Link to Composite", default=False)

    def init(self, context):
        self.inputs.new("SoraShotSocket", "Shot")

    def draw_buttons(self, context, layout):
        layout.prop(self, "shot_name")
        layout.prop(self, "link_composite")
        _run_button(self, layout)
        _status_ui(self, layout)


NODE_CLASSES = (SoraPromptNode, SoraRenderInputNode, SoraRenderControlNode, SoraGenerateNode, SoraAnimateNode,
                SoraExtendNode, SoraInterpolateNode, SoraRestyleNode, SoraControlNode, SoraHDRNode,
                SoraCompositorOutputNode)
