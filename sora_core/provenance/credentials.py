"""C2PA manifests through c2pa-python: what a shot asserts, its ingredients, signing, reading.

A shot's C2PA manifest (the sidecar ``manifest.c2pa``, and the parent ingredient of every
deliverable) asserts the model, prompt, negative prompt, seed, mode, software and
``digitalSourceType`` ``trainedAlgorithmicMedia`` (an ingested source is ``opened`` and
``converted`` instead), every frame's sha256, and the inputs as ingredients with their sha256
and any C2PA manifest they carried (a signed sora shot's sidecar, or one embedded in a PNG,
JPEG or video). Heavy only in use: ``c2pa`` is imported by the functions that need it.
"""

from __future__ import annotations

import io
import json
import mimetypes
from pathlib import Path

from .. import GENERATOR, __version__
from ..errors import SoraError

TRAINED = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
UNTRUSTED = "signingCredential.untrusted"
EMBEDDABLE = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".tif": "image/tiff",
              ".tiff": "image/tiff", ".mp4": "video/mp4", ".mov": "video/quicktime", ".m4v": "video/mp4",
              ".webp": "image/webp"}
SOFTWARE = {"name": GENERATOR, "version": __version__}


def c2pa_module():
    try:
        import c2pa
    except ImportError:
        raise SoraError("not_found", "C2PA needs the c2pa-python package",
                        hint="pip install 'sora-core[worker]'") from None
    return c2pa


def context(anchors_pem: str | None = None):
    """Settings for building (no thumbnails: the frames are the content) and for trust."""
    settings: dict = {"builder": {"thumbnail": {"enabled": False}}, "verify": {"verify_trust": True}}
    if anchors_pem:
        settings["trust"] = {"trust_anchors": anchors_pem}
    return c2pa_module().Context.from_dict(settings)


def generation(manifest: dict) -> dict:
    """The ``org.sora.generation`` assertion: how the shot was made (no paths, no keys)."""
    spec, model = manifest.get("spec") or {}, manifest.get("model") or {}
    return {"mode": spec.get("mode"), "prompt": spec.get("prompt", ""),
            "negative_prompt": spec.get("negative_prompt", ""), "seed": spec.get("seed", manifest.get("seed")),
            "prompt_schedule": spec.get("prompt_schedule") or [],
            "passes": [{"prompt": p.get("prompt"), "seed": p.get("seed")} for p in manifest.get("passes") or []],
            "model": {k: model.get(k) for k in ("name", "family", "hash", "pipeline") if model.get(k)},
            "software": manifest.get("software") or {}}


def frames_assertion(manifest: dict, manifest_sha256: str) -> dict:
    return {"manifest_sha256": manifest_sha256, "pattern": manifest.get("pattern"),
            "frames": [{"file": f["file"], "sha256": f["sha256"]} for f in manifest.get("frames") or []]}


def shot_definition(manifest: dict, manifest_sha256: str, parent: str | None = None) -> dict:
    """The shot's manifest definition; ``parent`` is the label of an ingested source ingredient."""
    if parent:
        actions = [{"action": "c2pa.opened", "parameters": {"ingredientIds": [parent]}},
                   {"action": "c2pa.converted", "softwareAgent": SOFTWARE,
                    "description": "display-referred footage to a scene-linear EXR sequence"}]
    else:
        actions = [{"action": "c2pa.created", "digitalSourceType": TRAINED, "softwareAgent": SOFTWARE}]
    return {"claim_generator_info": [SOFTWARE], "title": "manifest.json", "format": "application/json",
            "assertions": [{"label": "c2pa.actions.v2", "data": {"actions": actions}},
                           {"label": "org.sora.generation", "data": generation(manifest)},
                           {"label": "org.sora.frames", "data": frames_assertion(manifest, manifest_sha256)}]}


class Ingredients:
    """Inputs added to a Builder: their hash as metadata, and any C2PA they carry."""

    def __init__(self):
        self.items: list[tuple[dict, str, bytes | None, dict]] = []   # (json, format, stream, resources)

    def add_file(self, path: Path, relationship: str, label: str, sha256: str) -> None:
        mime = EMBEDDABLE.get(path.suffix.lower())
        base = {"title": path.name, "relationship": relationship, "label": label, "instance_id": label,
                "metadata": {"sora:sha256": sha256}}
        if mime:            # c2pa reads the file's own manifest, if it has one, into the ingredient
            self.items.append(({**base, "format": mime}, mime, path.read_bytes(), {}))
        else:
            fmt = mimetypes.guess_type(path.name)[0] or ("image/x-exr" if path.suffix.lower() == ".exr"
                                                         else "application/octet-stream")
            self.items.append(({**base, "format": fmt}, fmt, None, {}))

    def add_shot(self, folder: Path, relationship: str, label: str, title: str | None = None) -> bool:
        """A sora shot folder as an ingredient: its canonical manifest's sha256 and its signed sidecar."""
        from . import C2PA_NAME
        from .jws import canonical, canonical_sha256
        from ..manifest import read_manifest

        try:
            manifest = read_manifest(folder)
        except (OSError, ValueError):
            return False
        sha = canonical_sha256(manifest)
        item = {"title": title or manifest.get("pattern") or folder.name, "format": "application/json",
                "relationship": relationship, "label": label, "instance_id": label,
                "metadata": {"sora:manifest_sha256": sha}}
        resources: dict = {}
        sidecar = folder / C2PA_NAME
        if sidecar.is_file():
            data = sidecar.read_bytes()
            try:
                results = read(data=canonical(manifest), fmt="application/json", sidecar=data)["results"]
            except SoraError:
                results = None
            if results:
                item.update(validation_results=results,
                            manifest_data={"format": "application/c2pa", "identifier": f"{label}.c2pa"})
                resources[f"{label}.c2pa"] = data
        self.items.append((item, "application/json", canonical(manifest), resources))
        return True

    def apply(self, builder) -> None:
        for item, fmt, data, resources in self.items:
            for uri, blob in resources.items():
                builder.add_resource(uri, io.BytesIO(blob))
            builder.add_ingredient(item, fmt, io.BytesIO(data if data is not None else b""))


def build(definition: dict, ingredients: Ingredients, no_embed: bool = False):
    c2pa = c2pa_module()
    builder = c2pa.Builder(definition, context=context())
    if no_embed:
        builder.set_no_embed()
    ingredients.apply(builder)
    return builder


def sign_sidecar(definition: dict, ingredients: Ingredients, payload: bytes, signer) -> bytes:
    """A C2PA manifest store (not embedded) whose data hash binds ``payload``."""
    builder = build(definition, ingredients, no_embed=True)
    try:
        return builder.sign(signer.c2pa_signer(), "application/json", io.BytesIO(payload), io.BytesIO())
    except Exception as exc:
        raise SoraError("internal", f"C2PA signing failed: {exc}") from None


def sign_embedded(definition: dict, ingredients: Ingredients, src: Path, dst: Path, mime: str, signer) -> None:
    """``src`` copied to ``dst`` with a signed C2PA manifest embedded."""
    builder = build(definition, ingredients)
    try:
        with open(src, "rb") as source, open(dst, "w+b") as dest:
            builder.sign(signer.c2pa_signer(), mime, source, dest)
    except OSError:
        raise
    except Exception as exc:
        raise SoraError("internal", f"C2PA signing of {dst.name} failed: {exc}") from None


def read(path: Path | None = None, data: bytes | None = None, fmt: str | None = None,
         sidecar: bytes | None = None, anchors_pem: str | None = None) -> dict | None:
    """Validate a C2PA manifest: ``{state, failures, trusted, signer, active, results, manifests}``
    (``manifests``: every manifest of the store, the ingredients' too),
    or None when the asset carries none. ``failures`` leaves out the signer's trust, reported apart."""
    c2pa = c2pa_module()
    ctx = context(anchors_pem)
    if path is not None:
        with open(path, "rb") as fh:
            return _read(c2pa, EMBEDDABLE.get(path.suffix.lower()) or str(path), fh, None, ctx)
    return _read(c2pa, fmt, io.BytesIO(data or b""), sidecar, ctx)


def _read(c2pa, fmt, stream, sidecar, ctx) -> dict | None:
    try:
        reader = c2pa.Reader.try_create(fmt, stream, sidecar, ctx)
    except c2pa.C2paError as exc:
        return {"state": "Invalid", "failures": [{"code": "manifest.unreadable", "explanation": str(exc)}],
                "trusted": False, "signer": {}, "active": {}, "results": None, "manifests": []}
    if reader is None:
        return None
    with reader:
        results = reader.get_validation_results() or {}
        active = reader.get_active_manifest() or {}
        store = json.loads(reader.json())
        state = reader.get_validation_state()
    failed = (results.get("activeManifest") or {}).get("failure") or []
    for ing in (results.get("ingredientDeltas") or []):
        failed += ((ing.get("validationDeltas") or {}).get("failure") or [])
    return {"state": state, "trusted": state == "Trusted",
            "failures": [f for f in failed if f.get("code") != UNTRUSTED],
            "signer": active.get("signature_info") or {}, "active": active, "results": results,
            "manifests": list((store.get("manifests") or {}).values())}


def assertion(active: dict, label: str) -> dict | None:
    for item in active.get("assertions") or []:
        if item.get("label") == label:
            return item.get("data")
    return None
