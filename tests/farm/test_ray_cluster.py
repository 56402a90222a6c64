"""``sora farm`` on a real two-node Ray cluster, inside a network namespace the test creates.

The scenario (``cluster_scenario.py``) runs as PID 1 of fresh network, PID and mount
namespaces (``unshare``), with only ``lo`` up: Ray's head and second node, the drivers and the
workers all talk over loopback, and nothing can outlive the namespace. See its docstring.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sora_core.manifest import read_manifest, verify_frames

pytest.importorskip("ray", reason="Ray is not installed (pip install 'sora-core[farm]')")
SCENARIO = Path(__file__).with_name("cluster_scenario.py")
ROOT = Path(__file__).resolve().parents[2]


def _namespaces_work() -> str | None:
    for tool in ("unshare", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (util-linux / iproute2)"
    probe = subprocess.run(["unshare", "--net", "--pid", "--fork", "--mount-proc", "sh", "-c",
                            "ip link set lo up"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot create network/PID namespaces here: {probe.stderr.strip()[:200]}"
    return None


@pytest.fixture(scope="module")
def scenario(tiny_tinyworld, tmp_path_factory):
    reason = _namespaces_work()
    if reason:
        pytest.skip(reason)
    work = tmp_path_factory.mktemp("farm")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_OFFLINE": "1"}
    cmd = ["unshare", "--net", "--pid", "--fork", "--kill-child", "--mount-proc", "sh", "-c",
           'ip link set lo up && exec "$0" "$@"', sys.executable, str(SCENARIO), tiny_tinyworld, str(work)]
    with open(work / "scenario.log", "w") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=420)
    out = work / "result.json"
    if proc.returncode != 0 or not out.is_file():
        pytest.fail(f"scenario failed (exit {proc.returncode}):\n{(work / 'scenario.log').read_text()[-4000:]}")
    return json.loads(out.read_text()), work


def _shots(summary: dict) -> dict:
    return {s["id"]: s for s in summary["shots"]}


def _exactly_once(shot: dict, frames: int) -> None:
    """Every frame of the manifest on disk once, nothing else (no temporaries, no extras)."""
    manifest = read_manifest(shot["manifest"])
    folder = Path(shot["manifest"]).parent
    assert manifest["status"] == "complete"
    numbers = [f["number"] for f in manifest["frames"]]
    assert len(numbers) == frames and len(set(numbers)) == frames
    assert numbers == list(range(numbers[0], numbers[0] + frames))
    on_disk = sorted(p.name for p in folder.iterdir() if p.name != "manifest.json")
    assert on_disk == sorted(f["file"] for f in manifest["frames"]), f"stray files in {folder}"
    assert verify_frames(shot["manifest"]) == []


def test_batch_runs_on_both_nodes_and_survives_a_node_death(scenario):
    result, _ = scenario
    assert result["nodes"] == 2
    p1 = result["phases"]["1"]
    shots = _shots(p1["summary"])
    assert p1["placement"] == "sora_slot"
    for name in ("g0", "g1", "g2", "g3", "ext", "flaky"):
        assert shots[name]["status"] == "done", shots[name]
    nodes = {h["node"].split("/")[1] for s in shots.values() for h in s["history"] if h["node"]}
    assert p1["node2"] in nodes and len(nodes) == 2            # work ran on both nodes
    victim = p1["state"]["victim"]
    assert victim and p1["state"]["node_killed"], p1["state"]
    v = shots[victim]
    assert v["attempts"] >= 2 and v["history"][0]["exit_code"] == 75
    assert v["history"][0]["code"] in ("node_lost", "worker_died")
    assert p1["node2"] not in v["node"]                        # finished elsewhere
    resumed = [e for e in result["events"] if e.get("shot") == victim and e.get("attempt") == v["attempts"]
               and e["event"] == "notice" and "resuming after pass 1" in e.get("message", "")]
    assert resumed, "the rerun did not resume after the pass finished before the node died"
    for name, frames in (("g0", 28), ("g1", 28), ("g2", 28), ("g3", 28), ("flaky", 16), ("ext", 8)):
        _exactly_once(shots[name], frames)


def test_retry_rules_on_the_cluster(scenario):
    result, _ = scenario
    p1 = result["phases"]["1"]
    shots = _shots(p1["summary"])
    flaky, bad = shots["flaky"], shots["bad"]
    assert p1["state"]["flaky_killed"]
    assert [h["exit_code"] for h in flaky["history"]] == [75, 0]      # killed worker -> 75 -> retried
    assert (bad["status"], bad["attempts"], bad["exit_code"]) == ("failed", 1, 2)    # 2: never retried
    assert "several sequences" in bad["error"]
    assert p1["summary"]["exit_code"] == 2          # not every shot finished
    order = [(e["event"], e.get("shot")) for e in result["events"]]
    assert order.index(("shot_done", "g0")) < order.index(("submitted", "ext"))   # the extend waited


def test_cli_cancel_then_resume_without_duplicates(scenario):
    result, work = scenario
    p2, p3 = result["phases"]["2"], result["phases"]["3"]
    assert p2["cancel_sent"] and p2["rc"] == 130, p2["stderr"]
    done2 = [e for e in p2["events"] if e["event"] == "shot_done"]
    assert done2 and all(e["skipped"] for e in done2)      # complete shots are skipped, not redone
    assert "late" not in {e["shot"] for e in done2}
    assert any(e["event"] == "shot_cancelled" and e["shot"] == "late" for e in p2["events"])
    assert p3["rc"] == 2, p3["stderr"]              # everything done but `bad`, which still fails with 2
    assert any(e["event"] == "notice" and e.get("shot") == "late" and "resuming after pass 1" in e["message"]
               for e in p3["events"])
    summary = json.loads((work / "out" / "farm_summary.json").read_text())
    shots = _shots(summary)
    assert shots["late"]["status"] == "done" and shots["bad"]["status"] == "failed"
    _exactly_once(shots["late"], 28)
    assert [e["event"] for e in p3["events"]][-1] == "summary"


def test_no_process_left_behind(scenario):
    result, _ = scenario
    assert result["leftover_processes"] == []
