"""Set Up Worker (a venv with sora-core[worker] in the extension's user folder) and Check Worker.

Both run in threads that never touch bpy: they post report lines (and the set-up's ``on_done``)
to a queue that :func:`_drain_timer`, registered from the main thread, moves into the report
the preferences draw. The venv is marked ready (``.sora-ready``) only when every step
succeeded; a venv without the marker is never used as the worker Python.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from pathlib import Path
from typing import Callable

import bpy

from sora_core.errors import SoraError

from .. import live
from ..settings import get_prefs
from .python import READY_MARKER, chosen_python, ready_marker, same_path, venv_dir, venv_python, venv_ready

REPORT_INTERVAL = 0.2
SETUP_HINT = ("run Set Up Worker again (Preferences > Add-ons > Sora Shots), or set Worker Python "
              "to a Python with sora-core[worker]")

_worker_report: list[str] = []          # main thread only (the preferences draw it)
_posted: "queue.Queue[tuple]" = queue.Queue()     # set-up/check threads -> main thread
_bg_threads: list[threading.Thread] = []
_setup_thread: threading.Thread | None = None


def setup_running() -> bool:
    return _setup_thread is not None and _setup_thread.is_alive()


def setup_problem(prefs=None) -> str:
    """Why the set-up venv is not used although it exists ('' when there is nothing to say).

    Nothing to say when $SORA_WORKER_PYTHON or a Worker Python other than the venv's is set.
    """
    if os.environ.get("SORA_WORKER_PYTHON"):
        return ""
    chosen = chosen_python(prefs or get_prefs())
    if chosen and not same_path(chosen, venv_python()):
        return ""
    folder = venv_dir()
    if not folder.exists() or venv_ready(folder):
        return ""
    if setup_running():
        return "the worker set-up is still running (progress in the preferences)"
    return f"the worker set-up did not finish: {folder} has no {READY_MARKER}"


def setup_problem_lines(problem: str) -> list[str]:
    return [f"Worker not ready: {problem}", f"Fix: {SETUP_HINT}"]


CHECK_SCRIPT = r"""
import json, platform, sys
info = {"python": platform.python_version(), "executable": sys.executable}
try:
    import sora_core
    info["sora_core"] = sora_core.__version__
except Exception as exc:
    info["error"] = f"sora_core missing: {exc}"
try:
    from sora_core.worker import device_report
    info.update(device_report())
except Exception as exc:
    info.setdefault("error", f"{type(exc).__name__}: {exc}")
print("SORA_CHECK " + json.dumps(info))
"""


def worker_report_lines() -> list[str]:
    return list(_worker_report)


def set_worker_report(lines: list[str]) -> None:
    """Replace the report (main thread)."""
    _worker_report[:] = lines[-12:]


def _post(line: str, echo: bool) -> None:
    """From a set-up/check thread: queue a report line for the main thread (no bpy here)."""
    if echo:                    # background mode: print each line as it comes (farm logs)
        print(f"sora: {line}", flush=True)
    _posted.put(("line", line))


def drain_reports() -> bool:
    """Main thread: move the lines posted by the threads into the report and run their callbacks.

    Return whether anything was posted. Called by :func:`_drain_timer` and, in background mode,
    by the operators after they joined their thread.
    """
    got = False
    while True:
        try:
            item = _posted.get_nowait()
        except queue.Empty:
            return got
        got = True
        if item[0] == "line":
            _worker_report.append(item[1])
            del _worker_report[:-12]
        elif item[0] == "call":
            try:
                item[1](*item[2])
            except Exception as exc:
                print(f"sora: {exc}", file=sys.stderr)


def _drain_timer():
    """The timer the operators register (main thread): drain, redraw; stop when the threads did."""
    busy = any(t.is_alive() for t in _bg_threads)        # before draining: nothing is posted later
    if drain_reports():
        live.invalidate()           # the worker Python's state may have changed
        live.redraw()
    _bg_threads[:] = [t for t in _bg_threads if t.is_alive()]
    return REPORT_INTERVAL if busy else None


def _start_thread(run: Callable[[], None]) -> threading.Thread:
    """Start ``run`` in a thread (main thread); its posts reach the report through the timer."""
    thread = threading.Thread(target=run, daemon=True)
    _bg_threads.append(thread)
    thread.start()
    if not bpy.app.timers.is_registered(_drain_timer):
        bpy.app.timers.register(_drain_timer, first_interval=REPORT_INTERVAL, persistent=True)
    return thread


def check_worker(python: str, timeout: float = 120.0) -> dict:
    """Run the check script in the worker Python; return its report (blocking: call in a thread)."""
    import json

    try:
        out = subprocess.run([python, "-c", CHECK_SCRIPT], capture_output=True, text=True,
                             timeout=timeout, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return {"error": f"cannot run {python}: {exc}"}
    for line in out.stdout.splitlines():
        if line.startswith("SORA_CHECK "):
            return json.loads(line[len("SORA_CHECK "):])
    return {"error": (out.stderr.strip().splitlines() or ["no output"])[-1]}


def check_ok(info: dict) -> bool:
    """The check found sora_core and could report the device (torch imports)."""
    return "sora_core" in info and not ("error" in info and "torch" not in info)


def describe_check(info: dict) -> list[str]:
    if "error" in info and "torch" not in info:
        return [f"Worker not ready: {info['error']}",
                "Fix: Set Up Worker, or point Worker Python at a Python with sora-core[worker]"]
    lines = [f"Python {info.get('python')}, sora_core {info.get('sora_core', '?')}, "
             f"torch {info.get('torch', '?')}, diffusers {info.get('diffusers', '?')}",
             f"Device: {info.get('device', '?')}" + (f" ({info['gpu']}, {info['gpu_memory_gb']} GB)"
                                                      if info.get("gpu") else "")]
    return lines


def start_check(python: str) -> threading.Thread:
    """Check ``python`` in a thread; the lines reach the preferences through :func:`_drain_timer`."""
    echo = bpy.app.background
    drain_reports()
    _worker_report.clear()

    def run():
        _post(f"Checking {python} ...", echo)
        for line in describe_check(check_worker(python)):
            _post(line, echo)
    return _start_thread(run)


def bundled_wheel() -> Path | None:
    """The sora_core wheel shipped inside the extension (see scripts/build_extension.py)."""
    wheels = sorted((Path(__file__).resolve().parents[1] / "wheels").glob("sora_core-*.whl"))
    return wheels[-1] if wheels else None


def setup_commands(base_python: str, folder: Path, pip_args: str = "") -> list[list[str]]:
    """Commands that make the worker venv: venv, pip upgrade, sora-core[worker]."""
    import shlex

    py = str(venv_python(folder))
    wheel = bundled_wheel()
    repo = Path(__file__).resolve().parents[2]
    if wheel is not None:
        target = f"{wheel}[worker]"
    elif (repo / "pyproject.toml").is_file() and (repo / "sora_core").is_dir():
        target = f"{repo}[worker]"         # running from a source checkout
    else:
        target = "sora-core[worker]"
    extra = shlex.split(pip_args) if pip_args else []
    return [[base_python, "-m", "venv", str(folder)],
            [py, "-m", "pip", "install", "--upgrade", "pip"] + extra,
            [py, "-m", "pip", "install", target] + extra]


def _write_marker(folder: Path, version: str) -> None:
    tmp = folder / (READY_MARKER + ".tmp")
    tmp.write_text(version + "\n")
    os.replace(tmp, ready_marker(folder))


def start_setup(base_python: str, folder: Path, pip_args: str = "",
                on_done: Callable[[bool], None] | None = None) -> threading.Thread:
    """Make the worker venv in a thread (call from the main thread).

    The ready marker is removed first and written only when every command succeeded and the new
    venv imports sora_core. The thread touches no bpy: it posts report lines (and ``on_done(ok)``)
    that the main thread takes in :func:`drain_reports`.
    """
    global _setup_thread
    folder = Path(folder)
    if setup_running():
        raise SoraError("invalid_input", "Set Up Worker is already running",
                        hint="wait for it to finish (progress in the preferences)")
    try:
        ready_marker(folder).unlink(missing_ok=True)
    except OSError as exc:
        raise SoraError("internal", f"cannot remove {ready_marker(folder)}: {exc}") from None
    python = str(venv_python(folder))
    commands = setup_commands(base_python, folder, pip_args)
    echo = bpy.app.background
    drain_reports()
    _worker_report.clear()

    def run():
        ok = True
        try:
            ok = _run_setup(commands, folder, python, echo)
        except Exception as exc:        # never leave on_done uncalled
            _post(f"Error: {type(exc).__name__}: {exc}", echo)
            ok = False
        if on_done:
            _posted.put(("call", on_done, (ok,)))
    _setup_thread = _start_thread(run)
    return _setup_thread


def _run_setup(commands: list[list[str]], folder: Path, python: str, echo: bool) -> bool:
    for cmd in commands:
        _post("$ " + " ".join(cmd[:5]) + (" ..." if len(cmd) > 5 else ""), echo)
        try:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        except OSError as exc:
            _post(f"Error: {exc}", echo)
            return False
        for line in proc.stdout:
            line = line.strip()
            if line:
                _post(line[:160], echo)
        if proc.wait() != 0:
            _post(f"Error: exit code {proc.returncode}. Fix: check the network or pip "
                  "arguments (e.g. --index-url for CUDA torch) and run Set Up Worker again", echo)
            return False
    info = check_worker(python)
    lines = describe_check(info)
    if "sora_core" not in info:
        for line in lines:
            _post(line, echo)
        _post(f"Error: the new environment cannot import sora_core ({info.get('error', '?')}). "
              "Fix: run Set Up Worker again", echo)
        return False
    try:
        _write_marker(folder, str(info["sora_core"]))
    except OSError as exc:
        _post(f"Error: cannot write {ready_marker(folder)}: {exc}", echo)
        return False
    _post(f"Worker environment ready: {python}" if check_ok(info) else
          f"Worker environment installed, but its check failed: {python}", echo)
    for line in lines:
        _post(line, echo)
    return True




def unregister() -> None:
    if bpy.app.timers.is_registered(_drain_timer):
        bpy.app.timers.unregister(_drain_timer)
