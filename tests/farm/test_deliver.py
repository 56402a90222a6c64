"""A farm shot exported after it is made (``sora farm --export``): the shot task runs the real
worker, then ``sora export`` on the same node; a failing export fails the shot with its code."""

from __future__ import annotations

import sys

from sora_core.farm import shot_task
from sora_core.farm.cli import format_event
from tests.provenance.conftest import make_chain, sora


def test_a_farm_shot_is_exported_signed_and_a_failing_export_fails_the_shot(tmp_path, monkeypatch):
    chain = make_chain(tmp_path / "chain")
    monkeypatch.setenv("SORA_SIGN_CERT", str(chain["chain"]))     # the node's identity: paths
    monkeypatch.setenv("SORA_SIGN_KEY", str(chain["key"]))
    root = tmp_path / "root"
    spec = {"mode": "generate", "prompt": "a red ball", "steps": 2, "seed": 1, "frames": 5,
            "output": {"dir": "shots/ball", "name": "ball"}}
    options = {"python": sys.executable, "keep_warm": 0, "export": ["mp4", "png"]}
    events = []
    result = shot_task.execute_shot("ball", spec, str(root), options, 1, "local", events.append)
    assert result["exit_code"] == 0, result
    out = root / "deliverables"
    assert result["deliverables"] == [str(out / "ball.mp4")] + [str(out / "ball_png" / f"ball.{n:04d}.png")
                                                               for n in range(1, 6)]
    assert sora("verify", out / "ball.mp4", "--shot", root / "shots/ball", cwd=tmp_path).returncode == 0
    assert sora("verify", out / "ball_png", cwd=tmp_path).returncode == 0
    steps = [e["step"] for e in events if e.get("event") == "progress" and e.get("export") == "mp4"]
    assert steps == [1, 2, 3, 4, 5] and all(e["shot"] == "ball" for e in events)
    line = format_event({"event": "shot_done", "shot": "ball", "attempt": 1, "node": "n", "frames": 5,
                         "seconds": 1.0, "manifest": "m", "deliverables": result["deliverables"][:1]})
    assert line.endswith(f"; deliverables: {out / 'ball.mp4'}")

    again = shot_task.execute_shot("ball", spec, str(root), options, 2, "local", events.append)
    assert again["exit_code"] == 0 and again["skipped"]             # a rerun keeps what is there
    options = {**options, "export": ["mov"], "export_watermark": True, "export_dir": str(tmp_path / "second")}
    bad = shot_task.execute_shot("ball", spec, str(root), options, 3, "local", events.append)
    assert bad["exit_code"] == 2 and "--watermark is for 8-bit" in bad["error"], bad   # ProRes is 10-bit
    assert list((tmp_path / "second").iterdir()) == []             # nothing half-written
