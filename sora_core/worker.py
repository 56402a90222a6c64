"""The worker process: ``python -m sora_core.worker``.

Reads commands as JSON lines on stdin, writes events as JSON lines on stdout, logs to stderr.
Jobs run one at a time on the main thread while a reader thread takes ``cancel`` at any
moment; ``shutdown`` exits after the jobs already sent. The last model stays loaded between
jobs. End of stdin (the host went away) cancels the running job and exits, so a dead host
never leaves a worker behind.
"""

from __future__ import annotations

import logging
import os
import platform
import queue
import sys
import threading
import traceback

from . import __version__, protocol
from .errors import OOM_HINT, SoraError
from .spec import ShotSpec

log = logging.getLogger("sora.worker")


class Emitter:
    """Writes protocol lines to the real stdout, one whole line at a time."""

    def __init__(self, stream):
        self.stream = stream
        self.lock = threading.Lock()

    def __call__(self, event: dict) -> None:
        with self.lock:
            self.stream.write(protocol.encode(event))
            self.stream.flush()


def classify(exc: BaseException) -> SoraError:
    """Turn any exception into a SoraError with a stable code; OOM is retryable with a hint."""
    from .backends.loading import is_oom

    from .safe_write import DISK_FULL, NOT_ALLOWED, os_failure

    if isinstance(exc, SoraError):
        return exc
    if isinstance(exc, OSError) and exc.errno in DISK_FULL + NOT_ALLOWED:
        return os_failure(exc, exc.filename or "the output folder")
    if is_oom(exc):
        return SoraError("out_of_memory", f"out of memory: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                         hint=OOM_HINT)
    return SoraError("internal", f"{type(exc).__name__}: {exc}",
                     hint="this is a bug or an unexpected environment; the worker log has the traceback")


def device_report() -> dict:
    """What the worker runs on, for ``hello`` and the host's environment check."""
    import torch

    info = {"torch": torch.__version__, "cuda": torch.cuda.is_available(), "device": "cpu"}
    if info["cuda"]:
        props = torch.cuda.get_device_properties(0)
        info.update(device="cuda", gpu=props.name, gpu_memory_gb=round(props.total_memory / 2**30, 1))
    elif getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        info["device"] = "mps"
    try:
        import diffusers
        info["diffusers"] = diffusers.__version__
    except ImportError:
        pass
    return info


class Worker:
    def __init__(self, emit: Emitter):
        from .backends.cache import BackendCache

        self.emit = emit
        self.jobs: queue.Queue = queue.Queue()
        self.cancelled: set[str] = set()
        self.stopping = threading.Event()
        self.cache = BackendCache()

    def read_commands(self, stream) -> None:
        for line in stream:
            if not line.strip():
                continue
            try:
                cmd = protocol.decode(line)
            except ValueError as exc:
                log.error("ignoring malformed command line: %s", exc)
                continue
            kind = cmd.get("cmd")
            if kind == "job":
                self.jobs.put(cmd)
            elif kind == "cancel":
                self.cancelled.add(str(cmd.get("id")))
            elif kind == "shutdown":    # graceful: finish the jobs already sent, then exit
                self.jobs.put(None)
                return
            else:
                log.error("ignoring unknown command %r; known: %s", kind, ", ".join(protocol.COMMANDS))
        self.stopping.set()     # end of input, the host is gone: stop the running job and exit
        self.jobs.put(None)

    def serve(self) -> None:
        while True:
            cmd = self.jobs.get()
            if cmd is None or self.stopping.is_set():
                return
            self.run_job(cmd)

    def run_job(self, cmd: dict) -> None:
        from .execute import run_shot

        job_id = str(cmd.get("id", ""))
        try:
            if job_id in self.cancelled:
                raise SoraError("cancelled", "cancelled before it started")
            spec = ShotSpec.from_dict(cmd.get("spec"))
            done = run_shot(spec, cmd.get("output_root") or os.getcwd(), self.cache, self.emit, job_id,
                            lambda: job_id in self.cancelled or self.stopping.is_set())
            self.emit(done)
        except BaseException as exc:  # every failure becomes an error event; the worker lives on
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            err = classify(exc)
            if err.code == "internal":
                log.error("job %s failed:\n%s", job_id, traceback.format_exc())
            elif err.code == "out_of_memory":
                self.cache.drop()       # free what we can before the next job
            self.emit(err.to_event(job_id))


def main() -> int:
    # Keep stdout for the protocol: anything a library prints goes to the log instead.
    proto_out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    logging.basicConfig(level=os.environ.get("SORA_LOG_LEVEL", "INFO"), stream=sys.stderr,
                        format="[sora worker] %(levelname)s %(message)s")
    emit = Emitter(proto_out)
    try:
        device = device_report()
    except ImportError as exc:
        emit(SoraError("not_found", f"the worker environment lacks a package: {exc}",
                       hint="set up the worker environment: pip install 'sora-core[worker]'").to_event())
        return 3
    emit({"event": "hello", "protocol": protocol.PROTOCOL_VERSION, "version": __version__,
          "pid": os.getpid(), "python": platform.python_version(), **device})
    worker = Worker(emit)
    threading.Thread(target=worker.read_commands, args=(sys.stdin,), daemon=True).start()
    worker.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
