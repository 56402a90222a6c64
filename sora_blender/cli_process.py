"""A ``sora`` command run by the worker's Python (which has OpenImageIO, PyAV, c2pa), never waited
for on the main thread.

A reader thread (no bpy) queues the process's stdout: each line that is a JSON object as an
event, the rest kept as text (``sora verify --json`` prints one indented document). The host
takes the events on a ``bpy.app.timers`` tick with :meth:`CliProcess.poll`. The signing identity
travels as paths in the environment (:func:`.settings.sign_env`), never as key bytes.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import subprocess
import threading

from .settings import sign_env
from .worker.python import worker_python


class CliProcess:
    """``python -m sora_core.cli ARGS``; ``poll()`` returns new events, ``ended`` once it exited."""

    def __init__(self, args: list[str], env: dict | None = None, thread_name: str = "sora-cli"):
        full = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1"), **sign_env(), **(env or {})}
        self.proc = subprocess.Popen([worker_python(), "-m", "sora_core.cli", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=full)
        self.events: queue.Queue = queue.Queue()
        self.text: list[str] = []       # stdout lines that are not events
        self.errors: collections.deque = collections.deque(maxlen=50)     # stderr's last lines
        self.ended = False
        self._stderr = threading.Thread(target=self._drain, daemon=True, name=thread_name + "-stderr")
        self._stderr.start()
        self.thread = threading.Thread(target=self._read, daemon=True, name=thread_name)
        self.thread.start()

    def _drain(self) -> None:
        for line in self.proc.stderr:
            if line.strip():
                self.errors.append(line.rstrip())

    def _read(self) -> None:
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                event = None
            if isinstance(event, dict) and "event" in event:
                self.events.put(event)
            else:
                self.text.append(line)
        self.proc.wait()
        self._stderr.join(10)
        self.events.put(None)

    def poll(self) -> list[dict]:
        """The events queued since the last call (main thread); sets ``ended`` at the end."""
        out = []
        while not self.ended:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                break
            if event is None:
                self.ended = True
            else:
                out.append(event)
        return out

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode if self.ended else None

    def document(self):
        """The non-event stdout parsed as one JSON document (None when it is not one)."""
        try:
            return json.loads("".join(self.text))
        except ValueError:
            return None

    def last_error(self) -> str:
        """The last line of stderr (the CLI's ``sora: error: ...``), once it has ended."""
        return self.errors[-1] if self.errors else f"exit {self.proc.returncode}"

    def wait(self, timeout: float | None = None) -> None:
        """Background mode: until it has exited and every line was read."""
        self.proc.wait(timeout)
        self.thread.join(10)

    def terminate(self) -> None:
        """Cancel: SIGTERM (the export removes its temporaries), then a kill if it lingers."""
        if self.proc.poll() is None:
            self.proc.terminate()
            threading.Thread(target=self._kill_later, daemon=True, name="sora-cli-reap").start()

    def _kill_later(self, grace: float = 10.0) -> None:
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
