"""Worker lifetime, job polling with ``bpy.app.timers``, and blocking runs for background mode.

Nothing here imports torch: the worker is another process (``sora_core.client``). The UI never
waits on it: tasks are advanced by a timer that calls ``Job.poll()`` (non-blocking). In
background mode (``blender -b``) :func:`run_blocking` drives the same task to completion and
prints one line per progress event for farm logs.

A *task* is a list of *steps*; each step prepares a spec only when it starts (so a node can use
the result of the node before it), may be skipped (cached), runs one worker job and then
finishes (import into the compositor, update a node). The worker is stopped when a file is
loaded, when the add-on is disabled and when Blender quits.

*Set Up Worker* makes a venv in the extension's user folder and marks it ready (``.sora-ready``)
only when it finished; a venv without the marker is never used as the worker Python.
"""

from __future__ import annotations

import atexit
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

import bpy

from sora_core import protocol
from sora_core.client import WorkerClient
from sora_core.errors import SoraError

ADDON_ID = __package__
POLL_INTERVAL = 0.1

_client: WorkerClient | None = None
_client_key: tuple | None = None
_tasks: dict[str, "Task"] = {}
_models_cache: list | None = None
_models_key: tuple | None = None
_worker_report: list[str] = []          # main thread only (the preferences draw it)
_posted: "queue.Queue[tuple]" = queue.Queue()     # set-up/check threads -> main thread
_bg_threads: list[threading.Thread] = []
_setup_thread: threading.Thread | None = None
READY_MARKER = ".sora-ready"            # in the venv, written when Set Up Worker finished
REPORT_INTERVAL = 0.2
SETUP_HINT = ("run Set Up Worker again (Preferences > Add-ons > Sora Shots), or set Worker Python "
              "to a Python with sora-core[worker]")


# ---- preferences and paths -------------------------------------------------------------------
class _DefaultPrefs:
    """Preference values when the add-on is registered without its preferences (scripts)."""

    worker_python = ""
    model_folders = ()
    device = "auto"
    dtype = "auto"
    memory = "none"
    output_dir = ""
    pip_args = ""


def get_prefs(context=None):
    context = context or bpy.context
    addon = context.preferences.addons.get(ADDON_ID) if context.preferences else None
    return addon.preferences if addon and addon.preferences else _DefaultPrefs()


def user_dir() -> Path:
    """The extension's user folder (survives upgrades); a Blender user folder for legacy installs."""
    try:
        path = bpy.utils.extension_path_user(ADDON_ID, create=True)
    except (ValueError, RuntimeError, AttributeError):
        path = bpy.utils.user_resource("DATAFILES", path="sora_blender", create=True)
    return Path(path)


def venv_dir() -> Path:
    return user_dir() / "worker-venv"


def venv_python(folder: Path | None = None) -> Path:
    folder = folder or venv_dir()
    return folder / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ready_marker(folder: Path | None = None) -> Path:
    """The file Set Up Worker writes (holding the sora_core version) once every step succeeded."""
    return (folder or venv_dir()) / READY_MARKER


def venv_ready(folder: Path | None = None) -> bool:
    folder = folder or venv_dir()
    return venv_python(folder).exists() and ready_marker(folder).is_file()


def _same_path(a, b) -> bool:
    """Same path as written (a venv's python is a link to its base Python: do not resolve it)."""
    return os.path.normcase(os.path.abspath(a)) == os.path.normcase(os.path.abspath(b))


def worker_python(prefs=None) -> str:
    """$SORA_WORKER_PYTHON, then the preference, then the set-up venv, then this Python.

    The set-up venv (also when the preference names its Python) is used only once its set-up
    finished (:data:`READY_MARKER`); a half-made venv would die with "No module named ...".
    """
    if os.environ.get("SORA_WORKER_PYTHON"):
        return os.environ["SORA_WORKER_PYTHON"]
    prefs = prefs or get_prefs()
    ready = venv_ready()
    if prefs.worker_python:
        chosen = bpy.path.abspath(prefs.worker_python)
        if ready or not _same_path(chosen, venv_python()):
            return chosen
    if ready:
        return str(venv_python())
    return sys.executable


def setup_problem(prefs=None) -> str:
    """Why the set-up venv is not used although it exists ('' when there is nothing to say).

    Nothing to say when $SORA_WORKER_PYTHON or a Worker Python other than the venv's is set.
    """
    if os.environ.get("SORA_WORKER_PYTHON"):
        return ""
    prefs = prefs or get_prefs()
    if prefs.worker_python and not _same_path(bpy.path.abspath(prefs.worker_python), venv_python()):
        return ""
    folder = venv_dir()
    if not folder.exists() or venv_ready(folder):
        return ""
    if setup_running():
        return "the worker set-up is still running (progress in the preferences)"
    return f"the worker set-up did not finish: {folder} has no {READY_MARKER}"


def setup_problem_lines(problem: str) -> list[str]:
    return [f"Worker not ready: {problem}", f"Fix: {SETUP_HINT}"]


def model_roots(prefs=None) -> list[str]:
    prefs = prefs or get_prefs()
    return [bpy.path.abspath(f.path) for f in prefs.model_folders if f.path]


def scan_models(force: bool = False) -> list:
    """Models under the model folders (and the bundled one): name, family, capabilities."""
    global _models_cache, _models_key
    from sora_core.models_index import list_models

    try:
        roots = tuple(model_roots())
    except Exception:      # preferences not readable (during registration)
        roots = ()
    if force or _models_cache is None or roots != _models_key:
        try:
            _models_cache = list_models(list(roots))
        except (SoraError, OSError):
            _models_cache = []
        _models_key = roots
    return _models_cache


def model_info(ref: str):
    """(ModelInfo or None, Capabilities or None, problem text) for a model name or path."""
    from sora_core.capabilities import FAMILIES
    from sora_core.models_index import BUNDLED, resolve_model

    ref = (ref or "").strip()
    if not ref:
        return None, None, "choose a model"
    for info in scan_models():
        if info.name == ref or str(info.path) == ref:
            return info, info.capabilities, "" if info.capabilities else \
                (info.problem or f"{info.pipeline_class} pipelines are not supported")
    if ref in BUNDLED:
        return None, FAMILIES.get(ref), f"the bundled model {ref} has no weights installed yet"
    try:
        info = resolve_model(bpy.path.abspath(ref) if ref.startswith("//") else ref, model_roots())
    except SoraError as exc:
        return None, None, exc.message
    return info, info.capabilities, "" if info.capabilities else \
        (info.problem or f"{info.pipeline_class} pipelines are not supported")


def model_ref_for_spec(ref: str) -> str:
    """Bundled names stay names; other models are passed to the worker as absolute paths."""
    info, _caps, _problem = model_info(ref)
    if info is None or info.bundled:
        return ref.strip()
    return str(Path(info.path).resolve())


# ---- the worker ------------------------------------------------------------------------------
def get_client() -> WorkerClient:
    """The one warm worker; restarted when the worker Python changes.

    Refused (``not_found``, with a hint) while the set-up venv exists but its set-up did not finish.
    """
    global _client, _client_key
    problem = setup_problem()
    if problem:
        raise SoraError("not_found", problem, hint=SETUP_HINT)
    python = worker_python()
    key = (python,)
    if _client is not None and _client_key != key:
        stop_worker()
    if _client is None:
        _client = WorkerClient(python=python, env={"HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")},
                               log=_log_worker_line if bpy.app.background else None)
        _client_key = key
    return _client


def _log_worker_line(line: str) -> None:
    if os.environ.get("SORA_VERBOSE"):
        print(f"[sora worker] {line}", file=sys.stderr, flush=True)


def worker_pid() -> int | None:
    return _client.pid if _client is not None and _client.alive else None


def stop_worker() -> None:
    """Cancel every task and stop the worker process (no orphans)."""
    global _client, _client_key
    for task in list(_tasks.values()):
        task.abort("the worker was stopped")
    _tasks.clear()
    if _client is not None:
        try:
            _client.close(timeout=5.0)
        except Exception:
            _client.kill()
    _client = None
    _client_key = None


@bpy.app.handlers.persistent
def _on_load_pre(*_args):
    stop_worker()


STALE_NODE_STATES = ("running", "queued")


@bpy.app.handlers.persistent
def _on_load_post(*_args):
    """A file saved while a shot ran holds that shot's live state, but no job survives a load:
    clear it so the panel offers Generate again and no progress bar waits forever."""
    for scene in bpy.data.scenes:
        props = getattr(scene, "sora", None)
        if props is not None and props.state == "RUNNING":
            props.state, props.progress, props.phase = "CANCELLED", 0.0, ""
            props.message = "interrupted: the file was saved while a shot was running"
    for tree in bpy.data.node_groups:
        for node in tree.nodes:
            status = getattr(node, "status", "")
            if isinstance(status, str) and status.split(" ")[0] in STALE_NODE_STATES:
                node.status, node.message = "", "interrupted: saved while running"



# ---- tasks -----------------------------------------------------------------------------------
class Step:
    """One worker job. ``prepare()`` -> (ShotSpec, output_root) or None to skip (cached)."""

    def __init__(self, label: str, prepare: Callable, finish: Callable[[dict], None],
                 on_event: Callable[[dict], None] | None = None,
                 on_fail: Callable[[SoraError], None] | None = None,
                 on_skip: Callable[[], None] | None = None):
        self.label = label
        self.prepare = prepare
        self.finish = finish
        self.on_event = on_event
        self.on_fail = on_fail
        self.on_skip = on_skip


class Task:
    def __init__(self, key: str, steps: list[Step], on_finish: Callable[["Task"], None] | None = None,
                 echo: bool = False):
        self.key = key
        self.steps = list(steps)
        self.on_finish = on_finish
        self.echo = echo
        self.index = 0
        self.job = None
        self.state = "running"          # running, done, error, cancelled
        self.error: SoraError | None = None
        self.ran: list[str] = []        # labels of steps that ran a job
        self.skipped: list[str] = []    # labels of steps served from the cache
        self.local: list[str] = []      # labels of steps done in Blender without a job

    @property
    def finished(self) -> bool:
        return self.state != "running"

    def _print(self, text: str) -> None:
        if self.echo:
            print(f"sora: {text}", flush=True)

    def update(self) -> bool:
        """Advance without blocking; return True when the task has finished."""
        if self.finished:
            return True
        try:
            self._advance()
        except SoraError as exc:
            self._fail(exc)
        except Exception as exc:        # a bug in a callback must not kill the timer
            self._fail(SoraError("internal", f"{type(exc).__name__}: {exc}"))
        return self.finished

    def _advance(self) -> None:
        while self.job is None:
            if self.index >= len(self.steps):
                self._end("done")
                return
            step = self.steps[self.index]
            prepared = step.prepare()
            if prepared is None:
                if getattr(step, "local", False):      # done in Blender (e.g. compositor import)
                    self.local.append(step.label)
                    self._print(f"[{step.label}] done")
                    self.index += 1
                    continue
                self.skipped.append(step.label)
                self._print(f"[{step.label}] cached, not run again")
                if step.on_skip:
                    step.on_skip()
                self.index += 1
                continue
            spec, root = prepared
            self._print(f"[{step.label}] {spec.mode} {spec.model} -> {Path(root) / spec.output.dir}")
            self.job = get_client().submit(spec, root)
            self.ran.append(step.label)
        step = self.steps[self.index]
        for event in self.job.poll():
            kind = event.get("event")
            if kind in ("progress", "loading", "notice", "error", "done"):
                self._print(f"[{step.label}] {protocol.describe(event)}")
            if step.on_event:
                step.on_event(event)
            if kind == "done":
                self.job = None
                self.index += 1
                step.finish(event)
                return
            if kind == "error":
                self.job = None
                self._fail(SoraError.from_event(event))
                return

    def _fail(self, err: SoraError) -> None:
        if self.index < len(self.steps) and self.steps[self.index].on_fail:
            try:
                self.steps[self.index].on_fail(err)
            except Exception:
                pass
        self.error = err
        self._end("cancelled" if err.code == "cancelled" else "error")

    def _end(self, state: str) -> None:
        self.state = state
        _tasks.pop(self.key, None)
        if self.on_finish:
            try:
                self.on_finish(self)
            except Exception as exc:
                print(f"sora: finishing {self.key} failed: {exc}", file=sys.stderr)

    def cancel(self) -> None:
        if self.finished:
            return
        if self.job is not None:
            self.job.cancel()
        else:
            self._fail(SoraError("cancelled", "cancelled by the user"))

    def abort(self, reason: str) -> None:
        """The worker is going away: end now (the job dies with the worker)."""
        if not self.finished:
            self.job = None
            self._fail(SoraError("cancelled", f"cancelled: {reason}"))


def start(task: Task) -> Task:
    """Run ``task`` in the background of the UI, advanced by a timer."""
    old = _tasks.get(task.key)
    if old is not None and not old.finished:
        raise SoraError("invalid_input", f"{task.key} is already running", hint="cancel it first")
    _tasks[task.key] = task
    task.update()
    if not task.finished and not bpy.app.timers.is_registered(tick):
        bpy.app.timers.register(tick, first_interval=POLL_INTERVAL)
    return task


def run_blocking(task: Task, timeout: float | None = None) -> Task:
    """Drive ``task`` to completion (background mode, farm, tests)."""
    _tasks[task.key] = task
    deadline = None if timeout is None else time.monotonic() + timeout
    while not task.update():
        if deadline is not None and time.monotonic() > deadline:
            task.cancel()
            deadline = None
        time.sleep(0.03)
    return task


def get_task(key: str) -> Task | None:
    return _tasks.get(key)


def active_tasks() -> dict[str, Task]:
    return dict(_tasks)


def tick():
    """The timer: poll every task, redraw, stay registered while something runs."""
    for task in list(_tasks.values()):
        task.update()
    _redraw()
    return POLL_INTERVAL if _tasks else None


def _redraw() -> None:
    wm = getattr(bpy.context, "window_manager", None)
    if wm is None:
        return
    for window in wm.windows:
        for area in window.screen.areas:
            if area.type in ("NODE_EDITOR", "SEQUENCE_EDITOR", "VIEW_3D", "PREFERENCES"):
                area.tag_redraw()


# ---- worker environment: set up and check --------------------------------------------------
# Both run in threads that never touch bpy: they post lines (and the set-up's on_done) to a
# queue that _drain_timer, registered from the main thread, moves into the report.
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
        _redraw()
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
    wheels = sorted((Path(__file__).parent / "wheels").glob("sora_core-*.whl"))
    return wheels[-1] if wheels else None


def setup_commands(base_python: str, folder: Path, pip_args: str = "") -> list[list[str]]:
    """Commands that make the worker venv: venv, pip upgrade, sora-core[worker]."""
    import shlex

    py = str(venv_python(folder))
    wheel = bundled_wheel()
    repo = Path(__file__).resolve().parents[1]
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


def setup_running() -> bool:
    return _setup_thread is not None and _setup_thread.is_alive()


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
    if _client_key is not None and _same_path(_client_key[0], python):
        stop_worker()           # do not reinstall packages under a running worker
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


# ---- registration ------------------------------------------------------------------------------
def register() -> None:
    if _on_load_pre not in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.append(_on_load_pre)
    if _on_load_post not in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.append(_on_load_post)
    atexit.register(stop_worker)      # quitting Blender stops the worker


def unregister() -> None:
    stop_worker()
    for timer in (tick, _drain_timer):
        if bpy.app.timers.is_registered(timer):
            bpy.app.timers.unregister(timer)
    while _on_load_pre in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(_on_load_pre)
    while _on_load_post in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(_on_load_post)
    atexit.unregister(stop_worker)
