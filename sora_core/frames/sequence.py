"""Frame-sequence names: ``name.####.exr`` out; patterns, folders and single files in.

Standard library only (no OpenImageIO), so hosts may use it too.

Accepted references for ``find_sequence``:
  - a pattern: ``dir/name.####.exr`` (any number of ``#``), ``dir/name.%04d.png`` (printf),
    Blender's ``dir/name_####`` (no extension: any image extension matches);
  - a folder: the single image sequence in it (several sequences -> an error naming them);
  - a single existing file: that file alone, numbered by its trailing digits (or 0).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import SoraError, invalid

IMAGE_EXTS = (".exr", ".png", ".jpg", ".jpeg", ".tif", ".tiff")
PADDING = 4
_HASHES = re.compile(r"#+")
_PRINTF = re.compile(r"%0?(\d*)d")
_NUMBERED = re.compile(r"^(?P<prefix>.*?)(?P<num>\d+)(?P<ext>\.[A-Za-z0-9]+)$")


def frame_name(name: str, number: int, ext: str = ".exr", padding: int = PADDING) -> str:
    """``name.0001.exr``: 4-digit padding, more digits when the number needs them."""
    if number < 0:
        raise invalid("output.first_frame", f"frame numbers must be >= 0, got {number}")
    return f"{name}.{number:0{padding}d}{ext}"


def frame_path(folder: str | os.PathLike, name: str, number: int, ext: str = ".exr") -> Path:
    """``folder/name.####.exr`` for frame ``number``."""
    return Path(folder) / frame_name(name, number, ext)


def fill_pattern(pattern: str, number: int) -> str:
    """``name.####.exr`` (or ``%04d``) with ``number`` in place of the placeholder; a name with
    no placeholder is returned as it is (a single file)."""
    m = _HASHES.search(pattern)
    if m:
        return pattern[:m.start()] + str(number).zfill(len(m.group())) + pattern[m.end():]
    m = _PRINTF.search(pattern)
    if m:
        return pattern[:m.start()] + str(number).zfill(int(m.group(1) or 0)) + pattern[m.end():]
    return pattern


def _pattern_regex(filename: str) -> re.Pattern | None:
    """A regex for a file name holding ``#``/``%0Nd`` placeholders, with a ``num`` group."""
    if _HASHES.search(filename):
        parts = _HASHES.split(filename)
        if len(parts) != 2:
            return None
        prefix, suffix = parts
    else:
        m = _PRINTF.search(filename)
        if not m:
            return None
        prefix, suffix = filename[:m.start()], filename[m.end():]
    if suffix:
        tail = re.escape(suffix) + "$"
    else:   # Blender's name_#### with no extension: any image extension
        tail = r"(?:" + "|".join(re.escape(e) for e in IMAGE_EXTS) + r")$"
    return re.compile("^" + re.escape(prefix) + r"(?P<num>-?\d+)" + tail, re.IGNORECASE)


def _is_image(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in IMAGE_EXTS and not p.name.startswith(".")


def select_range(frames: list[tuple[int, Path]], ref: str,
                 frame_range: list[int] | tuple[int, int] | None) -> list[tuple[int, Path]]:
    """``frames`` sorted and cut to ``[first, last]``; a frame missing inside the range raises
    (the planner applies a spec's range to a listing with this)."""
    frames.sort(key=lambda item: item[0])
    if frame_range is None:
        return frames
    if len(frame_range) != 2 or frame_range[0] > frame_range[1]:
        raise invalid("inputs.frame_range", f"expected [first, last] with first <= last, got {list(frame_range)}")
    first, last = int(frame_range[0]), int(frame_range[1])
    have = {n: p for n, p in frames}
    missing = [n for n in range(first, last + 1) if n not in have]
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        available = f"{frames[0][0]}..{frames[-1][0]}" if frames else "none"
        raise SoraError("not_found", f"{ref}: frames missing in range {first}..{last}: {shown} "
                        f"(found {available})", field="inputs.frame_range")
    return [(n, have[n]) for n in range(first, last + 1)]


def gaps(numbers) -> list[int]:
    """Frame numbers missing between the first and the last of ``numbers``."""
    have = sorted(set(numbers))
    if not have:
        return []
    present = set(have)
    return [n for n in range(have[0], have[-1] + 1) if n not in present]


def find_sequence(ref: str | os.PathLike, frame_range: list[int] | tuple[int, int] | None = None,
                  field: str = "inputs.frames") -> list[tuple[int, Path]]:
    """The frames a reference names, as ``(number, path)`` sorted by number.

    ``frame_range`` ``[first, last]`` (inclusive) keeps those frames and requires all of them.
    Nothing found raises ``not_found``; an ambiguous folder raises ``invalid_input``.
    """
    ref_s = str(ref)
    path = Path(ref_s).expanduser()

    if path.is_dir():
        groups: dict[tuple[str, str], list[tuple[int, Path]]] = {}
        for p in path.iterdir():
            if not _is_image(p):
                continue
            m = _NUMBERED.match(p.name)
            if m:
                groups.setdefault((m["prefix"], m["ext"].lower()), []).append((int(m["num"]), p))
        if not groups:
            raise SoraError("not_found", f"no numbered image sequence in folder {path}", field=field,
                            hint="frames are found by names like name.0001.exr")
        if len(groups) > 1:
            names = ", ".join(sorted(f"{pre}####{ext}" for pre, ext in groups))
            raise invalid(field, f"folder {path} holds several sequences ({names}); name one as "
                          f"{path}/name.####.ext")
        return select_range(next(iter(groups.values())), ref_s, frame_range)

    regex = _pattern_regex(path.name)
    if regex is not None:
        folder = path.parent
        if not folder.is_dir():
            raise SoraError("not_found", f"folder not found: {folder} (from {ref_s})", field=field)
        frames = []
        for p in folder.iterdir():
            m = regex.match(p.name)
            if m and _is_image(p):
                frames.append((int(m["num"]), p))
        if not frames:
            raise SoraError("not_found", f"no frames match {ref_s}", field=field,
                            hint="check the folder and the name pattern (name.####.exr)")
        ext_count = {p.suffix.lower() for _, p in frames}
        if len(ext_count) > 1:
            raise invalid(field, f"{ref_s} matches frames of several formats ({', '.join(sorted(ext_count))}); "
                          "give the extension")
        return select_range(frames, ref_s, frame_range)

    if path.is_file():
        m = _NUMBERED.match(path.name)
        number = int(m["num"]) if m else 0
        return select_range([(number, path)], ref_s, frame_range)
    raise SoraError("not_found", f"input not found: {ref_s}", field=field,
                    hint="give a pattern (name.####.exr), a folder or a file")
