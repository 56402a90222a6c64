"""What a shot folder already holds, and its manifest kept true after every pass.

The manifest is written before the first frame (claiming the folder for this spec), rewritten
after each finished pass with ``status: partial`` and at the end with ``status: complete``; it
lists only frames that are fully written, so a cancel, a crash or a kill leaves a folder that
says exactly what is there, and running the same spec again resumes after the last finished
pass. A folder holding another shot (another spec's manifest, or files under the names this
shot writes that no manifest lists) is refused, never mixed, unless the spec says
``output.overwrite``. Light half (standard library).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

from . import GENERATOR, __version__
from .manifest import MANIFEST_NAME, build_manifest, read_manifest, verify_frames, write_manifest
from .planning import Plan


class ShotState:
    """Finished passes and frame records of one shot folder (read back for resume)."""

    def __init__(self, plan: Plan, out_dir: Path, folder=None):
        self.plan, self.out_dir, self.folder = plan, out_dir, folder
        self.other = ""         # what another shot left in the folder, if anything
        self.claimed = False    # this run wrote the folder's first manifest
        self._old: dict = {}    # the other shot's manifest
        self.key = plan.spec.spec_hash("files")
        self.records: list[dict] = []
        self.passes: list[dict] = []
        self.complete = False
        self.color: dict = {}
        self.audio: dict | None = None          # the sound track's record (<name>.wav), if any
        self.pass_timings: list[dict] = []      # what the finished passes of earlier runs took
        path = out_dir / MANIFEST_NAME
        taken = self._frame_files()
        self._fresh = not path.is_file() and not taken     # nothing here before this run
        if not path.is_file():
            if taken:
                self.other = f"frames no manifest lists ({taken[0]}{' ...' if len(taken) > 1 else ''})"
            return
        try:
            old = read_manifest(path)
        except (OSError, ValueError):
            self.other = f"a {MANIFEST_NAME} that cannot be read"
            return
        if old.get("resume_key") != self.key:
            self.other = (f"another shot ({old.get('status', 'unknown')}, "
                          f"{len(old.get('frames') or [])} frames of {old.get('pattern', '?')})")
            self._old = old
            return
        if verify_frames(path) if old.get("frames") else False:
            return          # this shot, but its frames changed: start over
        self.records, self.passes = old["frames"], old.get("passes", [])
        self.complete = old.get("status") == "complete"
        kept = {p["index"] + 1 for p in self.passes}
        self.pass_timings = [t for t in (old.get("timings") or {}).get("passes", []) if t.get("pass") in kept]

    def _frame_files(self) -> list[str]:
        """Files already under the names this shot writes (other frames beside it are left alone)."""
        from .frames.sequence import frame_name

        mine = {frame_name(self.plan.spec.output.name, n) for n in self.plan.numbers}
        return sorted(mine.intersection(_names(self.out_dir)))

    def claim(self, identity: dict, timings: dict) -> None:
        """Make the folder this shot's before the first frame: another shot there is refused
        (exit 2) unless ``output.overwrite``, when its frames and manifest are removed first."""
        if self.other:
            if not self.plan.spec.output.overwrite:
                from .errors import invalid
                raise invalid("output.dir", f"{self.out_dir} already holds {self.other}; a different "
                              "spec is never mixed into it",
                              hint="write a new version folder (e.g. .../v002), or overwrite it "
                                   "(--overwrite, or output.overwrite in the spec)")
            doomed = {f.get("file") for f in self._old.get("frames") or [] if isinstance(f, dict)}
            for name in sorted(n for n in doomed | set(self._frame_files()) if n and "/" not in n):
                self.folder.unlink(name)
            self.other, self._fresh = "", True
        if not self.passes:
            self.write(identity, timings, complete=False)
            self.claimed = self._fresh

    def release_claim(self) -> None:
        """A run that failed before any pass finished leaves the folder as it found it."""
        if self.claimed and not self.passes:
            self.folder.unlink(MANIFEST_NAME)
            self.claimed = False

    def frame_path(self, number: int) -> Path:
        from .frames.sequence import frame_path
        return frame_path(self.out_dir, self.plan.spec.output.name, number)

    def add_pass(self, p, records: list[dict]) -> None:
        """A pass is finished: its frames are on disk and become part of the shot."""
        self.records = sorted(self.records + records, key=lambda r: r["number"])
        self.passes.append({"index": p.index, "start": p.start, "new": p.new, "frames": p.frames,
                            "context": p.context, "prompt": p.prompt, "seed": p.seed})

    def write(self, identity: dict, timings: dict, complete: bool) -> Path:
        """Rewrite ``manifest.json`` (atomically) with what is on disk now."""
        plan = self.plan
        software = {"generator": GENERATOR, "version": __version__, "python": platform.python_version()}
        resolved = plan.spec.to_dict()
        resolved.update(width=plan.width, height=plan.height, steps=plan.steps, guidance=plan.guidance,
                        guidance_2=plan.guidance_2, fps=plan.fps,
                        upsample="on" if plan.upsample > 1 else "off")
        manifest = build_manifest(resolved, dict(identity), self.records, timings, list(plan.notices),
                                  f"{plan.spec.output.name}.####.exr", software)
        manifest.update(status="complete" if complete else "partial", resume_key=self.key,
                        passes=self.passes, passes_total=len(plan.passes), color=self.color)
        if self.audio:
            manifest["audio"] = self.audio
        if plan.preset:
            manifest["preset"] = plan.preset
        return write_manifest(self.out_dir, manifest, self.folder)


def tidy_after_kill(spec, output_root: str | Path) -> None:
    """A cancel that had to kill the worker: remove what only the dead job left in its folder
    (hidden temporaries, its claim, i.e. a manifest listing no frames, and its lock file), so a
    cancelled shot leaves exactly its finished passes. Nothing is touched while another job holds
    the folder's lock, and nothing is created."""
    from .errors import SoraError
    from .safe_write import Folder
    from .shot_lock import ShotLock
    from .output_dir import resolve_output_dir

    root = Path(output_root).resolve()
    try:
        out_dir = resolve_output_dir(spec, root)
        folder = Folder.open(root, out_dir.relative_to(root) if out_dir != root else "", create=False)
    except (SoraError, OSError, ValueError):
        return
    try:
        with ShotLock(folder):
            folder.clear_temporaries()
            try:
                old = read_manifest(out_dir / MANIFEST_NAME)
            except (OSError, ValueError):
                old = None
            if isinstance(old, dict) and not old.get("frames") and old.get("status") != "complete":
                folder.unlink(MANIFEST_NAME)
    except (SoraError, OSError):
        pass        # another job holds the folder now, or it went away: leave it as it is
    finally:
        folder.close()


def _names(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []
