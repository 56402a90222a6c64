"""Follow Control from Blender: Render Control renders the scene's pass into <shot>/control/ and
shows it in the compositor; Generate in mode control follows it (a tiny Wan VACE); the same
through a Render Control -> Follow Control node graph."""

from __future__ import annotations

import json
from pathlib import Path

import bpy
import pytest

from sora_blender.live import job
from tests.blender.test_control_passes import blockout  # noqa: F401  (the fixture)
from tests.blender.test_panels import Self


def _draw(scene):
    log = []
    with bpy.context.temp_override(scene=scene):
        bpy.types.SORA_PT_view3d.draw(Self(log), bpy.context)
    return log


def test_render_control_then_follow_it_from_the_panel_and_from_nodes(blockout, sora_addon,  # noqa: F811
                                                                    tiny_wan_vace_path, tmp_path):
    prefs = bpy.context.preferences.addons["sora_blender"].preferences
    prefs.output_dir = str(tmp_path / "sora")
    scene = blockout
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 72, 50, 100
    scene.view_settings.view_transform, scene.view_settings.look = "Standard", "None"
    props = scene.sora
    props.model, props.mode, props.prompt, props.steps = tiny_wan_vace_path, "control", "a red ball", 2
    props.shot_name, props.control_kind = "follow", "depth"
    log = _draw(scene)
    assert ("prop_enum", "control", True) in log                   # VACE follows control
    assert any(e[:2] == ("operator", "sora.render_control") for e in log)
    assert "Frames: 5 in one pass" in [e[1] for e in log if e[0] == "label"]   # the scene's range
    with bpy.context.temp_override(scene=scene):
        with pytest.raises(RuntimeError, match="Render Control"):
            bpy.ops.sora.generate()                                # nothing rendered yet: says what to do
        assert bpy.ops.sora.render_control() == {"FINISHED"}
    control = tmp_path / "sora" / "follow" / "control"
    assert [f.name for f in sorted(control.glob("depth.*.png"))] == [f"depth.{n:04d}.png" for n in range(1, 6)]
    sizes = {tuple(bpy.data.images.load(str(f)).size) for f in control.glob("depth.*.png")}
    assert sizes == {(64, 48)}, sizes                  # rendered at the size the model makes (72x50 fitted)
    preview = scene.node_tree.nodes["follow control"]
    assert preview.image.colorspace_settings.name == "Non-Color" and preview.frame_duration == 5

    with bpy.context.temp_override(scene=scene):
        assert bpy.ops.sora.generate() == {"FINISHED"}
    assert job(scene).state == "DONE", job(scene).error
    manifest = json.loads((Path(props.last_dir) / "manifest.json").read_text())
    assert [f["number"] for f in manifest["frames"]] == [1, 2, 3, 4, 5]
    assert manifest["spec"]["mode"] == "control" and manifest["spec"]["inputs"]["control_kind"] == "depth"
    assert manifest["spec"]["inputs"]["control"] == str(control / "depth.####.png")

    nodes = sora_addon.nodes
    tree = bpy.data.node_groups.new("ControlShots", "SoraShotTree")
    try:
        render = tree.nodes.new("SoraRenderControlNode")
        render.name, render.control_kind = "Blockout", "edges"
        follow = tree.nodes.new("SoraControlNode")
        follow.name, follow.model, follow.prompt, follow.steps = "Follow", tiny_wan_vace_path, "a ball", 2
        tree.links.new(render.outputs["Control"], follow.inputs["Control"])
        task = nodes.run_nodes(tree, scene, ["Follow"], blocking=True)
        assert task.state == "done", task.error
        assert task.local == ["Blockout"] and task.ran == ["Follow"]
        assert sora_addon.live.node(render).status == "rendered edges"
        assert render.result_count == 5 and Path(render.result_dir).name == "control"
        edge = next(Path(render.result_dir).glob("edges.*.png"))
        assert tuple(bpy.data.images.load(str(edge)).size) == (64, 48)     # the Follow node's size
        assert follow.result_count == 5 and follow.result_first == 1
        spec = json.loads((Path(follow.result_dir) / "manifest.json").read_text())["spec"]
        assert spec["inputs"]["control_kind"] == "edges"           # the Render Control node says it
    finally:
        bpy.data.node_groups.remove(tree)
        prefs.output_dir = ""
