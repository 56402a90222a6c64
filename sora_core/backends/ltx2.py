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
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import loading
from .base import OnStep, Request
from .diffusers_base import DiffusersBackend
from .ltx import condition_items


def latent_index(frame: int, frames: int, temporal: int) -> int:
    """LTX-2 places a condition at a latent frame (pixel frame 0 or ``temporal*(l-1) + 1``): the
    latent frame nearest pixel ``frame`` of a clip of ``frames``."""
    if frame == 0:
        return 0
    return min((frames - 1) // temporal, max(1, round((frame - 1) / temporal) + 1))


class LTX2Backend(DiffusersBackend):
    def __init__(self, model_dir: Path, runtime, index: dict | None = None, **files):
        from ..model_rules import family_of
        from ..models_index import read_model_index

        index = index if index is not None else read_model_index(model_dir)
        self.family = family_of(index) or ""
        super().__init__(model_dir, runtime, index, **files)

    def call(self, pipe, req: Request, on_step: OnStep, linear: bool = False, **kwargs) -> np.ndarray:
        return super().call(pipe, req, on_step, linear=linear, num_frames=req.frames,
                            frame_rate=float(req.fps), **kwargs)

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
