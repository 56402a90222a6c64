"""Add-on preferences: worker Python, model folders, device/dtype/memory, output folder."""

from __future__ import annotations

import os

import bpy
from bpy.props import CollectionProperty, EnumProperty, IntProperty, StringProperty
from bpy.types import AddonPreferences, PropertyGroup

from sora_core.spec import DTYPES, MEMORY_STRATEGIES

from . import live, models
from .settings import ADDON_ID, get_prefs
from .worker import setup
from .worker.python import worker_python

DEVICE_ITEMS = [
    ("auto", "Auto", "CUDA when present, then Apple MPS, else CPU"),
    ("cpu", "CPU", "Run on the CPU (slow, always works)"),
    ("cuda", "CUDA", "First NVIDIA GPU"),
    ("mps", "Apple MPS", "Apple silicon GPU"),
]
_DTYPE_TEXT = {"auto": ("Auto", "float16/bfloat16 on a GPU, float32 on the CPU")}
_MEMORY_TEXT = {
    "none": ("None", "Keep the whole model on the device (fastest)"),
    "model_cpu_offload": ("Model CPU Offload", "Move each sub-model to the device only while it runs"),
    "group_offload": ("Group Offload", "Offload layer groups (lowest GPU memory, slower)"),
    "vae_tiling": ("VAE Tiling", "Decode frames in tiles (helps large sizes)"),
}
# the values are the core's own lists (what validation accepts); only the wording is here
DTYPE_ITEMS = [(d, *_DTYPE_TEXT.get(d, (d, ""))) for d in DTYPES]
MEMORY_ITEMS = [(m, *_MEMORY_TEXT.get(m, (m.replace("_", " ").title(), ""))) for m in MEMORY_STRATEGIES]


def _rescan_models(_self, _context) -> None:
    """A model folder was edited: the model list is read again on its next use."""
    models.scan_models(force=True)


def worker_status(prefs) -> tuple[str, str]:
    """(the Python the worker uses, why the set-up venv is not used): looked up once per change
    of the preference (or a set-up's end), not on every redraw of the preferences."""
    key = (prefs.worker_python, os.environ.get("SORA_WORKER_PYTHON"), setup.setup_running(), live.generation)
    return live.memo("worker", "", key, lambda: (worker_python(prefs), setup.setup_problem(prefs)))


class SORA_PG_model_folder(PropertyGroup):
    path: StringProperty(name="Folder", subtype="DIR_PATH",
                         description="A folder of diffusers model folders (or one model folder)",
                         update=_rescan_models)


class SORA_AP_preferences(AddonPreferences):
    bl_idname = ADDON_ID

    worker_python: StringProperty(
        name="Worker Python", subtype="FILE_PATH",
        description="Python executable of the worker environment (torch, diffusers, sora-core). "
                    "Empty: the environment made by 'Set Up Worker' (once it finished), "
                    "else this Blender's Python")
    model_folders: CollectionProperty(type=SORA_PG_model_folder)
    model_folder_index: IntProperty()
    device: EnumProperty(name="Device", items=DEVICE_ITEMS, default="auto")
    dtype: EnumProperty(name="Precision", items=DTYPE_ITEMS, default="auto")
    memory: EnumProperty(name="Memory", items=MEMORY_ITEMS, default="none")
    output_dir: StringProperty(
        name="Output Folder", subtype="DIR_PATH",
        description="Root of generated shots. Empty: //sora/ next to the .blend "
                    "(the extension's user folder for unsaved files)")
    pip_args: StringProperty(
        name="Extra pip arguments",
        description="Added to 'pip install' by Set Up Worker, e.g. --index-url for a CUDA torch "
                    "build or --no-index --find-links /wheelhouse for offline studios")
    sign_cert: StringProperty(
        name="Signing Chain", subtype="FILE_PATH",
        description="Certificate chain (PEM, the signer first) that signs shots and deliverables. Empty: "
                    "$SORA_SIGN_CERT or the studio config file. Only the path is kept, never in a .blend")
    sign_key: StringProperty(
        name="Signing Key", subtype="FILE_PATH",
        description="Its private key (PEM; ES256, PS256 or Ed25519), read by the worker that signs, "
                    "never by Blender. Empty: $SORA_SIGN_KEY or the studio config file")
    trust_anchors: StringProperty(
        name="Trust Anchors", subtype="FILE_PATH",
        description="Root certificates (PEM) whose signatures verify as trusted. Empty: "
                    "$SORA_TRUST_ANCHORS or the studio config file")

    def draw(self, context):
        layout = self.layout
        box = layout.box()
        box.label(text="Worker", icon="CONSOLE")
        box.prop(self, "worker_python")
        python, problem = worker_status(self)
        box.label(text=f"Uses: {python}")
        if problem:
            for i, line in enumerate(setup.setup_problem_lines(problem)):
                box.label(text=line, icon="ERROR" if i == 0 else "BLANK1")
        box.prop(self, "pip_args")
        row = box.row()
        row.operator("sora.setup_worker", icon="IMPORT")
        row.operator("sora.check_worker", icon="CHECKMARK")
        for line in setup.worker_report_lines():
            box.label(text=line)

        box = layout.box()
        row = box.row()
        row.label(text="Model Folders", icon="FILE_FOLDER")
        row.operator("sora.rescan_models", text="", icon="FILE_REFRESH")
        for i, item in enumerate(self.model_folders):
            row = box.row(align=True)
            row.prop(item, "path", text="")
            op = row.operator("sora.model_folder_remove", text="", icon="X")
            op.index = i
        box.operator("sora.model_folder_add", icon="ADD")
        for info in models.scan_models():
            caps = info.capabilities
            text = f"{info.name}: {info.family or 'unsupported pipeline ' + info.pipeline_class}"
            if caps:
                text += f" | {caps.describe()}"
            elif info.problem:
                text += f" | {info.problem}"
            box.label(text=text, icon="PACKAGE" if info.bundled else "NODE_MATERIAL")
        if not models.scan_models():
            box.label(text="No models found (the bundled model's weights are missing?)", icon="ERROR")

        box = layout.box()
        box.label(text="Runtime", icon="PREFERENCES")
        box.prop(self, "device")
        box.prop(self, "dtype")
        box.prop(self, "memory")
        box.prop(self, "output_dir")

        box = layout.box()
        box.label(text="Signing (docs/provenance.md; sora keys new DIR makes a test pair)", icon="LOCKED")
        box.prop(self, "sign_cert")
        box.prop(self, "sign_key")
        box.prop(self, "trust_anchors")


class SORA_OT_model_folder_add(bpy.types.Operator):
    bl_idname = "sora.model_folder_add"
    bl_label = "Add Model Folder"
    bl_options = {"INTERNAL"}

    def execute(self, context):
        prefs = get_prefs(context)
        if hasattr(prefs, "model_folders"):
            prefs.model_folders.add()
        return {"FINISHED"}


class SORA_OT_model_folder_remove(bpy.types.Operator):
    bl_idname = "sora.model_folder_remove"
    bl_label = "Remove Model Folder"
    bl_options = {"INTERNAL"}
    index: IntProperty()

    def execute(self, context):
        prefs = get_prefs(context)
        if hasattr(prefs, "model_folders") and 0 <= self.index < len(prefs.model_folders):
            prefs.model_folders.remove(self.index)
            models.scan_models(force=True)
        return {"FINISHED"}


classes = (SORA_PG_model_folder, SORA_AP_preferences, SORA_OT_model_folder_add,
           SORA_OT_model_folder_remove)
