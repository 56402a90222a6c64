"""``sora verify``: a shot folder, one frame or a deliverable checked against what was signed.

A shot: every frame against the manifest's sha256 (changed, deleted or added frames named),
the first frame's header provenance against the manifest, the detached JWS over the manifest's
canonical form, and the C2PA sidecar (its signature, its binding to the same bytes, its trust).
When the manifest no longer matches what was signed, the sidecar's signed summary names the
fields and frame hashes that changed. A deliverable: see ``deliverable``. Nothing is
fetched over the network (no OCSP, no remote manifests).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import SoraError
from ..manifest import MANIFEST_NAME, sha256_file
from . import C2PA_NAME, JWS_NAME

EXIT_VERIFIED, EXIT_FAILED = 0, 65


@dataclass
class Report:
    """What was checked and what failed; ``problems`` name each failing frame, file or field."""

    path: str
    kind: str                    # shot, frame, file
    checks: list[dict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    signer: dict = field(default_factory=dict)
    trusted: bool = False
    signed: bool = False

    def check(self, name: str, ok: bool | None, detail: str, **data) -> None:
        self.checks.append({"check": name, "ok": ok, "detail": detail, **data})
        if ok is False:
            self.problems.append(detail)

    @property
    def verdict(self) -> str:
        if self.problems:
            return "tampered"
        return "verified" if self.signed else "unsigned"

    def exit_code(self, allow_unsigned: bool = False, require_trusted: bool = False) -> int:
        if self.problems or (not self.signed and not allow_unsigned):
            return EXIT_FAILED
        if require_trusted and self.signed and not self.trusted:
            return EXIT_FAILED
        return EXIT_VERIFIED

    def to_dict(self) -> dict:
        return {"path": self.path, "kind": self.kind, "verdict": self.verdict, "signed": self.signed,
                "trusted": self.trusted, "signer": self.signer, "problems": self.problems,
                "checks": self.checks}

    def lines(self) -> list[str]:
        who = ""
        if self.signer:
            who = f", signed by {self.signer.get('common_name') or '?'}" + ("" if self.trusted else ", untrusted")
        out = [f"{self.verdict.upper()}: {self.path} ({self.kind}{who})"]
        marks = {True: "ok  ", False: "FAIL", None: "--  "}
        out += [f"  {marks[c['ok']]} {c['check']}: {c['detail']}" for c in self.checks]
        return out


def verify(path: str | Path, anchors_pem: str | None = None, shot: str | Path | None = None) -> Report:
    """Verify ``path`` (shot folder, ``manifest.json``, a frame or a deliverable; for a
    deliverable, ``shot`` is the shot folder its parent ingredient must be)."""
    path = Path(path)
    if not path.exists():
        raise SoraError("not_found", f"{path}: not found")
    if path.is_dir():
        if (path / MANIFEST_NAME).is_file():
            return verify_shot(path, anchors_pem)
        from .deliverable import verify_folder
        return verify_folder(path, anchors_pem, shot)
    if path.name == MANIFEST_NAME:
        return verify_shot(path.parent, anchors_pem)
    suffix = path.suffix.lower()
    if suffix == ".exr":
        return verify_frame(path, anchors_pem)
    from .credentials import EMBEDDABLE
    if suffix in EMBEDDABLE:
        from .deliverable import verify_file
        return verify_file(path, anchors_pem, shot)
    raise SoraError("invalid_input", f"{path}: not a kind of file sora verify understands",
                    hint="give a shot folder, an EXR frame, or an exported MP4/MOV/PNG/JPEG")


def verify_frame(path: Path, anchors_pem: str | None) -> Report:
    """One EXR: its header provenance, and the shot around it when its manifest is there."""
    folder = path.parent
    if (folder / MANIFEST_NAME).is_file():
        return verify_shot(folder, anchors_pem, only=path.name)
    report = Report(str(path), "frame")
    attrs = _header(path)
    if attrs is None:
        report.check("header", None, "OpenImageIO is not installed here: the header was not read")
    elif attrs.get("sora:generator"):
        report.check("header", True, _describe_header(attrs))
    report.check("manifest", False, f"{path.name}: no {MANIFEST_NAME} beside it, so its content cannot be "
                 "checked against a signed record")
    return report


def verify_shot(folder: Path, anchors_pem: str | None = None, only: str | None = None) -> Report:
    import json

    from .jws import canonical

    report = Report(str(folder / only) if only else str(folder), "frame" if only else "shot")
    try:
        manifest = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    except ValueError as exc:
        report.check("manifest", False, f"{MANIFEST_NAME} is not valid JSON any more ({exc})")
        return report
    except OSError as exc:
        raise SoraError("not_found", f"{folder / MANIFEST_NAME} cannot be read: {exc}") from None
    records = manifest.get("frames") or []
    if only and only not in {r.get("file") for r in records}:
        report.check("frames", False, f"{only}: not listed in {MANIFEST_NAME} (added to the shot)")
    _check_frames(report, folder, manifest, records, only)
    _check_header(report, folder, manifest, records, only)
    payload = canonical(manifest)
    jws_path, c2pa_path = folder / JWS_NAME, folder / C2PA_NAME
    if not jws_path.exists() and not c2pa_path.exists():
        report.check("signature", None, f"not signed (no {JWS_NAME}, no {C2PA_NAME})")
        return report
    report.signed = True
    sidecar = _check_sidecar(report, folder, manifest, payload, c2pa_path, anchors_pem)
    _check_jws(report, payload, jws_path, anchors_pem, sidecar)
    return report


def _check_frames(report: Report, folder: Path, manifest: dict, records: list, only: str | None) -> None:
    bad = 0
    for rec in records:
        name = rec.get("file", "")
        if only and name != only:
            continue
        file = folder / name
        if not file.is_file():
            report.check("frames", False, f"{name}: deleted (listed in {MANIFEST_NAME}, missing on disk)")
            bad += 1
        elif sha256_file(file) != rec.get("sha256"):
            report.check("frames", False, f"{name}: content changed (its sha256 differs from {MANIFEST_NAME})")
            bad += 1
    pattern = manifest.get("pattern") or ""
    listed = {r.get("file") for r in records}
    if not only and "####" in pattern:
        stem, ext = pattern.split("####", 1)
        for extra in sorted(folder.glob(f"{stem}*{ext}")):
            middle = extra.name[len(stem):len(extra.name) - len(ext)]
            if middle.isdigit() and extra.name not in listed:
                report.check("frames", False, f"{extra.name}: not in {MANIFEST_NAME} (added to the shot)")
                bad += 1
    if not bad:
        count = 1 if only else len(records)
        report.check("frames", True, f"{count} frame(s) match their sha256 in {MANIFEST_NAME}")


def _check_header(report: Report, folder: Path, manifest: dict, records: list, only: str | None) -> None:
    present = [r for r in records if (folder / r.get("file", "")).is_file() and (not only or r["file"] == only)]
    if not present:
        return
    attrs = _header(folder / present[0]["file"])
    if attrs is None:
        report.check("header", None, "OpenImageIO is not installed here: headers were not read")
        return
    spec = manifest.get("spec") or {}
    expect = {"sora:mode": spec.get("mode")}
    if spec.get("mode") != "ingest":
        expect["sora:model"] = (manifest.get("model") or {}).get("name") or spec.get("model")
    wrong = [f"{k[5:]} is {attrs.get(k)!r}, the manifest says {v!r}" for k, v in expect.items()
             if v is not None and attrs.get(k) != str(v)]
    if wrong:
        report.check("header", False, f"{present[0]['file']}: header provenance disagrees: " + "; ".join(wrong))
    else:
        report.check("header", True, f"{present[0]['file']}: " + _describe_header(attrs))


def _check_sidecar(report, folder, manifest, payload, c2pa_path, anchors_pem) -> dict | None:
    """The C2PA sidecar; returns its validated active manifest (None when missing or invalid)."""
    from .credentials import assertion, generation, frames_assertion, read
    from .jws import canonical_sha256

    if not c2pa_path.is_file():
        report.check("C2PA sidecar", False, f"{C2PA_NAME}: missing (the shot was signed, the sidecar removed)")
        return None
    store = read(data=payload, fmt="application/json", sidecar=c2pa_path.read_bytes(), anchors_pem=anchors_pem)
    if store is None or not store.get("active"):
        report.check("C2PA sidecar", False, f"{C2PA_NAME}: altered or damaged (not a readable C2PA manifest)")
        return None
    codes = {f.get("code", "") for f in store["failures"]}
    if store["signer"].get("common_name"):
        report.signer = {"common_name": store["signer"]["common_name"], "issuer": store["signer"].get("issuer")}
    report.trusted = store["trusted"]
    if codes - {"assertion.dataHash.mismatch"}:
        report.check("C2PA sidecar", False, f"{C2PA_NAME}: altered or badly signed ("
                     + "; ".join(_explain(f) for f in store["failures"]) + ")")
        return None
    active = store["active"]
    if "assertion.dataHash.mismatch" in codes:
        changes = _manifest_changes(manifest, assertion(active, "org.sora.generation") or {},
                                    assertion(active, "org.sora.frames") or {}, generation, frames_assertion,
                                    canonical_sha256(manifest))
        report.check("C2PA sidecar", False, f"{MANIFEST_NAME} was edited after it was signed: " + changes)
        return active
    report.check("C2PA sidecar", True, f"{C2PA_NAME}: {store['state'].lower()}, binds {MANIFEST_NAME} as signed")
    return active


def _manifest_changes(manifest, signed_gen, signed_frames, generation, frames_assertion, sha) -> str:
    now_gen, now_frames = generation(manifest), frames_assertion(manifest, sha)
    changed = [f"{k} changed from {signed_gen.get(k)!r} to {now_gen.get(k)!r}"
               for k in now_gen if now_gen.get(k) != signed_gen.get(k)]
    if "seed" in manifest and manifest["seed"] != signed_gen.get("seed") and now_gen.get("seed") == signed_gen.get("seed"):
        changed.append(f"seed changed from {signed_gen.get('seed')!r} to {manifest['seed']!r}")
    before = {f["file"]: f["sha256"] for f in signed_frames.get("frames") or []}
    after = {f["file"]: f["sha256"] for f in now_frames["frames"]}
    changed += [f"{n}'s sha256 rewritten" for n in sorted(before) if n in after and before[n] != after[n]]
    changed += [f"{n} removed from the list" for n in sorted(set(before) - set(after))]
    changed += [f"{n} added to the list" for n in sorted(set(after) - set(before))]
    return "; ".join(changed) or "a field outside the signed summary (timings, notices, ...) changed"


def _check_jws(report, payload, jws_path, anchors_pem, sidecar) -> None:
    from .jws import verify_detached

    if not jws_path.is_file():
        report.check("manifest signature", False, f"{JWS_NAME}: missing (the shot was signed, the signature removed)")
        return
    result = verify_detached(jws_path.read_text(encoding="ascii", errors="replace"), payload, anchors_pem)
    if result["valid"]:
        report.trusted = report.trusted or result["trusted"]
        name = result["signer"]["common_name"]
        report.signer = {**result["signer"], **report.signer}
        report.check("manifest signature", True, f"{JWS_NAME}: valid, by {name}" +
                     (" (trusted)" if result["trusted"] else " (untrusted)"))
        return
    if sidecar is not None and not any("edited after it was signed" in p for p in report.problems):
        report.check("manifest signature", False, f"{JWS_NAME}: the signature was altered ({result['reason']}; "
                     f"the manifest itself still matches {C2PA_NAME})")
    else:
        report.check("manifest signature", False, f"{JWS_NAME}: {result['reason']}")


def _header(path: Path) -> dict | None:
    try:
        from ..frames.exr import read_attrs
        return read_attrs(path)
    except ImportError:
        return None
    except SoraError as exc:
        return {"sora:error": str(exc)}


def _describe_header(attrs: dict) -> str:
    keys = ("sora:mode", "sora:model", "sora:seed", "sora:prompt", "sora:source")
    return ", ".join(f"{k[5:]} {attrs[k]!r}" for k in keys if attrs.get(k))


def _explain(failure: dict) -> str:
    return f"{failure.get('explanation') or failure.get('code')} [{failure.get('code')}]"
