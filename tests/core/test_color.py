"""The view transform: display <-> scene linear through OCIO's processors, and conditioning inputs."""

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
    lin = t.to_linear(x, exact=True)
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



# -- the previous implementation (OpenImageIO's ociodisplay/ociolook) as the reference -----------
BLENDER_CASES = [("Standard", None), ("AgX", None), ("AgX", "AgX - Punchy"), ("Filmic", "Medium High Contrast"),
                 ("Khronos PBR Neutral", None)]


def oiio_view(t, pixels, inverse=False):
    """What ViewTransform did before OCIO's own processors: OIIO's ociolook + ociodisplay."""
    import OpenImageIO as oiio

    cfg = t.config or "ocio://default"
    buf = oiio.ImageBuf(np.ascontiguousarray(pixels, np.float32))
    view = lambda b: oiio.ImageBufAlgo.ociodisplay(b, t.display, t.view, fromspace=t.scene,  # noqa: E731
                                                   unpremult=False, inverse=inverse, colorconfig=cfg)
    look = lambda b: oiio.ImageBufAlgo.ociolook(b, t.look, t.scene, t.scene, unpremult=False,  # noqa: E731
                                                inverse=inverse, colorconfig=cfg)
    steps = ([view, look] if inverse else [look, view]) if t.look else [view]
    for step in steps:
        buf = step(buf)
    return buf.get_pixels(oiio.FLOAT)


@needs_blender
@pytest.mark.parametrize("view,look", BLENDER_CASES)
def test_forward_view_equals_the_previous_implementation(view, look):
    t = ViewTransform(BLENDER_CONFIG, "sRGB", view, look)
    scene = np.exp2(np.random.default_rng(4).uniform(-9, 5, (48, 48, 3))).astype(np.float32)
    old = np.clip(oiio_view(t, scene), 0, 1)
    assert np.abs(t.to_display(scene) - old).max() < 1e-4


@needs_blender
@pytest.mark.parametrize("view,look", BLENDER_CASES)
def test_inverse_equals_the_previous_implementation_where_it_was_exact(view, look):
    """Exactly invertible views: OCIO's inverse, as before (relative 1e-4 in scene linear).
    Baked views: the display the new inverse gives back is within 1e-4 of what the previous
    solver gave back where the baked table is accurate, and the exact path matches it."""
    t = ViewTransform(BLENDER_CONFIG, "sRGB", view, look)
    x = in_gamut_display(t, seed=5, size=24)
    if t.exact_inverse:
        old = oiio_view(t, x, inverse=True)
        np.testing.assert_allclose(t.to_linear(x), old, rtol=1e-4, atol=1e-6)
        assert t.describe()["inverse"] == "exact"
        return
    described = t.describe()
    assert described["inverse"] in ("baked", "solved") and view != "Standard"
    exact = t.to_linear(x, exact=True)
    assert np.abs(t.to_display(exact) - x).max() < 1e-3          # the solver, as before
    error = described["inverse_error"]                           # measured on ordinary colours
    assert error["grid"] == 65
    natural = t.to_display((np.exp2(np.random.default_rng(6).uniform(-6, 3, (4000, 1))) *
                            (1 + np.random.default_rng(7).uniform(-0.5, 0.5, (4000, 3)))).astype(np.float32))
    back = np.abs(t.to_display(t.to_linear(natural)) - natural).max(-1)
    if described["inverse"] == "baked":
        assert error["mean"] < 2e-3 and error["p99"] <= 1e-2
        assert np.percentile(back, 99) < 1.5e-2 and np.median(back) < 1e-3
    else:                                                        # too coarse to bake: polished
        assert error["p99"] > 1e-2 and np.percentile(back, 99) < 1e-3


def test_default_transform_is_the_builtin_config_whatever_ocio_says(monkeypatch):
    if BLENDER_CONFIG is not None:
        monkeypatch.setenv("OCIO", str(BLENDER_CONFIG))
    t = ViewTransform()
    assert t.describe()["config"] == "builtin" and t.view == "Un-tone-mapped"
    g = np.full((2, 2, 3), 0.18, np.float32)
    assert abs(float(t.to_display(g)[0, 0, 0]) - 0.4614) < 1e-3


@needs_blender
def test_the_baked_inverse_is_solved_once_and_cached_on_disk_by_config(tmp_path, monkeypatch):
    import shutil

    from sora_core.frames import inverse

    monkeypatch.setenv("SORA_CACHE_DIR", str(tmp_path / "cache"))
    cfg_dir = tmp_path / "cm"
    shutil.copytree(BLENDER_CONFIG.parent, cfg_dir)
    t = ViewTransform(cfg_dir / "config.ocio", "sRGB", "AgX")
    monkeypatch.setattr(inverse, "_TABLES", {})
    solved = inverse.table(t, size=9)
    files = list((tmp_path / "cache" / "color").glob("inverse-*.npz"))
    assert len(files) == 1
    calls = []
    monkeypatch.setattr(inverse, "_TABLES", {})
    monkeypatch.setattr(inverse, "solve_table", lambda *a: calls.append(a))
    again = inverse.table(t, size=9)                     # read back, not solved again
    assert not calls and np.array_equal(again.u, solved.u)
    with open(cfg_dir / "config.ocio", "a") as fh:       # an edited config is another key
        fh.write("\n# edited\n")
    assert inverse.cache_key(ViewTransform(cfg_dir / "config.ocio", "sRGB", "AgX"), 9) != inverse.cache_key(t, 9)


def test_processors_are_built_once_and_shared_across_threads():
    from concurrent.futures import ThreadPoolExecutor

    t = ViewTransform()
    assert t.processor() is ViewTransform().processor()
    frames = [np.random.default_rng(i).uniform(0, 1, (64, 64, 3)).astype(np.float32) for i in range(8)]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(t.to_linear, frames))
    for frame, lin in zip(frames, threaded):
        assert np.array_equal(lin, t.to_linear(frame))


@pytest.mark.parametrize("view", [None, "Standard", "Filmic", "AgX"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_8_and_16_bit_codes_match_the_float_path(view, dtype):
    """Codes as a PNG or a video stores them go straight into OCIO's integer-input processor
    (a table for the display curve) and land where the float path puts code / max."""
    if view is not None and BLENDER_CONFIG is None:
        pytest.skip("bpy (Blender's config.ocio) not installed")
    t = ViewTransform(BLENDER_CONFIG, "sRGB", view) if view else ViewTransform()
    top = np.iinfo(dtype).max
    codes = np.random.default_rng(3).integers(0, top + 1, (48, 64, 3)).astype(dtype)
    codes[0, :3] = [[0, 0, 0], [top, top, top], [0, top, 1]]
    fast = t.to_linear(codes)
    slow = t.to_linear(codes.astype(np.float32) / top)
    assert fast.dtype == np.float32 and fast.shape == codes.shape
    assert (np.abs(fast - slow) <= 1e-4 * np.maximum(1.0, np.abs(slow))).all()
    if t.exact_inverse:     # baked views (AgX, Filmic here) go through their 3-D table in floats
        assert t.integer_processor(dtype) is not None


def test_a_look_named_the_blender_way_is_found_under_its_config_name():
    """Blender shows some looks as '<view> - <look>'; the add-on passes that name as it is."""
    t = ViewTransform(BLENDER_CONFIG, "sRGB", "Filmic", "Filmic - Medium High Contrast")
    assert t.look == "Medium High Contrast"
    assert ViewTransform(BLENDER_CONFIG, "sRGB", "AgX", "AgX - Punchy").look == "AgX - Punchy"
    with pytest.raises(SoraError, match="not a look"):
        ViewTransform(BLENDER_CONFIG, "sRGB", "AgX", "AgX - Nope")
