"""The one warm worker, started and stopped off the main thread.

Starting a worker (its Python imports torch, then says ``hello``) takes seconds; stopping one
mid-job waits for the job. Neither may block Blender: :func:`ready_client` returns the client
once its ``hello`` came and otherwise starts it in a thread and returns None (the task polls
again on the next tick); :func:`stop_worker` kills a busy or starting worker at once (killing
is always a valid cancel) and lets an idle one shut down by itself, a thread reaping it.
The worker is stopped when a file is loaded, when the add-on is disabled and when Blender quits.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

import bpy

from sora_core.client import WorkerClient
from sora_core.errors import SoraError

from ..settings import sign_env
from .python import worker_python
from .setup import SETUP_HINT, setup_problem

_lock = threading.Lock()
_client: WorkerClient | None = None
_starting: threading.Thread | None = None
_start_error: SoraError | None = None
_on_stop: list = []             # callbacks run when the worker is stopped (the tasks abort)


def _log_worker_line(line: str) -> None:
    if os.environ.get("SORA_VERBOSE"):
        print(f"[sora worker] {line}", file=sys.stderr, flush=True)


def ready_client() -> WorkerClient | None:
    """The warm worker when it is ready; else start it in a thread and return None.

    Raises the start's error once (``not_found`` with a hint while the set-up venv is half made).
    """
    global _client, _start_error, _starting
    problem = setup_problem()
    if problem:
        raise SoraError("not_found", problem, hint=SETUP_HINT)
    python = worker_python()
    env = {"HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"), **sign_env()}
    if _client is not None and (_client.python, _client.env) != (python, env):
        if _client.busy:                    # the worker Python or the signing identity changed:
            return None                     # its running job ends on the old worker first,
        _drop_client()                      # and the task asking now is not aborted
    with _lock:
        if _start_error is not None:
            err, _start_error = _start_error, None
            raise err
        if _client is not None and _client.alive and _client.hello is not None:
            return _client
        if _starting is not None and _starting.is_alive():
            return None
        if _client is None:
            _client = WorkerClient(python=python, env=env, log=_log_worker_line if bpy.app.background else None)
        client = _client
        _starting = threading.Thread(target=_start, args=(client,), daemon=True, name="sora-worker-start")
        _starting.start()
    return None


def _start(client: WorkerClient) -> None:
    """In a thread: spawn and wait for ``hello``; a worker stopped meanwhile is killed."""
    global _start_error
    try:
        client.start()
    except SoraError as err:
        with _lock:
            if _client is client:
                _start_error = err
        return
    except Exception as exc:            # a bug must reach the task, not vanish with the thread
        with _lock:
            if _client is client:
                _start_error = SoraError("internal", f"{type(exc).__name__}: {exc}")
        return
    with _lock:
        stale = _client is not client
    if stale:
        client.kill(reason="stopped")


def starting() -> bool:
    return _starting is not None and _starting.is_alive()


def worker_pid() -> int | None:
    return _client.pid if _client is not None and _client.alive else None


def current_python() -> str | None:
    """The Python of the worker that is running or starting (None when there is none)."""
    return _client.python if _client is not None else None


def on_stop(callback) -> None:
    """Run ``callback(reason)`` whenever the worker is stopped (the task runner aborts its tasks)."""
    if callback not in _on_stop:
        _on_stop.append(callback)


def _signal_kill(pid: int | None) -> None:
    if pid is None:
        return
    try:
        os.kill(pid, getattr(signal, "SIGKILL", signal.SIGTERM))
    except OSError:             # already gone
        pass


def stop_worker(reason: str = "the worker was stopped") -> None:
    """Abort every task and stop the worker process (no orphans), without waiting on it."""
    for callback in list(_on_stop):
        callback(reason)
    _drop_client()


def _drop_client() -> None:
    """Let go of the worker process: a starting or busy one is killed, an idle one exits itself."""
    global _client, _start_error
    with _lock:
        client, _client, _start_error = _client, None, None
    if client is None:
        return
    if client.hello is None or client.busy:
        _signal_kill(client.pid)            # starting or mid-job: killed now, reaped by a thread
        threading.Thread(target=client.kill, kwargs={"reason": "stopped"}, daemon=True,
                         name="sora-worker-reap").start()
        return
    client.shutdown()                       # idle: it exits by itself; a thread reaps it
    threading.Thread(target=client.close, kwargs={"timeout": 5.0}, daemon=True,
                     name="sora-worker-close").start()
