"""The worker protocol: JSON lines both ways.

Commands go to the worker's stdin, events come back on its stdout, logs go to stderr. One JSON
object per line keeps the protocol readable in a terminal and trivially parseable by any host.

Commands: ``job`` (id, spec, output_root), ``cancel`` (id), ``shutdown``.
Events: ``hello``, ``loading``, ``notice``, ``progress`` (phase, step, total), ``frame``,
``done`` (manifest path), ``error`` (code, message, retryable, exit_code, hint).
"""

from __future__ import annotations

import json

from .progress import progress_line

PROTOCOL_VERSION = 1
COMMANDS = ("job", "cancel", "shutdown")
EVENTS = ("hello", "loading", "notice", "progress", "frame", "done", "error")
TERMINAL_EVENTS = ("done", "error")


def encode(message: dict) -> str:
    """One protocol line (no embedded newlines: json.dumps escapes them)."""
    return json.dumps(message, separators=(",", ":")) + "\n"


def decode(line: str) -> dict:
    """Parse one line; raises ValueError for anything that is not a JSON object."""
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError(f"protocol line is not an object: {line[:80]!r}")
    return message


def job_command(job_id: str, spec: dict, output_root: str) -> dict:
    return {"cmd": "job", "id": job_id, "spec": spec, "output_root": output_root}


def cancel_command(job_id: str) -> dict:
    return {"cmd": "cancel", "id": job_id}


def shutdown_command() -> dict:
    return {"cmd": "shutdown"}


def describe(event: dict) -> str:
    """A one-line human description of an event, used for farm logs and the terminal."""
    kind = event.get("event")
    if kind == "progress":
        return progress_line(event)
    if kind == "loading":
        return f"loading {event.get('model', 'model')}"
    if kind == "notice":
        return f"notice: {event.get('message', '')}"
    if kind == "frame":
        return f"frame {event.get('number')} -> {event.get('path')}"
    if kind == "done":
        return f"done: {event.get('frames')} frames, manifest {event.get('manifest')}"
    if kind == "error":
        text = f"error [{event.get('code')}]: {event.get('message')}"
        return text + (f" (hint: {event['hint']})" if event.get("hint") else "")
    if kind == "hello":
        return f"worker ready (pid {event.get('pid')}, device {event.get('device', '?')})"
    return json.dumps(event)
