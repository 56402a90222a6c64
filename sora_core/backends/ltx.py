"""LTX-Video through ``LTXConditionPipeline``, for every mode.

- generate: no conditions;
- animate / extend / interpolate: the given frames become conditions at their frame index
  (:func:`condition_items`: runs of 8k+1 frames are video conditions, the rest images);
- restyle: the source video is encoded by the VAE into the starting latents and denoised
  from ``strength`` (diffusers' ``denoise_strength``; 1.0 regenerates fully).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import loading
from .base import OnStep, Request
from .diffusers_base import DiffusersBackend, known_runs


def condition_items(req: Request, temporal: int) -> list[tuple[object, int]]:
    """The given frames as (PIL image or list of PIL frames, frame index) conditions: a run of
    ``temporal*k + 1`` (k >= 1) consecutive frames becomes one video condition (aligned to the
    start, or to the end for a backward extension), the rest single images. Shared by LTX-2."""
    pil = {i: loading.to_pil(img) for i, img in req.known.items()}
    items: list[tuple[object, int]] = []
    for run in known_runs(req.known):
        used: set[int] = set()
        k = (len(run) - 1) // temporal
        if k >= 1:
            length = temporal * k + 1
            at_end = run[0] > 0 and run[-1] == req.frames - 1
            start = run[-1] - length + 1 if at_end else run[0]
            frames = list(range(start, start + length))
            items.append(([pil[i] for i in frames], start))
            used.update(frames)
        items += [(pil[i], i) for i in run if i not in used]
    return items


class LTXBackend(DiffusersBackend):
    family = "ltx"

    def __init__(self, model_dir: Path, runtime, index: dict | None = None, **files):
        super().__init__(model_dir, runtime, index, **files)
        self.pipe = self.derived("LTXConditionPipeline")   # LTXPipeline folders hold the same parts

    def _generate(self, req: Request, on_step: OnStep) -> np.ndarray:
        return self.call(self.pipe, req, on_step, num_frames=req.frames, frame_rate=round(req.fps))

    def _conditioned(self, req: Request, on_step: OnStep) -> np.ndarray:
        return self.call(self.pipe, req, on_step, num_frames=req.frames, frame_rate=round(req.fps),
                         conditions=self.conditions(req))

    _animate = _extend = _interpolate = _conditioned

    def conditions(self, req: Request) -> list:
        from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition

        return [LTXVideoCondition(video=item, frame_index=index) if isinstance(item, list)
                else LTXVideoCondition(image=item, frame_index=index)
                for item, index in condition_items(req, self.capabilities.frame_multiple)]

    def _restyle(self, req: Request, on_step: OnStep) -> np.ndarray:
        import torch
        from diffusers.pipelines.ltx.pipeline_ltx_condition import retrieve_latents

        pipe = self.pipe
        strength = max(float(req.strength), 1.0 / max(req.steps, 1))   # at least one step
        extra = {}
        if strength < 1.0:
            video = [loading.to_pil(f) for f in req.video[:req.frames]]
            device = loading.execution_device(pipe, self.device)
            with loading.map_oom(), torch.no_grad():
                pixels = pipe.video_processor.preprocess_video(video, req.height, req.width)
                pixels = pixels.to(device=device, dtype=pipe.vae.dtype)
                latents = retrieve_latents(pipe.vae.encode(pixels), loading.generator_for(req.seed))
                latents = pipe._normalize_latents(latents, pipe.vae.latents_mean, pipe.vae.latents_std)
            extra = dict(latents=latents.to(torch.float32), denoise_strength=strength)
        return self.call(pipe, req, on_step, num_frames=req.frames, frame_rate=round(req.fps), **extra)
