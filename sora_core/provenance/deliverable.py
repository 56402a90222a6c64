"""``sora verify`` on a deliverable: an exported MP4/MOV/PNG/JPEG, or a folder of them.

Its embedded C2PA manifest (state, signer, trust; a changed byte of the content breaks its
hard binding and is named), the parent ingredient (the shot's manifest: its sha256, and the
shot's own signed manifest validated inside the chain; with ``--shot`` it must be that shot's
manifest as it is now), what ``org.sora.export`` says was done, and the watermark when one was
embedded. A file with no C2PA at all is unverified (65), with its watermark, if any, reported.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import SoraError
from ..manifest import MANIFEST_NAME
from .verify import Report, _explain

CHANGED = {"assertion.dataHash.mismatch", "assertion.bmffHash.mismatch", "assertion.boxesHash.mismatch"}


def verify_folder(folder: Path, anchors_pem: str | None, shot: str | Path | None = None) -> Report:
    """A folder of deliverables (an exported PNG/JPEG sequence): each file's C2PA."""
    from .credentials import EMBEDDABLE

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in EMBEDDABLE and not p.name.startswith("."))
    if not files:
        raise SoraError("invalid_input", f"{folder}: holds no {MANIFEST_NAME} and no deliverables",
                        hint="give a shot folder, an EXR frame, or an exported MP4/MOV/PNG/JPEG")
    report = Report(str(folder), f"folder of {len(files)} files", signed=True, trusted=True)
    for file in files:
        one = verify_file(file, anchors_pem, shot)
        report.checks += one.checks
        report.problems += one.problems
        report.signed &= one.signed
        report.trusted &= one.trusted
        report.signer = report.signer or one.signer
    return report


def verify_file(path: Path, anchors_pem: str | None, shot: str | Path | None = None) -> Report:
    from .credentials import TRAINED, read

    report = Report(str(path), "file")
    store = read(path=path, anchors_pem=anchors_pem)
    if store is None:
        report.check("C2PA", False, f"{path.name}: carries no C2PA manifest")
        _check_watermark(report, path, None)
        return report
    report.signed = True
    report.signer = {"common_name": store["signer"].get("common_name"), "issuer": store["signer"].get("issuer")}
    report.trusted = store["trusted"]
    if store["failures"]:
        for f in store["failures"]:
            what = "content changed after it was signed" if f.get("code") in CHANGED else "C2PA fails"
            report.check("C2PA", False, f"{path.name}: {what} ({_explain(f)})")
        return report
    active = store["active"]
    kinds = {a.get("digitalSourceType") for m in [active, *store["manifests"]] for a in _actions(m)}
    made = "AI-generated (trainedAlgorithmicMedia)" if TRAINED in kinds else "not marked AI-generated (no digitalSourceType)"
    report.check("C2PA", True, f"{path.name}: {store['state'].lower()}, {made}, "
                 f"{len(store['manifests'])} manifest(s) in its chain", state=store["state"])
    _check_parent(report, path, active, store, shot)
    _check_watermark(report, path, active)
    return report


def _check_parent(report: Report, path: Path, active: dict, store: dict, shot) -> None:
    """The parent ingredient: the shot's manifest, its hash, its own signed manifest."""
    from .credentials import assertion

    parents = [i for i in active.get("ingredients") or [] if i.get("relationship") == "parentOf"]
    if not parents:
        report.check("ingredient", None, f"{path.name}: no parent ingredient (not exported by sora)")
        return
    parent = parents[0]
    sha = (parent.get("metadata") or {}).get("sora:manifest_sha256")
    results = (parent.get("validation_results") or {}).get("activeManifest") or {}
    failed = [f for f in results.get("failure") or [] if f.get("code") != "signingCredential.untrusted"]
    labels = {m.get("label") for m in store["manifests"]}
    data = {"title": parent.get("title"), "manifest_sha256": sha, "active_manifest": parent.get("active_manifest")}
    if failed:
        report.check("ingredient", False, f"{path.name}: the shot's signed manifest inside it fails ("
                     + "; ".join(_explain(f) for f in failed) + ")", **data)
        return
    signed = parent.get("active_manifest") in labels
    export = assertion(active, "org.sora.export") or {}
    if export and export.get("shot_manifest_sha256") != sha:
        report.check("ingredient", False, f"{path.name}: its export record names shot manifest "
                     f"{export.get('shot_manifest_sha256')}, its ingredient {sha}", **data)
        return
    if shot is not None:
        from .jws import canonical_sha256
        from ..manifest import read_manifest

        try:
            now = canonical_sha256(read_manifest(Path(shot)))
        except (OSError, ValueError) as exc:
            raise SoraError("not_found", f"--shot {shot}: cannot read its {MANIFEST_NAME} ({exc})") from None
        if now != sha:
            report.check("ingredient", False, f"{path.name}: its parent ingredient is not {shot}'s manifest "
                         f"(made from manifest sha256 {sha}; the shot's is {now} now)", **data)
            return
    what = f"made from shot {parent.get('title')} (manifest sha256 {str(sha)[:16]}...)"
    what += ", whose signed C2PA manifest is in the chain" if signed else ", an unsigned shot"
    if shot is not None:
        what += f"; matches {shot}"
    if export:
        what += f"; {export.get('codec')}, {len(export.get('frames') or [])} frame(s) through " \
                f"{(export.get('view') or {}).get('display')} / {(export.get('view') or {}).get('view')}"
    report.check("ingredient", True, f"{path.name}: {what}", **data)


def _check_watermark(report: Report, path: Path, active: dict | None) -> None:
    """The watermark: expected (the export says so) or searched for (a file with no C2PA)."""
    from .credentials import assertion

    mark = (assertion(active, "org.sora.export") or {}).get("watermark") if active else None
    if active is not None and not mark:
        return
    try:
        from .watermark import read_file
    except ImportError:
        return
    found = read_file(path, mark)
    if found is None:
        if mark:
            report.check("watermark", None, f"{path.name}: watermark not read (invisible-watermark not installed)")
        return
    if mark:
        ok = found == mark["payload"]
        report.check("watermark", True if ok else None, f"{path.name}: watermark "
                     + ("present, carries the shot's id" if ok else f"not recovered (read {found})"))
    else:
        report.check("watermark", None, f"{path.name}: carries a sora watermark {found} "
                     "(the shot's id; its C2PA was removed)")


def _actions(manifest: dict) -> list[dict]:
    from .credentials import assertion
    for label in ("c2pa.actions.v2", "c2pa.actions"):
        data = assertion(manifest, label)
        if data:
            return data.get("actions") or []
    return []
