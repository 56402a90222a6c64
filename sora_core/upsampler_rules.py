"""Where an LTX-2 model's latent upsampler is, and what it says it does. Light half (JSON and the
safetensors header only; no weights read, nothing executed).

An upsampler comes in the layouts the hub ships, looked for inside the model folder: a diffusers
model folder (``config.json`` + weights) as ``latent_upsampler/`` (Lightricks/LTX-2, diffusers'
conversion script) or ``spatial_upsampler/`` (fal's packs, older key names), an
``LTX2LatentUpsamplePipeline`` folder under any of those names, or the original single file
(``ltx-2-spatial-upscaler-x2-1.0.safetensors``, its config in the file's metadata as ltx-core and
ComfyUI read it) alone in one of those folders. A shot may also name that file itself
(``components.upsampler``, ``--upsampler``), e.g. from a ComfyUI ``latent_upscale_models/``.

Every config is read as diffusers 0.42's ``LTX2LatentUpsamplerModel`` names its arguments.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from .errors import SoraError, invalid

UPSAMPLER_DIRS = ("latent_upsampler", "spatial_upsampler", "upsample_pipeline")
UPSAMPLER_CLASS = "LTX2LatentUpsamplerModel"
UPSAMPLE_PIPELINE = "LTX2LatentUpsamplePipeline"
# ltx-core's (and fal's older config) names -> diffusers 0.42's
LEGACY_KEYS = {"rational_resampler": "use_rational_resampler", "spatial_scale": "rational_spatial_scale"}
# what ltx-core builds when the file's config leaves a key out (not diffusers' defaults)
ORIGINAL_DEFAULTS = {"in_channels": 128, "mid_channels": 512, "num_blocks_per_stage": 4, "dims": 3,
                     "spatial_upsample": True, "temporal_upsample": False,
                     "rational_spatial_scale": 2.0, "use_rational_resampler": False}
TELLING_TENSORS = ("initial_conv.weight", "final_conv.weight")


def _read_json(path: Path) -> dict:
    from .model_rules import read_json
    return read_json(path)


def _inside(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root)


def _single_file(folder: Path) -> Path | None:
    files = sorted(p for p in folder.glob("*.safetensors") if p.is_file())
    return files[0] if len(files) == 1 else None


def find_upsampler(model_dir: Path) -> Path | None:
    """The upsampler's diffusers folder or original file inside ``model_dir`` (None: none). A
    link leading out of the model folder is not followed."""
    root = model_dir.resolve()
    for name in UPSAMPLER_DIRS:
        folder = model_dir / name
        if not folder.is_dir() or not _inside(folder, root):
            continue
        if (folder / "config.json").is_file():
            return folder
        inner = folder / "latent_upsampler"
        if _read_json(folder / "model_index.json").get("_class_name") == UPSAMPLE_PIPELINE \
                and (inner / "config.json").is_file() and _inside(inner, root):
            return inner
        single = _single_file(folder)
        if single is not None and _inside(single, root):
            return single
    return None


def read_config(path: Path, field: str = "model") -> dict:
    """The upsampler's config (a folder's ``config.json`` or a file's metadata) in diffusers'
    names, with ``_class_name`` set for an original file that is an upsampler."""
    if path.is_dir():
        config = _read_json(path / "config.json")
        for old, new in LEGACY_KEYS.items():
            if old in config and new not in config:
                config[new] = config.pop(old)
        return config
    from .model_files import check_header

    header = check_header(path, field)
    if not all(name in header.tensors for name in TELLING_TENSORS):
        raise SoraError("invalid_input", f"{field}: {path} is not a latent upsampler (it has no "
                        f"{' or '.join(TELLING_TENSORS)}: {_what(header)})", field=field)
    try:
        original = json.loads(header.metadata.get("config", "{}"))
    except ValueError:
        original = None
    if isinstance(original, dict) and isinstance(original.get("upsampler"), dict):
        original = original["upsampler"]
    if not isinstance(original, dict):
        raise SoraError("invalid_input", f"{field}: {path}: its metadata 'config' is not a JSON object",
                        field=field)
    config = dict(ORIGINAL_DEFAULTS)
    for key, value in original.items():
        name = LEGACY_KEYS.get(key, key)
        if name in ORIGINAL_DEFAULTS:
            config[name] = value
    config["_class_name"] = UPSAMPLER_CLASS
    return config


def _what(header) -> str:
    from .model_scan import describe_shapes
    return describe_shapes(header.shapes())


def spatial_scale(config: dict) -> tuple[int, str]:
    """(the whole spatial scale the upsampler makes: 2, 4; why not, where it is 0): sora runs
    spatial upsamplers of a whole scale, not another class, a temporal one or a scale like 1.5."""
    if config.get("_class_name") != UPSAMPLER_CLASS:
        return 0, f"it names {config.get('_class_name')!r}, not {UPSAMPLER_CLASS}"
    scale = config.get("rational_spatial_scale", 2.0) if config.get("use_rational_resampler", True) else 2.0
    if (not config.get("spatial_upsample", True) or config.get("temporal_upsample", False)
            or not isinstance(scale, (int, float)) or scale < 2 or not float(scale).is_integer()):
        return 0, "sora runs a spatial upsampler of a whole scale (2, 4), not this one"
    return int(scale), ""


def folder_scale(model_dir: Path, notes: list[str]) -> int:
    """The scale of the upsampler inside ``model_dir`` (0: none, or unusable with a note)."""
    path = find_upsampler(model_dir)
    if path is None:
        return 0
    where = path.relative_to(model_dir).as_posix() + ("/config.json" if path.is_dir() else "")
    try:
        scale, why = spatial_scale(read_config(path))
    except SoraError as err:
        scale, why = 0, err.message
    if why:
        notes.append(f"{where}: {why}: one stage only")
    return scale


def file_scale(path: str, field: str = "components.upsampler") -> int:
    """The scale of an upsampler file a shot names; one sora cannot use is refused (exit 2)."""
    scale, why = spatial_scale(read_config(Path(path).expanduser(), field))
    if why:
        raise SoraError("invalid_input", f"{field}: {path}: {why}", field=field,
                        hint="use a spatial x2 (or x4) upscaler, e.g. ltx-2-spatial-upscaler-x2-1.0.safetensors")
    return scale


def with_file(caps, path: str | None, model: str = "the model"):
    """``caps`` with the scale of the upsampler file a shot names (no file: ``caps`` as they are),
    so every host previews the two stages the worker will make."""
    if not path:
        return caps
    if caps.family != "ltx2":
        raise invalid("components.upsampler", f"a latent upsampler is for LTX-2 models; {model} is a "
                      f"{caps.family} model", hint="drop the upsampler file, or choose an LTX-2 base model")
    return dataclasses.replace(caps, upsampler=file_scale(path),
                               notes=tuple(n for n in caps.notes if "one stage only" not in n))
