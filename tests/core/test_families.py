"""The families of today end to end from tiny random folders: Wan 2.2 TI2V-5B and A14B (two
experts), LTX-2 with its sound track, and LTX-2 HDR written as scene-linear EXR above 1.0."""

import json
import os
import subprocess
import sys
import wave

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from sora_core.backends import Request  # noqa: E402
from tests.core.test_backends import backend_for, image, run_checked  # noqa: E402

SORA = [sys.executable, "-m", "sora_core.cli"]


def sora(*args, cwd, timeout=300):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    env.pop("SORA_OUTPUT_ROOT", None)
    return subprocess.run([*SORA, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def req(mode, frames, size, known=(), video=None, **kw):
    return Request(mode=mode, prompt="a red ball moving left", negative_prompt="", seed=3,
                   steps=kw.pop("steps", 2), guidance=kw.pop("guidance", 4.0), width=size, height=size, frames=frames,
                   known={i: image(i, size, size) for i in known}, video=video, fps=24.0, **kw)


# -- Wan 2.2 TI2V-5B ----------------------------------------------------------------------------
def test_ti2v_generates_at_a_size_48_rounded_to_32_through_the_cli(tiny_wan_ti2v, tmp_path):
    out = sora("generate", "--prompt", "a red ball", "--model", tiny_wan_ti2v, "--frames", "5",
               "--width", "48", "--height", "32", "--steps", "2", "--out", "s", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "width rounded from 48 to 64 (wan-ti2v needs a multiple of 32)" in out.stderr
    manifest = json.loads((tmp_path / "s/manifest.json").read_text())
    assert (manifest["spec"]["width"], manifest["spec"]["height"], len(manifest["frames"])) == (64, 32, 5)
    assert manifest["model"]["family"] == "wan-ti2v"


def test_ti2v_animates_a_still_and_restyles_with_the_same_transformer(tiny_wan_ti2v):
    backend = backend_for(tiny_wan_ti2v)
    moving, _ = run_checked(backend, req("animate", 5, 32, known=(0,)))
    other, _ = run_checked(backend, Request(**{**req("animate", 5, 32, known=(0,)).__dict__,
                                               "known": {0: image(50)}}))
    assert not np.allclose(moving, other)          # the still conditions what is made
    assert backend.derived("WanImageToVideoPipeline").transformer is backend.pipe.transformer
    run_checked(backend, req("restyle", 5, 32, video=np.stack([image(i) for i in range(5)]), strength=0.5))


# -- Wan 2.2 A14B: two experts --------------------------------------------------------------------
def expert_calls(backend):
    """Which expert ran at each transformer call, and the hooks to remove."""
    calls, hooks = [], []
    for name in ("transformer", "transformer_2"):
        module = getattr(backend.pipe, name)
        hooks.append(module.register_forward_hook(lambda m, a, o, name=name: calls.append(name)))
    return calls, hooks


def test_a14b_runs_the_low_noise_expert_after_the_boundary_and_honours_guidance_2(tiny_wan_a14b):
    backend = backend_for(tiny_wan_a14b)
    calls, hooks = expert_calls(backend)
    try:
        base, _ = run_checked(backend, req("generate", 5, 32, steps=4, guidance_2=2.0))
    finally:
        for h in hooks:
            h.remove()
    assert "transformer" in calls and "transformer_2" in calls
    assert calls == sorted(calls, key=lambda n: n == "transformer_2")    # high noise first, then low
    again, _ = run_checked(backend, req("generate", 5, 32, guidance_2=2.0))
    other, _ = run_checked(backend, req("generate", 5, 32, guidance_2=7.0))
    np.testing.assert_array_equal(again, run_checked(backend, req("generate", 5, 32, guidance_2=2.0))[0])
    assert not np.allclose(again, other)
    experts = backend.identity["experts"]
    assert experts["boundary_ratio"] == 0.875
    assert experts["high_noise"]["component"] == "transformer"
    assert experts["low_noise"]["component"] == "transformer_2"
    assert len(experts["high_noise"]["hash"]) == len(experts["low_noise"]["hash"]) == 64


def test_a14b_i2v_animates_a_still(tiny_wan_a14b_i2v):
    backend = backend_for(tiny_wan_a14b_i2v)
    calls, hooks = expert_calls(backend)
    try:
        run_checked(backend, req("animate", 5, 32, known=(0,), steps=4, guidance_2=3.0))
    finally:
        for h in hooks:
            h.remove()
    assert {"transformer", "transformer_2"} == set(calls)


# -- LTX-2 ---------------------------------------------------------------------------------------
def test_ltx2_generate_writes_frames_and_a_wav_recorded_in_the_manifest(tiny_ltx2, tmp_path):
    out = sora("generate", "--prompt", "a red ball", "--model", tiny_ltx2, "--frames", "9",
               "--width", "64", "--height", "64", "--steps", "2", "--out", "s", "--name", "ball",
               cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    shot = tmp_path / "s"
    manifest = json.loads((shot / "manifest.json").read_text())
    assert len(list(shot.glob("ball.*.exr"))) == 9 and manifest["model"]["family"] == "ltx2"
    audio = manifest["audio"]
    with wave.open(str(shot / "ball.wav")) as wav:
        assert (wav.getframerate(), wav.getnchannels()) == (audio["sample_rate"], audio["channels"])
        samples, rate = wav.getnframes(), wav.getframerate()
        pcm = np.frombuffer(wav.readframes(samples), "<i2")
    seconds = samples / rate
    assert audio["path"] == "ball.wav" and samples == round(9 / 24 * rate) and np.abs(pcm).max() > 0
    assert abs(audio["seconds"] - seconds) < 1e-3 and len(audio["sha256"]) == 64


@pytest.mark.parametrize("known", [tuple(range(9)), tuple(range(8, 17))], ids=["forward", "backward"])
def test_ltx2_condition_extends_both_ways(tiny_ltx2, known):
    backend = backend_for(tiny_ltx2)
    a, _ = run_checked(backend, req("extend", 17, 64, known=known))
    shifted = req("extend", 17, 64, known=known)
    shifted.known = {i: 1.0 - f for i, f in shifted.known.items()}
    b, _ = run_checked(backend, shifted)
    assert not np.allclose(a, b)                    # the given frames condition the new ones
    sound, rate = backend.take_audio()
    assert sound.ndim == 2 and rate == 400
    assert backend.take_audio() is None             # taken once, after the run that made it


def test_ltx2_animates_and_fills_between_keyframes(tiny_ltx2):
    backend = backend_for(tiny_ltx2)
    run_checked(backend, req("animate", 9, 64, known=(0,)))
    run_checked(backend, req("interpolate", 17, 64, known=(0, 16)))


# -- HDR -----------------------------------------------------------------------------------------
def test_hdr_turns_a_clip_into_linear_exr_above_one(tiny_ltx2_hdr, tmp_path):
    from sora_core.frames.exr import read_image, write_exr

    src = tmp_path / "render"
    src.mkdir()
    for n in range(1, 10):
        write_exr(src / f"beauty.{n:04d}.exr", np.full((64, 64, 3), 0.05 * n, np.float32), {})
    out = sora("hdr", "--input", src / "beauty.####.exr", "--model", tiny_ltx2_hdr, "--steps", "2",
               "--out", "hdr", "--name", "hdr", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    frames = sorted((tmp_path / "hdr").glob("hdr.*.exr"))
    assert len(frames) == 9
    values = np.stack([read_image(f) for f in frames])
    assert values.max() > 1.0 and values.min() >= 0.0 and np.isfinite(values).all()
    manifest = json.loads((tmp_path / "hdr/manifest.json").read_text())
    assert manifest["color"]["output"].startswith("scene-linear from the model")
    assert manifest["spec"]["mode"] == "hdr"


def test_a_shot_chains_generate_then_hdr_into_half_float_exr_above_one(tiny_ltx2, tiny_ltx2_hdr, tmp_path):
    import OpenImageIO as oiio

    from sora_core.frames.exr import read_image

    out = sora("generate", "--prompt", "a red ball", "--model", tiny_ltx2, "--frames", "9", "--width", "64",
               "--height", "64", "--steps", "1", "--out", "gen", "--name", "ball", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    made = tmp_path / "gen" / "ball.####.exr"
    out = sora("hdr", "--input", made, "--model", tiny_ltx2_hdr, "--steps", "1", "--out", "hdr",
               "--name", "ball_hdr", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    frames = sorted((tmp_path / "hdr").glob("ball_hdr.*.exr"))
    assert [f.name for f in frames] == [f"ball_hdr.{n:04d}.exr" for n in range(1, 10)]   # numbered as its input
    assert max(read_image(f).max() for f in frames) > 1.0
    image = oiio.ImageInput.open(str(frames[0]))
    try:
        assert image.spec().format == oiio.TypeDesc("half")            # half float, nothing clamped
    finally:
        image.close()
    manifest = json.loads((tmp_path / "hdr/manifest.json").read_text())
    assert manifest["spec"]["inputs"]["frames"] == str(made) and manifest["spec"]["mode"] == "hdr"
