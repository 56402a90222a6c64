"""Model files in the panel and the nodes: one-file transformer/VAE/upsampler files and a LoRA list.

Held by the scene panel (``scene.sora``), by a Model Files node (component files) and by Lora
nodes (one LoRA each); they become the spec's ``components`` and ``loras`` (sora_core.model_files),
checked there exactly as the CLI's ``--transformer`` and ``--lora`` are.
"""

from __future__ import annotations

import bpy
from bpy.props import EnumProperty, FloatProperty, StringProperty
from bpy.types import Operator, PropertyGroup, UIList

from sora_core.model_files import Components, Lora

LORA_TARGET_ITEMS = [
    ("all", "All", "Every transformer of the model"),
    ("transformer", "High Noise", "The high-noise expert only (two-expert models: Wan 2.2 A14B)"),
    ("transformer_2", "Low Noise", "The low-noise expert only (two-expert models: Wan 2.2 A14B)"),
]
COMPONENT_PROPS = {"transformer": "transformer_file", "transformer_2": "transformer_2_file",
                   "vae": "vae_file", "upsampler": "upsampler_file"}


def folder_files(role: str, edit_text: str = "") -> list[tuple[str, str]]:
    """(path, what it is) of the ``role`` files (transformer, vae, lora) in the ComfyUI
    ``models/`` trees among the add-on's model folders; read when a field's search opens."""
    from sora_core.model_scan import scan_files

    from .settings import model_roots

    return [(str(f.path), f.label) for f in scan_files(model_roots())
            if f.role == role and not f.problem and edit_text.lower() in str(f.path).lower()]


def _searching(role: str):
    return lambda self, context, edit_text: folder_files(role, edit_text)


def _file(description: str, role: str):
    return StringProperty(name="", subtype="FILE_PATH", description=description + "; the search offers the files of "
                          "ComfyUI models/ trees among the model folders", search=_searching(role),
                          search_options={"SUGGESTION"})


def offered_presets(props) -> list[str]:
    """Preset names of the panel's model folder and LoRA sidecars (sora_core.presets)."""
    from sora_core.errors import SoraError
    from sora_core.presets import offered

    from .models import model_info

    info, _caps, _problem = model_info(props.model)
    try:
        return sorted(offered(info.path if info else None, to_spec(props)[1]))
    except SoraError:
        return []


def _preset_search(self, context, edit_text):
    return [n for n in offered_presets(self) if edit_text.lower() in n.lower()]


def preset_prop():
    return StringProperty(name="Preset", search=_preset_search,
                          description="A fast preset (steps, guidance) named by the model's sora_model.json "
                                      "or a LoRA's NAME.sora.json; the Steps and Guidance set here still win")


def component_props() -> dict:
    """The component file properties, shared by the scene panel and the Model Files node."""
    return {
        "transformer_file": _file("The transformer from one .safetensors (diffusers, original or ComfyUI "
                                  "keys; fp16/bf16/fp8) or .gguf file; empty: the model folder's own",
                                  "transformer"),
        "transformer_2_file": _file("The low-noise expert from one file (Wan 2.2 A14B); empty: the folder's own",
                                    "transformer"),
        "vae_file": _file("The VAE from one .safetensors file; empty: the model folder's own", "vae"),
        "upsampler_file": _file("LTX-2's latent upsampler for two stages, the original .safetensors file "
                                "(ltx-2-spatial-upscaler-x2); empty: the folder's own, if any", "upsampler"),
    }


def lora_props() -> dict:
    """A LoRA's file, strength and expert: a row of the panel's list and a Lora node."""
    return {
        "path": _file("A LoRA .safetensors file (diffusers/PEFT, ComfyUI/kohya or Kijai keys)", "lora"),
        "strength": FloatProperty(name="Strength", default=1.0, min=-10.0, max=10.0, soft_min=0.0, soft_max=2.0),
        "target": EnumProperty(name="Expert", items=LORA_TARGET_ITEMS, default="all"),
    }


class SoraLora(PropertyGroup):
    pass


SoraLora.__annotations__ = lora_props()


class SORA_UL_loras(UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index=0):
        row = layout.row(align=True)
        row.prop(item, "path", text="")
        sub = row.row(align=True)
        sub.ui_units_x = 5
        sub.prop(item, "strength", text="", slider=True)


class SORA_OT_lora_edit(Operator):
    """Add a LoRA to the shot, or remove the selected one"""

    bl_idname = "sora.lora_edit"
    bl_label = "Add or Remove LoRA"
    bl_options = {"REGISTER", "UNDO", "INTERNAL"}

    action: EnumProperty(items=[("ADD", "Add", "Add a LoRA"), ("REMOVE", "Remove", "Remove the selected LoRA")],
                         options={"SKIP_SAVE"})

    def execute(self, context):
        props = context.scene.sora
        if self.action == "ADD":
            props.loras.add()
            props.lora_index = len(props.loras) - 1
            return {"FINISHED"}
        if not 0 <= props.lora_index < len(props.loras):
            return {"CANCELLED"}
        props.loras.remove(props.lora_index)
        props.lora_index = min(props.lora_index, len(props.loras) - 1)
        return {"FINISHED"}


def draw_components(layout, owner, caps) -> None:
    """The component file pickers (the low-noise expert for two-expert models, the upsampler for
    LTX-2; either also while it is set, so a file the planner refuses can be cleared)."""
    layout.label(text="Transformer File")
    layout.prop(owner, "transformer_file")
    if (caps is not None and caps.experts >= 2) or owner.transformer_2_file:
        layout.label(text="Low-Noise Expert File")
        layout.prop(owner, "transformer_2_file")
    layout.label(text="VAE File")
    layout.prop(owner, "vae_file")
    if (caps is not None and caps.family == "ltx2") or owner.upsampler_file:
        layout.label(text="Latent Upsampler File")
        layout.prop(owner, "upsampler_file")


def draw(layout, props, caps) -> None:
    """The panel's Model Files box: component files, the LoRA list (the selected one's expert) and
    the preset."""
    box = layout.box()
    box.label(text="Model Files (over the model folder)", icon="FILE_BLEND")
    draw_components(box, props, caps)
    row = box.row(align=True)
    row.label(text=f"LoRAs ({len(props.loras)})", icon="MODIFIER")
    row.operator("sora.lora_edit", text="", icon="ADD").action = "ADD"
    if len(props.loras):
        row.operator("sora.lora_edit", text="", icon="REMOVE").action = "REMOVE"
        box.template_list("SORA_UL_loras", "", props, "loras", props, "lora_index", rows=2)
        if caps is not None and caps.experts >= 2 and 0 <= props.lora_index < len(props.loras):
            box.prop(props.loras[props.lora_index], "target")
    box.prop(props, "preset", icon="PRESET")


def _abspath(path: str) -> str | None:
    return bpy.path.abspath(path) if path.strip() else None


def components_of(owner) -> Components:
    return Components(**{name: _abspath(getattr(owner, prop)) for name, prop in COMPONENT_PROPS.items()})


def lora_of(item) -> Lora | None:
    """The row's LoRA; the strength rounded as typed (Blender keeps float32: 0.7 is 0.69999998)."""
    return Lora(_abspath(item.path), round(float(item.strength), 4), item.target) if item.path.strip() else None


def to_spec(props) -> tuple[Components, list[Lora]]:
    """The panel's files as the spec's ``components`` and ``loras`` (rows without a file skipped)."""
    return components_of(props), [lora for lora in map(lora_of, props.loras) if lora is not None]


classes = (SoraLora, SORA_UL_loras, SORA_OT_lora_edit)
