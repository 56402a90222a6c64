"""The worker environment made by Set Up Worker: used only once its set-up finished (.sora-ready),
and the set-up/check threads leave bpy to the main thread (a timer drains what they report).

Set-ups here run in a folder under tmp_path, or in a fresh Python with its own HOME, never in the
user's Blender folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import bpy
import pytest

ROOT = Path(__file__).resolve().parents[2]

UNFINISHED_VENV = r"""
import json, os, subprocess, sys
import bpy, addon_utils
sys.path.insert(0, sys.argv[1])
os.environ.pop("SORA_WORKER_PYTHON", None)
mod = addon_utils.enable("sora_blender", default_set=True, handle_error=None)
settings, setup = mod.settings, sys.modules["sora_blender.worker.setup"]
wpython = sys.modules["sora_blender.worker.python"]
prefs = settings.get_prefs()
venv = wpython.venv_python()
marker = wpython.venv_dir() / ".sora-ready"
r = {"user_dir": str(settings.user_dir()), "venv": str(venv)}


def record(name, fn):
    try:
        r[name] = fn()
    except Exception as exc:        # the operators fail with RuntimeError; record the message
        r[name] = f"{type(exc).__name__}: {exc}"


# a venv whose set-up stopped before the end (no sora_core in it, no ready marker)
subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(wpython.venv_dir())], check=True)
r["venv_exists"] = venv.exists()
record("python", wpython.worker_python)
prefs.worker_python = str(venv)           # what an earlier set-up that finished left there
record("python_pref", wpython.worker_python)
prefs.worker_python = ""
record("check", lambda: sorted(bpy.ops.sora.check_worker()))
r["report"] = setup.worker_report_lines()
props = bpy.context.scene.sora
props.prompt, props.steps = "a red ball", 2
record("generate", lambda: sorted(bpy.ops.sora.generate()))
job = mod.live.job(bpy.context.scene)
r["last_error"], r["last_hint"] = job.error, job.hint
record("problem", lambda: setup.setup_problem())
# the marker is what makes the venv the worker Python
marker.write_text("0.1.0\n")
record("python_ready", wpython.worker_python)
record("problem_ready", lambda: setup.setup_problem())
os.environ["SORA_WORKER_PYTHON"] = sys.executable
marker.unlink()
record("problem_env", lambda: setup.setup_problem())     # an explicit worker Python: nothing to say
print("SORA_VENV " + json.dumps(r), flush=True)
"""


def test_venv_without_ready_marker_is_not_the_worker(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, HOME=str(home), BLENDER_USER_RESOURCES=str(home / "blender"))
    env.pop("SORA_WORKER_PYTHON", None)
    proc = subprocess.run([sys.executable, "-c", UNFINISHED_VENV, str(ROOT)], capture_output=True,
                          text=True, env=env, timeout=180, cwd=str(tmp_path))
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("SORA_VENV ")), None)
    assert line, proc.stdout[-2000:] + proc.stderr[-2000:]
    r = json.loads(line[len("SORA_VENV "):])
    assert r["user_dir"].startswith(str(home)) and r["venv_exists"]
    # the unfinished venv is not chosen, not even when the preference names its Python
    assert r["python"] == sys.executable
    assert r["python_pref"] == sys.executable
    # Check Worker and Generate say so, with the fix
    assert "the worker set-up did not finish" in r["check"] and "Set Up Worker again" in r["check"]
    assert r["report"][0].startswith("Worker not ready: the worker set-up did not finish")
    assert r["report"][1].startswith("Fix: run Set Up Worker again")
    assert "the worker set-up did not finish" in r["generate"]
    assert r["last_error"].startswith("[not_found] the worker set-up did not finish")
    assert r["last_hint"].startswith("run Set Up Worker again")
    assert "the worker set-up did not finish" in r["problem"]
    # with the marker it is the worker Python
    assert r["python_ready"] == r["venv"] and r["problem_ready"] == ""
    assert r["problem_env"] == ""


class BpyCalls:
    """Record calls into bpy made by the threads started while it is active (a profile hook)."""

    def __init__(self):
        self.calls: list[str] = []

    def __call__(self, frame, event, arg):
        if event == "c_call":
            module = getattr(arg, "__module__", None) or ""
            owner = getattr(arg, "__self__", None)
            owner_module = getattr(owner, "__name__", "") if owner is not None else ""
            if module.startswith(("bpy", "_bpy")) or str(owner_module).startswith(("bpy", "_bpy")):
                self.calls.append(f"{module or owner_module}.{getattr(arg, '__name__', arg)}")
        elif event == "call":
            module = frame.f_globals.get("__name__", "")
            if module.startswith(("bpy", "_bpy")):
                self.calls.append(f"{module}.{frame.f_code.co_name}")

    def __enter__(self):
        threading.setprofile(self)
        return self

    def __exit__(self, *exc):
        threading.setprofile(None)


@pytest.fixture
def setup(sora_addon):
    from sora_blender.worker import setup
    yield setup
    if bpy.app.timers.is_registered(setup._drain_timer):   # no timers run in the bpy module
        bpy.app.timers.unregister(setup._drain_timer)
        setup.drain_reports()


def test_failed_setup_removes_stale_marker_and_reports_through_the_main_thread(setup, tmp_path):
    folder = tmp_path / "worker-venv"
    folder.mkdir()
    marker = folder / ".sora-ready"
    marker.write_text("0.1.0\n")                # left by an earlier set-up that finished
    done = []

    def on_done(ok):
        done.append((ok, threading.current_thread() is threading.main_thread()))

    with BpyCalls() as bpy_calls:
        # real pip refusing an option: the venv is made, then the pip upgrade fails
        thread = setup.start_setup(sys.executable, folder, "--no-index --no-such-option", on_done)
        assert not marker.exists(), "a stale marker must go before the set-up starts"
        assert bpy.app.timers.is_registered(setup._drain_timer)   # registered by the caller
        thread.join(240)
    assert not thread.is_alive()
    assert bpy_calls.calls == [], "the set-up thread called bpy"
    # the thread only queued its lines and its result: nothing reached bpy-facing state yet
    assert setup.worker_report_lines() == [] and done == []
    assert setup._drain_timer() is None       # drains, redraws; stops since the thread ended
    assert done == [(False, True)]              # on_done ran on the main thread
    lines = setup.worker_report_lines()
    assert lines[0].startswith("$ ") and " -m venv " in lines[0]
    assert any("no such option" in ln for ln in lines)
    assert lines[-1].startswith("Error: exit code 2")
    assert setup.venv_python(folder).exists() and not marker.exists()


def test_check_thread_reports_through_the_main_thread(setup):
    with BpyCalls() as bpy_calls:
        thread = setup.start_check(sys.executable)
        thread.join(120)
    assert bpy_calls.calls == [], "the check thread called bpy"
    assert setup.worker_report_lines() == [], "the check thread wrote the report itself"
    assert bpy.app.timers.is_registered(setup._drain_timer)      # registered by the caller
    assert setup._drain_timer() is None
    lines = setup.worker_report_lines()
    assert lines[0] == f"Checking {sys.executable} ..."
    assert lines[1].startswith("Python ") and "sora_core " in lines[1] and "torch " in lines[1]
