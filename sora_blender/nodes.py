"""The "Sora Shots" node editor: a shot is a graph of Prompt, Generate, Animate, Extend,
Interpolate, Restyle, Render Input and Compositor Output nodes.

Shot sockets carry a frame sequence (folder, ``name.####.exr``, first and last number). Running a
node runs the nodes it depends on first, in dependency order; each job node's ShotSpec is built
from its inputs' results when its turn comes, and a node whose spec hash equals the hash of its
last run (with its frames still on disk) is not run again. Each run writes a new version folder.
"""

from __future__ import annotations

import re
from pathlib import Path

import bpy
from bpy.props import CollectionProperty, EnumProperty, FloatProperty, IntProperty, StringProperty

from sora_core.errors import SoraError, invalid
from sora_core.spec import Inputs, Keyframe, Output, ShotSpec

from . import compositor, runtime, schedule, shots

TREE_ID = "SoraShotTree"
JOB_NODES = ("SoraGenerateNode", "SoraAnimateNode", "SoraExtendNode", "SoraInterpolateNode",
             "SoraRestyleNode")


# ---- tree and sockets ------------------------------------------------------------------------
class SoraShotTree(bpy.types.NodeTree):
    """Shots as a graph: chain Generate into Extend to build a long sequence"""

    bl_idname = TREE_ID
    bl_label = "Sora Shots"
    bl_icon = "SEQUENCE"


class SoraShotSocket(bpy.types.NodeSocket):
    """A frame sequence (a generated shot or rendered frames)"""

    bl_idname = "SoraShotSocket"
    bl_label = "Shot"

    def draw(self, context, layout, node, text):
        layout.label(text=text)

    @classmethod
    def draw_color_simple(cls):
        return (0.95, 0.6, 0.2, 1.0)


class SoraPromptSocket(bpy.types.NodeSocket):
    """A prompt (text)"""

    bl_idname = "SoraPromptSocket"
    bl_label = "Prompt"

    def draw(self, context, layout, node, text):
        layout.label(text=text)

    @classmethod
    def draw_color_simple(cls):
        return (0.6, 0.4, 0.9, 1.0)


# ---- nodes -------------------------------------------------------------------------------------
class SoraNode:
    bl_width_default = 220

    @classmethod
    def poll(cls, ntree):
        return ntree.bl_idname == TREE_ID


def _status_ui(node, layout) -> None:
    if node.status:
        icon = {"done": "CHECKMARK", "cached": "CHECKMARK", "error": "ERROR", "running": "SORTTIME",
                "cancelled": "CANCEL", "queued": "TIME"}.get(node.status.split()[0], "INFO")
        layout.label(text=node.status, icon=icon)
    if node.status.startswith("running"):
        if hasattr(layout, "progress"):
            layout.progress(factor=node.progress, type="BAR", text=node.message)
        else:
            layout.label(text=node.message)
    if node.error:
        layout.label(text=node.error[:80], icon="ERROR")


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
    shot_name: StringProperty(name="Shot", default="", description="Folder and frame name; empty: tree_node")
    status: StringProperty(name="Status", default="")
    message: StringProperty(name="Message", default="")
    error: StringProperty(name="Error", default="")
    progress: FloatProperty(name="Progress", default=0.0, min=0.0, max=1.0)
    spec_hash: StringProperty(name="Spec Hash", default="")
    result_dir: StringProperty(name="Result", default="", subtype="DIR_PATH")
    result_pattern: StringProperty(default="")
    result_first: IntProperty(default=0)
    result_count: IntProperty(default=0)
    mode = "generate"

    def init(self, context):
        self.inputs.new("SoraPromptSocket", "Prompt")
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
    status: StringProperty(default="")
    error: StringProperty(default="")
    message: StringProperty(default="")

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


class SoraCompositorOutputNode(SoraNode, bpy.types.Node):
    """Load the linked shot into the scene's compositor (an image sequence node)"""

    bl_idname = "SoraCompositorOutputNode"
    bl_label = "Compositor Output"
    bl_icon = "NODE_COMPOSITING"

    shot_name: StringProperty(name="Node Name", default="", description="Compositor node name; empty: this node's name")
    link_composite: bpy.props.BoolProperty(name="Link to Composite", default=False)
    status: StringProperty(default="")
    message: StringProperty(default="")
    error: StringProperty(default="")
    progress: FloatProperty(default=0.0)

    def init(self, context):
        self.inputs.new("SoraShotSocket", "Shot")

    def draw_buttons(self, context, layout):
        layout.prop(self, "shot_name")
        layout.prop(self, "link_composite")
        _run_button(self, layout)
        _status_ui(self, layout)


# ---- results and specs ---------------------------------------------------------------------------
def _linked(node, socket_name: str):
    socket = node.inputs.get(socket_name)
    if socket is None or not socket.is_linked:
        return None
    return socket.links[0].from_node


def _prompt(node) -> tuple[str, str, list]:
    """Prompt, negative prompt and prompt schedule: from a linked Prompt node, else the node's own."""
    src = _linked(node, "Prompt")
    if src is not None and src.bl_idname == "SoraPromptNode":
        return src.prompt, src.negative_prompt, schedule.to_spec(src)
    return node.prompt, "", []


def node_result(node, scene) -> dict | None:
    """What a node's Shot output holds now: {pattern, first, last} (or {image}); None if nothing."""
    if node.bl_idname == "SoraRenderInputNode":
        if node.source == "IMAGE":
            return {"image": bpy.path.abspath(node.path)} if node.path else None
        pattern = shots.render_pattern(scene) if node.source == "RENDER_OUTPUT" else bpy.path.abspath(node.path)
        if node.first or node.last:
            first, last = node.first, node.last
        elif node.source == "RENDER_OUTPUT":
            first, last = scene.frame_start, scene.frame_end
        else:
            found = shots.existing_frames(pattern)
            if not found:
                return None
            first, last = found[0], found[-1]
        return {"pattern": pattern, "first": first, "last": last}
    if node.bl_idname in JOB_NODES and node.result_dir and node.result_count:
        return {"pattern": str(Path(node.result_dir) / node.result_pattern), "first": node.result_first,
                "last": node.result_first + node.result_count - 1, "dir": node.result_dir}
    return None


def _upstream(node, socket: str, scene) -> dict:
    src = _linked(node, socket)
    if src is None:
        raise invalid(f"{node.name}.{socket}", "nothing is linked", hint=f"link a shot into {socket}")
    result = node_result(src, scene)
    if result is None:
        raise SoraError("not_found", f"{src.name} has no frames yet", field=f"{node.name}.{socket}",
                        hint=f"run {src.name} first")
    return result


def shot_name(node) -> str:
    name = node.shot_name or f"{node.id_data.name}_{node.name}"
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-") or "shot"
    return shots.check_shot_name(name[:100])


def node_spec(node, scene) -> ShotSpec:
    """The node's ShotSpec from its inputs' current results (output dir not yet reserved)."""
    prefs = runtime.get_prefs()
    ref = node.model or scene.sora.model
    _info, caps, problem = runtime.model_info(ref)
    if caps is None:
        raise SoraError("not_found", f"{node.name}: {problem}", hint="set the node's model")
    mode = node.mode
    if not caps.supports(mode):
        raise invalid(f"{node.name}.mode", f"{caps.family} cannot {mode}; it can: {', '.join(caps.modes)}")
    prompt, negative, changes = _prompt(node)
    inputs = Inputs()
    first_frame = scene.frame_start
    frames = node.frames or caps.default_frames
    context = 0
    available = None
    if mode == "animate":
        up = _upstream(node, "Image", scene)
        inputs.image = up.get("image") or shots.frame_file(up["pattern"], up["first"])
    elif mode in ("extend", "restyle"):
        up = _upstream(node, "Shot", scene)
        if "pattern" not in up:
            raise invalid(f"{node.name}.Shot", f"{mode} needs a frame sequence, not one image")
        inputs.frames = up["pattern"]
        inputs.frame_range = [up["first"], up["last"]]
        if mode == "extend":
            inputs.direction = node.direction
            inputs.context = node.context_frames or None
            context = node.context_frames
            available = up["last"] - up["first"] + 1
            frames = node.frames or max(1, caps.max_frames - (context or caps.default_context))
            first_frame = None
        else:
            inputs.strength = node.strength
            frames = node.frames or (up["last"] - up["first"] + 1)
            first_frame = up["first"]
    elif mode == "interpolate":
        a, b = _upstream(node, "From", scene), _upstream(node, "To", scene)
        path_a = a.get("image") or shots.frame_file(a["pattern"], a["last"])
        path_b = b.get("image") or shots.frame_file(b["pattern"], b["first"])
        if "pattern" in a and "pattern" in b and b["first"] > a["last"]:
            frames = node.frames or (b["first"] - a["last"] + 1)
            first_frame = a["last"]
        inputs.keyframes = [Keyframe(path_a, 0), Keyframe(path_b, 1)]
    width, height = shots.scene_size(scene)
    fps = scene.render.fps / scene.render.fps_base
    frames, width, height, _notes = shots.fit_values(caps, mode, frames, width, height, context, available, fps)
    if mode == "interpolate":
        inputs.keyframes[1].index = frames - 1
    spec = ShotSpec(mode=mode, prompt=prompt, negative_prompt=negative,
                    model=runtime.model_ref_for_spec(ref), seed=node.seed, steps=node.steps or None,
                    width=width, height=height, frames=frames, fps=fps,
                    prompt_schedule=changes if mode in shots.CHAIN_MODES else [], inputs=inputs,
                    output=Output(dir=f"{shot_name(node)}/v000", name=shot_name(node), first_frame=first_frame),
                    color=shots.scene_color(scene),
                    runtime=shots.Runtime(device=prefs.device, dtype=prefs.dtype, memory=prefs.memory))
    spec.validate()
    return spec


def is_cached(node, spec_hash: str) -> bool:
    return (node.spec_hash == spec_hash and bool(node.result_dir)
            and (Path(node.result_dir) / "manifest.json").is_file())


def node_state(node, scene) -> str:
    """'cached' (up to date), 'stale' (would run) or a reason it cannot run now."""
    if node.bl_idname not in JOB_NODES:
        return ""
    try:
        spec = node_spec(node, scene)
    except SoraError as exc:
        return f"waiting: {exc.message}"
    return "cached" if is_cached(node, spec.spec_hash()) else "stale"


# ---- running -------------------------------------------------------------------------------------
def dependency_order(tree, targets=None) -> list:
    """Nodes to visit, every node after the nodes it depends on (targets: names; None: all)."""
    order, seen, visiting = [], set(), set()

    def visit(node):
        if node.name in seen:
            return
        if node.name in visiting:
            raise invalid(node.name, "the node graph has a cycle")
        visiting.add(node.name)
        for socket in node.inputs:
            for link in socket.links:
                if link.is_valid and not link.is_muted:
                    visit(link.from_node)
        visiting.discard(node.name)
        seen.add(node.name)
        order.append(node)

    names = targets if targets is not None else sorted(n.name for n in tree.nodes)
    for name in names:
        node = tree.nodes.get(name)
        if node is None:
            raise SoraError("not_found", f"no node {name!r} in {tree.name}",
                            hint="nodes: " + ", ".join(n.name for n in tree.nodes))
        visit(node)
    return [n for n in order if n.bl_idname in JOB_NODES or n.bl_idname == "SoraCompositorOutputNode"]


def tree_key(tree) -> str:
    return f"tree:{tree.name}"


def tree_task(tree, scene, targets=None, echo: bool = False) -> runtime.Task:
    """A task that runs ``targets`` (and the stale nodes they depend on) in order."""
    tree_name, scene_name = tree.name, scene.name

    def get(name):
        t = bpy.data.node_groups.get(tree_name)
        return t.nodes.get(name) if t else None

    def sc():
        return bpy.data.scenes.get(scene_name)

    steps = []
    for node in dependency_order(tree, targets):
        node.status, node.error = "queued", ""
        steps.append(_output_step(node.name, get, sc) if node.bl_idname == "SoraCompositorOutputNode"
                     else _job_step(node.name, get, sc))
    return runtime.Task(tree_key(tree), steps, echo=echo)


def _job_step(name, get, sc) -> runtime.Step:
    state = {}

    def prepare():
        node = get(name)
        spec = node_spec(node, sc())
        digest = spec.spec_hash()
        if is_cached(node, digest):
            return None
        root = shots.output_root()
        spec.output.dir = shots.next_version(root, spec.output.name)
        state.update(digest=digest, dir=root / spec.output.dir)
        node.status, node.progress, node.message = "running", 0.0, "starting"
        return spec, str(root)

    def on_event(event):
        node = get(name)
        if node is not None and event.get("event") == "progress":
            total = event.get("total") or 0
            node.progress = event.get("step", 0) / total if total else 0.0
            node.message = f"{event.get('phase')} {event.get('step')}/{total}"

    def finish(done):
        node = get(name)
        node.result_dir, node.result_pattern = done["dir"], done["pattern"]
        node.result_first, node.result_count = done["first_frame"], done["frames"]
        node.spec_hash = state["digest"]
        node.status, node.progress, node.message = f"done {Path(done['dir']).name}", 1.0, ""

    def on_fail(err):
        if state.get("dir"):
            shots.remove_if_empty(state["dir"])
        node = get(name)
        if node is not None:
            node.status = "cancelled" if err.code == "cancelled" else "error"
            node.error = str(err)[:500]

    def on_skip():
        node = get(name)
        node.status = f"cached {Path(node.result_dir).name}"

    return runtime.Step(name, prepare, finish, on_event, on_fail, on_skip)


def _output_step(name, get, sc) -> runtime.Step:
    def prepare():
        node = get(name)
        scene = sc()
        up = _upstream(node, "Shot", scene)
        if "dir" not in up:
            raise invalid(f"{name}.Shot", "link a generated shot (a Generate/Extend/... node)")
        done = {"dir": up["dir"], "first_frame": up["first"], "frames": up["last"] - up["first"] + 1,
                "pattern": Path(up["pattern"]).name}
        compositor.import_shot(scene, done, node.shot_name or node.name, node.link_composite)
        node.status = f"imported {Path(up['dir']).name}"
        return None

    step = runtime.Step(name, prepare, lambda done: None)
    step.local = True
    return step


def run_nodes(tree, scene, targets=None, blocking: bool | None = None) -> runtime.Task:
    blocking = bpy.app.background if blocking is None else blocking
    task = tree_task(tree, scene, targets, echo=blocking)
    return runtime.run_blocking(task) if blocking else runtime.start(task)


class SORA_OT_run_node(bpy.types.Operator):
    """Run this node and the stale nodes it depends on, in order (unchanged nodes are cached)"""

    bl_idname = "sora.run_node"
    bl_label = "Run"

    tree: StringProperty()
    node: StringProperty(description="Node name; empty: every node of the tree")
    run_in: EnumProperty(name="Run", items=[("AUTO", "Auto", ""), ("BLOCKING", "Blocking", ""),
                                            ("TIMER", "Timer", "")], default="AUTO", options={"SKIP_SAVE"})

    def execute(self, context):
        tree = bpy.data.node_groups.get(self.tree) if self.tree else getattr(context.space_data, "edit_tree", None)
        if tree is None or tree.bl_idname != TREE_ID:
            self.report({"ERROR"}, f"no Sora Shots tree {self.tree!r}")
            return {"CANCELLED"}
        blocking = {"AUTO": None, "BLOCKING": True, "TIMER": False}[self.run_in]
        try:
            task = run_nodes(tree, context.scene, [self.node] if self.node else None, blocking)
        except SoraError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        if task.finished and task.state != "done":
            self.report({"ERROR"}, str(task.error))
            return {"CANCELLED"}
        return {"FINISHED"}


class SORA_OT_cancel_tree(bpy.types.Operator):
    """Stop the running node graph"""

    bl_idname = "sora.cancel_tree"
    bl_label = "Cancel Nodes"

    tree: StringProperty()

    def execute(self, context):
        tree = bpy.data.node_groups.get(self.tree) if self.tree else getattr(context.space_data, "edit_tree", None)
        task = runtime.get_task(tree_key(tree)) if tree else None
        if task is None:
            return {"CANCELLED"}
        task.cancel()
        return {"FINISHED"}


class SORA_PT_shot_nodes(bpy.types.Panel):
    bl_idname = "SORA_PT_shot_nodes"
    bl_space_type = "NODE_EDITOR"
    bl_region_type = "UI"
    bl_category = "Sora"
    bl_label = "Sora Shots"

    @classmethod
    def poll(cls, context):
        space = context.space_data
        return space is not None and getattr(space, "tree_type", "") == TREE_ID

    def draw(self, context):
        layout = self.layout
        tree = context.space_data.edit_tree
        if tree is None:
            layout.label(text="Create a Sora Shots tree", icon="INFO")
            return
        row = layout.row()
        op = row.operator("sora.run_node", text="Run All", icon="PLAY")
        op.tree, op.node = tree.name, ""
        task = runtime.get_task(tree_key(tree))
        if task is not None and not task.finished:
            op = row.operator("sora.cancel_tree", icon="CANCEL")
            op.tree = tree.name
        node = tree.nodes.active
        if node is not None and node.bl_idname in JOB_NODES:
            layout.label(text=f"{node.name}: {node_state(node, context.scene)}")


# ---- add menu ------------------------------------------------------------------------------------
NODE_CLASSES = (SoraPromptNode, SoraRenderInputNode, SoraGenerateNode, SoraAnimateNode, SoraExtendNode,
                SoraInterpolateNode, SoraRestyleNode, SoraCompositorOutputNode)


class SORA_MT_add_nodes(bpy.types.Menu):
    bl_idname = "SORA_MT_add_nodes"
    bl_label = "Sora"

    def draw(self, context):
        for cls in NODE_CLASSES:
            op = self.layout.operator("node.add_node", text=cls.bl_label)
            op.type = cls.bl_idname
            op.use_transform = True


def _add_menu(self, context):
    if getattr(context.space_data, "tree_type", "") == TREE_ID:
        self.layout.menu(SORA_MT_add_nodes.bl_idname)


classes = (SoraShotTree, SoraShotSocket, SoraPromptSocket, *NODE_CLASSES, SORA_OT_run_node,
           SORA_OT_cancel_tree, SORA_PT_shot_nodes, SORA_MT_add_nodes)


def register_extra() -> None:
    bpy.types.NODE_MT_add.append(_add_menu)


def unregister_extra() -> None:
    bpy.types.NODE_MT_add.remove(_add_menu)
