"""What a shot folder already holds, and its manifest kept true after every pass.

The manifest is rewritten after each finished pass with ``status: partial`` and at the end with
``status: complete``; it lists only frames that are fully written, so a cancel, a crash or a
kill leaves a folder that says exactly what is there, and running the same spec again resumes
after the last finished pass. Light half (standard library only).
"""

from __future__ import annotations

import platform
from pathlib import Path

from . import GENERATOR, __version__
from .manifest import MANIFEST_NAME, build_manifest, read_manifest, verify_frames, write_manifest
from .planning import Plan


class ShotState:
    """Finished passes and frame records of one shot folder (read back for resume)."""

    def __init__(self, plan: Plan, out_dir: Path):
        self.plan, self.out_dir = plan, out_dir
        self.key = plan.spec.spec_hash("files")
        self.records: list[dict] = []
        self.passes: list[dict] = []
        self.complete = False
        self.color: dict = {}
        self.audio: dict | None = None          # the sound track's record (<name>.wav), if any
        self.pass_timings: list[dict] = []      # what the finished passes of earlier runs took
        path = out_dir / MANIFEST_NAME
        if not path.is_file():
            return
        try:
            old = read_manifest(path)
        except (OSError, ValueError):
            return
        if old.get("resume_key") != self.key or (verify_frames(path) if old.get("frames") else False):
            return          # another shot, or its frames changed: start over
        self.records, self.passes = old["frames"], old.get("passes", [])
        self.complete = old.get("status") == "complete"
        kept = {p["index"] + 1 for p in self.passes}
        self.pass_timings = [t for t in (old.get("timings") or {}).get("passes", []) if t.get("pass") in kept]

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
                        guidance_2=plan.guidance_2, fps=plan.fps)
        manifest = build_manifest(resolved, dict(identity), self.records, timings, list(plan.notices),
                                  f"{plan.spec.output.name}.####.exr", software)
        manifest.update(status="complete" if complete else "partial", resume_key=self.key,
                        passes=self.passes, passes_total=len(plan.passes), color=self.color)
        if self.audio:
            manifest["audio"] = self.audio
        return write_manifest(self.out_dir, manifest)
