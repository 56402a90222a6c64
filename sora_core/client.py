"""Start a worker process and talk to it: submit jobs, stream events, cancel, notice death.

Light half (standard library only): this runs inside Blender or any host. The worker may run
under another Python (``python=``), typically a venv with torch that the host's Python lacks.
One client keeps one warm worker, so a second job reuses the loaded model.
"""

from __future__ import annotations

import collections
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from typing import Callable, Iterator

from . import protocol
from .errors import SoraError
from .shot_state import tidy_after_kill
from .spec import ShotSpec

STDERR_TAIL_LINES = 40


class Job:
    """One submitted shot: its events arrive on a queue fed by the client's reader thread."""

    def __init__(self, client: "WorkerClient", job_id: str, spec: ShotSpec):
        self.client = client
        self.id = job_id
        self.spec = spec
        self.result: dict | None = None
        self.error: SoraError | None = None
        self.last_progress: dict | None = None
        self.cancel_requested = False
        self.output_root = ""         # where the job writes (tidied after a cancel's kill)
        self._terminal_seen = False   # the worker sent done/error for this job (reader thread)
        self._killed = False          # a cancel's kill won: later worker events are dropped
        self._events: queue.Queue = queue.Queue()

    @property
    def finished(self) -> bool:
        return self.result is not None or self.error is not None

    def _take(self, event: dict) -> dict:
        kind = event.get("event")
        if kind == "progress":
            self.last_progress = event
        elif kind == "done":
            self.result = event
        elif kind == "error":
            self.error = SoraError.from_event(event)
        return event

    def poll(self) -> list[dict]:
        """Events received since the last call, without blocking (for UI timers)."""
        out = []
        while True:
            try:
                out.append(self._take(self._events.get_nowait()))
            except queue.Empty:
                return out

    def events(self, timeout: float | None = None) -> Iterator[dict]:
        """Yield events until the job is done or failed; ``timeout`` bounds the whole wait."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.finished:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"job {self.id} still running after {timeout} s")
            try:
                event = self._events.get(timeout=min(remaining or 0.5, 0.5))
            except queue.Empty:
                continue
            yield self._take(event)

    def wait(self, callback: Callable[[dict], None] | None = None,
             timeout: float | None = None) -> dict:
        """Block until the job ends; return the ``done`` event or raise its SoraError."""
        for event in self.events(timeout):
            if callback:
                callback(event)
        if self.error:
            raise self.error
        return self.result

    def cancel(self, grace: float | None = None) -> None:
        """Ask the worker to stop at the next step; kill it if it has not stopped after ``grace``.

        The race between the worker's own stop and the kill is decided by the deadline alone: a
        terminal event the worker sends before ``grace`` ends wins and the worker stays warm; once
        it ends, the kill wins: the client kills and reaps the worker, drops whatever the worker
        still sent for the job, and only then delivers ``cancelled``, so a job that ends by a kill
        always finds ``client.alive`` False. ``grace=0`` kills at once, before this returns.
        """
        if self.finished or self.cancel_requested:
            return
        self.cancel_requested = True
        grace = self.client.cancel_grace if grace is None else grace
        if grace <= 0:
            self._kill_if_running()
            return
        self.client._send(protocol.cancel_command(self.id))
        timer = threading.Timer(grace, self._kill_if_running)
        timer.daemon = True
        timer.start()

    def _kill_if_running(self) -> None:
        if self.client._claim_kill(self):
            self.client.kill(reason="cancelled")


class WorkerClient:
    """Owns one worker process; thread-safe for submitting and cancelling."""

    def __init__(self, python: str | None = None, env: dict | None = None, cwd: str | None = None,
                 startup_timeout: float = 180.0, cancel_grace: float = 10.0,
                 log: Callable[[str], None] | None = None):
        self.python = python or sys.executable
        self.env = env
        self.cwd = cwd
        self.startup_timeout = startup_timeout
        self.cancel_grace = cancel_grace
        self.log = log
        self.hello: dict | None = None
        self._proc: subprocess.Popen | None = None
        self._jobs: dict[str, Job] = {}
        self._control: queue.Queue = queue.Queue()
        self._stderr_tail: collections.deque = collections.deque(maxlen=STDERR_TAIL_LINES)
        self._lock = threading.Lock()
        self._kill_reason: str | None = None
        self._route_lock = threading.Lock()   # decides terminal event vs kill, once per job
        self._stderr_thread: threading.Thread | None = None

    # ---- lifetime ----------------------------------------------------------------------------
    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> dict:
        """Spawn the worker and wait for its ``hello``; return it. No-op when already running."""
        with self._lock:
            if self.alive:
                return self.hello
            self._spawn()
        try:
            event = self._control.get(timeout=self.startup_timeout)
        except queue.Empty:
            self.kill()
            raise SoraError("worker_died", f"worker did not start within {self.startup_timeout:.0f} s"
                            f"{self._tail_text()}") from None
        if event.get("event") == "error":
            self._proc.wait(timeout=10)
            raise SoraError.from_event(event)
        if event.get("event") != "hello":
            raise SoraError("worker_died", f"worker did not start: {protocol.describe(event)}")
        self.hello = event
        return event

    def _spawn(self) -> None:
        env = dict(os.environ)
        env.update(self.env or {})
        env["PYTHONUNBUFFERED"] = "1"
        try:
            self._proc = subprocess.Popen(
                [self.python, "-u", "-m", "sora_core.worker"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=self.cwd,
                text=True, encoding="utf-8", bufsize=1, start_new_session=True)
        except OSError as exc:
            raise SoraError("not_found", f"cannot start the worker with {self.python}: {exc}",
                            hint="set the worker Python in the preferences or set up the worker "
                                 "environment") from None
        self._stderr_tail.clear()
        self._kill_reason = None
        self.hello = None
        self._control = queue.Queue()
        proc = self._proc
        self._stderr_thread = threading.Thread(target=self._read_stderr, args=(proc,), daemon=True)
        self._stderr_thread.start()
        threading.Thread(target=self._read_stdout, args=(proc,), daemon=True).start()

    @property
    def busy(self) -> bool:
        """A job was sent that the worker has not ended yet."""
        return any(not job._terminal_seen for job in list(self._jobs.values()))

    def shutdown(self) -> None:
        """Ask the worker to exit after its jobs, without waiting (:meth:`close` waits)."""
        try:
            self._send(protocol.shutdown_command())
        except SoraError:
            pass

    def close(self, timeout: float = 10.0) -> None:
        """Ask the worker to shut down, then terminate and kill it if it lingers."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                self._send(protocol.shutdown_command())
                proc.wait(timeout=timeout)
            except (SoraError, subprocess.TimeoutExpired):
                self.kill(reason="closed")
        self._proc = None

    def kill(self, reason: str = "killed") -> None:
        """Kill the worker (always a valid cancel: it frees all device memory)."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        self._kill_reason = reason
        proc.kill()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass

    def __enter__(self) -> "WorkerClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- jobs --------------------------------------------------------------------------------
    def submit(self, spec: ShotSpec, output_root: str) -> Job:
        """Send a job to the (started on demand) worker and return its handle."""
        spec.validate()
        self.start()
        job = Job(self, uuid.uuid4().hex[:12], spec)
        job.output_root = os.path.abspath(output_root)
        self._jobs[job.id] = job
        self._send(protocol.job_command(job.id, spec.to_dict(), os.path.abspath(output_root)))
        return job

    def run(self, spec: ShotSpec, output_root: str,
            callback: Callable[[dict], None] | None = None) -> dict:
        """Submit and wait: the simplest blocking use."""
        return self.submit(spec, output_root).wait(callback)

    # ---- plumbing ----------------------------------------------------------------------------
    def _send(self, message: dict) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            raise SoraError("worker_died", f"the worker is not running{self._tail_text()}")
        try:
            proc.stdin.write(protocol.encode(message))
            proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            raise SoraError("worker_died", f"the worker stopped reading commands{self._tail_text()}") from None

    def _read_stdout(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            line = line.strip()
            if not line:
                continue
            try:
                event = protocol.decode(line)
            except ValueError:
                self._stderr_tail.append(f"[stdout] {line}")
                continue
            job = self._jobs.get(event.get("job", ""))
            if job is None:
                self._control.put(event)
            elif self._route(job, event):
                job._events.put(event)
        proc.wait()
        self._stderr_thread.join(timeout=2)  # the tail usually holds the cause
        self._on_exit(proc)

    def _read_stderr(self, proc: subprocess.Popen) -> None:
        for line in proc.stderr:
            line = line.rstrip("\n")
            self._stderr_tail.append(line)
            if self.log:
                self.log(line)

    def _on_exit(self, proc: subprocess.Popen) -> None:
        """The worker is gone: every job still running gets a final error event."""
        code = proc.returncode
        for job in list(self._jobs.values()):
            if job._terminal_seen:
                continue
            if job.output_root:     # the dead job could not tidy its folder itself
                tidy_after_kill(job.spec, job.output_root)
            if job.cancel_requested or self._kill_reason == "cancelled":
                err = SoraError("cancelled", "cancelled: the worker was stopped")
            else:
                err = SoraError("worker_died", f"the worker exited with code {code} during the job"
                                f"{self._tail_text()}", hint="the job can be run again; check the "
                                "worker log above for the cause")
            job._events.put(err.to_event(job.id))
        if self.hello is None:
            self._control.put(SoraError("worker_died", f"the worker exited with code {code} "
                                        f"before it was ready{self._tail_text()}").to_event())

    def _route(self, job: Job, event: dict) -> bool:
        """Whether a worker event reaches the job: nothing does after a kill has been claimed."""
        with self._route_lock:
            if job._killed:
                return False
            if event.get("event") in protocol.TERMINAL_EVENTS:
                job._terminal_seen = True
            return True

    def _claim_kill(self, job: Job) -> bool:
        """Decide a cancel's race for the kill: True unless the worker already ended the job."""
        with self._route_lock:
            if job._terminal_seen:
                return False
            job._killed = True
            return True

    def _tail_text(self) -> str:
        """Give the error the last lines the worker printed: usually the real cause."""
        tail = list(self._stderr_tail)[-12:]
        return (":\n  " + "\n  ".join(tail)) if tail else ""

    @property
    def stderr_tail(self) -> list[str]:
        return list(self._stderr_tail)
