"""Common ground of the diffusers backends (Wan, LTX-Video): load, place, call, finish."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..model_rules import read_capabilities
from ..models_index import read_model_index
from ..errors import SoraError
from . import loading
from .components import identity as components_identity, load_overrides
from .base import Backend, OnStep, Request, finish_frames

log = logging.getLogger("sora.backends")


class DiffusersBackend(Backend):
    """Loads the folder's own pipeline class; subclasses map each mode to a pipeline call."""

    family = ""
    keep_fp32: tuple[str, ...] = ()     # components kept in float32 under a half dtype

    def __init__(self, model_dir: Path, runtime, index: dict | None = None,
                 components: dict[str, str] | None = None):
        """``components``: {name: file} one-file overrides of the folder's own (components.py)."""
        model_dir = Path(model_dir)
        index = index if index is not None else read_model_index(model_dir)
        self.model_dir = model_dir
        self.class_name = index.get("_class_name", "")
        self.capabilities = read_capabilities(model_dir, index)   # the rules its files give
        self.device = loading.pick_device(getattr(runtime, "device", "auto"))
        self.dtype = loading.pick_dtype(getattr(runtime, "dtype", "auto"), self.device)
        self.memory = getattr(runtime, "memory", "none")
        overrides = load_overrides(index, model_dir, components or {}, self.dtype, self.keep_fp32)
        self.pipe = loading.load_pipeline(loading.pipeline_class(self.class_name), model_dir, self.dtype,
                                          self.keep_fp32, overrides)
        self.memory_applied = loading.place(self.pipe, self.device, self.memory)
        self.identity = loading.identity(model_dir, self.family, self.class_name)
        self.identity.update(device=self.device, dtype=str(self.dtype).replace("torch.", ""),
                             memory=self.memory_applied)
        if components:
            self.identity["components"] = components_identity(components)
        self._derived: dict[str, object] = {}
        self._audio = None

    def set_loras(self, loras) -> None:
        """Swap the LoRAs in place when they changed (the model stays loaded)."""
        from .loras import apply_loras, lora_key, unload_loras

        key = lora_key(loras)
        if key != getattr(self, "_lora_key", ()):
            self._lora_key = ()
            self.identity.pop("loras", None)
            try:
                records = apply_loras(self.pipe, loras)
            except BaseException:       # a LoRA refused: none stays, the next shot is the base's
                unload_loras(self.pipe)
                raise
            self._lora_key = key
            if records:
                self.identity["loras"] = records

    @property
    def loras(self) -> tuple:
        return getattr(self, "_lora_key", ())

    def derived(self, cls_name: str):
        """Another pipeline class over the same loaded components (``from_pipe``), cached."""
        if cls_name == type(self.pipe).__name__:
            return self.pipe
        if cls_name not in self._derived:
            cls = loading.pipeline_class(cls_name)
            with loading.quiet():
                pipe = cls.from_pipe(self.pipe)
            if hasattr(pipe, "set_progress_bar_config"):
                pipe.set_progress_bar_config(disable=True)
            self._derived[cls_name] = pipe
        return self._derived[cls_name]

    def arguments(self, req: Request, on_step: OnStep, **kwargs) -> dict:
        """The request's common pipeline arguments, ``kwargs`` over them."""
        args = dict(prompt=req.prompt, negative_prompt=req.negative_prompt or None,
                    height=req.height, width=req.width, num_inference_steps=req.steps,
                    guidance_scale=req.guidance, generator=loading.generator_for(req.seed),
                    output_type="np", callback_on_step_end=loading.step_callback(on_step, req.steps))
        args.update(kwargs)
        return args

    def invoke(self, pipe, args: dict):
        """``pipe(**args)`` without gradients; OOM becomes a retryable error."""
        import torch

        with loading.map_oom(), torch.no_grad():
            return pipe(**args)

    def call(self, pipe, req: Request, on_step: OnStep, linear: bool = False, **kwargs) -> np.ndarray:
        """Run ``pipe`` with the request's common arguments. A sound track the pipeline makes is
        kept for :meth:`take_audio`."""
        out = self.invoke(pipe, self.arguments(req, on_step, **kwargs))
        self._audio = getattr(out, "audio", None)
        return finish_frames(out.frames, req, linear=linear)

    def run(self, req: Request, on_step: OnStep) -> np.ndarray:
        self.check_request(req)
        handler = getattr(self, f"_{req.mode}", None)
        if handler is None:
            raise SoraError("invalid_input", f"mode: {self.family} cannot {req.mode}", field="mode")
        return handler(req, on_step)


def known_runs(known: dict[int, np.ndarray]) -> list[list[int]]:
    """Sorted known indices grouped into runs of consecutive frames."""
    runs: list[list[int]] = []
    for i in sorted(known):
        if runs and i == runs[-1][-1] + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs
