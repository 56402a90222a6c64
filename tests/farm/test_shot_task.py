"""The farm task's helpers: stale temporaries of a killed attempt, the warm worker's idle close."""

from __future__ import annotations

import time

from sora_core.farm import shot_task


def test_stale_temporaries_of_a_killed_attempt_are_removed(tmp_path):
    keep = ["s.0001.exr", "manifest.json", ".hidden_but_not_ours"]
    stale = [".s.0002.sora-tmp-0123456789ab.exr", ".manifest.json.4711.tmp"]
    for name in keep + stale:
        (tmp_path / name).write_bytes(b"x")
    assert sorted(shot_task.clear_stale_temporaries(tmp_path)) == sorted(stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)
    assert shot_task.clear_stale_temporaries(tmp_path / "missing") == []


class _FakeClient:
    def __init__(self):
        self.closed = False

    def close(self):
        self.closed = True


def test_idle_worker_is_closed_after_keep_warm_but_not_while_a_shot_runs(monkeypatch):
    fake = _FakeClient()
    monkeypatch.setattr(shot_task, "_client", fake)
    shot_task._hold(0.05)          # a shot ended: countdown
    shot_task._hold(None)          # the next shot started before it ran out
    time.sleep(0.2)
    assert not fake.closed and shot_task._client is fake
    shot_task._hold(0.05)
    time.sleep(0.3)
    assert fake.closed and shot_task._client is None
    fake2 = _FakeClient()
    monkeypatch.setattr(shot_task, "_client", fake2)
    shot_task._hold(0)             # keep_warm 0: closed at once
    assert fake2.closed
