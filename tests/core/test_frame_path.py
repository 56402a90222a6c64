"""The frame path: a pass's frames converted and written on the pool, all or nothing."""

import os
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("OpenImageIO")

from sora_core.errors import SoraError  # noqa: E402
from sora_core.frames.color import ViewTransform  # noqa: E402
from sora_core.frames.exr import read_image  # noqa: E402
from sora_core.frames.pool import read_frames  # noqa: E402
from sora_core.manifest import read_manifest, verify_frames  # noqa: E402
from sora_core.timings import PassTimer  # noqa: E402
from sora_core.writing import PassWriter  # noqa: E402

from .mounts import failing_writes, writable_mount  # noqa: E402


def frames(n, h=96, w=128, seed=0):
    return np.random.default_rng(seed).uniform(0, 1, (n, h, w, 3)).astype(np.float32)


def writer(folder, numbers, on_frame=None, is_cancelled=lambda: False, convert=None, **kw):
    return PassWriter(numbers, lambda n: folder / f"shot.{n:04d}.exr", {"sora:prompt": "p"},
                      convert or ViewTransform().to_linear, on_frame or (lambda *a: None), is_cancelled,
                      PassTimer(0), **kw)


def test_a_pass_is_written_in_frame_order_with_the_needed_frames_first(tmp_path):
    started, events, done = [], [], []
    lock = threading.Lock()
    view = ViewTransform()

    def convert(frame):
        with lock:
            started.append(int(round(float(frame[0, 0, 0]) * 100)))
        return view.to_linear(frame)

    display = frames(12)
    for i in range(12):
        display[i, 0, 0, 0] = (10 + i) / 100          # mark each frame with its number
    w = writer(tmp_path, range(10, 22), lambda n, p, c: events.append((n, c)), convert=convert,
               on_complete=done.append)
    w.submit_all(dict(zip(range(10, 22), display)), first=[20, 21])
    records = w.wait()
    assert sorted(started[:2]) == [20, 21]                 # the next pass's context went first
    assert events == [(n, i + 1) for i, n in enumerate(range(10, 22))]     # reported in order
    assert [r["number"] for r in records] == list(range(10, 22)) and done == [records]
    back = read_image(tmp_path / "shot.0015.exr")
    np.testing.assert_allclose(back, view.to_linear(display[5]), rtol=2e-3, atol=1e-4)   # half
    timings = w.timer.as_dict()
    assert timings["color_s"] > 0 and timings["write_s"] > 0 and timings["total_s"] > 0


def test_cancel_mid_write_leaves_no_partial_frame(tmp_path):
    stop = threading.Event()

    def on_frame(number, path, count):
        if count == 3:
            stop.set()

    w = writer(tmp_path, range(1, 41), on_frame, stop.is_set)
    w.submit_all(dict(zip(range(1, 41), frames(40, 256, 256))))
    with pytest.raises(SoraError) as err:
        w.wait()
    assert err.value.code == "cancelled"
    assert sorted(os.listdir(tmp_path)) == []              # no frame, no temporary file


def test_a_failed_frame_removes_the_whole_pass_and_says_why(tmp_path):
    (tmp_path / "shot.0005.exr").mkdir()                   # a folder where frame 5 must go
    w = writer(tmp_path, range(1, 9))
    w.submit_all(dict(zip(range(1, 9), frames(8))))
    with pytest.raises(Exception):
        w.wait()
    assert sorted(os.listdir(tmp_path)) == ["shot.0005.exr"]    # only what was there before
    with pytest.raises(Exception):
        w.check()                                          # the next pass is stopped as well


def test_a_streamed_source_is_bounded_in_flight(tmp_path):
    in_flight, peak = [0], [0]
    lock = threading.Lock()
    view = ViewTransform()
    gate = threading.Semaphore(0)

    def convert(frame):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        gate.acquire(timeout=5)
        with lock:
            in_flight[0] -= 1
        return view.to_linear(frame)

    w = writer(tmp_path, range(1, 13), convert=convert, max_in_flight=3)
    feeder = threading.Thread(target=lambda: [w.submit(n, f) for n, f in zip(range(1, 13), frames(12, 16, 16))])
    feeder.start()
    for _ in range(12):
        gate.release()
    feeder.join(10)
    assert len(w.wait()) == 12 and peak[0] <= 3


def test_reading_in_parallel_keeps_order_and_raises_the_first_error(tmp_path):
    from sora_core.frames.exr import write_exr

    paths = [write_exr(tmp_path / f"r.{i:04d}.exr", np.full((4, 4, 3), i, np.float32)) for i in range(6)]
    got = read_frames(read_image, paths)
    assert [float(g[0, 0, 0]) for g in got] == [0, 1, 2, 3, 4, 5]
    with pytest.raises(SoraError) as err:
        read_frames(read_image, paths[:2] + [tmp_path / "missing.exr"] + paths[2:])
    assert err.value.code == "not_found"


# -- through the runner --------------------------------------------------------------------------
def test_a_failing_write_loses_no_finished_pass(tiny_tinyworld, tmp_path):
    from sora_core.backends.cache import BackendCache
    from sora_core.execute import run_shot
    from sora_core.spec import ShotSpec

    spec = ShotSpec.from_dict({"prompt": "a red ball moving right", "model": tiny_tinyworld, "frames": 20,
                               "steps": 4, "seed": 1, "passes": {"length": 8, "overlap": 2},
                               "output": {"dir": "ro", "name": "long"}})
    folder = tmp_path / "ro"
    guard = []
    events = []
    mount = writable_mount(folder)
    mount.__enter__()

    def emit(event):
        events.append(event)
        if (not guard and event["event"] == "progress" and event.get("pass") == 2
                and (folder / "manifest.json").is_file() and read_manifest(folder)["passes"]):
            guard.append(failing_writes(folder))
            guard.append(guard[0].__enter__())

    try:
        with pytest.raises(SoraError) as err:
            run_shot(spec, tmp_path, BackendCache(), emit)
        if guard:
            guard[0].__exit__(None, None, None)
        assert guard, "the shot never reached its second pass"
        assert err.value.code == guard[1] and err.value.exit_code in (2, 75), err.value.message
        assert str(folder) in err.value.message
        if guard[1] == "disk_full":
            assert "free at least" in err.value.message and "passes kept: 1 of 3" in err.value.message
        manifest = read_manifest(folder)
        assert manifest["status"] == "partial" and len(manifest["passes"]) == 1
        assert [f["number"] for f in manifest["frames"]] == list(range(1, 9)) and verify_frames(folder) == []
        listed = sorted(p.name for p in folder.iterdir() if p.name != ".sora.lock")
        assert listed == [f"long.{n:04d}.exr" for n in range(1, 9)] + ["manifest.json"]
        timings = manifest["timings"]["passes"][0]
        assert timings["pass"] == 1 and timings["denoise_s"] > 0 and timings["write_s"] > 0
    finally:
        mount.__exit__(None, None, None)
