"""Fast presets: the steps and guidance a model or a step-distillation LoRA is made for.

A distilled checkpoint or a lightx2v/CausVid-style LoRA wants 4-8 steps at guidance 1, not the
base model's 30-50 at 5. Presets are named in the model folder's ``sora_model.json`` (key
``presets``) or in a LoRA's sidecar ``NAME.sora.json`` beside ``NAME.safetensors``::

    {"presets": {"lightx2v-4step": {"steps": 4, "guidance": 1.0,
                                    "description": "Wan 2.1 T2V with the lightx2v LoRA"}}}

A shot's ``preset`` (CLI ``--preset``, the panel's Preset field) picks one by name; its values fill
in what the shot leaves unset (a shot's own steps or guidance win), and the manifest's ``preset``
records which ran and where it came from. Light half (standard library).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from .errors import SoraError, invalid

SIDECAR_SUFFIX = ".sora.json"
KEYS = {"steps": (int, 1, 1000), "guidance": (float, 0.0, 50.0), "guidance_2": (float, 0.0, 50.0)}


@dataclass(frozen=True)
class Preset:
    name: str
    source: str                         # the file that names it
    steps: int | None = None
    guidance: float | None = None
    guidance_2: float | None = None
    description: str = ""

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}


def _bad(path, key: str, why: str) -> SoraError:
    return SoraError("invalid_input", f"{path}: {key} {why}", field="preset",
                     hint="fix the file (docs/models.md: fast presets)")


def parse(value, path) -> dict[str, Preset]:
    """``{name: {steps, guidance, guidance_2, description}}`` checked: unknown keys, wrong types
    and out-of-range values are refused with the file and the key named (exit 2)."""
    if not isinstance(value, dict):
        raise _bad(path, "presets", "must be an object of {name: {steps, guidance, ...}}")
    out = {}
    for name, entry in value.items():
        if not name.strip() or not isinstance(entry, dict):
            raise _bad(path, f"presets.{name}", "must be an object with steps and/or guidance")
        values = {}
        for key, v in entry.items():
            if key == "description":
                if not isinstance(v, str):
                    raise _bad(path, f"presets.{name}.description", "must be a string")
                values[key] = v
                continue
            if key not in KEYS:
                raise _bad(path, f"presets.{name}.{key}", f"is not a preset key; use: {', '.join(KEYS)}, description")
            kind, low, high = KEYS[key]
            number = isinstance(v, (int, float)) and not isinstance(v, bool)
            if not number or (kind is int and not float(v).is_integer()) or not low <= v <= high:
                raise _bad(path, f"presets.{name}.{key}", f"must be {'an integer' if kind is int else 'a number'} "
                           f"from {low} to {high}, got {json.dumps(v)}")
            values[key] = kind(v)
        out[name] = Preset(name=name, source=str(path), **values)
    return out


def sidecar(lora_path: str | Path) -> Path:
    """``NAME.sora.json`` beside ``NAME.safetensors``."""
    path = Path(lora_path).expanduser()
    return path.with_name(path.stem + SIDECAR_SUFFIX)


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise _bad(path, "file", f"is not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise _bad(path, "file", "must be a JSON object")
    return data


def offered(model_dir: str | Path | None, loras=()) -> dict[str, Preset]:
    """Every preset the model folder and the shot's LoRAs name (a LoRA's over the model's)."""
    from .model_rules import RULES_FILE

    found = {}
    if model_dir is not None and Path(model_dir).is_dir():
        path = Path(model_dir) / RULES_FILE
        found.update(parse(_read(path).get("presets", {}), path))
    for lora in loras:
        path = sidecar(lora.path)
        data = _read(path)
        extra = set(data) - {"presets"}
        if extra:
            raise _bad(path, sorted(extra)[0], "is not a sidecar key; a LoRA sidecar names presets only")
        found.update(parse(data.get("presets", {}), path))
    return found


def resolve(spec, model_dir: str | Path | None) -> Preset | None:
    """The preset the shot names (None when it names none); an unknown name is an error."""
    if spec.preset is None:
        return None
    found = offered(model_dir, spec.loras)
    if spec.preset not in found:
        offers = f"it offers: {', '.join(sorted(found))}" if found else "they name no presets"
        raise invalid("preset", f"{spec.preset!r} is not a preset of this model or its LoRAs; {offers}",
                      hint="presets live in sora_model.json or a LoRA's NAME.sora.json (docs/models.md)")
    return found[spec.preset]
