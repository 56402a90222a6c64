"""The CLI's view of worker events: a progress bar on a terminal, plain lines in farm logs."""

from __future__ import annotations

import shutil
import sys
import time

from . import protocol


class Progress:
    """A one-line bar on a terminal; one plain line per event elsewhere (farm logs)."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.tty = stream.isatty()
        self.t0 = time.monotonic()
        self.pass_shown = 0

    def __call__(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "progress" and self.tty:
            if event.get("pass", 0) < self.pass_shown:
                return          # an earlier pass still writing while this one denoises
            self.pass_shown = event.get("pass", 0)
            step, total = event.get("step", 0), max(event.get("total", 1), 1)
            phase = event.get("phase", "")
            if event.get("passes", 1) > 1:
                phase = f"pass {event['pass']}/{event['passes']} {phase}"
            width = max(10, min(40, shutil.get_terminal_size().columns - 40))
            filled = int(width * step / total)
            self.stream.write(f"\r{phase:>8} [{'#' * filled}{'.' * (width - filled)}] "
                              f"{step}/{total} {time.monotonic() - self.t0:6.1f}s")
            self.stream.flush()
            if step == total:
                self.stream.write("\n")
        elif kind == "frame" and self.tty:
            return
        elif kind == "notice":
            self.stream.write(f"warning: {event.get('message')}\n")
        elif kind != "error":
            self.stream.write(protocol.describe(event) + "\n")
        self.stream.flush()
