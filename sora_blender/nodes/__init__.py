"""The "Sora Shots" node editor: a shot as a graph of Prompt, Generate, Animate, Extend,
Interpolate, Restyle, Render Input and Compositor Output nodes (and Model Files and Lora nodes
over a job node's model).

``types`` holds the node classes, ``graph`` the logic without bpy (order, requests, results),
``specs`` a node's ShotSpec and cache state, ``run`` the tasks, operators and panel.
"""

from __future__ import annotations

from . import model_nodes, run, types
from .run import dependency_order, run_nodes, tree_key, tree_task  # noqa: F401  (the headless entry, tests)
from .specs import node_spec, node_state  # noqa: F401
from .types import JOB_NODES, TREE_ID  # noqa: F401

classes = (types.SoraShotTree, types.SoraShotSocket, types.SoraPromptSocket, *types.NODE_CLASSES,
           *model_nodes.classes, *run.classes)


def register_extra() -> None:
    run.register_menu()


def unregister_extra() -> None:
    run.unregister_menu()
