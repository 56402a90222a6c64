"""Mode ``control``: a control sequence drives the shot. The planner's rules, the frames reaching a
real (tiny) Wan VACE pipeline at the right indices, sizes and value ranges, the CLI end to end,
and bad control input with its exit code."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sora_core.capabilities import FAMILIES
from sora_core.errors import SoraError
from sora_core.manifest import read_manifest
from sora_core.planning import Available, plan
from sora_core.spec import ShotSpec

SORA = [sys.executable, "-m", "sora_core.cli"]


def control_spec(**inputs):
    return ShotSpec.from_dict({"mode": "control", "prompt": "a red ball", "model": "m",
                               "inputs": {"control": "/c/depth.####.png", "control_kind": "depth", **inputs}})


def listing(count):
    return Available(sequence=tuple((n, f"/c/depth.{n:04d}.png") for n in range(1, count + 1)))


def write_control(folder: Path, count: int, size=(32, 32)):
    """A depth-like control pass: frame i is a flat grey of value (i + 1) / (count + 1)."""
    from sora_core.frames.exr import _oiio
    oiio = _oiio()
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        value = (i + 1) / (count + 1)
        pixels = np.full((size[1], size[0], 3), value, np.float32)
        out = oiio.ImageOutput.create("png")
        spec = oiio.ImageSpec(size[0], size[1], 3, "uint8")
        assert out.open(str(folder / f"depth.{i + 1:04d}.png"), spec)
        out.write_image(pixels)
        out.close()
    return str(folder / "depth.####.png")


def test_the_planner_takes_one_control_frame_per_frame_made():
    p = plan(control_spec(), FAMILIES["wan-vace"], listing(20))
    assert p.total == 17 and p.video == tuple(f"/c/depth.{n:04d}.png" for n in range(1, 18))
    assert "frames reduced to 17 to fit the 20 input frames (wan-vace needs 4k+1)" in p.notices
    p = plan(control_spec(frame_range=[3, 11]), FAMILIES["wan-vace"], listing(20))
    assert p.total == 9 and p.video[0] == "/c/depth.0003.png"


def test_control_shorter_than_the_shot_a_kind_the_model_lacks_and_a_model_without_control_are_refused():
    with pytest.raises(SoraError) as info:
        plan(ShotSpec.from_dict({"mode": "control", "prompt": "a", "frames": 21,
                                 "inputs": {"control": "/c/d.####.png"}}), FAMILIES["wan-vace"], listing(9))
    assert info.value.exit_code == 2 and info.value.field == "inputs.control"
    assert "sequence has 9" in info.value.message
    limited = FAMILIES["wan-vace"].__class__(**{**FAMILIES["wan-vace"].to_dict(), "control_kinds": ("layout",)})
    with pytest.raises(SoraError) as info:
        plan(control_spec(), limited, listing(9))
    assert info.value.field == "inputs.control_kind" and "follows layout control, not depth" in info.value.message
    with pytest.raises(SoraError) as info:
        plan(control_spec(), FAMILIES["wan-t2v"], listing(9))
    assert info.value.field == "mode"
    with pytest.raises(SoraError) as info:
        ShotSpec.from_dict({"mode": "control", "prompt": "a"})
    assert info.value.field == "inputs.control"


def test_control_frames_reach_vace_at_their_indices_sizes_and_values(tiny_wan_vace, tmp_path):
    """The real pipeline's own preprocessing is observed (wrapped, not replaced)."""
    pytest.importorskip("diffusers")
    from sora_core.backends import Request, load_backend
    from sora_core.frames.color import load_conditioning
    from sora_core.spec import Runtime

    pattern = write_control(tmp_path / "control", 9)
    frames = np.stack([load_conditioning(Path(pattern.replace("####", f"{n:04d}")), None, 32, 32)
                       for n in range(1, 10)])
    backend = load_backend(Path(tiny_wan_vace), Runtime())
    pipe = backend.derived("WanVACEPipeline")
    seen = {}
    original = pipe.preprocess_conditions

    def observe(*args, **kwargs):
        video, mask, refs = original(*args, **kwargs)
        seen.update(video=video.detach().float().cpu().numpy(), mask=mask.detach().float().cpu().numpy())
        return video, mask, refs

    pipe.preprocess_conditions = observe
    try:
        out = backend.run(Request(mode="control", prompt="a red ball", negative_prompt="", seed=1, steps=2,
                                  guidance=4.0, width=32, height=32, frames=9, control=frames,
                                  control_kind="depth", control_strength=0.8), lambda s, t: None)
    finally:
        del pipe.preprocess_conditions
    assert out.shape == (9, 32, 32, 3)
    video, mask = seen["video"], seen["mask"]
    assert video.shape == (1, 3, 9, 32, 32) and mask.shape[2:] == (9, 32, 32)
    expected = 2 * frames[:, 0, 0, 0] - 1                    # [0, 1] display -> the model's [-1, 1]
    assert np.allclose(video[0, 0, :, 0, 0], expected, atol=2 / 255)
    assert (mask > 0.99).all()                               # all white: every frame is generated


def test_sora_control_end_to_end_and_a_control_of_another_aspect_is_exit_2(tiny_wan_vace, tmp_path):
    pattern = write_control(tmp_path / "control", 9)
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    run = subprocess.run([*SORA, "control", "--model", str(tiny_wan_vace), "--prompt", "a red ball",
                          "--control", pattern, "--kind", "depth", "--control-strength", "0.5",
                          "--width", "32", "--height", "32", "--steps", "2", "--out", "shots/c", "--name", "c"],
                         cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    manifest = read_manifest(tmp_path / "shots" / "c" / "manifest.json")
    assert [f["number"] for f in manifest["frames"]] == list(range(1, 10))
    assert manifest["spec"]["inputs"]["control_kind"] == "depth"
    wide = write_control(tmp_path / "wide", 9, size=(64, 32))
    run = subprocess.run([*SORA, "control", "--model", str(tiny_wan_vace), "--prompt", "a red ball",
                          "--control", wide, "--kind", "depth", "--width", "32", "--height", "32",
                          "--steps", "2", "--out", "shots/w", "--name", "w"],
                         cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 2 and "inputs.control" in run.stderr and "aspect" in run.stderr
    assert not (tmp_path / "shots" / "w").exists() or not any((tmp_path / "shots" / "w").glob("*.exr"))
