"""The Flamenco job type: compileJob run by Node against a stand-in of Flamenco's `author` API."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "farm" / "flamenco" / "sora.js"
HARNESS = Path(__file__).with_name("flamenco_author.js")
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="Node.js is not installed (needed to run the job compiler)")


def compile_job(settings: dict) -> dict:
    defaults = {"output_root": "", "sora": "sora", "models_dir": "", "extra_args": "", "task_type": "misc"}
    proc = subprocess.run([NODE, str(HARNESS), str(SCRIPT), json.dumps({**defaults, **settings})],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_job_type_settings_declare_the_plan_and_the_command():
    out = compile_job({"shots": json.dumps([{"id": "a", "spec": "/s/a.json"}]), "output_root": "/o"})
    keys = {s["key"]: s for s in out["job_type"]["settings"]}
    assert {"shots", "output_root", "sora", "models_dir", "extra_args", "task_type"} <= set(keys)
    assert keys["shots"]["required"] and keys["output_root"]["subtype"] == "dir_path"
    assert all(s["type"] in ("string", "int32", "float", "bool") for s in keys.values())


def test_one_task_per_shot_with_sora_run_and_extend_dependencies(tmp_path):
    """The plan comes from `sora farm --plan`, so the dependencies are the ones the farm infers."""
    specs = tmp_path / "specs"
    specs.mkdir()
    base = {"mode": "generate", "prompt": "a red ball", "steps": 2}
    for name in ("a", "b"):
        (specs / f"{name}.json").write_text(json.dumps({**base, "output": {"dir": f"shots/{name}", "name": name}}))
    (specs / "ext.json").write_text(json.dumps({**base, "mode": "extend", "inputs": {"frames": "shots/a/a.####.exr"},
                                                "output": {"dir": "shots/ext", "name": "a"}}))
    plan = subprocess.run([sys.executable, "-m", "sora_core.cli", "farm", str(specs), "--plan",
                           "--output-root", str(tmp_path / "out")], capture_output=True, text=True, timeout=60)
    assert plan.returncode == 0, plan.stderr
    out = compile_job({"shots": plan.stdout, "sora": "/opt/sora/bin/sora", "models_dir": "/mnt/models",
                       "extra_args": "--json", "task_type": "sora"})
    tasks = {t["name"]: t for t in out["tasks"]}
    assert set(tasks) == {"sora-a", "sora-b", "sora-ext"}
    names = [t["name"] for t in out["tasks"]]
    assert names.index("sora-a") < names.index("sora-ext")      # a dependency exists before its user
    assert tasks["sora-ext"]["dependencies"] == ["sora-a"]
    assert tasks["sora-a"]["dependencies"] == [] and tasks["sora-b"]["dependencies"] == []
    cmd = tasks["sora-ext"]["commands"]
    assert len(cmd) == 1 and cmd[0]["name"] == "exec" and tasks["sora-ext"]["type"] == "sora"
    assert cmd[0]["parameters"] == {"exe": "/opt/sora/bin/sora", "args": [
        "run", str(specs / "ext.json"), "--output-root", str(tmp_path / "out"),
        "--models-dir", "/mnt/models", "--json"]}


def test_output_root_setting_overrides_the_plan():
    plan = {"output_root": "/plan/root", "shots": [{"id": "a", "spec": "/s/a.json"}]}
    out = compile_job({"shots": json.dumps(plan), "output_root": "/farm/root"})
    assert out["tasks"][0]["commands"][0]["parameters"]["args"] == ["run", "/s/a.json", "--output-root", "/farm/root"]


@pytest.mark.parametrize("shots, message", [
    ("not json", "not valid JSON"),
    (json.dumps([]), "no shots"),
    (json.dumps([{"id": "a", "spec": "/a.json", "depends_on": ["zz"]}]), "unknown shot zz"),
    (json.dumps([{"id": "a", "spec": "/a", "depends_on": ["b"]}, {"id": "b", "spec": "/b", "depends_on": ["a"]}]),
     "dependency cycle"),
    (json.dumps([{"id": "a"}]), "needs an id and a spec"),
])
def test_bad_plans_are_refused_with_a_message(shots, message):
    out = compile_job({"shots": shots, "output_root": "/o"})
    assert message in out.get("error", ""), out


def test_a_plan_without_output_root_needs_the_setting():
    out = compile_job({"shots": json.dumps({"shots": [{"id": "a", "spec": "/a"}]})})
    assert "no output root" in out.get("error", ""), out


def test_export_setting_adds_a_signed_deliverable_per_format_after_the_run():
    plan = {"output_root": "/plan/root", "shots": [{"id": "a", "spec": "/s/a.json", "out_dir": "/plan/root/shots/a"}]}
    out = compile_job({"shots": json.dumps(plan), "output_root": "/farm/root", "export": "mp4  png"})
    cmds = [c["parameters"]["args"] for c in out["tasks"][0]["commands"]]
    assert cmds[0][0] == "run" and cmds[1:] == [
        ["export", "/farm/root/shots/a", "--format", "mp4", "--out", "/farm/root/deliverables/a.mp4"],
        ["export", "/farm/root/shots/a", "--format", "png", "--out", "/farm/root/deliverables/a_png"]]
    out = compile_job({"shots": json.dumps(plan), "export": "mov", "export_dir": "/d"})
    assert out["tasks"][0]["commands"][1]["parameters"]["args"][-1] == "/d/a.mov"
    assert "not one of" in compile_job({"shots": json.dumps(plan), "export": "gif"}).get("error", "")
    bare = {"output_root": "/o", "shots": [{"id": "a", "spec": "/s/a.json"}]}
    assert "needs each shot's out_dir" in compile_job({"shots": json.dumps(bare), "export": "mp4"}).get("error", "")
