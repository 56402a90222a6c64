"""What every backend takes and gives: a :class:`Request` in, display-referred frames out.

Frames cross this seam as float32 display-referred sRGB in [0, 1] (what the models were
trained on); the runner converts to and from scene linear with the shot's view transform.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..capabilities import Capabilities
from ..errors import SoraError

OnStep = Callable[[int, int], None]


@dataclass
class Request:
    """One pass of one shot, already fitted to the backend's capabilities."""

    mode: str                  # generate | animate | extend | interpolate | restyle
    prompt: str
    negative_prompt: str
    seed: int
    steps: int
    guidance: float
    width: int
    height: int
    frames: int
    # output frame index -> HxWx3 float32 display sRGB [0, 1]: the frames that are given.
    # animate {0: img}; extend forward {0..k-1}; extend backward {F-k..F-1}; interpolate keyframes
    known: dict[int, np.ndarray] = field(default_factory=dict)
    video: np.ndarray | None = None     # restyle source (F, H, W, 3) display sRGB [0, 1]
    strength: float = 1.0               # restyle: 1 regenerates fully, near 0 keeps the source
    fps: float = 24.0                   # playback rate (LTX conditions its positions on it)
    control: np.ndarray | None = None   # control: (F, H, W, 3) display-referred [0, 1] frames
    control_kind: str = ""              # control: depth | edges | pose | layout
    control_strength: float = 1.0       # control: how strongly it is followed
    reference: np.ndarray | None = None  # control: HxWx3 image for the look, if given
    guidance_2: float | None = None     # the low-noise expert's guidance (two-expert models)
    upsample: int = 1                   # 2: made at half size, latent-upsampled, refined (two stages)


class Backend:
    """A loaded model. ``run`` returns (F, H, W, 3) float32 display sRGB in [0, 1].

    ``on_step(step, total)`` is called once per denoising step (step counts from 1); an
    exception raised from it (the worker's ``SoraError("cancelled")``) stops the run and
    propagates unchanged.
    """

    capabilities: Capabilities
    identity: dict          # {"name", "family", "path", "hash", "pipeline"}

    def run(self, req: Request, on_step: OnStep) -> np.ndarray:
        raise NotImplementedError

    def unknown_words(self, prompt: str) -> list[str]:
        """Words the model cannot read (only the bundled model knows its vocabulary)."""
        return []

    def take_audio(self):
        """The sound track the last ``run`` made, as ((samples, channels) float32 in [-1, 1],
        sample rate), once; None for models that make no sound."""
        return None

    # -- helpers for subclasses -------------------------------------------------------------
    def check_request(self, req: Request) -> None:
        """Refuse what this backend cannot do, naming the field (the runner fits most of it)."""
        caps = self.capabilities
        if not caps.supports(req.mode):
            raise SoraError("invalid_input", f"mode: {caps.family} models cannot {req.mode}; they can: "
                            f"{', '.join(caps.modes)}", field="mode")
        for index, img in req.known.items():
            if not 0 <= index < req.frames:
                raise SoraError("invalid_input", f"inputs: given frame index {index} is outside "
                                f"0..{req.frames - 1}", field="inputs")
            if np.asarray(img).shape[:2] != (req.height, req.width):
                raise SoraError("internal", f"given frame {index} is {np.asarray(img).shape[:2]}, "
                                f"expected {(req.height, req.width)}")
        if req.mode == "animate" and 0 not in req.known:
            raise SoraError("invalid_input", "inputs.image: animate needs the still as frame 0",
                            field="inputs.image")
        if req.mode in ("extend", "interpolate") and not req.known:
            raise SoraError("invalid_input", f"inputs: {req.mode} needs given frames", field="inputs")
        if req.mode == "control":
            if req.control is None or len(req.control) < req.frames:
                raise SoraError("invalid_input", f"inputs.control: control needs {req.frames} control "
                                "frames", field="inputs.control")
            if req.control_kind not in caps.control_kinds:
                raise SoraError("invalid_input", f"inputs.control_kind: {caps.family} follows "
                                f"{', '.join(caps.control_kinds) or 'no'} control, not {req.control_kind}",
                                field="inputs.control_kind")
        if req.mode == "restyle":
            if req.video is None or len(req.video) < req.frames:
                raise SoraError("invalid_input", f"inputs.frames: restyle needs {req.frames} source "
                                "frames", field="inputs.frames")
            if not 0.0 < req.strength <= 1.0:
                raise SoraError("invalid_input", f"inputs.strength: {req.strength} is outside (0, 1]",
                                field="inputs.strength")


def finish_frames(frames, req: Request, linear: bool = False) -> np.ndarray:
    """A pipeline's output as exactly (req.frames, H, W, 3) float32 in [0, 1]; ``linear`` output
    (HDR) keeps its values above 1 (only NaNs and negatives are removed)."""
    arr = frames
    if hasattr(arr, "detach"):
        arr = arr.detach().float().cpu().numpy()
    arr = np.asarray(arr, dtype=np.float32)
    if arr.ndim == 5:
        arr = arr[0]
    if arr.ndim != 4:
        raise SoraError("internal", f"the pipeline returned frames of shape {arr.shape}")
    if arr.shape[-1] != 3 and arr.shape[1] == 3:   # (F, 3, H, W)
        arr = arr.transpose(0, 2, 3, 1)
    if len(arr) < req.frames:
        raise SoraError("internal", f"the pipeline made {len(arr)} frames, {req.frames} were asked")
    arr = arr[:req.frames]
    if arr.shape[1:3] != (req.height, req.width):
        arr = resize_frames(arr, req.width, req.height)
    arr = np.nan_to_num(arr, nan=0.0, posinf=65504.0)     # half float's largest
    return np.ascontiguousarray(np.maximum(arr, 0.0) if linear else np.clip(arr, 0.0, 1.0),
                                dtype=np.float32)


def resize_frames(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize (F, H, W, 3) frames (bilinear, via torch) to width x height."""
    import torch
    import torch.nn.functional as F

    t = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float32)).permute(0, 3, 1, 2)
    t = F.interpolate(t, size=(height, width), mode="bilinear", align_corners=False, antialias=True)
    return t.permute(0, 2, 3, 1).numpy()
