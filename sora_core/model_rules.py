"""A model's rules read from its own files: frame rule, size multiple, defaults, overrides.

Light half (standard library): only the folder's JSON is read, so a host lists models and plans
shots without torch. The capabilities of a folder are built in four layers, each over the last:

1. the family's documented defaults (``capabilities.FAMILIES``, by the pipeline class);
2. the known model it is (``KNOWN_MODELS``: fps, frames a pass, size, steps, guidance);
3. what its configs say: frames ``(t*pt)k+1`` from the VAE's temporal compression ``t`` and the
   transformer's temporal patch ``pt``; sizes a multiple of the VAE's spatial compression times
   the transformer's patch (Wan 2.1 8*2 = 16, Wan 2.2 TI2V-5B 16*2 = 32, LTX 32*1 = 32);
4. ``sora_model.json`` beside the weights, where a user overrides any rule (validated).

An LTX-2 folder may hold its latent upsampler (``upsampler_rules``, in the layouts the hub
ships): its config gives the scale of the two-stage path (``Capabilities.upsampler``).

A rule the configs do not give keeps the family default and says so in ``Capabilities.notes``
(the planner shows the notes with every shot's notices).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from .capabilities import FAMILIES, PIPELINE_FAMILIES, Capabilities
from .errors import SoraError
from .presets import parse as parse_presets
from .upsampler_rules import folder_scale

RULES_FILE = "sora_model.json"
# Known models: what their makers recommend, keyed by the variant :func:`variant_of` recognises.
KNOWN_MODELS: dict[str, dict] = {
    "wan2.1": dict(default_fps=16.0, max_frames=81, default_size=(832, 480)),
    "wan2.2-a14b": dict(default_fps=16.0, max_frames=81, default_size=(1280, 720), default_steps=40,
                        default_guidance=4.0, default_guidance_2=3.0, experts=2),
    "wan2.2-ti2v-5b": dict(default_fps=24.0, max_frames=121, default_size=(1280, 704), default_steps=50,
                           default_guidance=5.0),
    "ltx-video": dict(default_fps=24.0, max_frames=257, default_size=(704, 480)),
    "ltx-2": dict(default_fps=24.0, default_size=(768, 512), default_steps=30, default_guidance=3.0),
}

# What sora_model.json may set, with the type each key takes (see docs/models.md).
OVERRIDABLE: dict[str, type] = {
    "modes": list, "frame_multiple": int, "frame_offset": int, "min_frames": int, "max_frames": int,
    "size_multiple": int, "min_size": int, "max_size": int, "default_steps": int,
    "default_guidance": float, "default_guidance_2": float, "default_fps": float,
    "default_size": list, "max_prompt_words": int, "default_context": int,
}


def read_json(path: Path) -> dict:
    """A config file as a dict; {} when it is missing, a SoraError when it is not JSON."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SoraError("invalid_input", f"{path} is not valid JSON: {exc}", field="model") from None
    if not isinstance(data, dict):
        raise SoraError("invalid_input", f"{path} holds a JSON {type(data).__name__}, not an object",
                        field="model")
    return data


def _component(index: dict, name: str) -> bool:
    value = index.get(name)
    return isinstance(value, list) and len(value) == 2 and value[1] is not None


def family_of(index: dict) -> str | None:
    """The family a folder's ``model_index.json`` belongs to (None: no backend serves it)."""
    name = index.get("_class_name", "")
    family = PIPELINE_FAMILIES.get(name)
    if family in ("wan-t2v", "wan-i2v") and index.get("expand_timesteps"):
        return "wan-ti2v"       # Wan 2.2 TI2V-5B: one transformer for text and image to video
    return family


def variant_of(family: str, index: dict) -> str:
    """The known model a folder is, from its index (two experts, expanded timesteps, class)."""
    if family.startswith("wan"):
        if family == "wan-ti2v":
            return "wan2.2-ti2v-5b"
        if _component(index, "transformer_2") or index.get("boundary_ratio") is not None:
            return "wan2.2-a14b"
        return "wan2.1"
    if family.startswith("ltx2"):
        return "ltx-2"
    if family == "ltx":
        return "ltx-video"
    return ""


def compression(vae: dict) -> tuple[int | None, int | None]:
    """(temporal, spatial) compression of a Wan or LTX VAE config; None where it says nothing."""
    temporal, spatial = vae.get("scale_factor_temporal"), vae.get("scale_factor_spatial")       # Wan
    if temporal is None and isinstance(vae.get("temperal_downsample"), list):
        temporal = 2 ** sum(bool(d) for d in vae["temperal_downsample"])
        spatial = spatial or 2 ** len(vae["temperal_downsample"])
    temporal = temporal or vae.get("temporal_compression_ratio")                                # LTX
    spatial = spatial or vae.get("spatial_compression_ratio")
    scaling = vae.get("spatio_temporal_scaling")
    if isinstance(scaling, list):
        scale = 2 ** sum(bool(s) for s in scaling)
        temporal = temporal or int(vae.get("patch_size_t", 1)) * scale
        spatial = spatial or int(vae.get("patch_size", 1)) * scale
    return (int(temporal) if temporal else None), (int(spatial) if spatial else None)


def patch(transformer: dict) -> tuple[int | None, int | None]:
    """(temporal, spatial) patch size of a transformer config (Wan ``[t, h, w]``, LTX ints)."""
    size = transformer.get("patch_size")
    if isinstance(size, list) and len(size) == 3:
        return int(size[0]), int(max(size[1], size[2]))
    if isinstance(size, int):
        return int(transformer.get("patch_size_t", 1) or 1), size
    return None, None


def read_capabilities(model_dir: str | Path, index: dict) -> Capabilities | None:
    """The capabilities of the model in ``model_dir`` (None: no backend serves its pipeline)."""
    model_dir = Path(model_dir)
    family = family_of(index)
    if family is None or family not in FAMILIES:
        return None
    base = FAMILIES[family]
    variant = variant_of(family, index)
    if not variant:                 # a bundled or plugin family declares its own rules
        return _overridden(base, model_dir)
    values = dict(KNOWN_MODELS.get(variant, {}), variant=variant)
    if variant == "wan2.2-a14b":    # WanVideoToVideoPipeline has one transformer: no restyle
        values["modes"] = tuple(m for m in base.modes if m != "restyle")
    notes: list[str] = []
    temporal, spatial = compression(read_json(model_dir / "vae" / "config.json"))
    patch_t, patch_s = patch(read_json(model_dir / "transformer" / "config.json"))
    if temporal:
        values.update(frame_multiple=temporal * (patch_t or 1), frame_offset=1)
    else:
        notes.append(f"frame rule {base.frame_rule()} is the {family} default (vae/config.json names "
                     "no temporal compression)")
    if spatial and patch_s:
        values["size_multiple"] = spatial * patch_s
    else:
        notes.append(f"size multiple {base.size_multiple} is the {family} default "
                     f"({'transformer' if spatial else 'vae'}/config.json names no "
                     f"{'patch size' if spatial else 'spatial compression'})")
    if family.startswith("ltx2"):
        _ltx2_rules(values, read_json(model_dir / "transformer" / "config.json"), base)
    if family == "ltx2":
        values["upsampler"] = folder_scale(model_dir, notes)
    multiple = values.get("frame_multiple", base.frame_multiple)
    offset = values.get("frame_offset", base.frame_offset)
    values["min_frames"] = multiple + offset if multiple > 1 else base.min_frames
    values["max_frames"] = _fit_down(values.get("max_frames", base.max_frames), multiple, offset)
    step = values.get("size_multiple", base.size_multiple)
    values["min_size"] = -(-base.min_size // step) * step      # the family's smallest, rounded up
    values["max_size"] = _fit_down(values.get("max_size", base.max_size), step, 0)
    values["default_size"] = tuple(max(step, _fit_down(v, step, 0)) for v in values.get(
        "default_size", base.default_size))
    values["default_context"] = min(base.default_context, values["max_frames"] - 1)
    values["notes"] = tuple(notes)
    return _overridden(dataclasses.replace(base, **values), model_dir)


def _ltx2_rules(values: dict, transformer: dict, base: Capabilities) -> None:
    """LTX-2 positions its tokens in seconds up to ``pos_embed_max_pos``: a pass is at most that
    many seconds; its sizes reach ``base_width``/``base_height``."""
    fps = values.get("default_fps", base.default_fps)
    seconds = transformer.get("pos_embed_max_pos")
    if isinstance(seconds, (int, float)) and seconds > 0:
        values["max_frames"] = int(seconds * fps) + 1
    side = [transformer.get(k) for k in ("base_width", "base_height")]
    if all(isinstance(v, int) and v > 0 for v in side):
        values["max_size"] = max(side)


def _fit_down(value: int, multiple: int, offset: int) -> int:
    """The largest ``multiple * k + offset`` not above ``value``."""
    if multiple <= 1:
        return int(value)
    return max(multiple + offset if offset else multiple, (int(value) - offset) // multiple * multiple + offset)


def _overridden(caps: Capabilities, model_dir: Path) -> Capabilities:
    """``caps`` with the user's ``sora_model.json`` applied, checked as a whole."""
    path = model_dir / RULES_FILE
    data = read_json(path)
    if not data:
        return caps
    values = {}
    for key, value in data.items():
        if key == "presets":            # named steps/guidance, not a rule (presets.py)
            parse_presets(value, path)
            continue
        values[key] = _override_value(path, key, value, caps)
    result = dataclasses.replace(caps, **values)
    _check_overridden(path, result)
    names = ", ".join(f"{k}={json.dumps(data[k])}" for k in data if k != "presets")
    if not names:
        return result
    return dataclasses.replace(result, notes=result.notes + (f"{RULES_FILE} sets {names}",))


def _bad(path: Path, key: str, why: str) -> SoraError:
    return SoraError("invalid_input", f"{path}: {key} {why}", field="model",
                     hint=f"fix or remove {RULES_FILE} (docs/models.md lists what it may set)")


def _override_value(path: Path, key: str, value, caps: Capabilities):
    kind = OVERRIDABLE.get(key)
    if kind is None:
        raise _bad(path, key, f"is not a rule sora knows; it may set: {', '.join(OVERRIDABLE)}")
    if key == "modes":
        if (not isinstance(value, list) or not value or not all(isinstance(m, str) for m in value)):
            raise _bad(path, key, "must be a non-empty list of mode names")
        family_modes = FAMILIES[caps.family].modes
        extra = [m for m in value if m not in family_modes]
        if extra:
            raise _bad(path, key, f"names {', '.join(extra)}, which {caps.family} models cannot do; "
                       f"they can: {', '.join(family_modes)}")
        return tuple(dict.fromkeys(value))
    if key == "default_size":
        if (not isinstance(value, list) or len(value) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)):
            raise _bad(path, key, "must be [width, height], two positive integers")
        return tuple(value)
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int and not (number and float(value).is_integer()):
        raise _bad(path, key, f"must be an integer, got {json.dumps(value)}")
    if not number:
        raise _bad(path, key, f"must be a number, got {json.dumps(value)}")
    low = 0 if key in ("frame_offset", "default_guidance", "default_guidance_2") else 1
    if value < low:
        raise _bad(path, key, f"must be at least {low}, got {json.dumps(value)}")
    return int(value) if kind is int else float(value)


def _check_overridden(path: Path, caps: Capabilities) -> None:
    """The rules must still agree with each other after the overrides."""
    if caps.frame_multiple > 1 and not 0 <= caps.frame_offset < caps.frame_multiple:
        raise _bad(path, "frame_offset", f"must be below frame_multiple ({caps.frame_multiple})")
    for key in ("min_frames", "max_frames"):
        value = getattr(caps, key)
        if not caps.valid_frames(value) and (value - caps.frame_offset) % caps.frame_multiple:
            raise _bad(path, key, f"{value} does not follow the frame rule {caps.frame_rule()}")
    if caps.min_frames > caps.max_frames:
        raise _bad(path, "min_frames", f"{caps.min_frames} is above max_frames {caps.max_frames}")
    if caps.min_size > caps.max_size:
        raise _bad(path, "min_size", f"{caps.min_size} is above max_size {caps.max_size}")
    for key, value in (("width", caps.default_size[0]), ("height", caps.default_size[1])):
        if value % caps.size_multiple or not caps.min_size <= value <= caps.max_size:
            raise _bad(path, "default_size", f"{key} {value} is not a multiple of {caps.size_multiple} "
                       f"within {caps.min_size}..{caps.max_size}")
    if caps.default_guidance_2 is not None and caps.experts < 2:
        raise _bad(path, "default_guidance_2", "applies to two-expert models (Wan 2.2 A14B) only")
