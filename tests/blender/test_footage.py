"""Import Footage (sora ingest run by the worker Python) lands in the compositor like a shot, and
the Timings sub-panel shows where the last shot's time went, from its manifest."""

from __future__ import annotations

import json
from pathlib import Path

import bpy
import numpy as np

from sora_blender.live import job
from tests.blender.test_panels import Self


def _png_frames(folder: Path, count: int = 3) -> str:
    import OpenImageIO as oiio
    folder.mkdir()
    for n in range(1, count + 1):
        pixels = np.full((24, 32, 3), 0.1 * n, np.float32)
        out = oiio.ImageOutput.create(str(folder / f"plate.{n:04d}.png"))
        out.open(str(folder / f"plate.{n:04d}.png"), oiio.ImageSpec(32, 24, 3, "uint8"))
        out.write_image(pixels)
        out.close()
    return str(folder / "plate.####.png")


def test_import_footage_then_the_timings_sub_panel(scene, sora_addon, tmp_path):
    pattern = _png_frames(tmp_path / "elsewhere")
    scene.frame_start = 101
    log = []
    bpy.types.SORA_PT_view3d.draw(Self(log), bpy.context)
    assert any(e[:2] == ("operator", "sora.import_footage") for e in log)
    assert bpy.ops.sora.import_footage(filepath=pattern, name="plate") == {"FINISHED"}
    state = job(scene)
    assert state.state == "DONE", state.error
    folder = Path(scene.sora.last_dir)
    assert folder.name == "v001" and folder.parent.name == "plate"
    assert sorted(f.name for f in folder.glob("*.exr")) == [f"plate.{n:04d}.exr" for n in (101, 102, 103)]
    manifest = json.loads((folder / "manifest.json").read_text())
    node = scene.node_tree.nodes["plate"]
    assert node.frame_duration == 3 and node.frame_start == 101
    assert node.image.colorspace_settings.name == "Linear Rec.709"

    sub = bpy.types.SORA_PT_view3d_timings
    assert sub.bl_parent_id == "SORA_PT_view3d"
    log = []
    sub.draw(Self(log), bpy.context)
    text = [e[1] for e in log if e[0] == "label"]
    total = manifest["timings"]["total_s"]
    assert text[0].startswith("Shot: load ") and f"total {total:.2f} s" in text[0], text
    assert len(text) == 1 + len(manifest["timings"].get("passes", []))

    missing = bpy.ops.sora.import_footage
    try:
        missing(filepath=str(tmp_path / "nope.mp4"))
        raise AssertionError("a missing file was imported")
    except RuntimeError as exc:
        assert "no such file" in str(exc)


def test_import_footage_refusal_shows_the_ingest_error(scene, sora_addon, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video")
    try:
        bpy.ops.sora.import_footage(filepath=str(notes), name="notes")
        raise AssertionError("a text file was imported")
    except RuntimeError:
        pass
    state = job(scene)
    assert state.state == "ERROR" and state.error.startswith("[invalid_input]"), state.error
