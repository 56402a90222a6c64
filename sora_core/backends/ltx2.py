"""LTX-2: video with its sound track, and the LTX-2 HDR model, one folder each.

- ``ltx2`` (LTX2Pipeline, LTX2ImageToVideoPipeline or LTX2ConditionPipeline folders, which hold
  the same components): generate with ``LTX2Pipeline``; animate with
  ``LTX2ImageToVideoPipeline``; extend either way and fill between keyframes with
  ``LTX2ConditionPipeline`` (the given frames become conditions, runs of 8k+1 frames as video
  conditions, each at the latent frame nearest its index: LTX-2 conditions on its latent grid,
  frame 0 or 8k+1). The sound track comes back through :meth:`take_audio`.
- ``ltx2-hdr`` (LTX2HDRPipeline, its IC-LoRA fused into the transformer): the display-referred
  input clip is the reference condition; the output is scene-linear HDR in [0, inf) (the
  pipeline decodes LogC3 itself), so it is written as it is, never through the inverse view.

Two stages (``Request.upsample`` > 1, the folder has a latent upsampler): diffusers' own
recipe. The mode's pipeline makes the pass at 1/scale of the size as latents (video and sound),
``LTX2LatentUpsamplePipeline`` upsamples the video latents, and the same pipeline refines them at
the full size: renoised to the first of ``STAGE_2_DISTILLED_SIGMA_VALUES``, three steps at those
sigmas, guidance 1, then decoded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import dataclasses

from . import loading
from .base import OnStep, Request, finish_frames
from .components import identity as components_identity, load_upsampler_file
from .diffusers_base import DiffusersBackend
from .ltx import condition_items


def latent_index(frame: int, frames: int, temporal: int) -> int:
    """LTX-2 places a condition at a latent frame (pixel frame 0 or ``temporal*(l-1) + 1``): the
    latent frame nearest pixel ``frame`` of a clip of ``frames``."""
    if frame == 0:
        return 0
    return min((frames - 1) // temporal, max(1, round((frame - 1) / temporal) + 1))


class LTX2Backend(DiffusersBackend):
    def __init__(self, model_dir: Path, runtime, index: dict | None = None,
                 components: dict[str, str] | None = None):
        from ..model_rules import family_of
        from ..models_index import read_model_index
        from ..upsampler_rules import file_scale, find_upsampler

        index = index if index is not None else read_model_index(model_dir)
        self.family = family_of(index) or ""
        components = dict(components or {})
        upsampler_file = components.pop("upsampler", None)     # not a part of the pipeline
        super().__init__(model_dir, runtime, index, components)
        self._upsample_pipe = None
        if upsampler_file:
            self.capabilities = dataclasses.replace(self.capabilities, upsampler=file_scale(upsampler_file))
            self.identity.setdefault("components", {}).update(components_identity({"upsampler": upsampler_file}))
            self._upsampler_at = Path(upsampler_file).expanduser()
        else:
            self._upsampler_at = find_upsampler(self.model_dir)
        if self.capabilities.upsampler:
            where = self._upsampler_at.name if upsampler_file else \
                self._upsampler_at.relative_to(self.model_dir).as_posix()
            self.identity["upsampler"] = f"{where} x{self.capabilities.upsampler}"

    def call(self, pipe, req: Request, on_step: OnStep, linear: bool = False, **kwargs) -> np.ndarray:
        kwargs.update(num_frames=req.frames, frame_rate=float(req.fps))
        if req.upsample > 1:
            return self._two_stages(pipe, req, on_step, linear, kwargs)
        return super().call(pipe, req, on_step, linear=linear, **kwargs)

    def _two_stages(self, pipe, req: Request, on_step: OnStep, linear: bool, kwargs: dict) -> np.ndarray:
        """Stage one at 1/scale as latents, the latent upsampler, stage two refining at full size;
        progress counts the steps of both stages."""
        from diffusers.pipelines.ltx2.utils import STAGE_2_DISTILLED_SIGMA_VALUES as SIGMAS

        scale, refine = req.upsample, len(SIGMAS)
        small = dataclasses.replace(req, width=req.width // scale, height=req.height // scale)
        first = self.arguments(small, lambda i, n: on_step(i, n + refine), output_type="latent", **kwargs)
        latents = self.invoke(pipe, first)
        video, audio = self._upsample(latents.frames), latents.audio
        second = self.arguments(req, lambda i, n: on_step(req.steps + i, req.steps + n), **kwargs)
        second.update(latents=video, audio_latents=audio, num_inference_steps=refine, sigmas=SIGMAS,
                      noise_scale=SIGMAS[0], guidance_scale=1.0)
        kept = pipe.scheduler
        pipe.scheduler = type(kept).from_config(kept.config, use_dynamic_shifting=False, shift_terminal=None)
        try:
            out = self.invoke(pipe, second)
        finally:
            pipe.scheduler = kept
        self._audio = getattr(out, "audio", None)
        return finish_frames(out.frames, req, linear=linear)

    def _upsample(self, latents):
        """Video latents (unnormalised, as stage one returns them) upsampled by the folder's
        latent upsampler; under an offload strategy it is on the device only while it runs."""
        upsampler = self._upsampler()
        model = upsampler.latent_upsampler
        offload = self.memory_applied in ("model_cpu_offload", "group_offload")
        model.to(latents.device)
        try:
            out = self.invoke(upsampler, dict(latents=latents, output_type="latent", return_dict=False))
        finally:
            if offload:
                model.to("cpu")
        return out[0]

    def _upsampler(self):
        """The latent upsampler over the model's VAE: a diffusers folder, or an original file."""
        if self._upsample_pipe is None:
            from diffusers import LTX2LatentUpsamplePipeline
            from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel

            from ..upsampler_rules import LEGACY_KEYS, read_config

            at = self._upsampler_at
            if at.is_dir():
                config = read_config(at)            # legacy key names passed as 0.42 reads them
                renamed = {new: config[new] for new in LEGACY_KEYS.values() if new in config}
                model = loading.load_pipeline(LTX2LatentUpsamplerModel, at, self.dtype, overrides=renamed)
            else:
                model = load_upsampler_file(str(at), self.dtype)
            self._upsample_pipe = LTX2LatentUpsamplePipeline(vae=self.pipe.vae, latent_upsampler=model)
            self._upsample_pipe.set_progress_bar_config(disable=True)
        return self._upsample_pipe

    def _generate(self, req: Request, on_step: OnStep) -> np.ndarray:
        return self.call(self.derived("LTX2Pipeline"), req, on_step)

    def _animate(self, req: Request, on_step: OnStep) -> np.ndarray:
        return self.call(self.derived("LTX2ImageToVideoPipeline"), req, on_step,
                         image=loading.to_pil(req.known[0]))

    def _conditioned(self, req: Request, on_step: OnStep) -> np.ndarray:
        from diffusers.pipelines.ltx2.pipeline_ltx2_condition import LTX2VideoCondition

        t = self.capabilities.frame_multiple
        conditions = [LTX2VideoCondition(frames=item, index=latent_index(index, req.frames, t))
                      for item, index in condition_items(req, t)]
        return self.call(self.derived("LTX2ConditionPipeline"), req, on_step, conditions=conditions)

    _extend = _interpolate = _conditioned

    def _hdr(self, req: Request, on_step: OnStep) -> np.ndarray:
        from diffusers.pipelines.ltx2.pipeline_ltx2_hdr_lora import LTX2HDRReferenceCondition

        reference = LTX2HDRReferenceCondition(frames=[loading.to_pil(f) for f in req.video[:req.frames]])
        return self.call(self.pipe, req, on_step, linear=True, reference_conditions=[reference])

    def check_request(self, req: Request) -> None:
        super().check_request(req)
        if req.mode == "hdr" and (req.video is None or len(req.video) < req.frames):
            from ..errors import SoraError
            raise SoraError("invalid_input", f"inputs.frames: hdr needs {req.frames} input frames",
                            field="inputs.frames")

    def take_audio(self):
        audio, self._audio = self._audio, None
        if audio is None or not hasattr(audio, "detach"):
            return None
        samples = audio.detach().float().cpu().numpy()
        samples = samples[0] if samples.ndim == 3 else samples      # (channels, samples)
        rate = getattr(self.pipe.vocoder.config, "output_sampling_rate", None) or 24000
        return np.ascontiguousarray(samples.T, dtype=np.float32), int(rate)
