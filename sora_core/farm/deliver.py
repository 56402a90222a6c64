"""Deliverables after a farm shot: ``sora export`` of the finished shot, one per format asked.

Run by the worker's Python (``--python``, else this one), as a workstation would, so the node
that made the shot also verifies and signs it, with the identity of its environment or config
(``SORA_SIGN_CERT``/``SORA_SIGN_KEY``: paths, never key bytes). The export's events are relayed
with the shot's tag; a shot that fails verification is not exported and its result is exit 65.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Callable

from ..errors import SoraError
from ..provenance.export import deliverable_path


def export_dir(options: dict, output_root: str) -> Path:
    return Path(options.get("export_dir") or Path(output_root) / "deliverables")


def _command(python: str | None, shot_dir: str, fmt: str, out: Path, options: dict) -> list[str]:
    cmd = [python or sys.executable, "-m", "sora_core.cli", "export", shot_dir, "--format", fmt,
           "--out", str(out), "--events"]
    if fmt == "mp4" and options.get("export_crf") is not None:
        cmd += ["--crf", str(options["export_crf"])]
    if options.get("export_watermark"):
        cmd.append("--watermark")
    return cmd


def export_after(shot_id: str, shot_dir: str, output_root: str, options: dict, skipped: bool,
                 emit: Callable[[dict], None]) -> list[str]:
    """Export ``shot_dir`` in every format of ``options["export"]``; return the files written.

    A shot that was already complete keeps a deliverable already there (a rerun of the batch);
    a failing export raises its :class:`SoraError` (``verification_failed`` is exit 65)."""
    files: list[str] = []
    where = export_dir(options, output_root)
    where.mkdir(parents=True, exist_ok=True)
    for fmt in options.get("export") or []:
        out = deliverable_path(where, shot_id, fmt)
        if skipped and out.exists():
            emit({"event": "notice", "message": f"deliverable {out} is already there"})
            files.append(str(out))
            continue
        proc = subprocess.Popen(_command(options.get("python"), shot_dir, fmt, out, options), text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=output_root)
        failure = None
        try:
            for line in proc.stdout:
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if event.get("event") == "done":
                    files += event.get("files") or []
                    emit({"event": "notice", "message": f"exported {fmt}: {out}, signed by "
                          f"{(event.get('signer') or {}).get('common_name')}"})
                elif event.get("event") == "error":
                    failure = SoraError(event.get("code", "internal"), f"export {fmt}: {event.get('message')}",
                                        event.get("hint"))
                elif event.get("event") == "progress":
                    emit({**event, "export": fmt})
            code = proc.wait()
        except KeyboardInterrupt:               # the batch was cancelled: the export removes its files
            proc.terminate()
            proc.wait(30)
            raise
        if code:
            raise failure or SoraError("internal", f"export {fmt} of {shot_id} failed (exit {code}): "
                                       f"{proc.stderr.read().strip()[-500:]}")
    return files
