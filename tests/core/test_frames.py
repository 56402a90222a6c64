"""Frame files: atomic half EXR with provenance, reading stills, finding sequences."""

import os

import numpy as np
import pytest

pytest.importorskip("OpenImageIO")

from sora_core.errors import SoraError  # noqa: E402
from sora_core.frames.exr import read_attrs, read_image, write_exr  # noqa: E402
from sora_core.frames.sequence import find_sequence, frame_name, frame_path  # noqa: E402

PROV = {"sora:generator": "sora_core", "sora:model": "tiny-ltx", "sora:prompt": "a red ball, moving ↗",
        "sora:seed": "42", "sora:version": "0.1.0"}


def linear_image(h=24, w=40, seed=0):
    return np.random.default_rng(seed).uniform(0.0, 8.0, (h, w, 3)).astype(np.float32)


@pytest.mark.parametrize("compression", ["zip", "piz"])
def test_exr_round_trip_half_float_with_provenance(tmp_path, compression):
    import OpenImageIO as oiio

    img = linear_image()
    path = write_exr(tmp_path / "shot.0001.exr", img, PROV, compression=compression)
    assert path == tmp_path / "shot.0001.exr"
    assert os.listdir(tmp_path) == ["shot.0001.exr"]     # no temp file left behind
    back = read_image(path)
    assert back.shape == img.shape and back.dtype == np.float32
    np.testing.assert_allclose(back, img, rtol=1e-3, atol=1e-3)   # half precision
    attrs = read_attrs(path)
    for key, value in PROV.items():
        assert attrs[key] == value
    assert attrs["compression"] == compression
    inp = oiio.ImageInput.open(str(path))
    spec = inp.spec()
    inp.close()
    assert spec.format == oiio.TypeDesc("half") and list(spec.channelnames) == ["R", "G", "B"]


def test_exr_write_replaces_atomically_and_cleans_up_on_failure(tmp_path):
    path = tmp_path / "a.0001.exr"
    write_exr(path, linear_image(seed=1), {})
    write_exr(path, linear_image(seed=2), {})
    assert os.listdir(tmp_path) == ["a.0001.exr"]   # replaced, no temporary left
    blocked = tmp_path / "a.0002.exr"
    blocked.mkdir()
    (blocked / "keep").write_text("x")              # a rename onto a full folder fails for real
    with pytest.raises(OSError):
        write_exr(blocked, linear_image(seed=2), {})
    assert sorted(os.listdir(tmp_path)) == ["a.0001.exr", "a.0002.exr"]  # the temp file is gone


def test_exr_write_refuses_bad_shape_without_leaving_files(tmp_path):
    with pytest.raises(SoraError):
        write_exr(tmp_path / "x.exr", np.zeros((4, 4), np.float32), {})
    assert os.listdir(tmp_path) == []


def test_read_png_jpeg_gray_and_alpha(tmp_path):
    import OpenImageIO as oiio

    rgba = np.zeros((8, 10, 4), np.float32)
    rgba[..., 0], rgba[..., 3] = 1.0, 0.5
    oiio.ImageBuf(rgba).write(str(tmp_path / "rgba.png"))
    gray = np.full((8, 10, 1), 0.25, np.float32)
    oiio.ImageBuf(gray).write(str(tmp_path / "gray.png"))
    oiio.ImageBuf(np.repeat(gray, 3, -1)).write(str(tmp_path / "still.jpg"))
    a = read_image(tmp_path / "rgba.png")
    assert a.shape == (8, 10, 3) and np.allclose(a[..., 0], 1.0) and np.allclose(a[..., 1:], 0.0)
    g = read_image(tmp_path / "gray.png")
    assert g.shape == (8, 10, 3) and np.allclose(g, 0.25, atol=1 / 255)
    j = read_image(tmp_path / "still.jpg")
    assert j.shape == (8, 10, 3) and np.allclose(j, 0.25, atol=3 / 255)


def test_read_blender_multilayer_exr_takes_the_combined_pass(tmp_path):
    import OpenImageIO as oiio

    names = ["ViewLayer.Combined.A", "ViewLayer.Combined.B", "ViewLayer.Combined.G",
             "ViewLayer.Combined.R", "ViewLayer.Depth.Z"]
    spec = oiio.ImageSpec(6, 4, len(names), "half")
    spec.channelnames = tuple(names)
    data = np.zeros((4, 6, len(names)), np.float32)
    data[..., 3], data[..., 2], data[..., 1], data[..., 0], data[..., 4] = 0.75, 0.5, 0.25, 1.0, 9.0
    out = oiio.ImageOutput.create(str(tmp_path / "ml.exr"))
    assert out.open(str(tmp_path / "ml.exr"), spec) and out.write_image(data) and out.close()
    rgb = read_image(tmp_path / "ml.exr")
    assert rgb.shape == (4, 6, 3)
    np.testing.assert_allclose(rgb[0, 0], [0.75, 0.5, 0.25])


def test_missing_corrupt_and_truncated_files_are_refused_by_name(tmp_path):
    with pytest.raises(SoraError) as err:
        read_image(tmp_path / "nope.exr")
    assert err.value.code == "not_found" and "nope.exr" in err.value.message

    good = write_exr(tmp_path / "good.exr", linear_image(64, 64), PROV)
    data = good.read_bytes()
    (tmp_path / "truncated.exr").write_bytes(data[: len(data) // 2])
    (tmp_path / "header_only.exr").write_bytes(data[:120])
    (tmp_path / "garbage.exr").write_bytes(b"not an image at all " * 20)
    for name in ("truncated.exr", "header_only.exr", "garbage.exr"):
        with pytest.raises(SoraError) as err:
            read_image(tmp_path / name)
        assert err.value.code == "invalid_input" and name in err.value.message
        assert err.value.exit_code == 2
    with pytest.raises(SoraError) as err:
        read_attrs(tmp_path / "garbage.exr")
    assert err.value.code == "invalid_input"


def test_frame_names_pad_to_four_digits_and_grow():
    assert frame_name("shot", 1) == "shot.0001.exr"
    assert frame_name("shot", 12345) == "shot.12345.exr"
    assert frame_path("/out", "ball", 7).as_posix() == "/out/ball.0007.exr"
    with pytest.raises(SoraError):
        frame_name("shot", -1)


def touch_sequence(folder, name, numbers, ext=".exr", sep="."):
    folder.mkdir(parents=True, exist_ok=True)
    for n in numbers:
        (folder / f"{name}{sep}{n:04d}{ext}").write_bytes(b"x")


def test_find_sequence_patterns_folders_and_files(tmp_path):
    seq = tmp_path / "render"
    touch_sequence(seq, "beauty", [12, 10, 11, 13])
    (seq / ".beauty.0014.sora-tmp-abc.exr").write_bytes(b"x")   # temp files are ignored
    expected = [(n, seq / f"beauty.{n:04d}.exr") for n in (10, 11, 12, 13)]
    assert find_sequence(seq / "beauty.####.exr") == expected
    assert find_sequence(f"{seq}/beauty.%04d.exr") == expected
    assert find_sequence(seq) == expected
    assert find_sequence(str(seq / "beauty.####.exr"), [11, 12]) == expected[1:3]
    assert find_sequence(seq / "beauty.0012.exr") == [(12, seq / "beauty.0012.exr")]

    blender = tmp_path / "bl"
    touch_sequence(blender, "frame", [1, 2, 3], ext=".png", sep="_")
    assert [n for n, _ in find_sequence(blender / "frame_####")] == [1, 2, 3]


def test_find_sequence_errors_are_clear(tmp_path):
    seq = tmp_path / "render"
    touch_sequence(seq, "beauty", [1, 2, 4])
    with pytest.raises(SoraError) as err:
        find_sequence(seq / "beauty.####.exr", [1, 4])
    assert err.value.code == "not_found" and "3" in err.value.message
    with pytest.raises(SoraError) as err:
        find_sequence(seq / "other.####.exr")
    assert err.value.code == "not_found" and "other" in err.value.message
    with pytest.raises(SoraError) as err:
        find_sequence(tmp_path / "missing" / "x.####.exr")
    assert err.value.code == "not_found"
    (tmp_path / "empty").mkdir()
    with pytest.raises(SoraError) as err:
        find_sequence(tmp_path / "empty")
    assert err.value.code == "not_found"
    touch_sequence(seq, "depth", [1, 2])
    with pytest.raises(SoraError) as err:
        find_sequence(seq)
    assert err.value.code == "invalid_input" and "beauty" in err.value.message and "depth" in err.value.message
