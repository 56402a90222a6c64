"""Running a Sora Shots graph: the nodes a target depends on run first, in dependency order;
each job node's spec is built when its turn comes; a node whose spec hash equals its last run's
(with the frames still on disk) is not run again; each run writes a new version folder. The
operators, the node editor's panel and its add menu."""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import EnumProperty, StringProperty

from sora_core.errors import SoraError, invalid

from .. import compositor, live, shots, tasks
from ..settings import output_root
from .graph import dependency_order as order_names
from ..control import render_for_shot
from .specs import control_size, is_cached, node_spec, shot_name, shown_state, upstream
from .model_nodes import classes as model_node_classes
from .types import CONTROL_NODE, JOB_NODES, NODE_CLASSES, TREE_ID

LOCAL_NODES = ("SoraCompositorOutputNode", CONTROL_NODE)      # done in Blender, no worker job


def dependency_order(tree, targets=None) -> list:
    """The job and output nodes to run, each after the nodes it depends on (targets: names;
    None: every node)."""
    graph = {n.name: [l.from_node.name for s in n.inputs for l in s.links if l.is_valid and not l.is_muted]
             for n in tree.nodes}
    try:
        names = order_names(graph, targets)
    except SoraError as err:
        if err.code == "not_found":
            raise SoraError("not_found", f"{err.message} in {tree.name}", hint=err.hint) from None
        raise
    nodes = [tree.nodes[name] for name in names]
    return [n for n in nodes if n.bl_idname in JOB_NODES or n.bl_idname in LOCAL_NODES]


def tree_key(tree) -> str:
    return f"tree:{tree.name}"


def tree_task(tree, scene, targets=None, echo: bool = False) -> tasks.Task:
    """A task that runs ``targets`` (and the stale nodes they depend on) in order."""
    tree_name, scene_name = tree.name, scene.name

    def get(name):
        t = bpy.data.node_groups.get(tree_name)
        return t.nodes.get(name) if t else None

    def sc():
        return bpy.data.scenes.get(scene_name)

    steps, uid = [], tree.session_uid
    for node in dependency_order(tree, targets):
        state = live.node(node)
        state.status, state.error, state.message, state.overall = "queued", "", "", 0.0
        make = {"SoraCompositorOutputNode": _output_step, CONTROL_NODE: _control_step}.get(node.bl_idname, _job_step)
        steps.append(make(node.name, get, sc, uid))
    return tasks.Task(tree_key(tree), steps, echo=echo)


def _job_step(name, get, sc, uid) -> tasks.Step:
    state = {}
    status = live.node_by_key(uid, name)

    def prepare():
        node = get(name)
        spec = node_spec(node, sc())
        digest = spec.spec_hash()
        if is_cached(node, digest):
            return None
        root = output_root()
        spec.output.dir = shots.next_version(root, spec.output.name)
        state.update(digest=digest, dir=root / spec.output.dir)
        status.status, status.overall, status.message = "running", 0.0, "starting"
        return spec, str(root)

    def on_event(event):
        if event.get("event") == "progress":
            status.take_progress(event)

    def finish(done):
        node = get(name)
        node.result_dir, node.result_pattern = done["dir"], done["pattern"]
        node.result_first, node.result_count = done["first_frame"], done["frames"]
        node.spec_hash = state["digest"]
        status.status, status.overall, status.message = f"done {Path(done['dir']).name}", 1.0, ""

    def on_fail(err):
        if state.get("dir"):
            shots.remove_if_empty(state["dir"])
        status.status = "cancelled" if err.code == "cancelled" else "error"
        status.error = str(err)[:500]

    def on_skip():
        status.status = f"cached {Path(get(name).result_dir).name}"

    return tasks.Step(name, prepare, finish, on_event, on_fail, on_skip)


def _output_step(name, get, sc, uid) -> tasks.Step:
    def prepare():
        node = get(name)
        scene = sc()
        up = upstream(node, "Shot", scene)
        if "dir" not in up:
            raise invalid(f"{name}.Shot", "link a generated shot (a Generate/Extend/... node)")
        done = {"dir": up["dir"], "first_frame": up["first"], "frames": up["last"] - up["first"] + 1,
                "pattern": Path(up["pattern"]).name}
        compositor.import_shot(scene, done, node.shot_name or node.name, node.link_composite)
        live.node_by_key(uid, name).status = f"imported {Path(up['dir']).name}"
        return None

    return tasks.Step(name, prepare, lambda done: None, local=True)


def _control_step(name, get, sc, uid) -> tasks.Step:
    """Render Control: the pass rendered in Blender (no worker job), its result kept on the node."""
    def prepare():
        node, scene = get(name), sc()
        folder = shots.control_folder(output_root(), shot_name(node))
        result = render_for_shot(scene, node.control_kind, folder, control_size(node, scene), node.layout_style,
                                 f"{shot_name(node)} control")
        node.result_dir, node.result_pattern = result["dir"], Path(result["pattern"]).name
        node.result_first, node.result_count = result["first"], result["last"] - result["first"] + 1
        live.node_by_key(uid, name).status = f"rendered {node.control_kind}"
        return None

    return tasks.Step(name, prepare, lambda done: None, local=True)


def run_nodes(tree, scene, targets=None, blocking: bool | None = None) -> tasks.Task:
    blocking = bpy.app.background if blocking is None else blocking
    task = tree_task(tree, scene, targets, echo=blocking)
    return tasks.run_blocking(task) if blocking else tasks.start(task)


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
        task = tasks.get_task(tree_key(tree)) if tree else None
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
        task = tasks.get_task(tree_key(tree))
        if task is not None and not task.finished:
            op = row.operator("sora.cancel_tree", icon="CANCEL")
            op.tree = tree.name
        node = tree.nodes.active
        if node is not None and node.bl_idname in JOB_NODES:
            layout.label(text=f"{node.name}: {shown_state(node, context.scene)}")


class SORA_MT_add_nodes(bpy.types.Menu):
    bl_idname = "SORA_MT_add_nodes"
    bl_label = "Sora"

    def draw(self, context):
        for cls in (*NODE_CLASSES, *model_node_classes[1:]):
            op = self.layout.operator("node.add_node", text=cls.bl_label)
            op.type = cls.bl_idname
            op.use_transform = True


def _add_menu(self, context):
    if getattr(context.space_data, "tree_type", "") == TREE_ID:
        self.layout.menu(SORA_MT_add_nodes.bl_idname)


classes = (SORA_OT_run_node, SORA_OT_cancel_tree, SORA_PT_shot_nodes, SORA_MT_add_nodes)


def register_menu() -> None:
    bpy.types.NODE_MT_add.append(_add_menu)


def unregister_menu() -> None:
    bpy.types.NODE_MT_add.remove(_add_menu)
