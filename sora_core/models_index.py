"""Finding models: the bundled one, folders under the model roots, or a path.

Light half: reads ``model_index.json`` and the configs (``model_rules``) only, so hosts can list
models and the rules read from their files without torch. Model roots come from ``--models-dir``/host preferences and ``SORA_MODELS``
(``os.pathsep``-separated).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .capabilities import Capabilities, register_family
from .errors import SoraError
from .model_rules import family_of, read_capabilities

PACKAGE_MODELS = Path(__file__).parent / "models"
BUNDLED = {"tinyworld": PACKAGE_MODELS / "tinyworld" / "weights"}


def _register_bundled() -> None:
    """The bundled model declares its limits in its torch-free package ``__init__``."""
    from .models import tinyworld as tw

    height, width = tw.NATIVE_SIZE
    register_family(Capabilities(
        family="tinyworld", modes=("generate", "animate", "extend", "interpolate", "restyle"),
        frame_multiple=1, frame_offset=0, min_frames=tw.MIN_FRAMES, max_frames=tw.MAX_FRAMES,
        size_multiple=width, min_size=min(height, width), max_size=max(height, width),
        default_steps=tw.DEFAULT_STEPS, default_guidance=tw.DEFAULT_GUIDANCE,
        default_fps=float(tw.FPS), default_size=(width, height),
        max_prompt_words=tw.MAX_PROMPT_WORDS, default_context=tw.DEFAULT_CONTEXT),
        ("TinyWorldPipeline",))


_register_bundled()


@dataclass
class ModelInfo:
    name: str
    path: Path
    pipeline_class: str
    family: str | None
    bundled: bool = False
    capabilities: Capabilities | None = None   # read from the folder's own files
    problem: str = ""                          # why it cannot be used (a bad sora_model.json ...)

    def to_dict(self) -> dict:
        caps = self.capabilities
        return {"name": self.name, "path": str(self.path), "pipeline": self.pipeline_class,
                "family": self.family, "bundled": self.bundled,
                "capabilities": caps.to_dict() if caps else None, "problem": self.problem}


def model_roots(extra_roots=()) -> list[Path]:
    roots = [Path(r).expanduser() for r in extra_roots if r]
    roots += [Path(r).expanduser() for r in os.environ.get("SORA_MODELS", "").split(os.pathsep) if r]
    return roots


def read_model_index(model_dir: str | Path) -> dict:
    """A folder's ``model_index.json`` as a dict, or a SoraError saying what is wrong with it.

    The one reader of the index (hosts listing models and the worker loading one)."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise SoraError("not_found", f"model folder not found: {model_dir}", field="model")
    index = model_dir / "model_index.json"
    if not index.is_file():
        from .backends.loading import PICKLE_EXTS   # a plain tuple: no torch is imported

        if any(p.suffix.lower() in PICKLE_EXTS for p in model_dir.rglob("*") if p.is_file()):
            raise SoraError("invalid_input", f"{model_dir} holds pickle weights and no model_index.json; "
                            "sora loads diffusers folders with safetensors weights only", field="model",
                            hint="convert the model to a diffusers folder with safetensors weights")
        raise SoraError("not_found", f"{model_dir} is not a model folder (no model_index.json)",
                        field="model", hint="point at a diffusers pipeline folder saved with save_pretrained")
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SoraError("invalid_input", f"{index} is not valid JSON: {exc}", field="model") from None
    if not isinstance(data, dict):
        raise SoraError("invalid_input", f"{index} holds a JSON {type(data).__name__}, not an object "
                        "naming the pipeline and its components", field="model")
    if not isinstance(data.get("_class_name", ""), str):
        raise SoraError("invalid_input", f"{index}: _class_name must be a pipeline class name (a string), "
                        f"got {json.dumps(data['_class_name'])[:80]}", field="model")
    return data


def inspect_model(path: str | Path, name: str | None = None, bundled: bool = False,
                  strict: bool = True) -> ModelInfo:
    """What a model folder holds and its rules, from its JSON files. ``strict=False`` keeps a
    folder whose rules cannot be read (listing), with the reason in ``problem``."""
    path = Path(path)
    index = read_model_index(path)
    info = ModelInfo(name or path.name, path, index.get("_class_name", ""), family_of(index), bundled)
    try:
        info.capabilities = read_capabilities(path, index)
    except SoraError as exc:
        if strict:
            raise
        info.problem = exc.message
    return info


def list_models(extra_roots=(), warnings: list[str] | None = None) -> list[ModelInfo]:
    """The bundled models that are present, then every model folder under the roots; a folder
    whose index is broken is left out, with one line saying why added to ``warnings``."""
    found = [inspect_model(p, n, bundled=True, strict=False) for n, p in BUNDLED.items()
             if (p / "model_index.json").is_file()]
    for root in model_roots(extra_roots):
        candidates = [root] + (sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else [])
        for folder in candidates:
            if (folder / "model_index.json").is_file():
                try:
                    found.append(inspect_model(folder, strict=False))
                except SoraError as err:
                    if warnings is not None:
                        warnings.append(f"{folder}: skipped: {err.message}")
    return found


def resolve_model(ref: str, extra_roots=()) -> ModelInfo:
    """A model by bundled name, folder name under a root, or path; not found names the choices."""
    if ref in BUNDLED and (BUNDLED[ref] / "model_index.json").is_file():
        return inspect_model(BUNDLED[ref], ref, bundled=True)
    path = Path(ref).expanduser()
    if path.is_absolute() or os.sep in ref or ref.startswith("."):
        if not path.exists():
            raise SoraError("not_found", f"model folder not found: {path}")
        return inspect_model(path)
    for root in model_roots(extra_roots):
        if (root / ref / "model_index.json").is_file():
            return inspect_model(root / ref)
    names = [m.name for m in list_models(extra_roots)]
    raise SoraError("not_found", f"model {ref!r} not found; available: {', '.join(names) or 'none'}",
                    hint="add a models folder with --models-dir or SORA_MODELS, or give a path")
