"""Loading diffusers pipelines safely: local folders, safetensors only, no remote code.

Shared by the Wan, LTX and bundled backends: folder checks, device and dtype choice, memory
strategies, out-of-memory mapping, the model's identity hash and the step-callback adapter.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import struct
from pathlib import Path
from typing import Callable, Iterator

from ..errors import OOM_HINT, SoraError
from ..spec import MEMORY_STRATEGIES

log = logging.getLogger("sora.backends")

PICKLE_EXTS = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
SAFE_EXT = ".safetensors"


# -- the folder -------------------------------------------------------------------------------
def check_safetensors_only(model_dir: Path) -> None:
    """Refuse pickle weights, per file: a pickle file passes only beside the safetensors file the
    loader takes in its place (``diffusion_pytorch_model.bin`` and ``.safetensors``,
    ``pytorch_model.bin`` and ``model.safetensors``, shard by shard).

    Pickle files (``.bin .pt .pth .ckpt .pkl``) can run code when loaded; a decoy safetensors
    file of another name in the same folder does not make its pickle neighbour safe.
    """
    model_dir = Path(model_dir)
    unsafe = []
    for root, dirs, files in os.walk(model_dir):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        present = {name.lower() for name in files}
        for name in files:
            stem, ext = os.path.splitext(name.lower())
            if ext in PICKLE_EXTS and not _safe_twin(stem) & present:
                unsafe.append(Path(root) / name)
    if unsafe:
        names = ", ".join(str(p.relative_to(model_dir)) for p in sorted(unsafe)[:8])
        more = f" and {len(unsafe) - 8} more" if len(unsafe) > 8 else ""
        raise SoraError("invalid_input",
                        f"{model_dir} holds pickle weights with no safetensors file in their place "
                        f"({names}{more}); sora loads safetensors only, since pickle files can run "
                        "code when loaded", field="model",
                        hint="convert the weights to .safetensors (pipe.save_pretrained(..., "
                             "safe_serialization=True) in a trusted environment), get a "
                             "safetensors release of the model, or remove the pickle files")


def _safe_twin(stem: str) -> set[str]:
    """The safetensors names a loader reads instead of the pickle file ``stem`` (lower case)."""
    return {stem + SAFE_EXT, stem.replace("pytorch_model", "model") + SAFE_EXT}


TRUSTED_LIBRARIES = ("diffusers", "transformers")


def check_components(index: dict, model_dir: Path) -> None:
    """Refuse components whose code would come from outside diffusers, transformers and
    sora_core itself (a folder's own modules, i.e. remote code)."""
    for name, value in index.items():
        if name.startswith("_") or not isinstance(value, list) or len(value) != 2:
            continue
        library = value[0]
        if (library is None or library in TRUSTED_LIBRARIES or str(library).startswith("sora_core.")
                or _diffusers_pipeline_module(library)):
            continue
        raise SoraError("invalid_input", f"{model_dir}: component {name!r} needs code from "
                        f"{library!r} ({value[1]}); sora loads diffusers and transformers "
                        "components only and never runs code shipped with a model", field="model")


def _diffusers_pipeline_module(library) -> bool:
    """A component class that lives in one of diffusers' own pipeline packages (LTX-2's
    ``["ltx2", "LTX2TextConnectors"]`` means ``diffusers.pipelines.ltx2``)."""
    import importlib.util

    if not isinstance(library, str) or not library.isidentifier():
        return False
    try:
        return importlib.util.find_spec(f"diffusers.pipelines.{library}") is not None
    except (ImportError, ValueError):
        return False


def model_hash(model_dir: Path) -> str:
    """A cheap, stable identity: sha256 over model_index.json, every config/tokenizer JSON,
    and each safetensors file's relative name, size and header (tensor names, shapes,
    offsets), so no weight bytes are read."""
    model_dir = Path(model_dir)
    h = hashlib.sha256()
    files = sorted(p for p in model_dir.rglob("*") if p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(model_dir).parts))
    for p in files:
        rel = p.relative_to(model_dir).as_posix()
        if p.suffix == ".json" or p.name.endswith((".model", ".txt")):
            h.update(b"F" + rel.encode() + b"\0" + p.read_bytes())
        elif p.suffix == SAFE_EXT:
            size = p.stat().st_size
            h.update(b"S" + rel.encode() + b"\0" + str(size).encode())
            with open(p, "rb") as fh:
                head = fh.read(8)
                if len(head) == 8:
                    (n,) = struct.unpack("<Q", head)
                    if n < min(size, 100_000_000):
                        h.update(fh.read(n))
    return h.hexdigest()


GENERIC_FOLDER_NAMES = ("weights", "model", "pipeline", "diffusers")


def model_name(model_dir: Path) -> str:
    """The folder's name, or its parent's when the folder has a generic name (``tinyworld/weights``)."""
    model_dir = Path(model_dir).resolve()
    if model_dir.name.lower() in GENERIC_FOLDER_NAMES and model_dir.parent.name:
        return model_dir.parent.name
    return model_dir.name


def identity(model_dir: Path, family: str, pipeline_class: str) -> dict:
    model_dir = Path(model_dir)
    return {"name": model_name(model_dir), "family": family, "pipeline": pipeline_class,
            "path": str(model_dir.resolve()), "hash": model_hash(model_dir)}


# -- device and dtype -------------------------------------------------------------------------
def pick_device(requested: str = "auto") -> str:
    import torch

    if requested in ("", "auto", None):
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise SoraError("invalid_input", f"runtime.device: {requested} asked, but no CUDA device "
                        "is available to the worker", field="runtime.device",
                        hint="use device auto or cpu, or install a CUDA build of torch")
    if requested == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise SoraError("invalid_input", "runtime.device: mps asked, but it is not available",
                            field="runtime.device")
    return requested


def pick_dtype(requested: str, device: str):
    import torch

    table = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if requested in ("", "auto", None):
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    if requested not in table:
        raise SoraError("invalid_input", f"runtime.dtype: {requested!r} is not one of auto, "
                        f"{', '.join(table)}", field="runtime.dtype")
    return table[requested]


# -- loading ----------------------------------------------------------------------------------
def pipeline_class(name: str):
    """The diffusers class a folder names; only classes a backend knows are accepted."""
    import diffusers

    cls = getattr(diffusers, name, None)
    if cls is None:
        raise SoraError("invalid_input", f"pipeline class {name} is not part of diffusers "
                        f"{diffusers.__version__}", field="model",
                        hint="update diffusers in the worker environment")
    return cls


def load_pipeline(cls, model_dir: Path, dtype, keep_fp32: tuple[str, ...] = (), overrides=None):
    """``cls.from_pretrained`` from a local folder: safetensors only, offline, no remote code.

    ``keep_fp32`` names components loaded in float32 whatever ``dtype`` is (Wan's VAE);
    ``overrides`` ({name: loaded module}) replace the folder's own, which are then not read.
    """
    import torch

    check_safetensors_only(model_dir)
    dtypes = dtype
    if keep_fp32 and dtype != torch.float32:
        dtypes = {"default": dtype, **{name: torch.float32 for name in keep_fp32}}
    with map_oom(), quiet():
        try:
            if _is_diffusers_class(cls):
                return cls.from_pretrained(str(model_dir), dtype=dtypes, use_safetensors=True,
                                           local_files_only=True, **(overrides or {}))
            return cls.from_pretrained(str(model_dir), torch_dtype=dtype)
        except (OSError, ValueError, EnvironmentError) as exc:
            raise SoraError("invalid_input", f"cannot load the model in {model_dir}: "
                            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                            field="model") from exc


def _is_diffusers_class(cls) -> bool:
    return cls.__module__.startswith("diffusers.")


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence diffusers/transformers info chatter and progress bars while loading."""
    restore = []
    for modname in ("diffusers.utils.logging", "transformers.utils.logging"):
        try:
            mod = __import__(modname, fromlist=["get_verbosity"])
        except ImportError:     # pragma: no cover
            continue
        restore.append((mod, mod.get_verbosity()))
        mod.set_verbosity_error()
        if hasattr(mod, "disable_progress_bar"):
            mod.disable_progress_bar()
    try:
        yield
    finally:
        for mod, level in restore:
            mod.set_verbosity(level)


def place(pipe, device: str, memory: str = "none") -> str:
    """Put the pipeline on ``device`` with a memory strategy; returns the strategy applied.

    Strategies that need an accelerator (model_cpu_offload, group_offload) fall back to
    plain placement on the CPU with a logged notice, as does a strategy the pipeline
    refuses; vae_tiling works everywhere.
    """
    if memory not in MEMORY_STRATEGIES:
        raise SoraError("invalid_input", f"runtime.memory: {memory!r} is not one of "
                        f"{', '.join(MEMORY_STRATEGIES)}", field="runtime.memory")
    applied = memory
    if memory in ("model_cpu_offload", "group_offload") and device == "cpu":
        log.warning("memory strategy %s needs a GPU; running on the CPU without offload", memory)
        applied = "none"
    with map_oom():
        try:
            if applied == "model_cpu_offload":
                pipe.enable_model_cpu_offload(device=device)
            elif applied == "group_offload":
                group_offload(pipe, device)
        except (RuntimeError, ValueError, TypeError, AttributeError, NotImplementedError) as exc:
            if is_oom(exc):
                raise
            log.warning("memory strategy %s failed on %s (%s); loading the model whole", applied,
                        device, exc)
            applied = "none"
        if applied in ("none", "vae_tiling"):
            pipe.to(device)
        if memory == "vae_tiling":
            vae = getattr(pipe, "vae", None)
            if vae is not None and hasattr(vae, "enable_tiling"):
                vae.enable_tiling()
            else:
                log.warning("this model has no tiled VAE; vae_tiling has no effect")
                applied = "none"
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)
    return applied


def group_offload(pipe, device: str) -> None:
    """diffusers group offloading of every torch module of the pipeline onto ``device``.

    Leaf-level groups, with transfers on a side CUDA stream where there is one (close to
    the speed of no offload at a fraction of the memory).
    """
    import torch

    onload = torch.device(device)
    stream = onload.type == "cuda"
    if hasattr(pipe, "enable_group_offload"):
        pipe.enable_group_offload(onload_device=onload, offload_device=torch.device("cpu"),
                                  offload_type="leaf_level", use_stream=stream)
        return
    from diffusers.hooks import apply_group_offloading

    for module in pipe.components.values():
        if isinstance(module, torch.nn.Module):
            apply_group_offloading(module, onload_device=onload, offload_type="leaf_level",
                                   use_stream=stream)


def execution_device(pipe, device: str) -> str:
    return str(getattr(pipe, "_execution_device", device))


# -- errors and progress ----------------------------------------------------------------------
def is_oom(exc: BaseException) -> bool:
    try:
        import torch
        if isinstance(exc, torch.OutOfMemoryError):
            return True
    except (ImportError, AttributeError):
        pass
    if isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "mps backend out of memory" in text)


@contextlib.contextmanager
def map_oom() -> Iterator[None]:
    """Turn torch's out-of-memory errors into SoraError('out_of_memory') with the usual hint."""
    try:
        yield
    except SoraError:
        raise
    except BaseException as exc:
        if is_oom(exc):
            _free_cuda()
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise SoraError("out_of_memory", f"out of memory: {first}", hint=OOM_HINT) from exc
        raise


def _free_cuda() -> None:
    try:
        import gc

        import torch
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:   # pragma: no cover - best effort
        pass


def step_callback(on_step: Callable[[int, int], None], fallback_total: int):
    """A diffusers ``callback_on_step_end`` calling ``on_step(step, total)`` once per step.

    ``total`` is the steps the pipeline really runs (fewer with a restyle strength < 1).
    Exceptions from ``on_step`` propagate, which stops the pipeline.
    """
    def callback(pipe, i, t, kwargs):
        total = getattr(pipe, "_num_timesteps", None)
        if not total:
            sched = getattr(pipe, "scheduler", None)
            timesteps = getattr(sched, "timesteps", None)
            begin = getattr(sched, "begin_index", None) or 0
            total = (len(timesteps) - begin) if timesteps is not None else fallback_total
        on_step(int(i) + 1, int(total))
        return kwargs if isinstance(kwargs, dict) else {}
    return callback


def generator_for(seed: int, device: str = "cpu"):
    """A CPU generator: the same seed gives the same noise on every device."""
    import torch

    return torch.Generator(device="cpu").manual_seed(int(seed))


def to_pil(img):
    """HxWx3 float [0, 1] display -> 8-bit PIL image (what diffusers' processors expect)."""
    import numpy as np
    from PIL import Image

    arr = np.clip(np.asarray(img, dtype=np.float32)[..., :3], 0.0, 1.0)
    return Image.fromarray((arr * 255.0 + 0.5).astype(np.uint8), "RGB")
