"""Every mode of every family from Blender: the panel's Generate and a node tree with one job node
per mode, run by the worker from a tiny folder of each family (Wan 2.1, VACE, Wan 2.2 TI2V-5B and
A14B with Guidance 2, LTX-Video, LTX-2 with its sound track and in two stages with its latent
upsampler) and the bundled TinyWorld. Control is tests/blender/test_control_mode.py, hdr
test_hdr.py."""

from __future__ import annotations

import json
from pathlib import Path

import bpy
import numpy as np
import pytest

from sora_blender.live import job
from sora_blender.models import model_info
from sora_core.frames.exr import write_exr

FAMILIES = ("wan-t2v", "wan-i2v", "wan-vace", "wan-ti2v", "wan-a14b", "wan-a14b-i2v", "ltx", "ltx2",
            "ltx2-upsampled", "tinyworld")
RUN_MODES = ("generate", "animate", "extend", "interpolate", "restyle")
NODES = {"generate": "SoraGenerateNode", "animate": "SoraAnimateNode", "extend": "SoraExtendNode",
         "interpolate": "SoraInterpolateNode", "restyle": "SoraRestyleNode"}


def _plate(folder: Path, name: str, first: int) -> str:
    """Nine 64x64 frames numbered from ``first``: a red square moving right."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(9):
        img = np.full((64, 64, 3), 0.05, np.float32)
        img[20:36, 4 + 4 * i:20 + 4 * i] = (0.8, 0.1, 0.05)
        write_exr(folder / f"{name}.{first + i:04d}.exr", img, {})
    return str(folder / f"{name}.####.exr")


def _setup(family_models, family):
    model = family_models.get(family, family)          # tinyworld: the add-on's bundled model
    caps = model_info(model)[1]
    return model, caps, [m for m in caps.modes if m in RUN_MODES], 9 if caps.frame_multiple == 8 else 5


def _check_model(folder, family: str) -> dict:
    """The shot's manifest, checked for what the family adds: both experts and Guidance 2, or
    LTX-2's sound track (``<name>.wav`` beside the frames)."""
    manifest = json.loads((Path(folder) / "manifest.json").read_text())
    if family.startswith("wan-a14b"):
        assert manifest["spec"]["guidance_2"] == 2.0
        assert {"high_noise", "low_noise"} <= set(manifest["model"]["experts"])
    if family == "ltx2-upsampled":                      # two stages (scene 64x64: made at 32x32)
        assert manifest["spec"]["upsample"] == "on" and manifest["model"]["upsampler"] == "latent_upsampler x2"
    if family.startswith("ltx2") and manifest["spec"]["mode"] == "generate":
        audio = manifest["audio"]
        assert audio["sample_rate"] > 0 and audio["seconds"] > 0 and (Path(folder) / Path(audio["path"]).name).is_file()
    return manifest


@pytest.mark.parametrize("family", FAMILIES)
def test_every_mode_of_a_family_from_the_panel(scene, family_models, family, tmp_path):
    model, caps, modes, n = _setup(family_models, family)
    lead = _plate(tmp_path / "render", "lead", 3)
    props = scene.sora
    props.model, props.prompt, props.steps = model, "a red ball moving right", 1
    props.seq_source, props.seq_path, props.use_scene_range = "PATH", lead, False
    props.seq_start, props.seq_end = 3, 11
    props.still_source, props.still_path = "FILE", lead.replace("####", "0003")
    props.frames, props.extend_frames, props.key_a, props.key_b = n, n - 1, 3, 11
    props.direction, props.add_strip = "forward", caps.audio      # LTX-2: frames and sound into the sequencer
    if caps.experts == 2:
        props.guidance_2 = 2.0
    for mode in modes:
        props.mode, props.shot_name = mode, f"{family}-{mode}"
        assert bpy.ops.sora.generate() == {"FINISHED"}, job(scene).error
        assert job(scene).state == "DONE", (mode, job(scene).error)
        manifest = _check_model(props.last_dir, family)
        numbers = [f["number"] for f in manifest["frames"]]
        assert manifest["spec"]["mode"] == mode and numbers == list(range(numbers[0], numbers[-1] + 1))
        first, count = {"generate": (1, n), "animate": (1, n), "interpolate": (3, 9),
                        "restyle": (3, 9)}.get(mode, (12, None))        # extend: right after frame 11
        assert numbers[0] == first and (count is None or len(numbers) == count), (mode, numbers)
        node = scene.node_tree.nodes[props.shot_name]                     # landed in the compositor
        assert node.frame_start == numbers[0] and node.frame_duration == len(numbers)
        if caps.audio and mode == "generate":                             # the WAV on a sound strip
            strips = getattr(scene.sequence_editor, "strips", None) or scene.sequence_editor.sequences
            sound = strips.get(f"{props.shot_name} sound")
            assert sound is not None and sound.type == "SOUND" and int(sound.frame_start) == numbers[0]


@pytest.mark.parametrize("family", FAMILIES)
def test_every_mode_of_a_family_from_nodes(scene, sora_addon, family_models, family, tmp_path):
    model, caps, modes, n = _setup(family_models, family)
    lead = _plate(tmp_path / "render", "lead", 3)
    tail = _plate(tmp_path / "render", "tail", 19)
    name = f"Modes {family}"
    if bpy.data.node_groups.get(name) is not None:
        bpy.data.node_groups.remove(bpy.data.node_groups[name])
    tree = bpy.data.node_groups.new(name, "SoraShotTree")
    sources = {}
    for key, source, path in (("Still", "IMAGE", lead.replace("####", "0003")), ("Lead", "SEQUENCE", lead),
                              ("Tail", "SEQUENCE", tail)):
        sources[key] = tree.nodes.new("SoraRenderInputNode")
        sources[key].name, sources[key].source, sources[key].path = key, source, path
    jobs = {}
    for mode in modes:
        node = jobs[mode] = tree.nodes.new(NODES[mode])
        node.name, node.model, node.prompt, node.steps = mode.title(), model, "a red ball", 1
        node.frames = n - 1 if mode == "extend" else (n if mode in ("generate", "animate") else 0)
        if caps.experts == 2:
            node.guidance_2 = 2.0
    links = {"animate": [("Still", "Image")], "extend": [("Tail", "Shot")], "restyle": [("Lead", "Shot")],
             "interpolate": [("Lead", "From"), ("Tail", "To")]}
    for mode, node in jobs.items():
        if mode == "extend":
            node.direction = "backward"
        for src, socket in links.get(mode, []):
            tree.links.new(sources[src].outputs["Shot"], node.inputs[socket])
    try:
        task = sora_addon.nodes.run_nodes(tree, scene, [node.name for node in jobs.values()], blocking=True)
        assert task.state == "done", task.error
        assert sorted(task.ran) == sorted(node.name for node in jobs.values())
        for mode, node in jobs.items():
            manifest = _check_model(node.result_dir, family)
            numbers = [f["number"] for f in manifest["frames"]]
            assert manifest["spec"]["mode"] == mode and (node.result_first, node.result_count) == (
                numbers[0], len(numbers))
            if mode == "extend":                                # backward: right before the tail's frame 19
                assert numbers[-1] == 18, numbers
            elif mode == "interpolate":                         # the lead's last frame to the tail's first
                assert numbers == list(range(11, 20)), numbers
            elif mode == "restyle":
                assert numbers == list(range(3, 12)), numbers
            else:
                assert numbers == list(range(scene.frame_start, scene.frame_start + n)), numbers
            assert sora_addon.nodes.node_state(node, scene) == "cached"
    finally:
        bpy.data.node_groups.remove(tree)


def test_the_model_list_shows_each_family_with_the_rules_read_from_its_files(sora_addon, family_models):
    from tests.blender.test_panels import FakeLayout, Proxy, labels

    prefs = bpy.context.preferences.addons["sora_blender"].preferences
    prefs.model_folders.add().path = str(Path(family_models["wan-ti2v"]).parent)
    try:
        log = []
        type(prefs).draw(Proxy(prefs, FakeLayout(log)), bpy.context)
        listed = {t.split(":")[0]: t for t in labels(log) if t.startswith("tiny-")}
    finally:
        prefs.model_folders.clear()
    assert listed["tiny-wan-ti2v"] == ("tiny-wan-ti2v: wan-ti2v | modes: generate, animate, restyle; "
                                       "frames 4k+1 up to 121 a pass; size multiple of 32")
    assert listed["tiny-wan-a14b"].endswith("frames 4k+1 up to 81 a pass; size multiple of 16")
    assert "frames 8k+1 up to 257 a pass; size multiple of 32" in listed["tiny-ltx"]
    assert listed["tiny-ltx2-upsampled"].endswith("; two-stage x2 with its latent upsampler")
    assert set(listed) >= {f"tiny-{key}" for key in FAMILIES if key not in ("wan-vace", "tinyworld")}
