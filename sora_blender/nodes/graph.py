"""The node graph's logic without bpy: dependency order, what a node's inputs ask of the model,
what a job node's output holds. The bpy side (:mod:`.specs`, :mod:`.run`) reads the nodes into
plain values and calls these, so they are tested on plain data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sora_core.errors import SoraError, invalid

STATUS_ICONS = {"done": "CHECKMARK", "cached": "CHECKMARK", "error": "ERROR", "running": "SORTTIME",
                "cancelled": "CANCEL", "queued": "TIME", "imported": "CHECKMARK", "rendered": "CHECKMARK"}


def status_icon(status: str) -> str:
    return STATUS_ICONS.get(status.split(" ")[0], "INFO") if status else "NONE"


def dependency_order(upstream: dict[str, list[str]], targets: list[str] | None = None) -> list[str]:
    """Node names to visit, each after the nodes it depends on. ``upstream[name]`` lists the
    nodes linked into ``name`` (valid, unmuted links); ``targets`` None visits every node."""
    order, seen, visiting = [], set(), set()

    def visit(name):
        if name in seen:
            return
        if name in visiting:
            raise invalid(name, "the node graph has a cycle")
        visiting.add(name)
        for src in upstream.get(name, ()):
            visit(src)
        visiting.discard(name)
        seen.add(name)
        order.append(name)

    for name in targets if targets is not None else sorted(upstream):
        if name not in upstream:
            raise SoraError("not_found", f"no node {name!r}", hint="nodes: " + ", ".join(sorted(upstream)))
        visit(name)
    return order


def job_result(result_dir: str, pattern: str, first: int, count: int) -> dict | None:
    """What a job node's Shot output holds after a run: {pattern, first, last, dir}."""
    if not result_dir or not count:
        return None
    return {"pattern": str(Path(result_dir) / pattern), "first": first, "last": first + count - 1,
            "dir": result_dir}


@dataclass
class Request:
    """What a node asks of the model before fitting: frames, numbering, what is available."""

    frames: int
    first_frame: int | None
    context: int = 0
    available: int | None = None


def request(mode: str, caps, frames: int, scene_first: int, context: int = 0,
            shot: dict | None = None, a: dict | None = None, b: dict | None = None) -> Request:
    """A job node's frames and numbering from its own settings and its inputs' results
    (``shot`` for extend, restyle and control, ``a``/``b`` for interpolate). ``frames`` 0: the default."""
    if mode == "extend":
        return Request(frames or max(1, caps.max_frames - (context or caps.default_context)), None,
                       context, shot["last"] - shot["first"] + 1)
    if mode in ("restyle", "control", "hdr"):  # one frame per input frame, numbered alike
        return Request(frames or (shot["last"] - shot["first"] + 1), shot["first"])
    if mode == "interpolate" and "pattern" in a and "pattern" in b and b["first"] > a["last"]:
        return Request(frames or (b["first"] - a["last"] + 1), a["last"])
    return Request(frames or caps.default_frames, scene_first)
