"""The job area of the shot panel: Generate/Cancel, a progress bar with phase, pass and ETA,
and the last error with its fix hint."""

from __future__ import annotations

from .compat import Qt, QtWidgets

PHASES = {"loading": "loading model", "denoise": "denoising", "write": "writing", "starting": "starting worker"}


def progress_text(event: dict) -> str:
    """``denoising · pass 1/3 · 42% · ETA 12 s`` from a ``progress`` event."""
    parts = [PHASES.get(event.get("phase"), event.get("phase") or "working")]
    if event.get("passes", 1) > 1:
        parts.append(f"pass {event['pass']}/{event['passes']}")
    parts.append(f"{round(100 * event.get('overall', 0))}%")
    if event.get("eta_s") is not None:
        parts.append(f"ETA {event['eta_s']:.0f} s")
    return " · ".join(parts)


class JobStatus(QtWidgets.QWidget):
    """Buttons, bar and messages; the panel feeds it the events of its current job."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.generate_button = QtWidgets.QPushButton("Generate")
        self.generate_button.setDefault(True)
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.bar = QtWidgets.QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setValue(0)
        self.bar.setFormat("idle")
        self.bar.setTextVisible(True)
        self.message = QtWidgets.QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextSelectableByMouse)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.generate_button, 1)
        buttons.addWidget(self.cancel_button)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(buttons)
        layout.addWidget(self.bar)
        layout.addWidget(self.message)

    def set_running(self, running: bool) -> None:
        self.generate_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def started(self) -> None:
        self.set_running(True)
        self.bar.setValue(0)
        self.bar.setFormat(PHASES["starting"])
        self.show_message("")

    def update_event(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "loading":
            self.bar.setFormat(PHASES["loading"])
        elif kind == "progress":
            self.bar.setValue(int(1000 * event.get("overall", 0)))
            self.bar.setFormat(progress_text(event))
        elif kind == "notice":
            self.show_message(event.get("message", ""), "notice")
        elif kind == "done":
            self.set_running(False)
            self.bar.setValue(1000)
            self.bar.setFormat(f"done · {event.get('frames')} frames")
            self.show_message(f"wrote {event.get('dir')}")
        elif kind == "error":
            self.set_running(False)
            cancelled = event.get("code") == "cancelled"
            self.bar.setFormat("cancelled" if cancelled else "failed")
            self.show_error(event)

    def show_error(self, event: dict) -> None:
        text = event.get("message", "error")
        if event.get("hint"):
            text += f"\nFix: {event['hint']}"
        self.show_message(text, "cancelled" if event.get("code") == "cancelled" else "error")

    def show_message(self, text: str, kind: str = "info") -> None:
        colour = {"error": "#d9534f", "notice": "#c69026", "cancelled": "#888"}.get(kind, "")
        self.message.setStyleSheet(f"color: {colour}" if colour else "")
        self.message.setText(text)
        self.message.setProperty("kind", kind)
