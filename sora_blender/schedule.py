"""The prompt schedule of a long shot: from a time on, another prompt ("0-4 s: a red ball moving
right; from 4 s: the red ball bouncing"). Held by the scene panel (``scene.sora``) and by Prompt
nodes; it becomes the spec's ``prompt_schedule``, which the worker turns into pass boundaries."""

from __future__ import annotations

import bpy
from bpy.props import FloatProperty, StringProperty
from bpy.types import Operator, PropertyGroup, UIList

from sora_core.spec import PromptChange


class SoraPromptChange(PropertyGroup):
    start: FloatProperty(name="From", default=4.0, min=0.0, max=3600.0, precision=2,
                         description="Seconds into the shot from which this prompt is used")
    prompt: StringProperty(name="Prompt", description="The prompt from this time on")


class SORA_UL_prompt_schedule(UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0):
        row = layout.row(align=True)
        sub = row.row(align=True)
        sub.ui_units_x = 4
        sub.prop(item, "start", text="", emboss=True)
        row.prop(item, "prompt", text="", emboss=True)


def owner_of(tree: str, node: str):
    """The scene panel's properties, or the Prompt node ``node`` of ``tree``."""
    if not tree:
        return bpy.context.scene.sora
    group = bpy.data.node_groups.get(tree)
    return group.nodes.get(node) if group is not None else None


class _ScheduleEdit:
    """What both schedule operators share: the owner they edit (scene panel or a Prompt node)."""

    bl_options = {"REGISTER", "UNDO", "INTERNAL"}

    tree: StringProperty(options={"SKIP_SAVE"})
    node: StringProperty(options={"SKIP_SAVE"})

    def owner(self):
        return owner_of(self.tree, self.node)


class SORA_OT_schedule_add(_ScheduleEdit, Operator):
    """Add a prompt change after the last one (4 s later), starting from the shot's prompt"""

    bl_idname = "sora.schedule_add"
    bl_label = "Add Prompt Change"

    def execute(self, context):
        owner = self.owner()
        if owner is None:
            return {"CANCELLED"}
        last = max((item.start for item in owner.prompt_schedule), default=0.0)
        item = owner.prompt_schedule.add()
        item.start = last + 4.0
        item.prompt = owner.prompt_schedule[-2].prompt if len(owner.prompt_schedule) > 1 else owner.prompt
        owner.schedule_index = len(owner.prompt_schedule) - 1
        return {"FINISHED"}


class SORA_OT_schedule_remove(_ScheduleEdit, Operator):
    """Remove the selected prompt change"""

    bl_idname = "sora.schedule_remove"
    bl_label = "Remove Prompt Change"

    def execute(self, context):
        owner = self.owner()
        if owner is None or not 0 <= owner.schedule_index < len(owner.prompt_schedule):
            return {"CANCELLED"}
        owner.prompt_schedule.remove(owner.schedule_index)
        owner.schedule_index = min(owner.schedule_index, len(owner.prompt_schedule) - 1)
        return {"FINISHED"}


def draw(layout, owner, tree: str = "", node: str = "") -> None:
    """The schedule's list with add/remove buttons (``tree``/``node`` name a Prompt node)."""
    box = layout.box()
    row = box.row(align=True)
    row.label(text="Prompt Schedule (seconds)", icon="TIME")
    op = row.operator("sora.schedule_add", text="", icon="ADD")
    op.tree, op.node = tree, node
    if len(owner.prompt_schedule):
        op = row.operator("sora.schedule_remove", text="", icon="REMOVE")
        op.tree, op.node = tree, node
        box.template_list("SORA_UL_prompt_schedule", f"{tree}.{node}", owner, "prompt_schedule",
                          owner, "schedule_index", rows=2)


def to_spec(owner) -> list[PromptChange]:
    """The changes that have a prompt, in time order."""
    items = [PromptChange(float(i.start), i.prompt.strip()) for i in owner.prompt_schedule if i.prompt.strip()]
    return sorted(items, key=lambda c: c.start)


classes = (SoraPromptChange, SORA_UL_prompt_schedule, SORA_OT_schedule_add, SORA_OT_schedule_remove)
