"""From what was rendered: extend a real Cycles EXR sequence forwards and backwards (numbering
continues), and the colour round trip through the scene's own view transform."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import bpy
import pytest

from sora_blender.live import job

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def rendered(scene, tmp_path):
    """Frames 11-13 of the scene rendered by Cycles to linear EXR (64x64, 1 sample)."""
    scene.render.engine = "CYCLES"
    scene.cycles.samples = 1
    scene.cycles.device = "CPU"
    scene.render.resolution_x = scene.render.resolution_y = 64
    scene.frame_start, scene.frame_end = 11, 13
    scene.render.filepath = str(tmp_path / "render" / "beauty.####")
    scene.render.image_settings.file_format = "OPEN_EXR"
    scene.render.image_settings.color_depth = "16"
    if scene.world is None:
        scene.world = bpy.data.worlds.new("World")
    scene.world.color = (0.4, 0.5, 0.8)
    bpy.ops.render.render(animation=True)
    frames = sorted((tmp_path / "render").glob("beauty.*.exr"))
    assert [f.name for f in frames] == ["beauty.0011.exr", "beauty.0012.exr", "beauty.0013.exr"]
    return frames


def _numbers(folder: Path, name: str) -> list[int]:
    return sorted(int(p.name.split(".")[-2]) for p in folder.glob(f"{name}.*.exr"))


@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_extend_render_continues_numbering(scene, rendered, blender_model, direction):
    props = scene.sora
    props.model, props.mode, props.prompt, props.steps = blender_model, "extend", "the camera keeps moving", 2
    props.shot_name, props.direction, props.extend_frames = f"ext_{direction}", direction, 4
    assert bpy.ops.sora.generate() == {"FINISHED"}, job(scene).error
    assert job(scene).state == "DONE", job(scene).error
    out = Path(props.last_dir)
    numbers = _numbers(out, props.shot_name)
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))       # no gaps
    if direction == "forward":
        assert numbers[0] == 14                             # right after the last rendered frame
    else:
        assert numbers[-1] == 10                            # right before the first rendered frame
    manifest = json.loads((out / "manifest.json").read_text())
    spec = manifest["spec"]
    assert spec["mode"] == "extend" and spec["inputs"]["direction"] == direction
    assert spec["inputs"]["frames"].endswith("beauty.####.exr") and spec["inputs"]["frame_range"] == [11, 13]
    assert spec["color"]["view"] == "Standard" and spec["color"]["config"].endswith("config.ocio")
    node = scene.node_tree.nodes[props.shot_name]
    assert node.frame_start == numbers[0] and node.frame_offset == numbers[0] - 1
    assert node.frame_duration == len(numbers)


ROUND_TRIP = r"""
import json, sys
import numpy as np
from sora_core.frames.color import ViewTransform
from sora_core.frames.exr import read_image
color, exr, png = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
t = ViewTransform(color["config"], color["display"], color["view"], color["look"])
lin = read_image(exr)
disp = t.to_display(lin)
blender = read_image(png)                 # what Blender itself shows through the view
back = t.to_linear(disp)
mask = (lin > 0.01) & (lin < 1.0)
print(json.dumps({"view_err": float(np.abs(disp - blender).max()),
                  "round_trip_rel": float((np.abs(back - lin) / np.maximum(lin, 1e-3))[mask].max()),
                  "in_range": bool(disp.min() >= -1e-4 and disp.max() <= 1.0001), "n": int(mask.sum())}))
"""


def test_colour_round_trip_through_the_scene_view(scene, rendered, tmp_path, sora_addon):
    """A rendered linear frame goes to display with the spec's view (as Blender shows it) and back."""
    shots = sora_addon.shots
    scene.view_settings.view_transform = "AgX"
    scene.view_settings.look = "AgX - Punchy"
    color = shots.scene_color(scene)
    assert (color.view, color.display, color.look) == ("AgX", "sRGB", "AgX - Punchy")
    image = bpy.data.images.load(str(rendered[0]))
    png = tmp_path / "blender_view.png"
    settings = scene.render.image_settings
    settings.file_format, settings.color_depth = "PNG", "16"
    image.save_render(str(png), scene=scene)                 # Blender applies the scene's view
    proc = subprocess.run([sys.executable, "-c", ROUND_TRIP, json.dumps(color.__dict__), str(rendered[0]),
                           str(png)], capture_output=True, text=True, timeout=120, cwd=str(ROOT))
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["n"] > 100 and r["in_range"]
    assert r["view_err"] < 0.02, r          # the worker sees the render as the artist sees it
    assert r["round_trip_rel"] < 0.02, r    # and generated frames come back to the same linear values


def test_extend_backward_past_frame_zero_says_what_to_do_in_blender(scene, rendered, blender_model):
    """Frames 11-13 extended backwards by 13 would be numbered -2..10: refused before the worker
    runs, with a fix the panel offers (not the spec field output.first_frame)."""
    props = scene.sora
    props.model, props.mode, props.prompt = blender_model, "extend", "the camera keeps moving"
    props.shot_name, props.direction, props.extend_frames = "ext_too_far", "backward", 13
    with pytest.raises(RuntimeError, match="below 0"):
        bpy.ops.sora.generate()
    assert job(scene).state == "ERROR" and "below 0" in job(scene).error
    assert "render from frame 13 or later" in job(scene).hint and "first_frame" not in job(scene).hint
    root = Path(bpy.context.preferences.addons["sora_blender"].preferences.output_dir)
    assert not (root / "ext_too_far").exists() or not any((root / "ext_too_far").iterdir())
