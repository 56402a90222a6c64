"""The models the panels offer: the bundled one and the folders under the model folders.

The model folders are listed once (and again on Rescan Models or when a folder preference is
edited); what a name resolves to is kept per (name, folders, generation), so an unknown name
typed into the panel does not rescan every model root on every redraw.
"""

from __future__ import annotations

from pathlib import Path

import bpy

from sora_core.errors import SoraError

from . import live
from .settings import model_roots

_models_cache: list | None = None
_models_key: tuple | None = None


def _roots() -> tuple[str, ...]:
    try:
        return tuple(model_roots())
    except Exception:      # preferences not readable (during registration)
        return ()


def scan_models(force: bool = False) -> list:
    """Models under the model folders (and the bundled one): name, family, capabilities."""
    global _models_cache, _models_key
    from sora_core.models_index import list_models

    roots = _roots()
    if force or _models_cache is None or roots != _models_key:
        try:
            _models_cache = list_models(list(roots))
        except (SoraError, OSError):
            _models_cache = []
        _models_key = roots
        if force:
            live.invalidate()
    return _models_cache


def model_info(ref: str):
    """(ModelInfo or None, Capabilities or None, problem text) for a model name or path."""
    ref = (ref or "").strip()
    roots = _roots()
    return live.memo("model", ref, (roots, live.generation), lambda: _model_info(ref, roots))


def _model_info(ref: str, roots: tuple[str, ...]):
    from sora_core.capabilities import FAMILIES
    from sora_core.models_index import BUNDLED, resolve_model

    if not ref:
        return None, None, "choose a model"
    for info in scan_models():
        if info.name == ref or str(info.path) == ref:
            return info, info.capabilities, _problem(info)
    if ref in BUNDLED:
        return None, FAMILIES.get(ref), f"the bundled model {ref} has no weights installed yet"
    try:
        info = resolve_model(bpy.path.abspath(ref) if ref.startswith("//") else ref, list(roots))
    except SoraError as exc:
        return None, None, exc.message
    return info, info.capabilities, _problem(info)


def _problem(info) -> str:
    """Why a found model cannot run ('' when it can)."""
    if info.capabilities:
        return ""
    return info.problem or f"{info.pipeline_class} pipelines are not supported"


def model_ref_for_spec(ref: str) -> str:
    """Bundled names stay names; other models are passed to the worker as absolute paths."""
    info, _caps, _problem = model_info(ref)
    if info is None or info.bundled:
        return ref.strip()
    return str(Path(info.path).resolve())
