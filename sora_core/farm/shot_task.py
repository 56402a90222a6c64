"""What one farm task runs on a node: one shot through the same worker path as ``sora run``.

The task checks the spec like ``sora run`` does, then hands it to a :class:`WorkerClient`
(the worker process, the runner, atomic frames, the resumable manifest): there is no second
inference path. The client is kept warm in the task's process between shots, so a node loads
its model once; it is replaced when the Python, environment, output root or visible GPUs change.
A result is a plain dict with the exit code, so the scheduler decides about retries.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from typing import Callable

from ..errors import SoraError
from ..output_dir import resolve_output_dir
from ..spec import ShotSpec

_lock = threading.Lock()
_client = None
_client_key: tuple | None = None
_idle_timer: threading.Timer | None = None


def _warm_client(python: str | None, env: dict, cwd: str):
    from ..client import WorkerClient

    global _client, _client_key
    key = (python, tuple(sorted(env.items())), cwd, os.environ.get("CUDA_VISIBLE_DEVICES"))
    with _lock:
        if _client is not None and key != _client_key:
            _client.close()
            _client = None
        if _client is None:
            _client = WorkerClient(python=python, env=env, cwd=cwd)
            _client_key = key
        return _client


def close_warm_client() -> None:
    global _client
    with _lock:
        if _client is not None:
            _client.close()
            _client = None


_generation = 0


def _close_if_still_idle(generation: int) -> None:
    global _client
    with _lock:
        if generation == _generation and _client is not None:
            _client.close()
            _client = None


def _hold(seconds: float | None) -> None:
    """After a shot: keep the worker (and its model, its GPU memory) for ``seconds``, then close
    it, so an idle node gives its GPU back; None stops the countdown (a shot is starting)."""
    global _idle_timer, _generation
    with _lock:
        _generation += 1
        generation = _generation
        if _idle_timer is not None:
            _idle_timer.cancel()
            _idle_timer = None
    if seconds is None:
        return
    if seconds <= 0:
        _close_if_still_idle(generation)
        return
    timer = threading.Timer(seconds, _close_if_still_idle, args=(generation,))
    timer.daemon = True
    with _lock:
        _idle_timer = timer
    timer.start()


atexit.register(close_warm_client)


def clear_stale_temporaries(out_dir) -> list[str]:
    """Remove hidden temporaries a killed attempt left in the shot folder (a frame or manifest
    being written when its node died). One attempt of a shot runs at a time, so none is live."""
    from pathlib import Path

    removed = []
    folder = Path(out_dir)
    if folder.is_dir():
        for p in folder.iterdir():
            name = p.name
            if name.startswith(".") and (".sora-tmp-" in name or
                                         (name.startswith(".manifest.json.") and name.endswith(".tmp"))):
                p.unlink(missing_ok=True)
                removed.append(name)
    return removed


def execute_shot(shot_id: str, spec_data: dict, output_root: str, options: dict, attempt: int,
                 node: str, emit: Callable[[dict], None]) -> dict:
    """Run one shot; return ``{exit_code, code, error, manifest, frames, seconds, node, ...}``.

    ``options``: ``python`` (worker Python), ``models_dirs``, ``cancel_grace`` (seconds),
    ``keep_warm`` (seconds an idle worker keeps its model; 0 closes it after every shot),
    ``export`` (formats to export the finished shot as, ``farm.deliver``), ``export_dir``,
    ``export_crf``, ``export_watermark``.
    Events from the worker are passed to ``emit`` with ``shot``, ``attempt`` and ``node`` added.
    """
    from ..models_index import resolve_model

    t0 = time.monotonic()
    tag = {"shot": shot_id, "attempt": attempt, "node": node}
    result = {**tag, "exit_code": 1, "code": "internal", "error": None, "manifest": None,
              "frames": 0, "skipped": False, "worker_pid": None}
    models_dirs = list(options.get("models_dirs") or [])
    env = {}
    if models_dirs:
        env["SORA_MODELS"] = os.pathsep.join(
            [os.path.abspath(d) for d in models_dirs]
            + [p for p in os.environ.get("SORA_MODELS", "").split(os.pathsep) if p])
    seen: set[str] = set()

    def relay(event: dict) -> None:
        kind = event.get("event")
        if kind == "notice" and "already complete" in event.get("message", ""):
            seen.add("skipped")
        seen.add(kind)
        emit({**event, **tag})

    _hold(None)
    try:
        spec = ShotSpec.from_dict(spec_data)
        out_dir = resolve_output_dir(spec, output_root)     # the same checks as `sora run`
        resolve_model(spec.model, models_dirs)
        if spec.color.config:   # as `sora run`: OpenImageIO keeps the default config parsed
            env = {**env, "OCIO": os.path.abspath(spec.color.config)}
        os.makedirs(output_root, exist_ok=True)     # the worker runs there (relative inputs)
        stale = clear_stale_temporaries(out_dir)
        if stale:
            emit({"event": "notice", **tag, "message": f"removed {len(stale)} temporary files a "
                  "killed attempt left behind"})
        client = _warm_client(options.get("python"), env, output_root)
        job = client.submit(spec, output_root)
        result["worker_pid"] = client.pid
        emit({"event": "started", **tag, "worker_pid": client.pid})
        try:
            done = job.wait(relay)
        except KeyboardInterrupt:                   # the batch was cancelled (ray.cancel)
            job.cancel(grace=float(options.get("cancel_grace", 10.0)))
            try:
                job.wait(relay, timeout=float(options.get("cancel_grace", 10.0)) + 5)
            except (SoraError, TimeoutError):
                pass
            raise SoraError("cancelled", "cancelled: the batch was cancelled") from None
        if options.get("export"):                  # deliverables, before the shot counts as done
            from .deliver import export_after
            result["deliverables"] = export_after(shot_id, str(out_dir), output_root, options,
                                                  "skipped" in seen, lambda e: emit({**e, **tag}))
        result.update(exit_code=0, code="ok", manifest=done.get("manifest"),
                      frames=done.get("frames", 0), skipped="skipped" in seen,
                      job_seconds=(done.get("timings") or {}).get("total_s"))
    except SoraError as err:
        result.update(exit_code=err.exit_code, code=err.code, error=f"{err.code}: {err}")
        if "error" not in seen or err.code == "cancelled":
            emit({**err.to_event(), **tag})
    except Exception as exc:  # a bug in this task: report it, the scheduler does not retry it
        result.update(exit_code=1, code="internal", error=f"internal: {type(exc).__name__}: {exc}")
        emit({**SoraError("internal", result["error"]).to_event(), **tag})
    _hold(float(options.get("keep_warm", 120.0)))
    result["seconds"] = round(time.monotonic() - t0, 4)
    return result
