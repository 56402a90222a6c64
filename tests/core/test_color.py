"""The view transform: display <-> scene linear through OCIO, and conditioning inputs."""

import numpy as np
import pytest

pytest.importorskip("OpenImageIO")

from sora_core.errors import SoraError  # noqa: E402
from sora_core.frames.color import ViewTransform, blender_config_path, load_conditioning  # noqa: E402
from sora_core.frames.exr import write_exr  # noqa: E402

BLENDER_CONFIG = blender_config_path()
needs_blender = pytest.mark.skipif(BLENDER_CONFIG is None, reason="bpy (Blender's config.ocio) not installed")


def in_gamut_display(transform, seed=0, size=32):
    """Display values the view can produce: the forward view of ordinary scene colours
    (each channel 2^-7 .. 8 in scene linear: deep shadows to bright highlights)."""
    rng = np.random.default_rng(seed)
    scene = np.exp2(rng.uniform(-7, 3, (size, size, 3))).astype(np.float32)
    return transform.to_display(scene)


def test_default_transform_is_the_plain_srgb_curve_and_round_trips():
    t = ViewTransform()
    assert t.describe()["view"] == "Un-tone-mapped" and t.describe()["config"] == "builtin"
    x = np.random.default_rng(1).uniform(0, 1, (32, 32, 3)).astype(np.float32)
    lin = t.to_linear(x)
    srgb_decoded = np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)
    np.testing.assert_allclose(lin, srgb_decoded, atol=1e-4)
    assert np.abs(t.to_display(lin) - x).max() < 1e-3


@needs_blender
@pytest.mark.parametrize("view", ["Standard", "AgX"])
def test_blender_views_round_trip_display_scene_display(view):
    t = ViewTransform(BLENDER_CONFIG, "sRGB", view)
    x = in_gamut_display(t, seed=2)
    lin = t.to_linear(x)
    assert lin.dtype == np.float32 and lin.shape == x.shape
    assert np.abs(t.to_display(lin) - x).max() < 1e-3
    if view == "Standard":      # exactly invertible: any display value round-trips
        y = np.random.default_rng(3).uniform(0, 1, (16, 16, 3)).astype(np.float32)
        assert np.abs(t.to_display(t.to_linear(y)) - y).max() < 1e-3


@needs_blender
def test_agx_is_not_the_standard_view():
    agx = ViewTransform(BLENDER_CONFIG, "sRGB", "AgX")
    std = ViewTransform(BLENDER_CONFIG, "sRGB", "Standard")
    bright = np.full((2, 2, 3), 4.0, np.float32)      # Standard clips, AgX rolls off
    assert std.to_display(bright).min() == 1.0 and agx.to_display(bright).max() < 0.99
    assert agx.describe()["scene_linear"] == "Linear Rec.709"


def test_unknown_names_and_missing_config_are_refused(tmp_path):
    with pytest.raises(SoraError) as err:
        ViewTransform(None, "No Such Display")
    assert err.value.field == "color.display" and "sRGB - Display" in err.value.message
    with pytest.raises(SoraError) as err:
        ViewTransform(None, None, "Nope")
    assert err.value.field == "color.view" and "Un-tone-mapped" in err.value.message
    with pytest.raises(SoraError) as err:
        ViewTransform(tmp_path / "missing.ocio")
    assert err.value.code == "not_found"


def test_load_conditioning_exr_goes_through_the_view_and_is_resized(tmp_path):
    import OpenImageIO as oiio

    t = ViewTransform()
    lin = np.full((20, 30, 3), 0.18, np.float32)
    write_exr(tmp_path / "r.0001.exr", lin, {})
    img = load_conditioning(tmp_path / "r.0001.exr", t, 32, 16)
    assert img.shape == (16, 32, 3) and img.dtype == np.float32
    np.testing.assert_allclose(img, t.to_display(lin)[:16, :30].mean(), atol=2e-3)   # ~0.46
    png = np.full((10, 10, 3), 0.5, np.float32)
    oiio.ImageBuf(png).write(str(tmp_path / "still.png"))
    img = load_conditioning(tmp_path / "still.png", t, 32, 32)      # already display-referred
    assert img.shape == (32, 32, 3) and np.allclose(img, 128 / 255, atol=2e-3)
    hot = np.full((8, 8, 3), 50.0, np.float32)
    write_exr(tmp_path / "hot.exr", hot, {})
    assert load_conditioning(tmp_path / "hot.exr", t, 8, 8).max() <= 1.0


@needs_blender
def test_process_default_config_is_used_unnamed_and_the_builtin_stays_builtin(tmp_path):
    """With OCIO=<Blender's config> (the fast path: OIIO keeps its default config parsed),
    Blender's views still resolve and the built-in default still means the built-in config."""
    import os
    import subprocess
    import sys

    code = (
        "import numpy as np\n"
        "from sora_core.frames.color import ViewTransform, blender_config_path\n"
        "b = ViewTransform(blender_config_path(), 'sRGB', 'AgX')\n"
        "d = ViewTransform()\n"
        "assert b._colorconfig == '' and d._colorconfig == 'ocio://default', (b._colorconfig, d._colorconfig)\n"
        "assert d.describe()['view'] == 'Un-tone-mapped'\n"
        "g = np.full((2, 2, 3), 0.18, np.float32)\n"
        "assert abs(float(d.to_display(g)[0, 0, 0]) - 0.4614) < 1e-3\n"
        "x = b.to_display(np.exp2(np.random.default_rng(0).uniform(-5, 2, (8, 8, 3))).astype(np.float32))\n"
        "assert np.abs(b.to_display(b.to_linear(x)) - x).max() < 1e-3\n"
        "print('ok')\n")
    env = dict(os.environ, OCIO=str(BLENDER_CONFIG))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-2000:]
