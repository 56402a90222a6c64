"""One-file components over a base folder: a transformer or VAE from a ``.safetensors`` or ``.gguf``,
and LTX-2's latent upsampler from its original ``.safetensors``.

The base folder gives every config (``local_files_only``, never a hub); the file gives weights
only. Keys in the original Wan/LTX or ComfyUI (``model.diffusion_model.``) layout are converted by
diffusers' own single-file mapping functions; GGUF files load through diffusers' GGUF quantizer.
Files are opened as safetensors or GGUF only (no pickle, nothing executed), and the file's tensors
are checked against the shapes the base's config builds before any weight is placed.

Memory: a float8 (``float8_e4m3fn``/``e5m2``) file is upcast tensor by tensor to the compute
dtype as it is read, so the loaded model takes what a bf16/fp16 (or fp32) one does while the file
is half that size on disk; ComfyUI "fp8_scaled" files (a ``scaled_fp8`` marker and per-layer
``scale_weight``) are multiplied out on the way.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .. import model_files
from ..errors import SoraError
from ..model_scan import describe_shapes
from . import loading

log = logging.getLogger("sora.backends")

COMFY_PREFIX = "model.diffusion_model."
SCALE_KEYS = (".scale_weight", ".scale_input")        # ComfyUI fp8_scaled
TELLING = ("patch_embedding.weight", "proj_in.weight")
UNSUPPORTED_QUANT = (".comfy_quant", ".weight_scale", ".weight_scale_2", ".input_scale")


def load_overrides(index: dict, model_dir: Path, given: dict[str, str], dtype,
                   keep_fp32: tuple[str, ...] = ()) -> dict:
    """{component name: loaded module} for each one-file override in ``given``."""
    return {name: load_component(index, model_dir, name, path,
                                 _torch_float32() if name in keep_fp32 else dtype)
            for name, path in given.items()}


def load_component(index: dict, model_dir: Path, name: str, path: str, dtype):
    """The base's ``name`` component built from its config, weights from the file at ``path``."""
    field = f"components.{name}"
    entry = index.get(name)
    if not isinstance(entry, list) or len(entry) != 2 or entry[1] is None:
        raise SoraError("invalid_input", f"{field}: the base {model_dir} has no {name} to replace",
                        field=field)
    cls = loading.pipeline_class(entry[1])
    mapping = _mapping(cls, field)
    path = str(Path(path).expanduser())
    model_files.check_kind(path, field, (model_files.SAFETENSORS, model_files.GGUF))
    config = cls.load_config(str(model_dir), subfolder=name, local_files_only=True)
    expected = _expected_shapes(cls, config)
    gguf = path.lower().endswith(model_files.GGUF)
    header = model_files.check_header(path, field)   # before any tensor is read: sizes inside the file
    with loading.map_oom(), loading.quiet():
        state = _read_gguf(path, field) if gguf else _read_safetensors(path, field, dtype)
        state = _to_diffusers_keys(state, expected, mapping, config)
        check_fits(state, expected, path, f"{model_dir.name}/{name}", field,
                   header.metadata.get("general.architecture", ""))
        try:
            if gguf:
                from diffusers import GGUFQuantizationConfig

                return cls.from_single_file(state, config=str(model_dir), subfolder=name,
                                            local_files_only=True, torch_dtype=dtype,
                                            quantization_config=GGUFQuantizationConfig(compute_dtype=dtype))
            return _load_like_pretrained(cls, config, state, dtype)
        except (ValueError, KeyError, RuntimeError, OSError) as exc:
            if loading.is_oom(exc):
                raise
            raise SoraError("invalid_input", f"{field}: cannot load {path}: "
                            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                            field=field) from exc


def _torch_float32():
    import torch
    return torch.float32


def _mapping(cls, field: str):
    from diffusers.loaders.single_file_model import (SINGLE_FILE_LOADABLE_CLASSES,
                                                     _get_single_file_loadable_mapping_class)

    mapped = _get_single_file_loadable_mapping_class(cls)
    if mapped is None:
        raise SoraError("invalid_input", f"{field}: diffusers cannot load a {cls.__name__} from one file",
                        field=field)
    return SINGLE_FILE_LOADABLE_CLASSES[mapped]["checkpoint_mapping_fn"]


def _empty(cls, config):
    """The model on the meta device (no memory, no weights)."""
    from accelerate import init_empty_weights

    with loading.quiet(), init_empty_weights():
        return cls.from_config(config)


def _expected_shapes(cls, config) -> dict[str, tuple[int, ...]]:
    """Tensor shapes the base's config builds."""
    return {k: tuple(v.shape) for k, v in _empty(cls, config).state_dict().items()}


def _read_safetensors(path: str, field: str, dtype) -> dict:
    """Tensors as stored; float8 ones upcast to ``dtype`` (ComfyUI fp8_scaled multiplied out) one
    at a time, so memory never holds more than the upcast model and one tensor in float32."""
    import torch
    from safetensors import safe_open

    fp8 = tuple(getattr(torch, n) for n in ("float8_e4m3fn", "float8_e5m2") if hasattr(torch, n))
    try:
        handle = safe_open(path, framework="pt", device="cpu")
    except Exception as exc:    # safetensors raises its own error types
        raise SoraError("invalid_input", f"{field}: {path} is not a safetensors file ({exc})",
                        field=field) from None
    with handle as f:
        keys = list(f.keys())
        odd = [k for k in keys if k.endswith(UNSUPPORTED_QUANT)]
        if odd:
            raise SoraError("invalid_input", f"{field}: {path} uses a quantization sora cannot apply "
                            f"(keys such as {', '.join(odd[:3])}); only plain fp32/fp16/bf16/fp8 and "
                            "ComfyUI fp8_scaled safetensors are read", field=field,
                            hint="use an fp16/bf16/fp8 or GGUF file of the model")
        scaled = "scaled_fp8" in keys or any(k.endswith(".scale_weight") for k in keys)
        state = {}
        for key in keys:
            if key == "scaled_fp8" or key.endswith(SCALE_KEYS):
                continue
            tensor = f.get_tensor(key)
            if scaled and f"{key[:-len('.weight')]}.scale_weight" in keys and key.endswith(".weight"):
                scale = f.get_tensor(f"{key[:-len('.weight')]}.scale_weight").float()
                if scale.numel() != 1 and scale.shape[0] != tensor.shape[0]:
                    raise SoraError("invalid_input", f"{field}: {path}: {key} has a scale of shape "
                                    f"{list(scale.shape)} that sora cannot apply", field=field)
                scale = scale.reshape(-1, *([1] * (tensor.ndim - 1))) if scale.numel() != 1 else scale
                tensor = (tensor.float() * scale).to(dtype)
            elif tensor.dtype in fp8:
                tensor = tensor.to(dtype)
            else:   # its own allocation: a view into the memory map keeps the file's alignment,
                tensor = tensor.clone()     # which changes CPU matmul rounding in the last bit
            state[key] = tensor
    return state


def _read_gguf(path: str, field: str) -> dict:
    """GGUF tensors through diffusers' reader (quantized ones stay packed as GGUFParameter)."""
    from diffusers.models.model_loading_utils import load_gguf_checkpoint

    try:
        return load_gguf_checkpoint(path)
    except ImportError as exc:
        raise SoraError("invalid_input", f"{field}: loading {path} needs the gguf package",
                        field=field, hint="pip install gguf (part of sora's worker extra)") from exc
    except (ValueError, OSError) as exc:
        raise SoraError("invalid_input", f"{field}: cannot read {path}: {str(exc).splitlines()[0]}",
                        field=field) from None


def _to_diffusers_keys(state: dict, expected: dict, mapping, config: dict) -> dict:
    """Diffusers keys: kept when they already are, else diffusers' mapping for the class."""
    if set(state) == set(expected):
        return state
    stripped = {k[len(COMFY_PREFIX):] if k.startswith(COMFY_PREFIX) else k: v for k, v in state.items()}
    if set(stripped) == set(expected):
        return stripped
    return mapping(checkpoint=state, config=config)


def shape_of(tensor) -> tuple[int, ...]:
    """The logical shape (a GGUF tensor's packed bytes give another)."""
    return tuple(getattr(tensor, "quant_shape", None) or tensor.shape)


def check_fits(state: dict, expected: dict, path: str, base: str, field: str, declared: str = "") -> None:
    """The file's tensors are exactly the base's, shape for shape; else a clear error (exit 2)
    naming both (and the architecture a GGUF's metadata declares)."""
    got = {k: shape_of(v) for k, v in state.items()}
    wrong = sorted((k for k in expected if k in got and got[k] != expected[k]),
                   key=lambda k: k not in TELLING)      # the input projection says most
    missing = [k for k in expected if k not in got]
    extra = [k for k in got if k not in expected]
    if not (wrong or missing or extra):
        return
    declared = f", declared architecture {declared!r}" if declared else ""
    what = (f"{path} ({describe_shapes(got)}{declared}) does not fit the base {base} "
            f"({describe_shapes(expected)})")
    if wrong:
        k = wrong[0]
        detail = (f"{k} is {list(got[k])} in the file, {list(expected[k])} in the base"
                  + (f" ({len(wrong)} tensors differ)" if len(wrong) > 1 else ""))
    elif missing:
        detail = f"the file lacks {len(missing)} of the base's tensors, e.g. {', '.join(missing[:3])}"
    else:
        detail = f"the file has {len(extra)} tensors the base lacks, e.g. {', '.join(extra[:3])}"
    raise SoraError("invalid_input", f"{field}: {what}: {detail}", field=field,
                    hint="pair the file with a base folder of the same model and size "
                         "(`sora models --models-dir` shows which bases each file fits)")


def _load_like_pretrained(cls, config, state: dict, dtype):
    """Weights placed as ``from_pretrained`` places them (diffusers' own loader): ``dtype``, but
    the class's ``_keep_in_fp32_modules`` in float32."""
    import torch
    from diffusers.models.model_loading_utils import load_model_dict_into_meta

    model = _empty(cls, config)
    keep = cls._keep_in_fp32_modules or []
    load_model_dict_into_meta(model, state, dtype=dtype, device_map={"": torch.device("cpu")},
                              keep_in_fp32_modules=[keep] if isinstance(keep, str) else list(keep))
    return model.eval()


def load_upsampler_file(path: str, dtype, field: str = "components.upsampler"):
    """LTX-2's latent upsampler from its original single file: built from the config in the file's
    metadata (``upsampler_rules.read_config``); ltx-core's tensor names are diffusers' own, so the
    file must fill the model exactly (the fixed blur kernel of a rational resampler may be left out)."""
    from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel

    from ..upsampler_rules import read_config

    config = {k: v for k, v in read_config(Path(path), field).items() if not k.startswith("_")}
    with loading.map_oom(), loading.quiet():
        state = _read_safetensors(path, field, dtype)
        model = LTX2LatentUpsamplerModel.from_config(config)
        wanted = set(model.state_dict())
        rebuilt = {k for k in wanted if k.endswith(".blur_down.kernel")}    # a fixed blur the model makes
        missing, extra = sorted(wanted - rebuilt - set(state)), sorted(set(state) - wanted)
        if missing or extra:
            raise SoraError("invalid_input", f"{field}: {path} does not fit the upsampler its config "
                            f"describes (missing {', '.join(missing[:3]) or 'nothing'}; unexpected "
                            f"{', '.join(extra[:3]) or 'nothing'})", field=field)
        try:
            model.load_state_dict(state, strict=False)
        except RuntimeError as exc:
            raise SoraError("invalid_input", f"{field}: {path} does not fit the upsampler its config "
                            f"describes: {str(exc).splitlines()[-1].strip()}", field=field) from None
    return model.to(dtype).eval()


def identity(given: dict[str, str]) -> dict:
    """What the manifest records of the override files (path and a header hash)."""
    return {name: model_files.file_identity(path) for name, path in given.items()}
