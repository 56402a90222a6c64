"""The worker process through the client: events, warm reuse, cancel, death, bad environments."""

import os
import signal
import subprocess
import sys

import pytest

from sora_core.client import WorkerClient
from sora_core.errors import SoraError
from sora_core.manifest import read_manifest, verify_frames
from sora_core.spec import ShotSpec


def shot(model, out, **kw):
    data = {"prompt": "a red ball moving right", "model": str(model), "frames": 9, "width": 32,
            "height": 32, "steps": 2, "seed": 3, "output": {"dir": out, "name": "shot"}}
    data.update(kw)
    return ShotSpec.from_dict(data)


def leftovers(folder):
    """Anything a failed job must not leave: frames, temp files."""
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def client():
    c = WorkerClient()
    yield c
    c.close()


def test_generate_streams_events_and_writes_a_complete_shot(client, tiny_ltx, tmp_path):
    seen = []
    done = client.run(shot(tiny_ltx, "a"), str(tmp_path), seen.append)
    kinds = [e["event"] for e in seen]
    assert kinds[0] == "loading" and kinds[-1] == "done"
    steps = [e["step"] for e in seen if e["event"] == "progress" and e["phase"] == "denoise"]
    assert steps == [0, 1, 2]
    frames = [e for e in seen if e["event"] == "frame"]
    assert [f["number"] for f in frames] == list(range(1, 10))
    manifest = read_manifest(done["manifest"])
    assert len(manifest["frames"]) == 9 and verify_frames(done["manifest"]) == []
    assert manifest["spec"]["prompt"] == "a red ball moving right"
    assert manifest["model"]["hash"] and manifest["timings"]["total_s"] > 0
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == \
        ["manifest.json"] + [f"shot.{n:04d}.exr" for n in range(1, 10)]


def test_warm_worker_serves_a_second_job_without_reloading(client, tiny_ltx, tmp_path):
    client.run(shot(tiny_ltx, "first"), str(tmp_path))
    pid = client.pid
    seen = []
    done = client.run(shot(tiny_ltx, "second", seed=4), str(tmp_path), seen.append)
    assert client.pid == pid
    assert "loading" not in [e["event"] for e in seen]
    assert done["model_loads"] == 1


def test_cancel_stops_at_the_next_step_and_keeps_the_worker(client, tiny_ltx, tmp_path):
    job = client.submit(shot(tiny_ltx, "cancelled", steps=400), str(tmp_path))
    for event in job.events(timeout=120):
        if event["event"] == "progress" and event["step"] >= 2:
            job.cancel(grace=60)
    assert job.error is not None and job.error.code == "cancelled" and job.error.exit_code == 130
    assert leftovers(tmp_path) == []
    assert client.alive
    assert client.run(shot(tiny_ltx, "after"), str(tmp_path))["frames"] == 9


def test_cancel_kills_a_worker_that_does_not_stop_in_time(tiny_ltx, tmp_path):
    with WorkerClient() as c:
        job = c.submit(shot(tiny_ltx, "killed", steps=400), str(tmp_path))
        for event in job.events(timeout=120):
            if event["event"] == "progress" and event["step"] >= 1 and not job.cancel_requested:
                pid = c.pid
                job.cancel(grace=0.0)
                assert not c.alive and not _pid_running(pid)   # gone and reaped on return
        assert job.error.code == "cancelled"
        assert not c.alive and not _pid_running(pid)
        assert leftovers(tmp_path) == []
        assert c.run(shot(tiny_ltx, "again"), str(tmp_path))["frames"] == 9   # restarts on demand
        assert c.pid != pid


@pytest.mark.parametrize("grace", [0.01, 0.3, 5.0])
def test_a_cancel_race_is_decided_one_way(tiny_ltx, tmp_path, grace):
    """Whoever wins, the outcome is consistent: a kill means the worker is gone before the job
    ends; a cooperative stop means the same worker is still alive and serves the next job."""
    with WorkerClient() as c:
        job = c.submit(shot(tiny_ltx, "raced", steps=400), str(tmp_path))
        for event in job.events(timeout=120):
            if event["event"] == "progress" and event["step"] >= 1 and not job.cancel_requested:
                pid = c.pid
                job.cancel(grace=grace)
        assert job.error.code == "cancelled"
        if job._killed:
            assert not c.alive and not _pid_running(pid)
        else:
            assert c.alive and c.pid == pid
        assert leftovers(tmp_path) == []
        if grace >= 5.0:
            assert not job._killed   # a worker checks cancel every step: it wins a long grace


def test_worker_killed_mid_job_is_reported_as_retryable(tiny_ltx, tmp_path):
    with WorkerClient() as c:
        job = c.submit(shot(tiny_ltx, "dead", steps=400), str(tmp_path))
        for event in job.events(timeout=120):
            if event["event"] == "progress" and event["step"] >= 1:
                os.kill(c.pid, signal.SIGKILL)
        assert job.error.code == "worker_died"
        assert job.error.retryable and job.error.exit_code == 75
        assert "exited with code -9" in job.error.message
        assert leftovers(tmp_path) == []


def test_worker_exits_when_its_host_goes_away():
    proc = subprocess.Popen([sys.executable, "-m", "sora_core.worker"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert '"hello"' in proc.stdout.readline()
    proc.stdin.close()
    assert proc.wait(timeout=20) == 0


def test_worker_python_without_torch_gives_a_setup_hint(tmp_path):
    base = os.path.join(sys.base_prefix, "bin", "python3")
    probe = subprocess.run([base, "-c", "import torch"], capture_output=True)
    if probe.returncode == 0:
        pytest.skip("the base interpreter has torch, so it cannot show the missing-package path")
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with pytest.raises(SoraError) as info:
        WorkerClient(python=base, env={"PYTHONPATH": repo}).start()
    assert info.value.code == "not_found" and "torch" in info.value.message
    assert "worker" in info.value.hint


def test_worker_that_cannot_start_reports_its_stderr(tmp_path):
    broken = tmp_path / "sora_core"
    broken.mkdir()
    (broken / "__init__.py").write_text("raise RuntimeError('broken install of sora_core')\n")
    with pytest.raises(SoraError) as info:
        WorkerClient(cwd=str(tmp_path)).start()   # -m puts the cwd first on sys.path
    assert info.value.code == "worker_died"
    assert "broken install of sora_core" in info.value.message
    with pytest.raises(SoraError) as info:
        WorkerClient(python=str(tmp_path / "no-python")).start()
    assert info.value.code == "not_found"


def test_out_of_memory_is_retryable_with_a_hint():
    torch = pytest.importorskip("torch")
    from sora_core.worker import classify
    err = classify(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert err.code == "out_of_memory" and err.retryable and err.exit_code == 75
    assert "offload" in err.hint and "fewer frames" in err.hint
    assert classify(RuntimeError("boom")).code == "internal"


def _pid_running(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def test_tidying_after_a_kill_leaves_a_live_job_and_finished_passes_alone(tmp_path):
    """What the client removes for a dead job: only its claim (a manifest listing no frames),
    its temporaries and its lock file, and only when no live job holds the folder."""
    import json

    from sora_core.safe_write import Folder
    from sora_core.shot_lock import ShotLock
    from sora_core.shot_state import tidy_after_kill

    spec = shot("m", "t")
    folder_path = tmp_path / "t"
    folder_path.mkdir()
    claim = {"status": "partial", "frames": [], "pattern": "shot.####.exr"}
    (folder_path / "manifest.json").write_text(json.dumps(claim))
    (folder_path / ".shot.0001.exr.sora-tmp-0123abcd").write_bytes(b"half a frame")
    with Folder.open(tmp_path, "t", create=False) as folder, ShotLock(folder):   # a live job
        tidy_after_kill(spec, tmp_path)
        assert (folder_path / "manifest.json").exists() and (folder_path / ".sora.lock").exists()
    tidy_after_kill(spec, tmp_path)                                              # nobody holds it
    assert sorted(p.name for p in folder_path.iterdir()) == []
    kept = dict(claim, frames=[{"number": 1, "file": "shot.0001.exr", "sha256": "0" * 64}])
    (folder_path / "manifest.json").write_text(json.dumps(kept))
    tidy_after_kill(spec, tmp_path)                                              # a finished pass
    assert [p.name for p in folder_path.iterdir()] == ["manifest.json"]
    tidy_after_kill(shot("m", "never-made"), tmp_path)
    assert not (tmp_path / "never-made").exists()
