"""``sora ingest``: footage made elsewhere into the pipeline as a scene-linear EXR sequence.

An MP4/MOV (or any video PyAV opens) or a PNG/JPEG/TIFF sequence or folder, as an online
generator or another tool exported it, is display-referred. Ingest takes it to scene linear
through the chosen view transform's inverse, the same frame path generated frames take
(``writing.PassWriter`` on the frame pool: read, colour, write, hash), and writes a manifest
whose provenance names the source file, its sha256 and, when the source embeds a C2PA
manifest, that manifest's claim generator. No model, no worker, no torch: the CLI runs it in
its own process, and a host (the Blender add-on) runs it as a subprocess of the worker Python,
``python -m sora_core.cli ingest SRC --out DIR --name NAME --json``, reading the same JSON-line
events a job sends (``progress``, ``frame``, ``done`` or ``error``). Light at import: PyAV,
OpenImageIO and OpenColorIO are imported when used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import Callable

from . import GENERATOR, __version__
from .errors import SoraError, invalid
from .frames.sequence import find_sequence, frame_path
from .manifest import MANIFEST_NAME, build_manifest, sha256_file, write_manifest
from .spec import NAME_RE

log = logging.getLogger("sora.ingest")

DISPLAY_EXTS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")
HIGH_BIT_FORMATS = ("10", "12", "16", "48", "64")     # pix_fmt names of deeper-than-8-bit video
IN_FLIGHT_PER_THREAD = 2


def ingest(src: str | Path, out_dir: str | Path, name: str = "footage", color: dict | None = None, *,
           first_frame: int = 1, fps: float | None = None, emit: Callable[[dict], None] | None = None,
           is_cancelled: Callable[[], bool] = lambda: False) -> Path:
    """Ingest ``src`` into ``out_dir/<name>.####.exr`` + ``manifest.json``; return the manifest path.

    ``color`` holds ``config``, ``display``, ``view``, ``look`` (as a spec's ``color``; missing
    keys take the defaults). A cancel or failure removes every frame written.
    """
    from .frames.color import ViewTransform
    from .frames.pool import threads
    from .timings import PassTimer
    from .writing import PassWriter

    t0 = time.perf_counter()
    emit = emit or (lambda event: None)
    if not NAME_RE.fullmatch(name or ""):
        raise invalid("name", f"{name!r} must be 1-100 letters, digits, '.', '_' or '-' (not starting with '.')")
    if first_frame < 0:
        raise invalid("first_frame", f"frame numbers must be >= 0, got {first_frame}")
    out_dir = Path(out_dir)
    _refuse_occupied(out_dir, name)
    source = open_source(src)
    c = color or {}
    transform = ViewTransform(c.get("config"), c.get("display"), c.get("view"), c.get("look"))
    described = transform.describe()          # builds the processors before the first frame
    attrs = {"sora:generator": GENERATOR, "sora:version": __version__, "sora:mode": "ingest",
             "sora:source": source.path.name, "sora:source_sha256": source.sha256,
             "Software": f"{GENERATOR} {__version__}"}
    timer = PassTimer(0)
    total = source.count

    def on_frame(number: int, path: Path, count: int) -> None:
        emit({"event": "frame", "path": str(path), "number": number, "pass": 1})
        emit({"event": "progress", "phase": "write", "step": count, "total": total or count,
              "pass": 1, "passes": 1})

    writer = PassWriter(None, lambda n: frame_path(out_dir, name, n), attrs, transform.to_linear,
                        on_frame, is_cancelled, timer, load=source.load,
                        max_in_flight=IN_FLIGHT_PER_THREAD * threads())
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        for i, item in enumerate(source.items(timer)):
            writer.submit(first_frame + i, item)
        writer.close()
        records = writer.wait()
    except BaseException:
        writer.abort()
        raise
    finally:
        source.close()
    if not records:
        raise SoraError("invalid_input", f"{source.path}: no frames could be read")
    first = source.first_size
    timings = {**timer.as_dict(), "total_s": round(time.perf_counter() - t0, 4)}
    timings.pop("pass")
    spec = {"mode": "ingest", "inputs": {"source": str(source.path)}, "fps": fps or source.fps,
            "width": first[0], "height": first[1], "frames": len(records), "color": c,
            "output": {"dir": str(out_dir), "name": name, "first_frame": first_frame}}
    manifest = build_manifest(spec, {}, records, {**timings, "passes": [{"pass": 1, **timings}]}, [],
                              f"{name}.####.exr", {"generator": GENERATOR, "version": __version__})
    manifest.update(status="complete", color=described, source=source.provenance(),
                    passes=[{"index": 0, "start": 0, "new": len(records), "frames": len(records),
                             "context": 0, "prompt": "", "seed": 0}], passes_total=1)
    path = write_manifest(out_dir, manifest)
    emit({"event": "done", "manifest": str(path), "dir": str(out_dir), "frames": len(records),
          "first_frame": first_frame, "pattern": f"{name}.####.exr", "fps": spec["fps"],
          "width": first[0], "height": first[1], "passes": 1, "timings": manifest["timings"]})
    return path


def _refuse_occupied(out_dir: Path, name: str) -> None:
    """Ingest never mixes its frames into another shot or overwrites one."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise invalid("out", f"{out_dir} exists and is not a folder")
    taken = (out_dir / MANIFEST_NAME).exists() or any(out_dir.glob(f"{name}.*.exr"))
    if taken:
        raise invalid("out", f"{out_dir} already holds a shot ({MANIFEST_NAME} or {name}.####.exr)",
                      hint="ingest into a new folder, or remove the old one first")


# -- sources ----------------------------------------------------------------------------------
class _Source:
    path: Path
    sha256: str
    fps: float = 24.0
    count: int | None = None
    first_size: tuple[int, int] = (0, 0)
    kind = ""

    def load(self, item):
        return item

    def close(self) -> None:
        pass

    def provenance(self) -> dict:
        return {"kind": self.kind, "path": str(self.path), "sha256": self.sha256,
                "c2pa_claim_generator": claim_generator(self.path)}


class _Sequence(_Source):
    """Display-referred stills, read (and hashed) on the frame pool as they are written."""

    kind = "sequence"

    def __init__(self, frames: list[tuple[int, Path]], ref: Path):
        from .frames.exr import image_size, read_image

        self.frames, self.path, self.read = frames, ref, read_image
        self.count = len(frames)
        self.sha256 = _sequence_hash([p for _, p in frames])
        self.first_size = image_size(frames[0][1])      # readable at all, and the shot's size

    def items(self, timer):
        return [p for _, p in self.frames]

    def load(self, item):
        rgb = self.read(item, as_stored=True)       # 8/16-bit codes: the fastest inverse
        if (rgb.shape[1], rgb.shape[0]) != self.first_size:
            raise invalid("src", f"{item.name} is {rgb.shape[1]}x{rgb.shape[0]}, the sequence "
                          f"started at {self.first_size[0]}x{self.first_size[1]}")
        return rgb

    def provenance(self) -> dict:
        out = super().provenance()
        out["c2pa_claim_generator"] = claim_generator(self.frames[0][1])
        out["files"] = [p.name for _, p in self.frames]
        return out


def _sequence_hash(paths: list[Path]) -> str:
    """One hash for a sequence: sha256 over each file's name and sha256, in frame order (the
    files hashed on the frame pool)."""
    from .frames.pool import read_frames

    digest = hashlib.sha256()
    for p, file_hash in zip(paths, read_frames(sha256_file, paths)):
        digest.update(f"{p.name} {file_hash}\n".encode())
    return digest.hexdigest()


class _Video(_Source):
    """A video decoded by PyAV on the calling thread (frames go to the pool as they come)."""

    kind = "video"

    def __init__(self, path: Path):
        try:
            import av
        except ImportError:
            raise SoraError("not_found", "reading video needs PyAV (the av package)",
                            hint="run ingest with the worker Python: pip install 'sora-core[worker]'") from None
        self.path = path
        try:
            self.container = av.open(str(path))
            self.stream = next(s for s in self.container.streams if s.type == "video")
        except (av.error.FFmpegError, StopIteration, UnicodeDecodeError) as exc:
            if getattr(self, "container", None) is not None:
                self.container.close()
            raise SoraError("invalid_input", f"{path}: not a video or image sequence PyAV or OpenImageIO "
                            f"can read ({exc if not isinstance(exc, StopIteration) else 'no video stream'})",
                            hint="give an MP4/MOV video, or PNG/JPEG/TIFF frames") from None
        self.stream.thread_type = "AUTO"          # FFmpeg's own decoding threads
        rate = self.stream.average_rate or self.stream.guessed_rate
        self.fps = float(rate) if rate else 24.0
        self.count = self.stream.frames or None
        self.first_size = (self.stream.codec_context.width, self.stream.codec_context.height)
        self.sha256 = sha256_file(path)
        pix = str(self.stream.codec_context.pix_fmt or "")
        self.deep = any(bits in pix for bits in HIGH_BIT_FORMATS)

    def items(self, timer):
        import av

        fmt = "rgb48le" if self.deep else "rgb24"     # uint16 / uint8 codes, as to_linear takes them
        try:
            t = time.perf_counter()
            for frame in self.container.decode(self.stream):
                rgb = frame.to_ndarray(format=fmt)
                timer.add("load_s", time.perf_counter() - t)
                yield rgb
                t = time.perf_counter()
        except av.error.FFmpegError as exc:
            raise SoraError("invalid_input", f"{self.path}: the video is corrupt or truncated ({exc})",
                            hint="re-export the video") from None

    def close(self) -> None:
        self.container.close()


def open_source(src: str | Path) -> _Source:
    """What ``src`` names: a video file, or a sequence (pattern, folder or single still)."""
    path = Path(src).expanduser()
    if path.is_file() and path.suffix.lower() not in DISPLAY_EXTS:
        if path.suffix.lower() in (".exr", ".hdr"):
            raise invalid("src", f"{path} is already scene linear; use it directly as an input")
        return _Video(path)
    frames = find_sequence(path)
    exts = {p.suffix.lower() for _, p in frames}
    if not exts <= set(DISPLAY_EXTS):
        raise invalid("src", f"{src}: ingest takes display-referred PNG/JPEG/TIFF frames, found "
                      f"{', '.join(sorted(exts))}", hint="EXR frames are already scene linear")
    return _Sequence(frames, path)


def claim_generator(path: Path) -> str | None:
    """The claim generator of the C2PA manifest embedded in ``path`` (None when there is none
    or c2pa-python is not installed)."""
    try:
        import c2pa
    except ImportError:
        return None
    try:
        with c2pa.Reader(str(path)) as reader:
            store = json.loads(reader.json())
    except Exception:       # c2pa raises its own errors for "no manifest" and unknown formats
        return None
    active = store.get("manifests", {}).get(store.get("active_manifest", ""), {})
    info = active.get("claim_generator_info") or []
    if info and isinstance(info, list) and isinstance(info[0], dict):
        return " ".join(str(info[0].get(k)) for k in ("name", "version") if info[0].get(k))
    return active.get("claim_generator")
