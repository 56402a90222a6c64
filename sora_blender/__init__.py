"""Sora Shots: prompt-driven video shots for Blender, on the host-agnostic ``sora_core``.

The add-on knows bpy and never imports torch: shots run in a worker process (``sora_core``'s
client), polled from ``bpy.app.timers``. Packaged as a Blender extension by
``scripts/build_extension.py`` (see docs/blender.md).
"""

from __future__ import annotations

import bpy

from . import compositor, nodes, operators, panels, preferences, properties, runtime, schedule, shots  # noqa: F401

classes = (
    *schedule.classes,          # before the property groups and nodes that hold a schedule
    *preferences.classes,
    *properties.classes,
    *operators.classes,
    *panels.classes,
    *nodes.classes,
)


def register():
    for cls in classes:
        bpy.utils.register_class(cls)
    properties.register_props()
    nodes.register_extra()
    runtime.register()


def unregister():
    runtime.unregister()
    nodes.unregister_extra()
    properties.unregister_props()
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
