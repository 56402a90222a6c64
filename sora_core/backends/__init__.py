"""Backends: a loaded model that turns a :class:`Request` into display-referred frames.

Heavy half (torch, diffusers). ``load_backend(model_dir, runtime)`` reads the folder's
``model_index.json``, maps it to a family (``model_rules.family_of``: the pipeline class, and
Wan 2.2's ``expand_timesteps``) and loads the matching backend: Wan (2.1 and 2.2: t2v / i2v /
ti2v / VACE, one or two experts), LTX-Video, LTX-2 (with its HDR model) or the bundled TinyWorld.
Only local folders with safetensors weights are loaded; no remote code, no network.
"""

from __future__ import annotations

from pathlib import Path

from ..capabilities import PIPELINE_FAMILIES
from ..model_rules import family_of
from ..models_index import read_model_index
from ..errors import SoraError
from .base import Backend, Request

__all__ = ["Backend", "Request", "load_backend", "backend_class"]


def backend_class(family: str):
    if family.startswith("wan-"):
        from .wan import WanBackend
        return WanBackend
    if family == "ltx":
        from .ltx import LTXBackend
        return LTXBackend
    if family in ("ltx2", "ltx2-hdr"):
        from .ltx2 import LTX2Backend
        return LTX2Backend
    if family == "tinyworld":
        from .tinyworld import TinyWorldBackend
        return TinyWorldBackend
    return None


def load_backend(model_dir: str | Path, runtime=None, components: dict[str, str] | None = None) -> Backend:
    """Load the model in ``model_dir`` with ``runtime`` (device, dtype, memory strategy) and
    ``components`` ({name: file}) replacing the folder's own."""
    from . import loading
    from ..spec import Runtime

    model_dir = Path(model_dir)
    runtime = runtime if runtime is not None else Runtime()
    index = read_model_index(model_dir)
    name = index.get("_class_name", "")
    family = family_of(index)
    cls = backend_class(family) if family else None
    if cls is None:
        known = ", ".join(sorted(PIPELINE_FAMILIES))
        raise SoraError("invalid_input", f"{model_dir} holds a {name or 'unnamed'} pipeline, which no "
                        f"backend serves; served: {known}", field="model")
    loading.check_components(index, model_dir)
    loading.check_safetensors_only(model_dir)
    return cls(model_dir, runtime, index, **({"components": components} if components else {}))
