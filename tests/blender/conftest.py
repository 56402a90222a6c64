"""bpy fixtures: the add-on enabled once per session (from the source tree), a model to run.

``import bpy`` comes before ``addon_utils``. The add-on is enabled through ``addon_utils`` so its
preferences exist, exactly as in Blender. The worker runs with this venv's Python.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

bpy = pytest.importorskip("bpy")
import addon_utils  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def sora_addon():
    """The enabled add-on module; disabled (worker stopped) at the end of the session."""
    os.environ.setdefault("SORA_WORKER_PYTHON", sys.executable)
    mod = addon_utils.enable("sora_blender", default_set=True, handle_error=None)
    assert mod is not None, "sora_blender failed to enable"
    yield mod
    addon_utils.disable("sora_blender", default_set=True)


@pytest.fixture(scope="session")
def blender_model():
    """The add-on's default model: the bundled TinyWorld, every mode."""
    return "tinyworld"


@pytest.fixture
def scene(sora_addon, tmp_path):
    """The current scene, reset: small render, short range, outputs under tmp_path."""
    sc = bpy.context.scene
    prefs = bpy.context.preferences.addons["sora_blender"].preferences
    prefs.output_dir = str(tmp_path / "sora")
    sc.render.resolution_x, sc.render.resolution_y, sc.render.resolution_percentage = 64, 64, 100
    sc.frame_start, sc.frame_end = 1, 9
    sc.render.fps, sc.render.fps_base = 24, 1.0
    sc.render.use_sequencer = False     # earlier tests' strips would be what a render shows
    # Standard is exactly invertible and quick; AgX's inverse is refined numerically (slow on CPU)
    sc.view_settings.view_transform, sc.view_settings.look = "Standard", "None"
    props = sc.sora
    for name in ("mode", "prompt", "model", "seed", "steps", "guidance", "shot_name", "frames",
                 "last_dir", "use_scene_frames", "use_scene_size",
                 "seq_source", "seq_path", "use_scene_range", "direction", "extend_frames",
                 "context_frames", "link_composite", "add_strip", "strength", "still_source",
                 "still_path", "key_a", "key_b", "guidance_2", "upsample", "transformer_file",
                 "transformer_2_file", "vae_file", "preset"):
        props.property_unset(name)
    props.loras.clear()
    if sc.node_tree is not None:
        for node in list(sc.node_tree.nodes):
            if node.bl_idname == "CompositorNodeImage":
                sc.node_tree.nodes.remove(node)
    sora_addon.live.clear()             # no live state from the test before
    yield sc
    # fetched again: a test that disabled and re-enabled the add-on freed the preferences above,
    # and writing to them would be a use after free (it crashed Blender in one run of five)
    addon = bpy.context.preferences.addons.get("sora_blender")
    if addon is not None:
        addon.preferences.output_dir = ""


def _tiny_model(tmp_path_factory, family: str) -> str:
    """A tiny model folder of ``family`` (tests/fixtures/tiny_models), built in a subprocess."""
    folder = tmp_path_factory.mktemp("blender_" + family) / f"tiny-{family}"
    code = ("import sys; from tests.fixtures import tiny_models; "
            f"tiny_models.BUILDERS[{family!r}](__import__('pathlib').Path(sys.argv[1]))")
    subprocess.run([sys.executable, "-c", code, str(folder)], check=True, cwd=str(ROOT))
    return str(folder)


@pytest.fixture(scope="session")
def tiny_wan_t2v_path(tmp_path_factory):
    """Tiny Wan text-to-video: generate and restyle only."""
    return _tiny_model(tmp_path_factory, "wan-t2v")


@pytest.fixture(scope="session")
def tiny_wan_vace_path(tmp_path_factory):
    """Tiny Wan VACE: generate, animate, extend, interpolate, control."""
    return _tiny_model(tmp_path_factory, "wan-vace")


@pytest.fixture
def tick_until(sora_addon):
    """Pump the add-on's task timer by hand (the bpy module runs no timers) until ``cond()``."""
    import time

    def run(cond, timeout=180.0):
        deadline = time.monotonic() + timeout
        while not cond():
            sora_addon.tasks.tick()
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.02)
    return run



@pytest.fixture(scope="session")
def tiny_ltx2_hdr_path(tmp_path_factory):
    """Tiny LTX-2 HDR: mode hdr only (a display-referred clip in, linear HDR out)."""
    return _tiny_model(tmp_path_factory, "ltx2-hdr")


FAMILY_MODELS = ("wan-t2v", "wan-i2v", "wan-ti2v", "wan-a14b", "wan-a14b-i2v", "ltx", "ltx2",
                 "ltx2-upsampled")


@pytest.fixture(scope="session")
def family_models(tmp_path_factory, tiny_wan_vace_path):
    """A tiny folder of every family the add-on runs (one subprocess builds them all), by the
    tests/fixtures/tiny_models key; VACE is the session's own."""
    root = tmp_path_factory.mktemp("blender_families")
    code = ("import sys, pathlib; from tests.fixtures import tiny_models\n"
            "for key in sys.argv[2:]: tiny_models.BUILDERS[key](pathlib.Path(sys.argv[1]) / f'tiny-{key}')")
    subprocess.run([sys.executable, "-c", code, str(root), *FAMILY_MODELS], check=True, cwd=str(ROOT))
    return {**{key: str(root / f"tiny-{key}") for key in FAMILY_MODELS}, "wan-vace": tiny_wan_vace_path}
