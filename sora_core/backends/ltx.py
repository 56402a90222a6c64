"""LTX-Video through ``LTXConditionPipeline``, for every mode.

- generate: no conditions;
- animate / extend / interpolate: the given frames become conditions at their frame index;
  a run of 8k+1 (k >= 1) consecutive given frames becomes one video condition (aligned to the
  start of the clip, or to its end for a backward extension), the rest image conditions;
- restyle: the source video is encoded by the VAE into the starting latents and denoised
  from ``strength`` (diffusers' ``denoise_strength``; 1.0 regenerates fully).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import loading
from .base import OnStep, Request
from .diffusers_base import DiffusersBackend, known_runs

TEMPORAL = 8    # LTX VAE temporal compression: conditioning videos are 8k+1 frames


class LTXBackend(DiffusersBackend):
    family = "ltx"

    def __init__(self, model_dir: Path, runtime, index: dict | None = None):
        super().__init__(model_dir, runtime, index)
        self.pipe = self.derived("LTXConditionPipeline")   # LTXPipeline folders hold the same parts

    def _generate(self, req: Request, on_step: OnStep) -> np.ndarray:
        return self.call(self.pipe, req, on_step, num_frames=req.frames, frame_rate=round(req.fps))

    def _conditioned(self, req: Request, on_step: OnStep) -> np.ndarray:
        return self.call(self.pipe, req, on_step, num_frames=req.frames, frame_rate=round(req.fps),
                         conditions=self.conditions(req))

    _animate = _extend = _interpolate = _conditioned

    def conditions(self, req: Request) -> list:
        from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition

        pil = {i: loading.to_pil(img) for i, img in req.known.items()}
        conds = []
        for run in known_runs(req.known):
            used: set[int] = set()
            k = (len(run) - 1) // TEMPORAL
            if k >= 1:
                length = TEMPORAL * k + 1
                at_end = run[0] > 0 and run[-1] == req.frames - 1
                start = run[-1] - length + 1 if at_end else run[0]
                frames = list(range(start, start + length))
                conds.append(LTXVideoCondition(video=[pil[i] for i in frames], frame_index=start))
                used.update(frames)
            conds += [LTXVideoCondition(image=pil[i], frame_index=i) for i in run if i not in used]
        return conds

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
