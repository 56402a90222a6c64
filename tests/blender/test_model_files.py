"""Model files in the add-on: the panel's transformer file and LoRA list, the Model Files and Lora
nodes; both give a spec with the files, run in a real worker, and the same frames."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import bpy
import pytest

from tests.blender.test_panels import draw

ROOT = Path(__file__).resolve().parents[2]
BUILD = """
import sys, torch
from pathlib import Path
from tests.fixtures import model_files as mf
base, out = sys.argv[1], Path(sys.argv[2])
state = mf.transformer_state(base)
mf.save(mf.wan_original_keys(state, comfy=True), out / "wan_comfy.safetensors", torch.float16)
mf.write_gguf(mf.wan_original_keys(state), out / "wan-Q8_0.gguf")
mf.comfy_lora(state, out / "style.safetensors", seed=1)
mf.comfy_lora(state, out / "detail.safetensors", seed=2, modules=("attn1.to_k", "ffn.net.2"))
"""


@pytest.fixture(scope="module")
def files(tiny_wan_t2v_path, tmp_path_factory):
    """A ComfyUI-layout fp16 transformer of the tiny Wan and two ComfyUI LoRAs over it."""
    out = tmp_path_factory.mktemp("blender_files")
    subprocess.run([sys.executable, "-c", BUILD, tiny_wan_t2v_path, str(out)], check=True, cwd=str(ROOT))
    return {"transformer": str(out / "wan_comfy.safetensors"), "gguf": str(out / "wan-Q8_0.gguf"), "loras": [str(out / "style.safetensors"),
                                                                       str(out / "detail.safetensors")]}


def _panel_files(props, files):
    props.transformer_file = files["transformer"]
    props.loras.clear()
    for path, strength in zip(files["loras"], (0.7, 1.2)):
        assert bpy.ops.sora.lora_edit(action="ADD") == {"FINISHED"}
        props.loras[-1].path, props.loras[-1].strength = path, strength


def _setup(scene, model):
    props = scene.sora
    props.model, props.prompt, props.steps, props.seed, props.shot_name = model, "a red ball", 2, 4, "files"
    props.frames = 5
    scene.frame_start, scene.frame_end = 1, 5
    scene.render.resolution_x = scene.render.resolution_y = 32
    return props


def test_panel_draws_the_files_and_its_shot_runs_with_them(scene, sora_addon, tiny_wan_t2v_path, files):
    props = _setup(scene, tiny_wan_t2v_path)
    _panel_files(props, files)
    log = draw(bpy.types.SORA_PT_view3d)
    assert ("prop", "transformer_file", True) in log and ("template_list", "loras", True) in log
    assert ("prop", "transformer_2_file", True) not in log        # one transformer: no expert file
    assert ("prop", "upsampler_file", True) not in log            # not LTX-2: no upsampler file
    spec, _root, _fit = sora_addon.shots.scene_spec(scene, reserve=False)
    assert spec.components.transformer == files["transformer"]
    assert [(l.path, l.strength) for l in spec.loras] == list(zip(files["loras"], (0.7, 1.2)))

    assert bpy.ops.sora.generate() == {"FINISHED"}
    assert sora_addon.live.job(scene).state == "DONE", sora_addon.live.job(scene).error
    manifest = json.loads((Path(props.last_dir) / "manifest.json").read_text())
    assert manifest["model"]["components"]["transformer"]["path"] == files["transformer"]
    assert [(l["strength"], l["modules"]) for l in manifest["model"]["loras"]] == [(0.7, 6), (1.2, 4)]

    # the same shot from nodes: Model Files -> Lora -> Lora -> Generate gives the same frames
    tree = bpy.data.node_groups.new("FileShots", "SoraShotTree")
    mfn, gen = tree.nodes.new("SoraModelFilesNode"), tree.nodes.new("SoraGenerateNode")
    mfn.transformer_file = files["transformer"]
    gen.name, gen.model, gen.prompt, gen.steps, gen.seed, gen.frames = "Gen", tiny_wan_t2v_path, "a red ball", 2, 4, 5
    last = mfn.outputs["Model"]
    for path, strength in zip(files["loras"], (0.7, 1.2)):
        lora = tree.nodes.new("SoraLoraNode")
        lora.path, lora.strength = path, strength
        tree.links.new(last, lora.inputs["Model"])
        last = lora.outputs["Model"]
    tree.links.new(last, gen.inputs["Model"])
    spec = sora_addon.nodes.node_spec(gen, scene)
    assert spec.components.transformer == files["transformer"]
    assert [(l.path, l.strength) for l in spec.loras] == list(zip(files["loras"], (0.7, 1.2)))
    task = sora_addon.nodes.run_nodes(tree, scene, ["Gen"], blocking=True)
    assert task.state == "done", task.error
    node_manifest = json.loads((Path(gen.result_dir) / "manifest.json").read_text())
    assert [f["sha256"] for f in node_manifest["frames"]] == [f["sha256"] for f in manifest["frames"]]

    mfn.transformer_file = files["gguf"]            # a GGUF transformer under the same two LoRAs
    task = sora_addon.nodes.run_nodes(tree, scene, ["Gen"], blocking=True)
    assert task.state == "done" and task.ran == ["Gen"], task.error
    gguf_model = json.loads((Path(gen.result_dir) / "manifest.json").read_text())["model"]
    assert gguf_model["components"]["transformer"]["path"] == files["gguf"] and len(gguf_model["loras"]) == 2

    lora.path = ""                                  # a Lora node without a file: the node waits
    assert "no file" in sora_addon.nodes.node_state(gen, scene)
    bpy.data.node_groups.remove(tree)

    props.transformer_file = files["gguf"]          # the panel's shot on the GGUF, same two LoRAs
    assert bpy.ops.sora.generate() == {"FINISHED"}
    assert sora_addon.live.job(scene).state == "DONE", sora_addon.live.job(scene).error
    gguf_model = json.loads((Path(props.last_dir) / "manifest.json").read_text())["model"]
    assert gguf_model["components"]["transformer"]["path"] == files["gguf"] and len(gguf_model["loras"]) == 2
    props.loras.clear()
    props.transformer_file = ""


def test_an_ltx2_model_offers_an_upsampler_file_in_the_panel_and_the_node(scene, sora_addon, family_models,
                                                                        tmp_path):
    from tests.core.test_upsampler_file import ORIGINAL, header_only

    props = _setup(scene, family_models["ltx2"])                 # a base without an upsampler
    scene.render.resolution_x, scene.render.resolution_y = 128, 64
    upsampler = header_only(tmp_path / "ltx-2-spatial-upscaler-x2-1.0.safetensors",
                            ["initial_conv.weight", "final_conv.weight"], ORIGINAL)   # read from its header
    assert not any("two stages" in n for n in sora_addon.shots.panel_fit(scene).notes)
    props.upsampler_file = str(upsampler)
    try:
        log = draw(bpy.types.SORA_PT_view3d)
        assert ("label", "Latent Upsampler File") in [e[:2] for e in log] and ("prop", "upsampler_file", True) in log
        fitted = sora_addon.shots.panel_fit(scene)
        assert not fitted.problem and any(n.startswith("two stages: made at 64x32") for n in fitted.notes)
        spec, _root, _fit = sora_addon.shots.scene_spec(scene, reserve=False)
        assert spec.components.upsampler == str(upsampler)
        props.model = family_models["wan-t2v"]                   # set on a Wan model: refused, still shown
        assert "for LTX-2 models" in sora_addon.shots.panel_fit(scene).problem
        assert ("prop", "upsampler_file", True) in draw(bpy.types.SORA_PT_view3d)
    finally:
        props.upsampler_file = ""
    tree = bpy.data.node_groups.new("Upsampled", "SoraShotTree")
    try:
        node = tree.nodes.new("SoraModelFilesNode")
        node.upsampler_file = str(upsampler)
        assert sora_addon.model_files.components_of(node).upsampler == str(upsampler)
    finally:
        bpy.data.node_groups.remove(tree)


def test_a_pickle_in_the_panel_is_refused_before_any_worker(scene, sora_addon, tiny_wan_t2v_path, tmp_path):
    from sora_core.errors import SoraError

    props = _setup(scene, tiny_wan_t2v_path)
    (tmp_path / "old.ckpt").write_bytes(b"\x80\x04pickle")
    assert bpy.ops.sora.lora_edit(action="ADD") == {"FINISHED"}
    props.loras[-1].path = str(tmp_path / "old.ckpt")
    with pytest.raises(SoraError, match="pickle") as err:
        sora_addon.shots.scene_spec(scene, reserve=False)
    assert err.value.exit_code == 2 and err.value.field == "loras[0].path"
    assert bpy.ops.sora.lora_edit(action="REMOVE") == {"FINISHED"} and len(props.loras) == 0


def test_the_panel_offers_the_presets_of_the_model_and_its_loras(scene, sora_addon, tiny_wan_t2v_path, files,
                                                                 tmp_path):
    import shutil

    model = Path(shutil.copytree(tiny_wan_t2v_path, tmp_path / "tiny-wan-fast"))
    (model / "sora_model.json").write_text(json.dumps({"presets": {"fast": {"steps": 1, "guidance": 1.0}}}))
    lora = Path(shutil.copy(files["loras"][0], tmp_path / "distill.safetensors"))
    (tmp_path / "distill.sora.json").write_text(json.dumps({"presets": {"distill-2step": {"steps": 2}}}))
    props = _setup(scene, str(model))
    props.steps = 0                                 # the preset's steps, not the panel's
    assert sora_addon.model_files.offered_presets(props) == ["fast"]
    assert bpy.ops.sora.lora_edit(action="ADD") == {"FINISHED"}
    props.loras[-1].path = str(lora)
    assert sora_addon.model_files.offered_presets(props) == ["distill-2step", "fast"]
    props.preset = "distill-2step"
    assert ("prop", "preset", True) in draw(bpy.types.SORA_PT_view3d)
    assert bpy.ops.sora.generate() == {"FINISHED"}
    assert sora_addon.live.job(scene).state == "DONE", sora_addon.live.job(scene).error
    manifest = json.loads((Path(props.last_dir) / "manifest.json").read_text())
    assert manifest["preset"]["name"] == "distill-2step" and manifest["spec"]["steps"] == 2
    assert manifest["preset"]["source"] == str(tmp_path / "distill.sora.json")


def test_the_file_fields_offer_a_comfy_tree_among_the_model_folders(sora_addon, files, tmp_path):
    import shutil

    root = tmp_path / "ComfyUI" / "models"
    for sub, path in (("diffusion_models", files["transformer"]), ("unet", files["gguf"]),
                      ("loras", files["loras"][0])):
        (root / sub).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, root / sub)
    (root / "loras" / "old.ckpt").write_bytes(b"\x80\x04pickle")
    prefs = bpy.context.preferences.addons["sora_blender"].preferences
    prefs.model_folders.add().path = str(root)
    try:
        offered = dict(sora_addon.model_files.folder_files("transformer"))
        assert set(map(Path, offered)) == {root / "diffusion_models" / "wan_comfy.safetensors",
                                           root / "unet" / "wan-Q8_0.gguf"}
        assert offered[str(root / "unet" / "wan-Q8_0.gguf")].startswith("Wan T2V") and "Q8_0" in \
            offered[str(root / "unet" / "wan-Q8_0.gguf")]
        loras = sora_addon.model_files.folder_files("lora")
        assert loras == [(str(root / "loras" / "style.safetensors"), "Wan LoRA rank 2, 6 modules (ComfyUI keys)")]
        assert sora_addon.model_files.folder_files("transformer", "q8_0") == \
            [(str(root / "unet" / "wan-Q8_0.gguf"), offered[str(root / "unet" / "wan-Q8_0.gguf")])]
    finally:
        prefs.model_folders.remove(len(prefs.model_folders) - 1)
