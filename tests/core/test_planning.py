"""The one planner: rules, rounding and clamping with notices, long shots, extensions, numbering;
and one table of requests planned by the host side and carried out by the worker, which agree."""

import subprocess
import sys

import pytest

from sora_core.capabilities import FAMILIES
from sora_core.client import WorkerClient
from sora_core.errors import SoraError
from sora_core.manifest import read_manifest
from sora_core.models_index import resolve_model
from sora_core.planning import Available, plan
from sora_core.preflight import available_inputs
from sora_core.spec import ShotSpec


def spec(**kw):
    data = {"prompt": "a red ball moving right", "model": "tinyworld"}
    data.update(kw)
    return ShotSpec.from_dict(data)


def listing(first, last, folder="/r"):
    return Available(sequence=tuple((n, f"{folder}/beauty.{n:04d}.exr") for n in range(first, last + 1)))


@pytest.mark.parametrize("family, asked, expected", [
    ("wan-t2v", 48, 49), ("wan-t2v", 49, 49), ("wan-t2v", 51, 49), ("wan-t2v", 52, 53),
    ("ltx", 100, 97), ("ltx", 97, 97), ("ltx", 12, 9),
])
def test_frame_rule_rounding(family, asked, expected):
    caps = FAMILIES[family]
    p = plan(spec(frames=asked), caps)
    assert p.total == expected and caps.valid_frames(p.total)
    rounded = [n for n in p.notices if n.startswith("frames rounded")]
    assert bool(rounded) == (asked != expected)
    if rounded:
        assert caps.frame_rule() in rounded[0] and f"from {asked} to {expected}" in rounded[0]


def test_size_rounds_to_the_multiple_and_clamps_to_the_range_with_notices():
    p = plan(spec(width=500, height=300, frames=49), FAMILIES["ltx"])
    assert (p.width, p.height) == (512, 288)
    assert [n for n in p.notices if "multiple of 32" in n] == [
        "width rounded from 500 to 512 (ltx needs a multiple of 32)",
        "height rounded from 300 to 288 (ltx needs a multiple of 32)"]
    p = plan(spec(width=100, height=70), FAMILIES["tinyworld"])
    assert (p.width, p.height) == (64, 64)
    assert "width 100 -> 64 (tinyworld makes 64..64)" in p.notices
    p = plan(spec(width=8, height=5000, frames=49), FAMILIES["wan-t2v"])
    assert (p.width, p.height) == (16, 1280)


def test_defaults_come_from_the_model():
    for caps in FAMILIES.values():
        mode = "generate" if caps.supports("generate") else None
        if mode is None:
            continue
        p = plan(spec(), caps)
        assert p.total == caps.default_frames and caps.valid_frames(p.total)
        assert (p.width, p.height) == caps.default_size and p.fps == caps.default_fps
        assert p.steps == caps.default_steps and p.guidance == caps.default_guidance
        assert len(p.passes) == 1 and p.notices == () and p.summary().endswith("in one pass")


def test_a_mode_the_model_lacks_is_refused_naming_what_it_can():
    with pytest.raises(SoraError) as info:
        plan(spec(mode="extend", inputs={"frames": "/r/beauty.####.exr"}), FAMILIES["wan-t2v"],
             listing(1, 10))
    assert info.value.field == "mode" and info.value.exit_code == 2
    assert "wan-t2v cannot extend; it can: generate, restyle" in info.value.message


def test_more_frames_than_a_pass_chain_on_a_model_that_extends_and_clamp_on_one_that_cannot():
    p = plan(spec(frames=40), FAMILIES["tinyworld"])
    assert p.total == 40 and len(p.passes) == 3
    assert "long shot: 40 frames in 3 passes of up to 16 frames" in p.notices
    assert p.summary() == "40 frames in 3 passes of up to 16 frames"
    p = plan(spec(frames=200), FAMILIES["wan-t2v"])
    assert p.total == 81 and len(p.passes) == 1
    assert any(n.startswith("frames 200 -> 81") and "cannot extend" in n for n in p.notices)


def test_a_shot_longer_than_the_limit_is_clamped_with_a_notice():
    p = plan(spec(frames=9000, fps=24), FAMILIES["tinyworld"])
    assert p.total == 7200
    assert any(n.startswith("frames 9000 -> 7200 (a shot is at most 300 s") for n in p.notices)


def test_extend_numbers_after_or_before_the_input_and_conditions_on_its_edge():
    forward = plan(spec(mode="extend", frames=8, inputs={"frames": "/r/beauty.####.exr", "context": 4}),
                   FAMILIES["tinyworld"], listing(1, 20))
    assert forward.numbers == range(21, 29)
    assert sorted(forward.first_known.items()) == [(i, f"/r/beauty.{17 + i:04d}.exr") for i in range(4)]
    backward = plan(spec(mode="extend", frames=8, inputs={"frames": "/r/beauty.####.exr", "context": 4,
                                                         "direction": "backward"}),
                    FAMILIES["tinyworld"], listing(9, 20))
    assert backward.numbers == range(1, 9) and backward.backward
    assert sorted(backward.first_known.values()) == [f"/r/beauty.{n:04d}.exr" for n in range(9, 13)]
    with pytest.raises(SoraError) as info:
        plan(spec(mode="extend", frames=8, inputs={"frames": "/r/b.####.exr", "direction": "backward"}),
             FAMILIES["tinyworld"], listing(3, 20))
    assert info.value.field == "output.first_frame" and "at most 3 new frames" in info.value.hint


def test_extend_context_is_limited_by_the_frames_there_are_and_the_pass():
    caps = FAMILIES["tinyworld"]
    p = plan(spec(mode="extend", frames=4, inputs={"frames": "/r/b.####.exr", "context": 50}), caps,
             listing(1, 3))
    assert p.passes[0].context == 3
    p = plan(spec(mode="extend", frames=4, inputs={"frames": "/r/b.####.exr", "context": 50}), caps,
             listing(1, 100))
    assert p.passes[0].context == caps.max_frames - 1


def test_a_range_with_missing_frames_or_no_listing_is_not_found():
    with pytest.raises(SoraError) as info:
        plan(spec(mode="extend", inputs={"frames": "/r/b.####.exr", "frame_range": [1, 30]}),
             FAMILIES["tinyworld"], listing(1, 20))
    assert info.value.exit_code == 3 and "21" in info.value.message
    with pytest.raises(SoraError) as info:
        plan(spec(mode="restyle", inputs={"frames": "/r/b.####.exr"}), FAMILIES["tinyworld"])
    assert info.value.exit_code == 3 and info.value.field == "inputs.frames"


def test_restyle_fits_the_input_and_interpolate_moves_a_late_keyframe():
    p = plan(spec(mode="restyle", inputs={"frames": "/r/b.####.exr"}), FAMILIES["wan-t2v"], listing(1, 31))
    assert p.total == 29 and len(p.video) == 29 and p.video[0] == "/r/beauty.0001.exr"
    assert p.notices == ("frames reduced to 29 to fit the 31 input frames (wan-t2v needs 4k+1)",)
    with pytest.raises(SoraError) as info:
        plan(spec(mode="restyle", inputs={"frames": "/r/b.####.exr"}), FAMILIES["wan-t2v"], listing(1, 3))
    assert info.value.field == "inputs.frames"
    p = plan(spec(mode="interpolate", frames=40, inputs={"keyframes": [
        {"path": "/k/a.exr", "index": 0}, {"path": "/k/b.exr", "index": 39}]}), FAMILIES["tinyworld"])
    assert p.total == 16 and sorted(p.first_known) == [0, 15]
    assert "frames 40 -> 16 (tinyworld makes 2..16 in its one pass)" in p.notices
    assert "keyframe at index 39 moved to 15, the last frame" in p.notices


# ---- one table, both sides --------------------------------------------------------------------
TABLE = [
    ("default", {}),
    ("long", {"frames": 40}),
    ("odd size", {"width": 100, "height": 30, "frames": 5}),
    ("extend fwd", {"mode": "extend", "frames": 6, "inputs": {"frames": "SRC", "context": 4}}),
    ("extend back", {"mode": "extend", "frames": 6, "inputs": {"frames": "SRC", "direction": "backward"},
                     "output": {"first_frame": 100}}),
    ("restyle", {"mode": "restyle", "inputs": {"frames": "SRC", "frame_range": [12, 20], "strength": 0.5}}),
]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A real 16-frame EXR sequence made by the worker, numbered 10..25."""
    root = tmp_path_factory.mktemp("src")
    with WorkerClient() as c:
        c.run(spec(output={"dir": "src", "name": "src", "first_frame": 10}), str(root))
    return str(root / "src" / "src.####.exr")


def test_the_host_preview_and_the_worker_agree_on_every_request(source, tmp_path):
    """The CLI's dry run (a host's preview through the same planner) against what the worker wrote."""
    caps = resolve_model("tinyworld").capabilities
    with WorkerClient() as client:
        for i, (name, extra) in enumerate(TABLE):
            data = {"prompt": "a red ball moving right", "model": "tinyworld", "steps": 2, **extra,
                    "output": {"dir": f"t{i}", "name": "shot", **extra.get("output", {})}}
            if "inputs" in extra:
                data["inputs"] = {**extra["inputs"], "frames": source}
            s = ShotSpec.from_dict(data)
            path = tmp_path / f"{i}.json"
            s.save(path)
            dry = subprocess.run([sys.executable, "-m", "sora_core.cli", "run", str(path), "--dry-run",
                                  "--output-root", str(tmp_path)], capture_output=True, text=True)
            assert dry.returncode == 0, (name, dry.stderr)
            expected = plan(s, caps, available_inputs(s))
            assert expected.summary() in dry.stdout and f"{expected.width}x{expected.height}" in dry.stdout
            notices = []
            done = client.run(s, str(tmp_path), lambda e: notices.append(e["message"])
                              if e["event"] == "notice" else None)
            manifest = read_manifest(done["manifest"])
            numbers = [f["number"] for f in manifest["frames"]]
            assert numbers == list(expected.numbers), name
            assert (done["width"], done["height"], done["passes"]) == \
                (expected.width, expected.height, len(expected.passes)), name
            assert notices[:len(expected.notices)] == list(expected.notices), name
            for note in expected.notices:
                assert f"notice: {note}" in dry.stdout
