"""Signing a finished shot folder: ``manifest.jws`` and ``manifest.c2pa`` beside ``manifest.json``.

Called by the worker once the manifest says ``complete`` (and by ``sora ingest``); both files
are written to temporary names and renamed, the JWS last. A run that starts a shot over first
removes the old signatures, so a folder never shows a signature of another manifest.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import SoraError
from ..manifest import read_manifest, sha256_file
from . import C2PA_NAME, JWS_NAME, SIGNATURE_FILES
from .identity import resolve_identity


def shot_signer(cert: str | None = None, key: str | None = None):
    """The configured signer loaded and checked (before any work), or None when none is set up."""
    identity = resolve_identity(cert, key)
    if identity is None:
        return None
    from .keys import Signer
    return Signer(identity)


def clear_signatures(folder: str | Path) -> None:
    for name in SIGNATURE_FILES:
        (Path(folder) / name).unlink(missing_ok=True)


def _write_atomic(path: Path, data: bytes) -> None:
    from ..safe_write import write_file_atomic     # random exclusive temporary, no link followed
    write_file_atomic(path, data)


def input_ingredients(manifest: dict):
    """The shot's inputs as C2PA ingredients (a sequence from a sora shot brings that shot's C2PA)."""
    from ..frames.sequence import find_sequence
    from ..ingest import _sequence_hash
    from .credentials import Ingredients

    ingredients = Ingredients()
    spec = manifest.get("spec") or {}
    inputs = spec.get("inputs") or {}
    files = [("image", inputs.get("image")), ("reference", inputs.get("reference"))]
    files += [(f"keyframe{i}", k.get("path")) for i, k in enumerate(inputs.get("keyframes") or [])]
    for label, value in files:
        if value and Path(value).expanduser().is_file():
            path = Path(value).expanduser()
            ingredients.add_file(path, "inputTo", label, sha256_file(path))
    for label in ("frames", "control"):
        if not inputs.get(label):
            continue
        try:
            found = find_sequence(inputs[label], field=f"inputs.{label}")
        except SoraError:
            continue
        folder = found[0][1].parent
        if not ingredients.add_shot(folder, "inputTo", label):
            ingredients.items.append(({"title": Path(str(inputs[label])).name, "format": "image/x-exr",
                                       "relationship": "inputTo", "label": label, "instance_id": label,
                                       "metadata": {"sora:sha256": _sequence_hash([p for _, p in found])}},
                                      "image/x-exr", None, {}))
    return ingredients


def sign_shot(folder: str | Path, signer) -> dict | None:
    """Sign the complete shot in ``folder``; return ``{jws, c2pa, signer}`` (None without a signer)."""
    if signer is None:
        return None
    from .credentials import shot_definition, sign_sidecar
    from .jws import canonical, canonical_sha256, sign_detached

    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest.get("status") != "complete":
        raise SoraError("internal", f"{folder}: only a complete shot is signed")
    payload = canonical(manifest)
    ingredients = input_ingredients(manifest)
    parent = None
    source = manifest.get("source")
    if source and manifest.get("spec", {}).get("mode") == "ingest":     # footage: opened, not generated
        path, parent = Path(source.get("path", "")), "source"
        if path.is_file():
            ingredients.add_file(path, "parentOf", parent, source.get("sha256", ""))
        else:           # a sequence: one ingredient with its sequence hash (name + sha256 of each file)
            ingredients.items.append(({"title": path.name, "format": "image/x-sequence", "relationship":
                                       "parentOf", "label": parent, "instance_id": parent,
                                       "metadata": {"sora:sha256": source.get("sha256", "")}},
                                      "application/octet-stream", None, {}))
    sidecar = sign_sidecar(shot_definition(manifest, canonical_sha256(manifest), parent), ingredients,
                           payload, signer)
    _write_atomic(folder / C2PA_NAME, sidecar)
    _write_atomic(folder / JWS_NAME, (sign_detached(payload, signer) + "\n").encode("ascii"))
    return {"jws": str(folder / JWS_NAME), "c2pa": str(folder / C2PA_NAME), "signer": signer.info.to_dict()}
