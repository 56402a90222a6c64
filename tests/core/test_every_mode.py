"""Every family x mode that no other test runs end to end: the CLI turns its flags into the spec
(``--save-spec``) and one warm worker makes the shot from a tiny random folder (EXR frames, a
manifest whose checksums hold, the family and mode recorded). docs/models.md lists each family x
mode with the test that covers it."""

import os
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

from sora_core.client import WorkerClient  # noqa: E402
from sora_core.manifest import read_manifest, verify_frames  # noqa: E402
from sora_core.spec import ShotSpec  # noqa: E402
from tests.core.test_cli import write_sequence  # noqa: E402

# (fixture, family, mode, size, frames made, CLI flags): SEQ is a 9-frame EXR sequence of that
# size, STILL its first frame, KEY its fifth
CASES = [
    ("tiny_wan_t2v", "wan-t2v", "generate", 32, 5, ["--frames", "5"]),
    ("tiny_wan_t2v", "wan-t2v", "restyle", 32, 5, ["--input", "SEQ", "--frames", "5", "--strength", "0.5"]),
    ("tiny_wan_a14b", "wan-t2v", "generate", 32, 5, ["--frames", "5", "--guidance-2", "2"]),
    ("tiny_wan_i2v", "wan-i2v", "animate", 32, 5, ["--image", "STILL", "--frames", "5"]),
    ("tiny_wan_i2v", "wan-i2v", "interpolate", 32, 5, ["--keyframe", "STILL@0", "--keyframe", "KEY@4",
                                                         "--frames", "5"]),
    ("tiny_wan_a14b_i2v", "wan-i2v", "animate", 32, 5, ["--image", "STILL", "--frames", "5"]),
    ("tiny_wan_a14b_i2v", "wan-i2v", "interpolate", 32, 5, ["--keyframe", "STILL@0", "--keyframe", "KEY@4",
                                                              "--frames", "5"]),
    ("tiny_wan_ti2v", "wan-ti2v", "animate", 32, 5, ["--image", "STILL", "--frames", "5"]),
    ("tiny_wan_ti2v", "wan-ti2v", "restyle", 32, 5, ["--input", "SEQ", "--frames", "5"]),
    ("tiny_wan_vace", "wan-vace", "generate", 32, 5, ["--frames", "5"]),
    ("tiny_wan_vace", "wan-vace", "animate", 32, 5, ["--image", "STILL", "--frames", "5"]),
    ("tiny_wan_vace", "wan-vace", "extend", 32, 4, ["--input", "SEQ", "--frames", "4", "--context", "1"]),
    ("tiny_wan_vace", "wan-vace", "interpolate", 32, 5, ["--keyframe", "STILL@0", "--keyframe", "KEY@4",
                                                           "--frames", "5"]),
    ("tiny_ltx", "ltx", "animate", 32, 9, ["--image", "STILL", "--frames", "9"]),
    ("tiny_ltx", "ltx", "interpolate", 32, 9, ["--keyframe", "STILL@0", "--keyframe", "KEY@8", "--frames", "9"]),
    ("tiny_ltx", "ltx", "restyle", 32, 9, ["--input", "SEQ", "--frames", "9"]),
    ("tiny_ltx2", "ltx2", "animate", 64, 9, ["--image", "STILL", "--frames", "9"]),
    ("tiny_ltx2", "ltx2", "extend", 64, 8, ["--input", "SEQ", "--frames", "8", "--context", "1",
                                            "--direction", "backward", "--first-frame", "1"]),
    ("tiny_ltx2", "ltx2", "interpolate", 64, 9, ["--keyframe", "STILL@0", "--keyframe", "KEY@8", "--frames", "9"]),
    ("tiny_tinyworld", "tinyworld", "animate", 64, 4, ["--image", "STILL", "--frames", "4"]),
    ("tiny_tinyworld", "tinyworld", "interpolate", 64, 5, ["--keyframe", "STILL@0", "--keyframe", "KEY@4",
                                                             "--frames", "5"]),
]


def _inputs(folder, size) -> dict:
    seq = write_sequence(folder / f"seq{size}", "src", range(1, 10), size=size)
    return {"SEQ": str(seq), "STILL": str(seq).replace("####", "0001"),
            "KEY": str(seq).replace("####", "0005")}


def _flags(flags, inputs) -> list[str]:
    out = []
    for flag in flags:
        name, _, index = flag.partition("@")
        out.append(inputs.get(name, name) + (f"@{index}" if index else ""))
    return out


def test_every_family_and_mode_runs_from_the_cli_spec_through_one_warm_worker(request, tmp_path):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    inputs = {size: _inputs(tmp_path / "in", size) for size in {c[3] for c in CASES}}
    made = []
    with WorkerClient() as client:
        for i, (fixture, family, mode, size, frames, flags) in enumerate(CASES):
            name = f"{fixture[5:]}-{mode}"
            path = tmp_path / f"{i}.json"
            cli = subprocess.run([sys.executable, "-m", "sora_core.cli", mode, "--model",
                                  request.getfixturevalue(fixture), "--prompt", "a red ball moving right",
                                  "--width", str(size), "--height", str(size), "--steps", "2",
                                  "--out", f"shots/{name}", "--name", "s", "--save-spec", str(path),
                                  *_flags(flags, inputs[size])],
                                 capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
            assert cli.returncode == 0, (name, cli.stderr)
            done = client.run(ShotSpec.load(path), str(tmp_path))
            manifest = read_manifest(done["manifest"])
            assert done["frames"] == frames and len(manifest["frames"]) == frames, name
            assert verify_frames(done["manifest"]) == [], name
            assert (manifest["model"]["family"], manifest["spec"]["mode"]) == (family, mode), name
            assert (done["width"], done["height"]) == (size, size), name
            made.append(name)
            if fixture == "tiny_wan_a14b":
                assert manifest["spec"]["guidance_2"] == 2.0 and "experts" in manifest["model"]
            if family == "ltx2":
                assert manifest["audio"]["path"] == "s.wav", name
    assert len(made) == len(CASES)
