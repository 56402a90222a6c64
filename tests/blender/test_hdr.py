"""Mode hdr in Blender, from a tiny LTX-2 HDR folder: the panel's Generate and an HDR node turn a
rendered clip into scene-linear EXR frames that keep values above 1.0 through the compositor."""

from __future__ import annotations

from pathlib import Path

import bpy
import numpy as np

from sora_blender.live import job
from sora_core.frames.exr import read_image, write_exr


def _clip(folder: Path) -> str:
    """Nine display-referred frames (a dim ramp: nothing above 1.0 goes in)."""
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(1, 10):
        write_exr(folder / f"beauty.{n:04d}.exr", np.full((64, 64, 3), 0.05 * n, np.float32), {})
    return str(folder / "beauty.####.exr")


def _through_the_compositor(scene, node_name: str, out: Path) -> np.ndarray:
    """Frame 1 of the compositor Image node ``node_name`` as the Composite output writes it."""
    tree = scene.node_tree
    comp = next((n for n in tree.nodes if n.bl_idname == "CompositorNodeComposite"), None) \
        or tree.nodes.new("CompositorNodeComposite")
    tree.links.new(tree.nodes[node_name].outputs["Image"], comp.inputs["Image"])
    render = scene.render
    render.engine, render.use_compositing = "CYCLES", True
    scene.cycles.samples = 1
    render.image_settings.file_format, render.image_settings.color_depth = "OPEN_EXR", "32"
    render.filepath = str(out)
    scene.frame_set(1)
    bpy.ops.render.render(write_still=True)
    return read_image(out)


def test_hdr_from_the_panel_lands_linear_frames_above_one_in_the_compositor(scene, tiny_ltx2_hdr_path,
                                                                             tmp_path):
    props = scene.sora
    props.model, props.mode, props.shot_name, props.steps = tiny_ltx2_hdr_path, "hdr", "hdr", 2
    props.seq_source, props.seq_path = "PATH", _clip(tmp_path / "render")
    assert bpy.ops.sora.generate() == {"FINISHED"}
    assert job(scene).state == "DONE", job(scene).error
    frames = sorted(Path(props.last_dir).glob("hdr.*.exr"))
    assert [f.name for f in frames] == [f"hdr.{n:04d}.exr" for n in range(1, 10)]
    assert max(read_image(f).max() for f in frames) > 1.0
    node = scene.node_tree.nodes["hdr"]
    assert node.image.colorspace_settings.name == "Linear Rec.709"
    assert Path(bpy.path.abspath(node.image.filepath)) == frames[0]
    composited = _through_the_compositor(scene, "hdr", tmp_path / "comp.exr")
    assert np.allclose(composited[..., :3], read_image(frames[0]), atol=2e-3)    # written as it is
    assert composited.max() > 1.0


def test_an_hdr_node_turns_a_linked_clip_into_hdr_in_the_compositor(scene, sora_addon, tiny_ltx2_hdr_path,
                                                                     tmp_path):
    old = bpy.data.node_groups.get("HDR")
    if old is not None:
        bpy.data.node_groups.remove(old)
    tree = bpy.data.node_groups.new("HDR", "SoraShotTree")
    src = tree.nodes.new("SoraRenderInputNode")
    src.name, src.source, src.path = "Render", "SEQUENCE", _clip(tmp_path / "render")
    hdr = tree.nodes.new("SoraHDRNode")
    hdr.name, hdr.model, hdr.steps = "HDR", tiny_ltx2_hdr_path, 2
    out = tree.nodes.new("SoraCompositorOutputNode")
    out.name = "Graded"
    tree.links.new(src.outputs["Shot"], hdr.inputs["Shot"])
    tree.links.new(hdr.outputs["Shot"], out.inputs["Shot"])
    task = sora_addon.nodes.run_nodes(tree, scene, ["Graded"], blocking=True)
    assert task.state == "done", task.error
    assert task.ran == ["HDR"] and (hdr.result_first, hdr.result_count) == (1, 9)
    first = Path(hdr.result_dir) / hdr.result_pattern.replace("####", "0001")
    assert first.is_file() and read_image(first).max() > 1.0
    assert sora_addon.nodes.node_state(hdr, scene) == "cached"
    composited = _through_the_compositor(scene, "Graded", tmp_path / "comp.exr")
    assert composited.max() > 1.0
