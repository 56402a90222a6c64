"""Wan 2.x backends, one model folder each; the folder's pipeline class decides the family.

- ``wan-t2v`` (WanPipeline / WanVideoToVideoPipeline folders): generate with ``WanPipeline``,
  restyle with ``WanVideoToVideoPipeline`` built from the same components (``from_pipe``).
- ``wan-i2v`` (WanImageToVideoPipeline): animate a still (frame 0); interpolate between a
  first and a last frame (``last_image``).
- ``wan-ti2v`` (Wan 2.2 TI2V-5B: a WanPipeline with ``expand_timesteps``): generate; animate
  through ``WanImageToVideoPipeline`` over the same components (the still becomes the first
  latent frame); restyle through ``WanVideoToVideoPipeline``.
- Wan 2.2 A14B (``transformer`` for high noise, ``transformer_2`` for low noise, switched at
  ``boundary_ratio``): the t2v or i2v family above, with ``guidance_scale_2`` for the second
  expert. Under ``model_cpu_offload`` only the expert that is denoising is on the GPU.
- ``wan-vace`` (WanVACEPipeline): generate; animate, extend (either direction) and
  interpolate keyframes through a conditioning ``video`` (given frames, grey elsewhere)
  and a ``mask`` (black = keep the given frame, white = generate); control: the control
  video itself with an all-white mask, optionally a reference image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..model_rules import family_of
from ..models_index import read_model_index
from ..errors import SoraError
from . import loading
from .base import OnStep, Request
from .diffusers_base import DiffusersBackend

GREY = 0.5  # VACE's neutral value for frames to generate


class WanBackend(DiffusersBackend):
    keep_fp32 = ("vae",)    # Wan's VAE is meant to run in float32 (as in diffusers' examples)

    def __init__(self, model_dir: Path, runtime, index: dict | None = None, **files):
        index = index if index is not None else read_model_index(model_dir)
        self.family = family_of(index) or ""
        if not self.family.startswith("wan"):
            raise SoraError("invalid_input", f"{model_dir} holds a {index.get('_class_name')} "
                            "pipeline, not a Wan one", field="model")
        super().__init__(model_dir, runtime, index, **files)
        if self.capabilities.experts >= 2:      # the manifest names both experts
            self.identity["experts"] = {
                "boundary_ratio": index.get("boundary_ratio"),
                **{role: {"component": name, "hash": loading.model_hash(Path(model_dir) / name)}
                   for role, name in (("high_noise", "transformer"), ("low_noise", "transformer_2"))}}

    # -- wan-t2v and wan-vace -----------------------------------------------------------------
    def call(self, pipe, req: Request, on_step: OnStep, **kwargs) -> np.ndarray:
        if self.capabilities.experts >= 2 and req.guidance_2 is not None:
            kwargs["guidance_scale_2"] = req.guidance_2     # the low-noise expert's guidance
        return super().call(pipe, req, on_step, **kwargs)

    def _generate(self, req: Request, on_step: OnStep) -> np.ndarray:
        name = "WanVACEPipeline" if self.family == "wan-vace" else "WanPipeline"
        return self.call(self.derived(name), req, on_step, num_frames=req.frames)

    def _restyle(self, req: Request, on_step: OnStep) -> np.ndarray:
        video = [loading.to_pil(f) for f in req.video[:req.frames]]
        strength = max(float(req.strength), 1.0 / max(req.steps, 1))   # at least one step
        pipe = self.derived("WanVideoToVideoPipeline")
        spatial = getattr(pipe.vae.config, "scale_factor_spatial", None)
        if spatial and pipe.vae_scale_factor_spatial != spatial:
            # diffusers 0.42's video-to-video pipeline assumes 8x; Wan 2.2 TI2V-5B's VAE is 16x
            from diffusers.video_processor import VideoProcessor
            pipe.vae_scale_factor_spatial = spatial
            pipe.video_processor = VideoProcessor(vae_scale_factor=spatial)
        return self.call(pipe, req, on_step, video=video, strength=strength)

    # -- wan-i2v and wan-vace -----------------------------------------------------------------
    def _animate(self, req: Request, on_step: OnStep) -> np.ndarray:
        if self.family == "wan-vace":
            return self._vace(req, on_step)
        return self.call(self.derived("WanImageToVideoPipeline"), req, on_step,
                         image=loading.to_pil(req.known[0]), num_frames=req.frames)

    def _interpolate(self, req: Request, on_step: OnStep) -> np.ndarray:
        if self.family == "wan-vace":
            return self._vace(req, on_step)
        last = req.frames - 1
        if sorted(req.known) != [0, last]:
            raise SoraError("invalid_input", f"inputs.keyframes: a wan-i2v model fills between a first "
                            f"and a last frame only (indices 0 and {last}), got {sorted(req.known)}",
                            field="inputs.keyframes", hint="use a Wan VACE or LTX-Video model for "
                            "keyframes in between")
        return self.call(self.pipe, req, on_step, image=loading.to_pil(req.known[0]),
                         last_image=loading.to_pil(req.known[last]), num_frames=req.frames)

    def _extend(self, req: Request, on_step: OnStep) -> np.ndarray:
        return self._vace(req, on_step)

    def _control(self, req: Request, on_step: OnStep) -> np.ndarray:
        """VACE follows a control video (depth, edges, pose, layout) where the mask is all white
        (generate everything), scaled by ``conditioning_scale``; a reference image sets the look."""
        from PIL import Image

        video = [loading.to_pil(f) for f in req.control[:req.frames]]
        mask = [Image.new("L", (req.width, req.height), 255)] * req.frames
        refs = [loading.to_pil(req.reference)] if req.reference is not None else None
        return self.call(self.derived("WanVACEPipeline"), req, on_step, video=video, mask=mask,
                         reference_images=refs, conditioning_scale=float(req.control_strength),
                         num_frames=req.frames)

    def _vace(self, req: Request, on_step: OnStep) -> np.ndarray:
        from PIL import Image

        grey = np.full((req.height, req.width, 3), GREY, np.float32)
        video = [loading.to_pil(req.known.get(i, grey)) for i in range(req.frames)]
        mask = [Image.new("L", (req.width, req.height), 0 if i in req.known else 255)
                for i in range(req.frames)]
        return self.call(self.derived("WanVACEPipeline"), req, on_step, video=video, mask=mask,
                         num_frames=req.frames)
