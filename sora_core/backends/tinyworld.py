"""The bundled TinyWorld model (``sora_core.models.tinyworld``) as a backend.

Its pipeline takes the given frames (``known_frames``), a restyle source and strength itself,
so every mode is one call. Capabilities are registered by ``sora_core.models_index`` from the
model's torch-free constants (family ``tinyworld``, pipeline class ``TinyWorldPipeline``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..capabilities import FAMILIES
from ..models_index import read_model_index
from . import loading
from .base import Backend, OnStep, Request, finish_frames


class TinyWorldBackend(Backend):
    family = "tinyworld"

    def __init__(self, model_dir: Path, runtime, index: dict | None = None):
        from ..models.tinyworld.pipeline import TinyWorldPipeline

        model_dir = Path(model_dir)
        index = index if index is not None else read_model_index(model_dir)
        self.capabilities = FAMILIES[self.family]
        self.device = loading.pick_device(getattr(runtime, "device", "auto"))
        # a small model: float32 unless a dtype is asked for explicitly
        dtype_name = getattr(runtime, "dtype", "auto")
        self.dtype = loading.pick_dtype("float32" if dtype_name == "auto" else dtype_name, self.device)
        self.pipe = loading.load_pipeline(TinyWorldPipeline, model_dir, self.dtype)
        self.memory_applied = loading.place(self.pipe, self.device, getattr(runtime, "memory", "none"))
        self.identity = loading.identity(model_dir, self.family, index.get("_class_name", "TinyWorldPipeline"))
        self.identity.update(device=self.device, dtype=str(self.dtype).replace("torch.", ""),
                             memory=self.memory_applied)

    def unknown_words(self, prompt: str) -> list[str]:
        return list(self.pipe.unknown_words(prompt))

    def run(self, req: Request, on_step: OnStep) -> np.ndarray:
        import torch

        self.check_request(req)
        video = req.video[:req.frames] if req.mode == "restyle" and req.video is not None else None
        with loading.map_oom(), torch.no_grad():
            out = self.pipe(prompt=req.prompt, negative_prompt=req.negative_prompt,
                            num_frames=req.frames, height=req.height, width=req.width,
                            num_inference_steps=req.steps, guidance_scale=req.guidance,
                            generator=loading.generator_for(req.seed),
                            known_frames=dict(req.known) or None, video=video,
                            strength=float(req.strength) if video is not None else 1.0,
                            callback_on_step_end=loading.step_callback(on_step, req.steps),
                            output_type="np")
        return finish_frames(out.frames, req)
