"""A batch of shots: specs read from files, folders or a batch JSON, with their dependencies.

A batch JSON is either a list or an object ``{"output_root": ..., "shots": [...]}``; each entry
is a spec path (relative to the batch file), an inline spec, or ``{"id", "spec", "depends_on"}``.
A shot also depends on another when one of its inputs (``inputs.frames``, ``inputs.image``, a
keyframe) lies in that shot's output folder, so an extend of a generated shot waits for it.
Relative input paths are read from the output root, the same as ``cd ROOT && sora run spec``.

Everything is checked here, before any process starts: a bad spec, an unknown dependency, a
cycle or two shots writing one folder fail the whole batch with ``invalid_input`` (exit 2).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SoraError, invalid
from ..output_dir import resolve_output_dir
from ..spec import ShotSpec

ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
SKIP_FILES = {"manifest.json", "farm_summary.json"}


@dataclass
class Shot:
    id: str
    spec: ShotSpec
    source: str                       # where it came from: a spec path or "batch.json#3"
    out_dir: Path                     # resolved shot folder inside the output root
    spec_path: str | None = None      # the spec file, when the shot has one (farm commands use it)
    depends_on: list[str] = field(default_factory=list)

    def to_plan(self) -> dict:
        return {"id": self.id, "spec": self.spec_path, "source": self.source,
                "out_dir": str(self.out_dir), "depends_on": list(self.depends_on)}


@dataclass
class Batch:
    shots: list[Shot]
    output_root: Path

    def by_id(self) -> dict[str, Shot]:
        return {s.id: s for s in self.shots}

    def to_plan(self) -> dict:
        """The batch as JSON, dependencies first: what ``sora farm --plan`` prints and the
        Flamenco job takes."""
        return {"output_root": str(self.output_root), "shots": [s.to_plan() for s in order(self.shots)]}


def default_output_root(given: str | None = None) -> Path:
    return Path(given or os.environ.get("SORA_OUTPUT_ROOT") or os.getcwd()).resolve()


def load_batch(sources: list[str], output_root: str | None = None) -> Batch:
    """Read every source (spec file, folder of specs, batch JSON) into one checked batch."""
    if not sources:
        raise invalid("specs", "give at least one spec file, folder of specs or batch JSON")
    entries: list[tuple[dict, str, Path]] = []      # (entry, source label, folder for relative paths)
    root_from_batch: str | None = None
    for src in sources:
        path = Path(src).expanduser()
        if path.is_dir():
            files = sorted(p for p in path.glob("*.json") if p.name not in SKIP_FILES
                           and not p.name.startswith("."))
            if not files:
                raise SoraError("not_found", f"no spec files (*.json) in folder {path}")
            for f in files:
                entries += _entries_of(f)
        elif path.is_file():
            found = _entries_of(path)
            entries += found
            if found and found[0][0].get("_output_root"):
                root_from_batch = root_from_batch or found[0][0]["_output_root"]
        else:
            raise SoraError("not_found", f"spec, folder or batch file not found: {path}")
    root = default_output_root(output_root or root_from_batch)

    shots: list[Shot] = []
    taken: set[str] = set()
    for entry, label, base in entries:
        spec_ref = entry["spec"]
        spec_path = None
        if isinstance(spec_ref, str):
            p = Path(spec_ref).expanduser()
            p = p if p.is_absolute() else base / p
            spec = _load_spec(p, label)
            spec_path = str(p.resolve())
            default_id = p.stem
        else:
            spec = _spec_from(spec_ref, label)
            default_id = spec.output.name
        shot_id = entry.get("id") or default_id
        if entry.get("id") is None:
            base_id, n = shot_id, 2
            while shot_id in taken:
                shot_id, n = f"{base_id}-{n}", n + 1
        if not isinstance(shot_id, str) or not ID_RE.match(shot_id):
            raise invalid(f"{label}: id", f"{shot_id!r} must be 1-100 letters, digits, '.', '_' or '-'")
        if shot_id in taken:
            raise invalid(f"{label}: id", f"shot id {shot_id!r} is used twice")
        taken.add(shot_id)
        deps = entry.get("depends_on") or []
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            raise invalid(f"{label}: depends_on", "must be a list of shot ids")
        out_dir = resolve_output_dir(spec, root)
        shots.append(Shot(shot_id, spec, label, out_dir, spec_path, list(deps)))

    _check_and_infer(shots, root)
    return Batch(shots, root)


def _entries_of(path: Path) -> list[tuple[dict, str, Path]]:
    """A spec file gives one entry; a batch file (list, or object with "shots") gives many."""
    data = _read_json(path)
    base = path.parent.resolve()
    if isinstance(data, dict) and "shots" in data:
        shots = data["shots"]
        if not isinstance(shots, list):
            raise invalid(f"{path}: shots", "must be a list")
        out = [(_entry(e, f"{path}#{i}"), f"{path}#{i}", base) for i, e in enumerate(shots)]
        unknown = sorted(set(data) - {"shots", "output_root", "version"})
        if unknown:
            raise invalid(f"{path}: {unknown[0]}", "unknown field; allowed: shots, output_root, version")
        if out and data.get("output_root"):
            r = Path(data["output_root"]).expanduser()
            out[0][0]["_output_root"] = str(r if r.is_absolute() else base / r)
        return out
    if isinstance(data, list):
        return [(_entry(e, f"{path}#{i}"), f"{path}#{i}", base) for i, e in enumerate(data)]
    return [({"spec": str(path.resolve())}, str(path), base)]


def _entry(item, label: str) -> dict:
    if isinstance(item, str):
        return {"spec": item}
    if isinstance(item, dict) and "spec" in item:
        unknown = sorted(set(item) - {"id", "spec", "depends_on"})
        if unknown:
            raise invalid(f"{label}: {unknown[0]}", "unknown field; allowed: id, spec, depends_on")
        return dict(item)
    if isinstance(item, dict):      # an inline spec without a wrapper
        return {"spec": item}
    raise invalid(label, "must be a spec path, an inline spec or {id, spec, depends_on}")


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise SoraError("invalid_input", f"{path} is not valid JSON: {exc.msg} at line {exc.lineno} "
                        f"column {exc.colno}") from None
    except OSError as exc:
        raise SoraError("not_found", f"cannot read {path}: {exc}") from None


def _load_spec(path: Path, label: str) -> ShotSpec:
    try:
        return ShotSpec.load(path)
    except SoraError as err:
        raise _labelled(err, str(path) if str(path) in label else f"{label} ({path})") from None


def _spec_from(data, label: str) -> ShotSpec:
    try:
        return ShotSpec.from_dict(data)
    except SoraError as err:
        raise _labelled(err, label) from None


def _labelled(err: SoraError, where: str) -> SoraError:
    message = err.message if err.message.startswith(where) else f"{where}: {err.message}"
    return SoraError(err.code, message, err.hint, err.field)


def input_paths(spec: ShotSpec, root: Path) -> list[Path]:
    """The files and folders a shot reads, resolved like the worker does (cwd = output root)."""
    refs = [spec.inputs.frames, spec.inputs.image] + [k.path for k in spec.inputs.keyframes]
    out = []
    for ref in refs:
        if ref:
            p = Path(ref).expanduser()
            out.append(Path(os.path.normpath(p if p.is_absolute() else root / p)))
    return out


def _check_and_infer(shots: list[Shot], root: Path) -> None:
    by_dir: dict[Path, str] = {}
    for s in shots:
        if s.out_dir in by_dir:
            raise invalid(f"{s.source}: output.dir", f"shots {by_dir[s.out_dir]!r} and {s.id!r} both "
                          f"write {s.out_dir}", hint="give every shot its own output folder")
        by_dir[s.out_dir] = s.id
    ids = {s.id for s in shots}
    for s in shots:
        for dep in s.depends_on:
            if dep not in ids:
                raise invalid(f"{s.source}: depends_on", f"unknown shot {dep!r}; known: {', '.join(sorted(ids))}")
        for p in input_paths(s.spec, root):
            for candidate in (p, p.parent):
                other = by_dir.get(candidate)
                if other and other != s.id and other not in s.depends_on:
                    s.depends_on.append(other)
    order(shots)        # raises on a cycle


def order(shots: list[Shot]) -> list[Shot]:
    """Shots in dependency order (stable); a cycle is invalid input."""
    by_id = {s.id: s for s in shots}
    done: list[Shot] = []
    state: dict[str, int] = {}

    def visit(s: Shot, path: list[str]) -> None:
        if state.get(s.id) == 2:
            return
        if state.get(s.id) == 1:
            cycle = " -> ".join(path[path.index(s.id):] + [s.id])
            raise invalid("depends_on", f"dependency cycle: {cycle}")
        state[s.id] = 1
        for dep in s.depends_on:
            visit(by_id[dep], path + [s.id])
        state[s.id] = 2
        done.append(s)

    for s in shots:
        visit(s, [])
    return done
