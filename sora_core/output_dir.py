"""Where a spec's shot lands: its ``output.dir`` inside the output root, or a clear refusal.
Standard library only (it runs in the CLI and in Blender before any worker starts)."""

from __future__ import annotations

from pathlib import Path

from .errors import invalid


def resolve_output_dir(spec, root: str | Path) -> Path:
    """The shot folder inside ``root``; a path that escapes the root is refused."""
    root = Path(root).resolve()
    if root.exists() and not root.is_dir():
        raise invalid("output root", f"{root} is a file, not a folder",
                      hint="give a folder with --output-root or SORA_OUTPUT_ROOT")
    target = Path(spec.output.dir)
    target = (target if target.is_absolute() else root / target).resolve()
    if target != root and root not in target.parents:
        raise invalid("output.dir", f"{spec.output.dir!r} resolves to {target}, outside the output "
                      f"root {root}", hint="use a path inside the output root, without '..', or choose the "
                      "root with --output-root or the SORA_OUTPUT_ROOT environment variable")
    for part in [target, *target.parents]:
        if part == root:
            break
        if part.exists() and not part.is_dir():
            raise invalid("output.dir", f"{part} is a file, not a folder")
    return target
