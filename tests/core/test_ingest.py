"""``sora ingest``: footage from elsewhere -> scene-linear half EXR + manifest, no worker."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("OpenImageIO")
av = pytest.importorskip("av")

from sora_core.errors import SoraError  # noqa: E402
from sora_core.frames.color import ViewTransform, blender_config_path  # noqa: E402
from sora_core.frames.exr import read_attrs, read_image  # noqa: E402
from sora_core.ingest import ingest  # noqa: E402
from sora_core.manifest import read_manifest, sha256_file, verify_frames  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def make_mp4(path, frames=10, w=96, h=64, fps=12):
    """A small H.264 clip made with PyAV: a gradient with a square moving right."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(frames):
            img = np.zeros((h, w, 3), np.uint8)
            img[..., 1] = np.linspace(0, 255, w, dtype=np.uint8)[None]
            img[..., 2] = (60 + 15 * i) % 256
            img[16:36, 4 + 6 * i: 24 + 6 * i, 0] = 220
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def decoded(path):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24").astype(np.float32) / 255 for f in c.decode(video=0)]


def run_cli(*args, cwd):
    """``sora ingest`` in a fresh Python, which must not import torch along the way."""
    code = ("import sys\nfrom sora_core.cli import main\nrc = main(sys.argv[1:])\n"
            "assert 'torch' not in sys.modules, 'ingest imported torch'\nsys.exit(rc)\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", code, "ingest", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_ingest_an_mp4_from_the_cli_without_a_worker(tmp_path):
    clip = make_mp4(tmp_path / "clip.mp4")
    proc = run_cli(clip, "--out", "shots/clip", "--name", "clip", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    done = events[-1]
    assert done["event"] == "done" and done["frames"] == 10 and done["fps"] == 12
    assert [e["number"] for e in events if e["event"] == "frame"] == list(range(1, 11))
    folder = tmp_path / "shots" / "clip"
    manifest = read_manifest(folder)
    assert manifest["status"] == "complete" and verify_frames(folder) == []
    assert manifest["source"]["sha256"] == sha256_file(clip) and manifest["source"]["kind"] == "video"
    assert manifest["source"]["c2pa_claim_generator"] is None        # this clip carries none
    assert set(manifest["timings"]) >= {"load_s", "denoise_s", "decode_s", "color_s", "write_s", "total_s"}
    view = ViewTransform()
    for i, source in enumerate(decoded(clip)):
        linear = read_image(folder / f"clip.{i + 1:04d}.exr")
        assert linear.shape == source.shape
        assert np.abs(view.to_display(linear) - source).max() < 2e-3    # back to what the file shows
    attrs = read_attrs(folder / "clip.0001.exr")
    assert attrs["sora:mode"] == "ingest" and attrs["sora:source_sha256"] == sha256_file(clip)

    info = subprocess.run([sys.executable, "-m", "sora_core.cli", "info", str(folder)], capture_output=True,
                          text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert info.returncode == 0 and "pass 1" in info.stdout and "write" in info.stdout, info.stderr


@pytest.mark.skipif(blender_config_path() is None, reason="bpy (Blender's config.ocio) not installed")
def test_ingest_a_png_sequence_through_blenders_agx(tmp_path):
    import OpenImageIO as oiio

    color = {"config": str(blender_config_path()), "view": "AgX"}
    view = ViewTransform(color["config"], None, "AgX")
    src = tmp_path / "export"
    src.mkdir()
    stills = []
    for i in range(5):      # what a tool rendering through AgX exports: colours the view can show
        rng = np.random.default_rng(i)
        scene = np.exp2(rng.uniform(-6, 3, (40, 56, 1))) * (1 + rng.uniform(-0.5, 0.5, (40, 56, 3)))
        img = (view.to_display(scene.astype(np.float32)) * 255).round() / 255
        oiio.ImageBuf(img.astype(np.float32)).write(str(src / f"gen_{i + 10:03d}.png"))
        stills.append(img.astype(np.float32))
    manifest_path = ingest(src, tmp_path / "out", "gen", color, first_frame=101, fps=8)
    manifest = read_manifest(manifest_path)
    assert [f["number"] for f in manifest["frames"]] == list(range(101, 106))
    assert manifest["color"]["view"] == "AgX" and manifest["color"]["inverse"] == "baked"
    assert manifest["source"]["kind"] == "sequence" and len(manifest["source"]["files"]) == 5
    for i, still in enumerate(stills):
        back = view.to_display(read_image(tmp_path / "out" / f"gen.{101 + i:04d}.exr"))
        err = np.abs(back - still).max(-1)
        assert np.median(err) < 1e-3 and np.percentile(err, 99) < 1.5e-2   # the baked inverse's error


def test_ingest_refuses_what_is_not_footage_and_leaves_nothing(tmp_path):
    (tmp_path / "notes.mp4").write_text("this is not a video\n" * 20)
    proc = run_cli(tmp_path / "notes.mp4", "--out", "bad", cwd=tmp_path)
    assert proc.returncode == 2 and "not a video" in proc.stderr, proc.stderr
    assert not (tmp_path / "bad").exists() or not any((tmp_path / "bad").iterdir())
    assert run_cli(tmp_path / "nope.mov", "--out", "bad", cwd=tmp_path).returncode == 3
    assert run_cli(tmp_path / "notes.mp4", "--out", "../outside", cwd=tmp_path).returncode == 2


def test_ingest_into_an_occupied_folder_is_refused_and_a_cancel_removes_its_frames(tmp_path):
    clip = make_mp4(tmp_path / "clip.mp4", frames=16)
    ingest(clip, tmp_path / "first", "clip")
    before = sorted(os.listdir(tmp_path / "first"))
    with pytest.raises(SoraError) as err:
        ingest(clip, tmp_path / "first", "clip")
    assert err.value.exit_code == 2 and sorted(os.listdir(tmp_path / "first")) == before
    seen = []
    with pytest.raises(SoraError) as err:
        ingest(clip, tmp_path / "second", "clip", emit=seen.append,
               is_cancelled=lambda: sum(e["event"] == "frame" for e in seen) >= 3)
    assert err.value.code == "cancelled"
    assert os.listdir(tmp_path / "second") == []


def test_ingest_16_bit_pngs_keeps_their_precision(tmp_path):
    """A 16-bit PNG sequence is read as its codes and inverted at 16-bit precision (not
    rounded to 8 bits on the way), through Blender's Standard view."""
    import OpenImageIO as oiio

    color = {"config": str(blender_config_path()), "view": "Standard"}
    view = ViewTransform(color["config"], None, "Standard")
    src = tmp_path / "deep"
    src.mkdir()
    ramp = np.linspace(0.0, 1.0, 40 * 56 * 3, dtype=np.float32).reshape(40, 56, 3)
    for i in range(3):
        buf = oiio.ImageBuf(oiio.ImageSpec(56, 40, 3, "uint16"))
        buf.set_pixels(oiio.ROI(0, 56, 0, 40, 0, 1, 0, 3), np.roll(ramp, i, axis=1))
        assert buf.write(str(src / f"deep.{i:04d}.png"))
    ingest(src, tmp_path / "out", "deep", color)
    codes = read_image(src / "deep.0001.png", as_stored=True)
    assert codes.dtype == np.uint16
    expected = view.to_linear(codes.astype(np.float32) / 65535)
    got = read_image(tmp_path / "out" / "deep.0002.exr")      # first_frame 1 -> second file
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=2e-5)    # half-float storage
    assert len(np.unique(got[..., 0])) > 1000                 # more than 8-bit's 256 levels
