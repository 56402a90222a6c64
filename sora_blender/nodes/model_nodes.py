"""Model Files and Lora nodes: what a job node's Model input adds to its model.

A chain ``Model Files -> Lora -> Lora -> Generate.Model``: the Model Files node names one-file
components (transformer, low-noise expert, VAE), each Lora node adds one LoRA at its strength.
Both are optional; a Lora may start the chain. The job node's spec gets ``components`` and
``loras`` from the chain (:func:`chain_files`), in the order the LoRAs are linked.
"""

from __future__ import annotations

import bpy

from sora_core.errors import invalid
from sora_core.model_files import Components

from .. import model_files
from .types import SocketLook, SoraNode

SOCKET = "SoraModelSocket"


class SoraModelSocket(SocketLook, bpy.types.NodeSocket):
    """Model files: component overrides and LoRAs over the job node's model"""

    bl_idname = SOCKET
    bl_label = "Model"
    color = (0.3, 0.8, 0.6, 1.0)


class SoraModelFilesNode(SoraNode, bpy.types.Node):
    """One-file components over the model folder: a transformer (.safetensors or .gguf), the
    low-noise expert, a VAE, LTX-2's latent upsampler"""

    bl_idname = "SoraModelFilesNode"
    bl_label = "Model Files"
    bl_icon = "FILE_BLEND"

    def init(self, context):
        self.outputs.new(SOCKET, "Model")

    def draw_buttons(self, context, layout):
        model_files.draw_components(layout, self, _EveryFile())


SoraModelFilesNode.__annotations__.update(model_files.component_props())


class _EveryFile:
    """Caps stand-in for the node: it offers every file (the low-noise expert, the upsampler)
    whatever the model; the planner refuses one the model cannot take."""

    experts = 2
    family = "ltx2"


class SoraLoraNode(SoraNode, bpy.types.Node):
    """A LoRA at a strength; chain several (Model in -> Model out) into a job node's Model input"""

    bl_idname = "SoraLoraNode"
    bl_label = "Lora"
    bl_icon = "MODIFIER"

    def init(self, context):
        self.inputs.new(SOCKET, "Model")
        self.outputs.new(SOCKET, "Model")

    def draw_buttons(self, context, layout):
        layout.prop(self, "path", text="")
        layout.prop(self, "strength", slider=True)

    def draw_buttons_ext(self, context, layout):
        self.draw_buttons(context, layout)
        layout.prop(self, "target")


SoraLoraNode.__annotations__.update(model_files.lora_props())


def _from(node):
    socket = node.inputs.get("Model")
    if socket is None or not socket.is_linked:
        return None
    return socket.links[0].from_node


def chain_files(node) -> tuple[Components, list]:
    """(components, loras) from the Model chain linked into ``node`` (nothing linked: none)."""
    loras, components, seen = [], Components(), set()
    src = _from(node)
    while src is not None:
        if src.name in seen:
            raise invalid(f"{node.name}.Model", f"the Model chain loops at {src.name}")
        seen.add(src.name)
        if src.bl_idname == "SoraLoraNode":
            lora = model_files.lora_of(src)
            if lora is None:
                raise invalid(f"{src.name}.path", "the Lora node has no file", hint="choose a LoRA file")
            loras.insert(0, lora)
            src = _from(src)
        elif src.bl_idname == "SoraModelFilesNode":
            components = model_files.components_of(src)
            src = None
        else:
            raise invalid(f"{node.name}.Model", f"{src.name} gives no model files")
    return components, loras


classes = (SoraModelSocket, SoraModelFilesNode, SoraLoraNode)
