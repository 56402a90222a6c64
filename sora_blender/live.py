"""Live state: what runs now and what draw() shows, in memory only, never in the .blend.

A job's progress, a node's "running", the last error, a shot's verification, an export: none of
it survives the session, so it lives here keyed by the datablock's ``session_uid`` (new on every
file load; a shot's verification by its folder), and the ``load_post`` handler clears it. A file saved mid-job cannot reopen "running".

Draw callbacks must not touch the disk; what they show is computed once per settings change
and kept in :func:`memo` under a cheap key. ``generation`` bumps when the disk may have changed
under unchanged settings (a render finished, a job ended, a file loaded, models rescanned).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from sora_core.progress import progress_line


@dataclass
class Progress:
    """Where a running job is: this pass's phase and step, the whole shot's share and ETA."""

    phase: str = ""
    step: int = 0
    total: int = 0
    pass_index: int = 0             # 1-based, 0 before the first progress event
    passes: int = 0
    overall: float = 0.0            # the whole shot, 0..1
    eta_s: float | None = None
    message: str = ""

    def take_progress(self, event: dict) -> None:
        """A worker ``progress`` event."""
        self.phase, self.step, self.total = event.get("phase", ""), event.get("step", 0), event.get("total", 0)
        self.pass_index, self.passes = event.get("pass", 1), event.get("passes", 1)
        self.overall = float(event.get("overall", self.step / self.total if self.total else 0.0))
        self.eta_s = event.get("eta_s")
        self.message = progress_line(event)


@dataclass
class RunState(Progress):
    """A job the worker runs for a scene: RUNNING, DONE, ERROR, CANCELLED (IDLE when none ran)."""

    state: str = "IDLE"
    error: str = ""
    hint: str = ""

    @property
    def running(self) -> bool:
        return self.state == "RUNNING"


@dataclass
class JobState(RunState):
    """The scene panel's shot."""

    notices: list[str] = field(default_factory=list)
    kept: dict | None = None        # a cancelled long shot's finished passes: dir, frames, first
    resume: tuple | None = None     # (spec, root) that resumes it

    def add_notice(self, text: str) -> None:
        if text and text not in self.notices:       # the planner's notice and the worker's are one
            self.notices.append(text)


@dataclass
class NodeState(Progress):
    """A node's live status: queued, running, done/cached, error, cancelled."""

    status: str = ""
    error: str = ""


@dataclass
class Verification:
    """A shot folder's last ``sora verify``: RUNNING, DONE (with its verdict), ERROR (not checked)."""

    state: str = "IDLE"
    verdict: str = ""               # verified, tampered, unsigned
    signer: str = ""                # the signing certificate's common name
    organization: str = ""
    trusted: bool = False
    problems: list[str] = field(default_factory=list)     # each failing frame, file or field
    error: str = ""

    def take(self, report: dict) -> None:
        """``sora verify --json``'s report."""
        signer = report.get("signer") or {}
        self.state, self.verdict, self.error = "DONE", report.get("verdict", ""), ""
        self.signer, self.organization = signer.get("common_name") or "", signer.get("organization") or ""
        self.trusted, self.problems = bool(report.get("trusted")), list(report.get("problems") or [])


@dataclass
class ExportState(RunState):
    """The scene's "Export deliverable"."""

    files: list[str] = field(default_factory=list)


_jobs: dict[int, JobState] = {}
_nodes: dict[tuple[int, str], NodeState] = {}
_verifications: dict[str, Verification] = {}
_exports: dict[int, ExportState] = {}
_memo: dict[tuple, tuple] = {}
generation = 0


def job(scene) -> JobState:
    """The scene's live job state (made on first use)."""
    return job_by_uid(scene.session_uid)


def job_by_uid(uid: int) -> JobState:
    return _jobs.setdefault(uid, JobState())


def node(n) -> NodeState:
    """A node's live status, keyed by its tree's session uid and its name."""
    return node_by_key(n.id_data.session_uid, n.name)


def node_by_key(tree_uid: int, name: str) -> NodeState:
    return _nodes.setdefault((tree_uid, name), NodeState())


def verification(folder: str, create: bool = True) -> Verification | None:
    """The live verification of the shot in ``folder`` (made on first use; None when never
    started and not ``create``: what draw asks)."""
    return _verifications.setdefault(folder, Verification()) if create else _verifications.get(folder)


def export_job(uid: int) -> ExportState:
    """The export of the scene with session uid ``uid``."""
    return _exports.setdefault(uid, ExportState())


def invalidate() -> None:
    """The disk may have changed: recompute what draw shows on its next call."""
    global generation
    generation += 1
    _memo.clear()


def clear() -> None:
    """A file was loaded (or the add-on disabled): nothing live survives."""
    _jobs.clear()
    _nodes.clear()
    _verifications.clear()
    _exports.clear()
    invalidate()


def memo(kind: str, ident, key, compute: Callable[[], object]):
    """``compute()`` once per ``key`` for (``kind``, ``ident``): what draw shows, cached."""
    slot = (kind, ident)
    hit = _memo.get(slot)
    if hit is not None and hit[0] == key:
        return hit[1]
    value = compute()
    _memo[slot] = (key, value)
    return value


def rna_key(data) -> tuple:
    """The values of the properties the add-on defined on ``data`` (and its collections' items):
    a cheap key that changes whenever one of those settings does. No disk access."""
    out = []
    for prop in data.bl_rna.properties:
        if not prop.is_runtime:
            continue
        value = getattr(data, prop.identifier)
        if prop.type == "COLLECTION":
            value = tuple(rna_key(item) for item in value)
        elif prop.type == "POINTER":
            value = getattr(value, "name_full", None)
        elif hasattr(value, "__len__") and not isinstance(value, str):
            value = tuple(value)
        out.append(value)
    return tuple(out)


def redraw() -> None:
    """Tag the editors that show Sora state for a redraw."""
    import bpy

    wm = getattr(bpy.context, "window_manager", None)
    if wm is None:
        return
    for window in wm.windows:
        for area in window.screen.areas:
            if area.type in ("NODE_EDITOR", "SEQUENCE_EDITOR", "VIEW_3D", "PREFERENCES"):
                area.tag_redraw()
