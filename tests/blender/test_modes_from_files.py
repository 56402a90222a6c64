"""Animate Still, Fill Frames and Restyle from the panel and from nodes (the bundled TinyWorld):
each shot is made by the worker and lands in the compositor, numbered as the mode says."""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np

from sora_blender.live import job
from sora_core.frames.exr import write_exr


def _sequence(folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10):
        img = np.full((64, 64, 3), 0.05, np.float32)
        img[20:36, 4 + 4 * n:20 + 4 * n] = (0.8, 0.1, 0.05)
        write_exr(folder / f"plate.{n:04d}.exr", img, {})
    return str(folder / "plate.####.exr")


def _landed(scene, name: str) -> list[int]:
    """The frame numbers of the compositor node ``name``'s shot."""
    node = scene.node_tree.nodes[name]
    folder = Path(bpy.path.abspath(node.image.filepath)).parent
    return sorted(int(p.name.split(".")[-2]) for p in folder.glob("*.exr"))


def test_animate_fill_and_restyle_from_the_panel(scene, blender_model, tmp_path):
    pattern = _sequence(tmp_path / "render")
    props = scene.sora
    props.model, props.prompt, props.steps = blender_model, "a red ball moving right", 2
    props.seq_source, props.seq_path = "PATH", pattern
    props.mode, props.shot_name, props.still_source = "animate", "anim", "FILE"
    props.still_path, props.frames = pattern.replace("####", "0001"), 6
    cases = {"animate": ("anim", list(range(1, 7)))}
    assert bpy.ops.sora.generate() == {"FINISHED"}, job(scene).error
    props.mode, props.shot_name, props.key_a, props.key_b = "interpolate", "fill", 2, 7
    cases["interpolate"] = ("fill", list(range(2, 8)))
    assert bpy.ops.sora.generate() == {"FINISHED"}, job(scene).error
    props.mode, props.shot_name, props.use_scene_range = "restyle", "style", True
    cases["restyle"] = ("style", list(range(1, 10)))
    assert bpy.ops.sora.generate() == {"FINISHED"}, job(scene).error
    for mode, (name, numbers) in cases.items():
        assert _landed(scene, name) == numbers, mode


def test_animate_and_restyle_nodes_take_their_linked_inputs(scene, sora_addon, tmp_path):
    pattern = _sequence(tmp_path / "render")
    old = bpy.data.node_groups.get("Files")
    if old is not None:
        bpy.data.node_groups.remove(old)
    tree = bpy.data.node_groups.new("Files", "SoraShotTree")
    still = tree.nodes.new("SoraRenderInputNode")
    still.name, still.source, still.path = "Still", "IMAGE", pattern.replace("####", "0001")
    plate = tree.nodes.new("SoraRenderInputNode")
    plate.name, plate.source, plate.path = "Plate", "SEQUENCE", pattern
    anim = tree.nodes.new("SoraAnimateNode")
    anim.name, anim.model, anim.steps, anim.frames, anim.prompt = "Animate", "tinyworld", 2, 5, "a red ball"
    style = tree.nodes.new("SoraRestyleNode")
    style.name, style.model, style.steps, style.prompt = "Restyle", "tinyworld", 2, "a blue ball"
    tree.links.new(still.outputs["Shot"], anim.inputs["Image"])
    tree.links.new(plate.outputs["Shot"], style.inputs["Shot"])
    task = sora_addon.nodes.run_nodes(tree, scene, ["Animate", "Restyle"], blocking=True)
    assert task.state == "done", task.error
    assert sorted(task.ran) == ["Animate", "Restyle"]
    assert (anim.result_first, anim.result_count) == (scene.frame_start, 5)
    assert (style.result_first, style.result_count) == (1, 9)
