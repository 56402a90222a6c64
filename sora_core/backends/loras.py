"""LoRAs on a loaded pipeline, through diffusers' LoRA loaders (PEFT adapters).

Every key format diffusers converts is read: diffusers/PEFT, ComfyUI/kohya (``lora_down``/
``lora_up``/``alpha``, ``lora_unet_…``), Kijai (``lora_A``/``lora_B``, ``diff``, ``diff_b``). Files
are read here as safetensors (never pickle) and handed over as tensors. Adapters stay unfused:
a change of LoRAs unloads them, which gives back the base weights bit for bit (unfusing a merged
LoRA subtracts it again and does not), and a GGUF transformer cannot be merged into anyway.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import SoraError
from . import loading
from .cache import file_key

log = logging.getLogger("sora.backends")


def lora_key(loras) -> tuple:
    """What decides the adapters: each file (path, size, mtime), strength and target."""
    return tuple((file_key(l.path), float(l.strength), l.target) for l in loras)


def apply_loras(pipe, loras) -> list[dict]:
    """Unload whatever LoRAs ``pipe`` holds, then load ``loras`` at their strengths; returns what
    the manifest records of each (file identity, strength, target, modules it reached)."""
    from ..model_files import file_identity

    unload_loras(pipe)
    if not loras:
        return []
    if not hasattr(pipe, "load_lora_weights"):
        raise SoraError("invalid_input", f"loras: {type(pipe).__name__} takes no LoRAs", field="loras")
    names, weights, records = [], [], []
    for i, lora in enumerate(loras):
        field = f"loras[{i}].path"
        state = _read(lora.path, field)
        reached = 0
        for component in _targets(pipe, lora.target, field):
            name = f"sora{i}_{component}"
            reached += _load(pipe, component, name, dict(state), lora.path, field)
            names.append(name)
            weights.append(float(lora.strength))
        records.append({**file_identity(lora.path), "strength": float(lora.strength),
                        "target": lora.target, "modules": reached})
    with loading.quiet():
        pipe.set_adapters(names, weights)
    return records


def unload_loras(pipe) -> None:
    """Every adapter off the pipeline: its weights are the base's again, bit for bit."""
    if hasattr(pipe, "unload_lora_weights"):
        with loading.quiet():
            pipe.unload_lora_weights()


def _read(path: str, field: str) -> dict:
    from safetensors.torch import load_file

    from ..model_files import SAFETENSORS, check_header, check_kind

    check_kind(path, field, (SAFETENSORS,))
    check_header(path, field)               # sizes inside the file, before any tensor is read
    try:
        return load_file(str(Path(path).expanduser()))
    except Exception as exc:    # safetensors raises its own error types
        raise SoraError("invalid_input", f"{field}: {path} is not a safetensors file ({exc})",
                        field=field) from None


def _targets(pipe, target: str, field: str) -> list[str]:
    has_2 = getattr(pipe, "transformer_2", None) is not None
    if target == "transformer_2" and not has_2:
        raise SoraError("invalid_input", f"{field}: target transformer_2, but this model has one "
                        "transformer", field=field.replace(".path", ".target"))
    if target == "all":
        return ["transformer", "transformer_2"] if has_2 else ["transformer"]
    return [target]


def _load(pipe, component: str, name: str, state: dict, path: str, field: str) -> int:
    """Load one file into one transformer; a file whose keys reach nothing is an error."""
    sample = ", ".join(list(state)[:3])
    kwargs = {"load_into_transformer_2": True} if component == "transformer_2" else {}
    try:
        with loading.quiet():
            pipe.load_lora_weights(state, adapter_name=name, **kwargs)
    except (ValueError, KeyError, RuntimeError, IndexError) as exc:
        raise SoraError("invalid_input", f"{field}: {path} does not fit this model's {component} "
                        f"({str(exc).splitlines()[0][:200]}); its keys: {sample}", field=field) from None
    module = getattr(pipe, component)
    reached = sum(1 for m in module.modules() if name in getattr(m, "lora_A", {}))
    if reached == 0:
        if hasattr(pipe, "delete_adapters"):
            pipe.delete_adapters(name)
        raise SoraError("invalid_input", f"{field}: no key of {path} matches a layer of this model's "
                        f"{component}; its keys: {sample}", field=field,
                        hint="the LoRA is for another model family or size; `sora models` describes it")
    return reached
