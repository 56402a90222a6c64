"""LTX-2 two stages with the folder's latent upsampler: the switch (spec ``upsample``, CLI
``--upsample``), the rules read from ``latent_upsampler/config.json``, the plan's sizes, and
stage two really running at the requested size, from a tiny random folder."""

import dataclasses
import json
import shutil

import numpy as np
import pytest

from sora_core.capabilities import FAMILIES
from sora_core.errors import SoraError
from sora_core.models_index import inspect_model
from sora_core.planning import Available, plan
from sora_core.spec import ShotSpec

LTX2 = dataclasses.replace(FAMILIES["ltx2"], upsampler=2)


def spec(**kw):
    return ShotSpec.from_dict({"prompt": "a red ball", "model": "m", **kw})


def test_auto_makes_two_stages_at_a_size_rounded_to_the_scale_with_notices():
    p = plan(spec(width=96, height=64, frames=9), LTX2)
    assert (p.upsample, p.width, p.height) == (2, 128, 64)
    assert "width rounded from 96 to 128 (ltx2 needs a multiple of 64)" in p.notices
    assert any(n.startswith("two stages: made at 64x32, upsampled x2") for n in p.notices)
    assert plan(spec(width=96, height=64, frames=9, upsample="off"), LTX2).upsample == 1
    assert plan(spec(width=96, height=64, frames=9), FAMILIES["ltx2"]).upsample == 1


def test_on_without_an_upsampler_is_refused_and_on_for_a_one_stage_mode_says_so():
    with pytest.raises(SoraError) as err:
        plan(spec(upsample="on"), FAMILIES["ltx2"])
    assert err.value.field == "upsample" and "latent_upsampler" in err.value.hint
    hdr = dataclasses.replace(FAMILIES["ltx2"], modes=("generate", "hdr"), upsampler=2)
    listing = Available(sequence=tuple((n, f"/r/r.{n:04d}.exr") for n in range(1, 10)))
    p = plan(spec(mode="hdr", upsample="on", inputs={"frames": "/r/r.####.exr"}), hdr, listing)
    assert p.upsample == 1 and "upsample on is ignored: hdr runs in one stage" in p.notices
    with pytest.raises(SoraError) as err:
        spec(upsample="twice")
    assert err.value.field == "upsample" and "auto, on, off" in str(err.value)


def test_the_upsampler_is_read_from_its_config_and_an_unusable_one_noted(tiny_ltx2_upsampled, tmp_path):
    pytest.importorskip("diffusers")
    caps = inspect_model(tiny_ltx2_upsampled).capabilities
    assert caps.upsampler == 2 and caps.describe().endswith("; two-stage x2 with its latent upsampler")
    folder = tmp_path / "m"
    shutil.copytree(tiny_ltx2_upsampled, folder)
    config = folder / "latent_upsampler/config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "rational_spatial_scale": 1.5}))
    caps = inspect_model(str(folder)).capabilities
    assert caps.upsampler == 0 and any("whole scale" in n for n in caps.notes)


def test_stage_two_refines_the_upsampled_latents_at_the_requested_size(tiny_ltx2_upsampled):
    torch = pytest.importorskip("torch")
    from sora_core.backends import Request
    from tests.core.test_backends import backend_for, image

    backend = backend_for(tiny_ltx2_upsampled)
    tokens, upsampled = [], []
    hooks = [backend.pipe.transformer.register_forward_hook(
                 lambda m, args, kw, out: tokens.append(kw["hidden_states"].shape[1]), with_kwargs=True),
             backend._upsampler().latent_upsampler.register_forward_hook(
                 lambda m, args, out: upsampled.append((args[0].shape[-2:], out.shape[-2:])))]
    try:
        req = Request(mode="animate", prompt="a red ball", negative_prompt="", seed=1, steps=2,
                      guidance=3.0, width=128, height=64, frames=9, fps=24.0, upsample=2,
                      known={0: image(0, 64, 128)})
        steps = []
        frames = backend.run(req, lambda step, total: steps.append((step, total)))
    finally:
        for h in hooks:
            h.remove()
    assert frames.shape == (9, 64, 128, 3)
    assert upsampled == [(torch.Size([1, 2]), torch.Size([2, 4]))]     # latent 2x1 -> 4x2
    assert set(tokens) == {2 * 1 * 2, 2 * 2 * 4}    # 2 latent frames at half size, then at full size
    assert tokens[-1] == 16 and 0.0 <= frames.min() and frames.max() <= 1.0
    assert steps == [(i, 5) for i in range(1, 6)]       # 2 steps of stage one + 3 of stage two
    sound, rate = backend.take_audio()
    assert rate == 400 and abs(len(sound) / rate - 9 / 24) < 0.1


def test_the_cli_makes_a_two_stage_shot_and_off_makes_one_stage(tiny_ltx2_upsampled, tmp_path):
    pytest.importorskip("diffusers")
    from sora_core.frames.exr import read_image
    from tests.core.test_families import sora

    out = sora("generate", "--prompt", "a red ball", "--model", tiny_ltx2_upsampled, "--frames", "9",
               "--width", "128", "--height", "64", "--steps", "2", "--out", "s", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    manifest = json.loads((tmp_path / "s/manifest.json").read_text())
    frames = sorted((tmp_path / "s").glob("shot.*.exr"))
    assert len(frames) == 9 and read_image(frames[0]).shape[:2] == (64, 128)
    assert manifest["spec"]["upsample"] == "on" and manifest["model"]["upsampler"] == "latent_upsampler x2"
    assert any(n.startswith("two stages: made at 64x32") for n in manifest["notices"])
    dry = sora("generate", "--prompt", "a red ball", "--model", tiny_ltx2_upsampled, "--frames", "9",
               "--width", "128", "--height", "64", "--upsample", "off", "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0 and "two stages" not in dry.stdout and "128x64" in dry.stdout
