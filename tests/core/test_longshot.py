"""Long shots: chaining arithmetic for several frame rules, resume, cancel, prompt schedule."""

import numpy as np
import pytest

from sora_core.capabilities import FAMILIES, Capabilities
from sora_core.client import WorkerClient
from sora_core.errors import SoraError
from sora_core.longshot import plan_passes, positions, smallest_valid, switch_frames
from sora_core.manifest import read_manifest, verify_frames
from sora_core.spec import ShotSpec

TINYWORLD = Capabilities(family="tw", modes=("generate", "extend"), min_frames=2, max_frames=16,
                         default_context=4)
RULES = {"wan 4k+1": FAMILIES["wan-vace"], "ltx 8k+1": FAMILIES["ltx"], "tinyworld any": TINYWORLD}


def valid(caps, n):
    return n >= caps.min_frames and (n - caps.frame_offset) % caps.frame_multiple == 0 \
        and n <= caps.max_frames


@pytest.mark.parametrize("rule", RULES)
@pytest.mark.parametrize("total", [1, 7, 16, 81, 200, 480])
@pytest.mark.parametrize("backward", [False, True])
def test_passes_cover_the_shot_exactly_once(rule, total, backward):
    caps = RULES[rule]
    passes = plan_passes(caps, total, "p", 10, first_context=3 if backward else 0, backward=backward)
    covered = sorted(i for p in passes for i in range(p.start, p.start + p.new))
    assert covered == list(range(total))                    # every frame once, no gap, no overlap
    for p in passes:
        assert valid(caps, p.frames)
        assert p.frames >= p.context + p.new                 # extras are dropped, never missing
        assert p.frames == smallest_valid(caps, p.context + p.new)
        known, written = positions(p, backward)
        assert len(known) == p.context and len(written) == p.new
        assert set(known).isdisjoint(written) and max([*known, *written]) < p.frames
        if p.index:
            assert p.context == caps.default_context        # later passes condition on the overlap
    assert [p.seed for p in passes] == list(range(10, 10 + len(passes)))
    starts = [p.start for p in passes]
    assert starts == (sorted(starts, reverse=True) if backward else sorted(starts))


def test_pass_length_and_overlap_can_be_overridden():
    passes = plan_passes(FAMILIES["wan-vace"], 100, "p", 0, pass_length=33, overlap=9)
    assert {p.frames for p in passes[:-1]} == {33}
    assert all(p.context == 9 for p in passes[1:]) and passes[0].new == 33 and passes[1].new == 24
    with pytest.raises(SoraError) as info:
        plan_passes(FAMILIES["wan-vace"], 100, "p", 0, pass_length=33, overlap=33)
    assert info.value.field == "passes.overlap"


def test_prompt_switches_force_a_boundary_at_their_frame():
    switches = switch_frames([(1.5, "the ball bouncing"), (99, "never")], fps=8, total=40)
    assert switches == [(12, "the ball bouncing")]
    for backward in (False, True):
        passes = plan_passes(TINYWORLD, 40, "a red ball moving right", 0, switches=switches,
                             backward=backward)
        for p in passes:
            frames = range(p.start, p.start + p.new)
            assert 12 not in frames[1:]                      # no pass straddles the switch
            expected = "the ball bouncing" if p.start >= 12 else "a red ball moving right"
            assert p.prompt == expected


# ---- in the worker, with the bundled model's architecture (tiny random weights) -----------------

def long_spec(model, out, **kw):
    data = {"prompt": "a red ball moving right", "model": str(model), "frames": 20, "steps": 2,
            "seed": 5, "passes": {"length": 8, "overlap": 2}, "output": {"dir": out, "name": "long"}}
    data.update(kw)
    return ShotSpec.from_dict(data)


def pixels(folder):
    from sora_core.frames.exr import read_image
    return {p.name: read_image(p) for p in sorted(folder.glob("*.exr"))}


@pytest.fixture(scope="module")
def client():
    with WorkerClient() as c:
        yield c


def test_resume_after_cancel_equals_an_uninterrupted_run(client, tiny_tinyworld, tmp_path):
    whole = client.run(long_spec(tiny_tinyworld, "whole"), str(tmp_path))
    assert whole["passes"] == 3 and whole["frames"] == 20
    assert read_manifest(whole["manifest"])["status"] == "complete"

    job = client.submit(long_spec(tiny_tinyworld, "resumed"), str(tmp_path))
    for event in job.events(timeout=300):
        if event["event"] == "progress" and event.get("pass") == 2 and event["phase"] == "denoise":
            job.cancel(grace=60)
    assert job.error and job.error.code == "cancelled"
    partial = read_manifest(tmp_path / "resumed")
    assert partial["status"] == "partial" and len(partial["passes"]) == 1     # finished pass kept
    assert [f["number"] for f in partial["frames"]] == list(range(1, 9))
    assert verify_frames(tmp_path / "resumed") == []
    assert len(list((tmp_path / "resumed").glob("*.exr"))) == 8               # nothing half-written

    events = []
    resumed = client.run(long_spec(tiny_tinyworld, "resumed"), str(tmp_path), events.append)
    assert any("resuming after pass 1 of 3" in e.get("message", "") for e in events)
    assert [e["pass"] for e in events if e["event"] == "frame"] == [2] * 6 + [3] * 6
    a, b = pixels(tmp_path / "whole"), pixels(tmp_path / "resumed")
    assert list(a) == list(b) == [f"long.{n:04d}.exr" for n in range(1, 21)]
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert resumed["frames"] == 20
    hashes = [[f["sha256"] for f in read_manifest(tmp_path / d)["frames"]] for d in ("whole", "resumed")]
    assert hashes[0] == hashes[1]       # byte-identical files: no wall-clock header in a frame

    again = []
    client.run(long_spec(tiny_tinyworld, "resumed"), str(tmp_path), again.append)
    assert any("already complete" in e.get("message", "") for e in again)
    assert not any(e["event"] == "frame" for e in again)


def test_prompt_schedule_switches_in_the_frames(client, tiny_tinyworld, tmp_path):
    from sora_core.frames.exr import read_attrs
    spec = long_spec(tiny_tinyworld, "story", fps=8,
                     prompt_schedule=[{"start": 1.5, "prompt": "the red ball bouncing"}])
    done = client.run(spec, str(tmp_path))
    prompts = {n: read_attrs(tmp_path / "story" / f"long.{n:04d}.exr")["sora:prompt"] for n in range(1, 21)}
    assert {prompts[n] for n in range(1, 13)} == {"a red ball moving right"}      # indices 0..11
    assert {prompts[n] for n in range(13, 21)} == {"the red ball bouncing"}       # from 1.5 s on
    assert done["passes"] >= 3


def test_backward_long_extension_numbers_down_to_the_input(client, tiny_tinyworld, tmp_path):
    from sora_core.frames.exr import write_exr
    seq = tmp_path / "render"
    seq.mkdir()
    for n in range(30, 34):
        write_exr(seq / f"beauty.{n:04d}.exr", np.full((64, 64, 3), 0.2, np.float32), {})
    spec = long_spec(tiny_tinyworld, "render", mode="extend", frames=20,
                     inputs={"frames": str(seq / "beauty.####.exr"), "direction": "backward", "context": 2},
                     output={"dir": "render", "name": "beauty"})
    done = client.run(spec, str(tmp_path))
    numbers = sorted(int(p.name.split(".")[1]) for p in seq.glob("beauty.*.exr"))
    assert numbers == list(range(10, 34)) and done["first_frame"] == 10
