"""Sora Shots: prompt-driven video shots for Blender, on the host-agnostic ``sora_core``.

The add-on knows bpy and never imports torch: shots run in a worker process (``sora_core``'s
client), polled from ``bpy.app.timers``. Packaged as a Blender extension by
``scripts/build_extension.py`` (see docs/blender.md and docs/architecture.md for the layout).
"""

from __future__ import annotations

import atexit

import bpy

from . import (compositor, control, footage, live, model_files, models, nodes, operators,  # noqa: F401
               panels, preferences, properties, provenance, provenance_panel, schedule, shots, tasks)
from .worker import service, setup

classes = (
    *schedule.classes,          # before the property groups and nodes that hold a schedule
    *model_files.classes,       # before the property groups and nodes that hold LoRAs
    *preferences.classes,
    *properties.classes,
    *operators.classes,
    *control.classes,
    *footage.classes,
    *panels.classes,
    *nodes.classes,
    *provenance.classes,
    *provenance_panel.classes,  # sub-panels of the Sora panels and the Sora Shots node panel
)


@bpy.app.handlers.persistent
def _on_load_pre(*_args):
    service.stop_worker("a file was loaded")
    footage.stop_all()
    provenance.stop_all()


@bpy.app.handlers.persistent
def _on_load_post(*_args):
    """No job survives a load, and live state was never saved: start from nothing."""
    live.clear()


@bpy.app.handlers.persistent
def _on_render_done(*_args):
    """New frames on disk: what the panels show is worked out again."""
    live.invalidate()


HANDLERS = ((bpy.app.handlers.load_pre, _on_load_pre), (bpy.app.handlers.load_post, _on_load_post),
            (bpy.app.handlers.render_complete, _on_render_done),
            (bpy.app.handlers.render_cancel, _on_render_done))


def register():
    for cls in classes:
        bpy.utils.register_class(cls)
    properties.register_props()
    nodes.register_extra()
    for handlers, fn in HANDLERS:
        if fn not in handlers:
            handlers.append(fn)
    atexit.register(service.stop_worker)      # quitting Blender stops the worker


def unregister():
    service.stop_worker("the add-on was disabled")
    footage.stop_all()
    provenance.stop_all()
    tasks.unregister()
    setup.unregister()
    atexit.unregister(service.stop_worker)
    for handlers, fn in HANDLERS:
        while fn in handlers:
            handlers.remove(fn)
    live.clear()
    nodes.unregister_extra()
    properties.unregister_props()
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
