"""Batch loading and the scheduler's rules, without Ray: a fake executor plays the cluster."""

from __future__ import annotations

import json
import sys

import pytest

from sora_core.errors import SoraError
from sora_core.farm.batch import load_batch
from sora_core.farm.scheduler import BatchRunner
from sora_core.farm.summary import batch_exit_code, ShotResult


def _spec(name, **extra):
    data = {"mode": "generate", "prompt": "a red ball", "steps": 2, "seed": 1,
            "output": {"dir": f"shots/{name}", "name": name}}
    data.update(extra)
    return data


def _write(path, data):
    path.write_text(json.dumps(data))
    return path


class FakeExecutor:
    """Answers each attempt from a script: shot id -> list of exit codes (last one repeats)."""

    def __init__(self, script=None):
        self.script = script or {}
        self.pending = []
        self.submitted = []
        self.cancelled = []

    def submit(self, shot, attempt):
        self.submitted.append((shot.id, attempt))
        self.pending.append((shot.id, attempt))

    def poll(self, timeout):
        out = []
        for shot_id, attempt in self.pending:
            codes = self.script.get(shot_id, [0])
            code = codes[min(attempt - 1, len(codes) - 1)]
            out.append((shot_id, attempt, {"exit_code": code, "code": "x", "node": "n1", "frames": 16 if code == 0 else 0,
                                           "manifest": f"/m/{shot_id}" if code == 0 else None, "seconds": 0.1,
                                           "error": None if code == 0 else f"fake exit {code}"}))
        self.pending = []
        return out

    def drain_events(self):
        return []

    def cancel(self, shot_id):
        self.cancelled.append(shot_id)

    def close(self):
        pass


def test_folder_and_batch_json_with_inferred_and_explicit_dependencies(tmp_path):
    specs = tmp_path / "specs"
    specs.mkdir()
    _write(specs / "a.json", _spec("a"))
    _write(specs / "b.json", _spec("b"))
    # an extend that reads a's frames waits for a, found from its input path alone
    _write(specs / "ext.json", _spec("ext", mode="extend", inputs={"frames": "shots/a/a.####.exr"}))
    batch_file = _write(tmp_path / "batch.json", {"output_root": "out", "shots": [
        {"id": "late", "spec": _spec("late"), "depends_on": ["b"]}, "specs/b.json"]})
    batch = load_batch([str(specs / "a.json"), str(specs / "ext.json"), str(batch_file)])
    assert batch.output_root == (tmp_path / "out").resolve()
    deps = {s.id: s.depends_on for s in batch.shots}
    assert deps == {"a": [], "ext": ["a"], "late": ["b"], "b": []}
    plan = batch.to_plan()
    assert [s["id"] for s in plan["shots"]] == ["a", "ext", "b", "late"]     # dependencies first
    folder = load_batch([str(specs)], str(tmp_path / "o2"))
    assert sorted(s.id for s in folder.shots) == ["a", "b", "ext"]
    assert {s.id: s.depends_on for s in folder.shots}["ext"] == ["a"]


@pytest.mark.parametrize("entries, message", [
    ([{"id": "x", "spec": _spec("x"), "depends_on": ["nope"]}], "unknown shot 'nope'"),
    ([{"id": "x", "spec": _spec("x"), "depends_on": ["y"]},
      {"id": "y", "spec": _spec("y"), "depends_on": ["x"]}], "dependency cycle"),
    ([{"id": "x", "spec": _spec("same")}, {"id": "y", "spec": _spec("same")}], "both write"),
    ([{"id": "x", "spec": _spec("x", steps=0)}], "steps"),
    ([{"id": "x", "spec": _spec("x", output={"dir": "../escape", "name": "x"})}], "outside the output root"),
])
def test_bad_batches_are_refused_before_anything_runs(tmp_path, entries, message):
    batch_file = _write(tmp_path / "batch.json", {"shots": entries})
    with pytest.raises(SoraError) as info:
        load_batch([str(batch_file)], str(tmp_path / "out"))
    assert info.value.exit_code == 2
    assert message in str(info.value)


def test_missing_sources_are_not_found(tmp_path):
    with pytest.raises(SoraError) as info:
        load_batch([str(tmp_path / "nope.json")], str(tmp_path))
    assert info.value.exit_code == 3


def _batch(tmp_path, n=3, deps=None):
    entries = [{"id": f"s{i}", "spec": _spec(f"s{i}"), "depends_on": (deps or {}).get(f"s{i}", [])}
               for i in range(n)]
    return load_batch([str(_write(tmp_path / "batch.json", {"shots": entries}))], str(tmp_path / "out"))


def test_retry_rules_75_retried_up_to_the_limit_2_and_3_never(tmp_path):
    batch = _batch(tmp_path, 5, deps={"s4": ["s2"]})
    ex = FakeExecutor({"s0": [75, 0], "s1": [75], "s2": [2], "s3": [3]})
    events = []
    summary = BatchRunner(batch, ex, retries=2, retry_delay=0, on_event=events.append).run()
    shots = {s["id"]: s for s in summary["shots"]}
    assert (shots["s0"]["status"], shots["s0"]["attempts"]) == ("done", 2)
    assert (shots["s1"]["status"], shots["s1"]["attempts"], shots["s1"]["exit_code"]) == ("failed", 3, 75)
    assert (shots["s2"]["status"], shots["s2"]["attempts"]) == ("failed", 1)
    assert (shots["s3"]["status"], shots["s3"]["attempts"]) == ("failed", 1)
    assert shots["s4"]["status"] == "blocked" and shots["s4"]["attempts"] == 0
    assert [h["exit_code"] for h in shots["s0"]["history"]] == [75, 0]
    assert summary["exit_code"] == 1          # failures with different codes
    assert [e["shot"] for e in events if e["event"] == "retry"] == ["s0", "s1", "s1"]
    assert events[-1]["event"] == "batch_done"


def test_dependencies_run_in_order_and_summary_fields(tmp_path):
    batch = _batch(tmp_path, 3, deps={"s0": ["s2"], "s1": ["s0"]})
    ex = FakeExecutor()
    summary = BatchRunner(batch, ex, retry_delay=0).run()
    assert [s for s, _ in ex.submitted] == ["s2", "s0", "s1"]
    assert summary["exit_code"] == 0 and summary["counts"] == {"done": 3}
    shot = summary["shots"][0]
    for key in ("id", "status", "node", "attempts", "seconds", "frames", "manifest", "exit_code"):
        assert key in shot
    assert shot["frames"] == 16 and shot["manifest"].startswith("/m/")


def test_cancel_marks_everything_unfinished_and_exits_130(tmp_path):
    batch = _batch(tmp_path, 3)

    class Hanging(FakeExecutor):
        def poll(self, timeout):
            if self.cancelled:
                out = [(s, a, {"exit_code": 130, "code": "cancelled", "error": "cancelled"}) for s, a in self.pending]
                self.pending = []
                return out
            runner.cancel()
            return []

    ex = Hanging()
    runner = BatchRunner(batch, ex, retry_delay=0)
    summary = runner.run()
    assert summary["exit_code"] == 130 and summary["cancelled"]
    assert {s["status"] for s in summary["shots"]} == {"cancelled"}
    assert sorted(ex.cancelled) == ["s0", "s1", "s2"]


def test_batch_exit_code_rules():
    done, f2, f75 = ShotResult("a", status="done"), ShotResult("b", status="failed", exit_code=2), \
        ShotResult("c", status="failed", exit_code=75)
    assert batch_exit_code([done]) == 0
    assert batch_exit_code([done, f2]) == 2
    assert batch_exit_code([done, f75]) == 75
    assert batch_exit_code([f2, f75]) == 1
    assert batch_exit_code([done, ShotResult("d", status="blocked")]) == 1
    assert batch_exit_code([done, f2], cancelled=True) == 130


def test_sora_help_and_plan_do_not_import_ray(tmp_path):
    import subprocess
    spec = _write(tmp_path / "a.json", _spec("a"))
    code = ("import sys; from sora_core import cli; rc = cli.main(['farm', '--plan', sys.argv[1], "
            "'--output-root', sys.argv[2]]); assert 'ray' not in sys.modules, 'ray imported'; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, str(spec), str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["shots"][0]["id"] == "a"
