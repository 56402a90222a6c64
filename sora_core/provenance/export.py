"""``sora export``: a verified shot as a signed deliverable (MP4, MOV, PNG/JPEG still or sequence).

Order: (1) the request checked, (2) the signer loaded and the studio policy's export rules
applied, (3) the shot verified (frames, header, signatures: a tampered or unsigned shot is
refused with exit 65), (4) its frames through the shot's own view transform to display,
(5) encoded to a hidden temporary name beside the destination, (6) a C2PA manifest embedded
whose parent ingredient is the shot's manifest (its sha256 and signed sidecar), (7) renamed
into place. A failure at any step leaves nothing behind. Called by the CLI and the add-on.
"""

from __future__ import annotations

import base64
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ..errors import SoraError, invalid
from ..manifest import read_manifest
from .encode import STILL_MIME, VIDEO, VIDEO_MIME

FORMATS = ("mp4", "mov", "png", "jpeg")
SUFFIXES = {"mp4": (".mp4", ".m4v"), "mov": (".mov",), "png": (".png",), "jpeg": (".jpg", ".jpeg")}
DEFAULT_CRF = 18
EXPORT_LABEL = "org.sora.export"


def deliverable_path(folder: str | Path, stem: str, fmt: str, one_frame: bool = False) -> Path:
    """Where a host puts a shot's deliverable by default: ``folder/stem.mp4`` (``.mov``, ``.png``,
    ``.jpg`` for one still), or the new folder ``folder/stem_png`` for a sequence."""
    single = fmt in VIDEO or one_frame
    return Path(folder) / (stem + (SUFFIXES[fmt][0] if single else f"_{fmt}"))


def check_request(fmt: str, out: Path, frame: int | None, crf: int | None, watermark: bool = False) -> bool:
    """Refuse a malformed request before any work; returns whether the result is one file."""
    if fmt not in FORMATS:
        raise invalid("format", f"{fmt!r} is not one of {', '.join(FORMATS)}")
    if watermark and VIDEO.get(fmt, ("", "", "", 8))[3] != 8:
        raise invalid("watermark", f"--watermark is for 8-bit deliverables (mp4, png, jpeg), not {fmt}")
    if watermark:
        from .watermark import _lib
        _lib()
    if crf is not None and (fmt != "mp4" or not 0 <= crf <= 51):
        raise invalid("crf", "--crf (0-51) applies to --format mp4 only (H.264)")
    if frame is not None and fmt in VIDEO:
        raise invalid("frame", f"--frame picks one still; --format {fmt} exports the whole shot")
    single = fmt in VIDEO or frame is not None
    if single and out.suffix.lower() not in SUFFIXES[fmt]:
        raise invalid("out", f"--out {out} should end in {' or '.join(SUFFIXES[fmt])} for --format {fmt}")
    if not single and (out.exists() or out.suffix.lower() in SUFFIXES[fmt]):
        raise invalid("out", f"--out {out}: a {fmt} sequence is written into a new folder, which must not "
                      "exist yet" if out.exists() else f"--out {out}: a {fmt} sequence needs a folder "
                      "(or --frame N for one still)")
    if single and out.is_dir():
        raise invalid("out", f"--out {out} is a folder")
    if not out.parent.is_dir():
        raise SoraError("not_found", f"--out {out}: the folder {out.parent} does not exist", field="out")
    return single


def checked_shot(shot: Path, anchors_pem: str | None, allow_unsigned: bool):
    """The shot's verification report; a tampered (or, unless allowed, unsigned) shot is refused."""
    from .verify import verify_shot

    if not (shot / "manifest.json").is_file():
        raise SoraError("not_found", f"{shot} holds no manifest.json; is it a finished shot folder?")
    report = verify_shot(shot, anchors_pem)
    if report.problems:
        raise SoraError("verification_failed", f"{shot} fails verification, so it is not exported: "
                        + "; ".join(report.problems), hint=f"sora verify {shot} shows every check")
    if not report.signed and not allow_unsigned:
        raise SoraError("verification_failed", f"{shot} is not signed, so nothing proves what it is",
                        hint="sign shots as they are made (--sign-cert/--sign-key), or pass "
                        "--allow-unsigned to export a shot whose frames match its manifest")
    return report


class Progress:
    """``progress`` events (phase ``export``, one step a frame written, share and ETA) for a host,
    and the cancel check between frames (``cancelled()`` true: the export stops, cleaning up)."""

    def __init__(self, total: int, emit: Callable[[dict], None] | None, cancelled: Callable[[], bool] | None):
        self.total, self.emit, self.step, self.t0 = total, emit or (lambda event: None), 0, time.monotonic()
        self.cancelled = cancelled or (lambda: False)

    def advance(self) -> None:
        if self.cancelled():
            raise SoraError("cancelled", "the export was cancelled; nothing was written")
        self.step += 1
        spent = time.monotonic() - self.t0
        self.emit({"event": "progress", "phase": "export", "step": self.step, "total": self.total,
                   "overall": self.step / self.total, "eta_s": round(spent / self.step * (self.total - self.step), 1)})

    def counted(self, frames: Iterable) -> Iterator:
        for frame in frames:
            yield frame
            self.advance()


def _temp(path: Path) -> Path:
    return path.with_name(f".{path.name}.sora-export-{uuid.uuid4().hex[:10]}")


def definition(manifest: dict, title: str, mime: str, export: dict, watermarked: bool) -> dict:
    """The deliverable's C2PA manifest: opened from the shot, converted for display, how."""
    from .credentials import SOFTWARE, TRAINED, generation

    convert = {"action": "c2pa.converted" if mime.startswith("image/") else "c2pa.transcoded",
               "softwareAgent": SOFTWARE, "description": f"scene-linear EXR through {export['view']['display']}"
               f" / {export['view']['view']} to {export['codec']}"}
    if (manifest.get("spec") or {}).get("mode") != "ingest":     # ingested footage was not generated
        convert["digitalSourceType"] = TRAINED
    actions = [{"action": "c2pa.opened", "parameters": {"ingredientIds": ["shot"]}}, convert]
    if watermarked:
        actions.append({"action": "c2pa.watermarked", "softwareAgent": SOFTWARE,
                        "description": "invisible watermark (see org.sora.export.watermark)"})
    assertions = [{"label": "c2pa.actions.v2", "data": {"actions": actions}},
                  {"label": "org.sora.generation", "data": generation(manifest)},
                  {"label": EXPORT_LABEL, "data": export}]
    if watermarked:
        mark = export["watermark"]
        assertions.append({"label": "c2pa.soft-binding", "data": {
            "alg": f"org.sora.invisible-watermark.{mark['method']}",
            "blocks": [{"scope": {}, "value": base64.b64encode(bytes.fromhex(mark["payload"])).decode()}]}})
    return {"claim_generator_info": [SOFTWARE], "title": title, "format": mime, "assertions": assertions}


def export_shot(shot: str | Path, fmt: str, out: str | Path, frame: int | None = None,
                crf: int | None = None, watermark: bool = False, sign_cert: str | None = None,
                sign_key: str | None = None, anchors_pem: str | None = None,
                allow_unsigned: bool = False, emit: Callable[[dict], None] | None = None,
                cancelled: Callable[[], bool] | None = None) -> dict:
    """Export ``shot`` as ``fmt`` into ``out``; returns ``{files, signer, ...}``. ``emit`` gets a
    ``progress`` event per frame encoded (the CLI's ``--events``, the add-on's progress bar)."""
    from .jws import _anchored, canonical_sha256
    from .policy import check_export
    from .sign import shot_signer

    shot, out = Path(shot), Path(out).expanduser().absolute()
    # 1. the request
    single = check_request(fmt, out, frame, crf, watermark)
    # 2. who signs, and whether the policy lets them
    signer = shot_signer(sign_cert, sign_key)
    if signer is None:
        raise SoraError("invalid_input", "a deliverable carries a signed C2PA manifest: no signing "
                        "identity is set up", field="sign_cert", hint="give --sign-cert CHAIN.pem "
                        "--sign-key KEY.pem (sora keys new DIR makes a local pair for trying it out)")
    check_export(signer.info.to_dict(), _anchored(signer.chain, anchors_pem))
    # 3. the shot, verified
    report = checked_shot(shot, anchors_pem, allow_unsigned)
    manifest = read_manifest(shot)
    records = manifest.get("frames") or []
    if frame is not None:
        records = [r for r in records if r.get("number") == frame]
        if not records:
            raise invalid("frame", f"frame {frame} is not in {shot} (frames {manifest.get('first_frame')}"
                          f"-{manifest.get('last_frame')})")
    if not records:
        raise SoraError("invalid_input", f"{shot} lists no frames")
    shot_sha = canonical_sha256(manifest)
    # 4-7. render, encode, sign, rename
    from .render import Renderer

    renderer = Renderer(shot, manifest, records, watermark and shot_sha)
    progress = Progress(len(records), emit, cancelled)
    base = {"shot_manifest_sha256": shot_sha, "view": renderer.view,
            "frames": [{"file": r["file"], "sha256": r["sha256"]} for r in records]}
    if single and fmt in VIDEO:
        files = [_export_video(renderer, manifest, fmt, out, crf, base, signer, progress)]
    elif single:
        files = [_export_still(renderer, manifest, fmt, out, 0, base, signer)]
        progress.advance()
    else:
        files = _export_sequence(renderer, manifest, fmt, out, base, signer, progress)
    return {"files": [str(f) for f in files], "format": fmt, "shot": str(shot), "shot_signed": report.signed,
            "signer": signer.info.to_dict(), "frames": len(records), "watermark": renderer.mark}


def _signed(renderer, manifest: dict, plain: Path, dest: Path, title: str, mime: str, export: dict,
            signer) -> None:
    """``plain`` signed into ``dest`` (the shot's manifest as parent ingredient); ``plain`` removed.
    ``title`` is the name the file will have once renamed into place."""
    from .credentials import Ingredients, sign_embedded

    ingredients = Ingredients()
    ingredients.add_shot(renderer.shot, "parentOf", "shot")
    sign_embedded(definition(manifest, title, mime, export, bool(renderer.mark)), ingredients, plain,
                  dest, mime, signer)
    plain.unlink()


def _export_video(renderer, manifest, fmt, out, crf, base, signer, progress: Progress) -> Path:
    from .encode import colour_tags, encode_video

    tags = colour_tags(renderer.view["display"])
    plain, signed = _temp(out), _temp(out)
    try:
        info = encode_video(progress.counted(renderer.frames()), plain, fmt, renderer.fps, tags,
                            DEFAULT_CRF if crf is None else crf)
        export = {**base, **info, "watermark": renderer.mark}
        _signed(renderer, manifest, plain, signed, out.name, VIDEO_MIME[fmt], export, signer)
        os.replace(signed, out)
    finally:
        plain.unlink(missing_ok=True)
        signed.unlink(missing_ok=True)
    return out


def _export_still(renderer, manifest, fmt, out, index, base, signer, dest: Path | None = None) -> Path:
    """One still (frame ``index`` of the renderer) signed into ``dest`` (default: renamed to ``out``)."""
    from .encode import write_still

    target = dest or _temp(out)
    plain = _temp(target)
    try:
        pixels = renderer.still(index)
        write_still(pixels, plain, fmt, "srgb" in renderer.view["display"].lower())
        export = {**base, "frames": [base["frames"][index]], "codec": f"8-bit {fmt.upper()}",
                  "width": pixels.shape[1], "height": pixels.shape[0], "watermark": renderer.mark}
        _signed(renderer, manifest, plain, target, (dest or out).name, STILL_MIME[fmt], export, signer)
        if dest is None:
            os.replace(target, out)
    finally:
        plain.unlink(missing_ok=True)
        if dest is None:
            target.unlink(missing_ok=True)
    return dest or out


def _export_sequence(renderer, manifest, fmt, out, base, signer, progress: Progress) -> list[Path]:
    """Every frame as a signed still in a hidden folder, renamed to ``out`` once all are written."""
    from ..frames.sequence import fill_pattern

    folder = _temp(out)
    folder.mkdir()
    ext = SUFFIXES[fmt][0]
    pattern = (manifest.get("pattern") or "frame.####.exr").rsplit(".", 1)[0] + ext
    try:
        names = []
        for index, record in enumerate(renderer.records):
            name = fill_pattern(pattern, record["number"])
            _export_still(renderer, manifest, fmt, folder / name, index, base, signer, dest=folder / name)
            names.append(name)
            progress.advance()
        os.replace(folder, out)
    finally:
        if folder.exists():
            shutil.rmtree(folder)
    return [out / n for n in names]
