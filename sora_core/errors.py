"""Stable error codes shared by the worker, the client, the CLI and the farm.

Every failure a user can meet is a :class:`SoraError` with a code from :data:`EXIT_CODES`, so a
host can print one clear line and a farm can decide from the exit code whether to retry.
"""

from __future__ import annotations

# code -> (process exit code, whether a retry can help)
EXIT_CODES: dict[str, tuple[int, bool]] = {
    "invalid_input": (2, False),    # malformed spec, bad value, corrupt input file, unsafe path,
                                    # a folder that may not be written, another shot in the folder
    "not_found": (3, False),        # model folder or input file missing
    "out_of_memory": (75, True),    # device or host memory exhausted
    "device_busy": (75, True),      # accelerator held by someone else
    "worker_died": (75, True),      # worker process vanished mid-job (killed, crashed)
    "shot_locked": (75, True),      # another job is writing the same shot folder
    "disk_full": (75, True),        # no space (or quota) left where the shot is written
    "verification_failed": (65, False),  # content does not match what was signed (sora verify)
    "cancelled": (130, False),      # stopped by the user
    "internal": (1, False),         # a bug or anything unexpected
}

EXIT_OK = 0


class SoraError(Exception):
    """A failure with a stable code, a message naming what is wrong and an optional fix."""

    def __init__(self, code: str, message: str, hint: str = "", field: str = ""):
        if code not in EXIT_CODES:
            raise ValueError(f"unknown error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.hint = hint
        self.field = field

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.code][0]

    @property
    def retryable(self) -> bool:
        return EXIT_CODES[self.code][1]

    def to_event(self, job: str | None = None) -> dict:
        """The worker protocol's ``error`` event for this failure."""
        event = {"event": "error", "code": self.code, "message": self.message,
                 "retryable": self.retryable, "exit_code": self.exit_code}
        if job is not None:
            event["job"] = job
        if self.hint:
            event["hint"] = self.hint
        if self.field:
            event["field"] = self.field
        return event

    @classmethod
    def from_event(cls, event: dict) -> "SoraError":
        code = event.get("code", "internal")
        if code not in EXIT_CODES:
            code = "internal"
        return cls(code, event.get("message", "unknown error"), event.get("hint", ""),
                   event.get("field", ""))

    def __str__(self) -> str:
        text = self.message
        if self.hint:
            text += f" (hint: {self.hint})"
        return text


def invalid(field: str, message: str, hint: str = "") -> SoraError:
    """Shorthand for a bad value in a named field."""
    return SoraError("invalid_input", f"{field}: {message}", hint=hint, field=field)


OOM_HINT = ("use a memory strategy (model_cpu_offload, group_offload or vae_tiling), "
            "fewer frames or a smaller size")
