"""What each model family can do: modes, frame rule, sizes and defaults.

Capabilities live in the light half so that a host (Blender, the CLI, the Qt panel, a farm
submitter) can grey out impossible choices and preview what the worker will make without
importing torch. What a request becomes is decided by :mod:`sora_core.planning` alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

ALL_MODES = ("generate", "animate", "extend", "interpolate", "restyle", "control", "hdr")
CHAIN_MODES = ("generate", "animate", "extend")     # modes a long shot can be chained in
# modes that read an input frame sequence -> the Inputs field naming it
SEQUENCE_MODES = {"extend": "frames", "restyle": "frames", "control": "control", "hdr": "frames"}
LINEAR_MODES = ("hdr",)     # modes whose output is already scene linear (no inverse view transform)
# modes a model with a latent upsampler can make in two stages (half size, upsampled, refined)
TWO_STAGE_MODES = ("generate", "animate", "extend", "interpolate")
UPSAMPLE_CHOICES = ("auto", "on", "off")    # spec.upsample: auto uses the upsampler where there is one
CONTROL_KINDS = ("depth", "edges", "pose", "layout")  # what a control sequence shows


@dataclass(frozen=True, kw_only=True)
class Capabilities:
    """A backend's declared limits. Frame counts must be ``k * frame_multiple + frame_offset``."""

    family: str
    modes: tuple[str, ...]
    frame_multiple: int = 1
    frame_offset: int = 0
    min_frames: int = 1
    max_frames: int = 16            # frames one pass can make
    size_multiple: int = 16
    min_size: int = 16
    max_size: int = 4096
    default_steps: int = 30
    default_guidance: float = 5.0
    default_fps: float = 24.0
    default_size: tuple[int, int] = (832, 480)
    max_prompt_words: int = 400     # rough text-encoder limit, in words
    default_context: int = 1        # given frames that condition an extension
    control_kinds: tuple[str, ...] = ()  # control sequences the model follows (mode "control")
    variant: str = ""               # the known model it was recognised as (model_rules.KNOWN_MODELS)
    experts: int = 1                # Wan 2.2 A14B: 2 (high-noise and low-noise transformers)
    default_guidance_2: float | None = None  # guidance of the low-noise expert (two experts only)
    audio: bool = False             # the model makes a sound track too (LTX-2)
    upsampler: int = 0              # scale of the folder's latent upsampler (LTX-2: 2); 0: none
    notes: tuple[str, ...] = ()     # how the rules were read: defaults used, overrides applied

    @property
    def default_frames(self) -> int:
        """About two seconds, fitted to the frame rule."""
        return self.nearest_frames(min(self.max_frames, int(2 * self.default_fps) + self.frame_offset))

    @property
    def chains(self) -> bool:
        """Whether passes can be chained into a long shot (each pass extends the last)."""
        return self.supports("extend")

    def to_dict(self) -> dict:
        return asdict(self)

    def frame_rule(self) -> str:
        """Human-readable frame-count rule, e.g. ``4k+1``."""
        if self.frame_multiple == 1:
            return "any count"
        return f"{self.frame_multiple}k+{self.frame_offset}" if self.frame_offset else f"{self.frame_multiple}k"

    def describe(self) -> str:
        """One line for model lists: ``modes: ...; frames 4k+1 up to 81 a pass; size multiple of 16``."""
        return (f"modes: {', '.join(self.modes)}; frames {self.frame_rule()} up to {self.max_frames} "
                f"a pass; size multiple of {self.size_multiple}"
                + (f"; two-stage x{self.upsampler} with its latent upsampler" if self.upsampler else ""))

    def supports(self, mode: str) -> bool:
        return mode in self.modes

    def valid_frames(self, frames: int) -> bool:
        return (self.min_frames <= frames <= self.max_frames
                and (frames - self.frame_offset) % self.frame_multiple == 0)

    def nearest_frames(self, frames: int) -> int:
        """The valid frame count nearest ``frames`` within one pass (never raises)."""
        step = self.frame_multiple
        fitted = round((frames - self.frame_offset) / step) * step + self.frame_offset
        while fitted > self.max_frames:
            fitted -= step
        while fitted < self.min_frames:
            fitted += step
        return fitted

    def nearest_size(self, value: int) -> int:
        """The multiple of the size step nearest ``value`` within the size range."""
        m = self.size_multiple
        return max(self.min_size, min(self.max_size, int(round(value / m)) * m))


def _wan(family: str, modes: tuple[str, ...], control_kinds: tuple[str, ...] = ()) -> Capabilities:
    return Capabilities(family=family, modes=modes, frame_multiple=4, frame_offset=1, min_frames=5,
                        max_frames=81, size_multiple=16, min_size=16, max_size=1280, default_steps=30,
                        default_guidance=5.0, default_fps=16.0, default_size=(832, 480),
                        max_prompt_words=380, default_context=5, control_kinds=control_kinds)


def _ltx(family: str, modes: tuple[str, ...], **extra) -> Capabilities:
    return Capabilities(family=family, modes=modes, frame_multiple=8, frame_offset=1, min_frames=9,
                        **{**dict(max_frames=257, size_multiple=32, min_size=32, max_size=1280,
                                  default_steps=40, default_guidance=3.0, default_fps=24.0,
                                  default_size=(704, 480), max_prompt_words=90, default_context=9),
                           **extra})


# Each family's documented defaults: what a model of the family gets where its own files say
# nothing (``sora_core.model_rules`` reads the rules from the files and says which came from here).
FAMILIES: dict[str, Capabilities] = {
    "wan-t2v": _wan("wan-t2v", ("generate", "restyle")),
    "wan-i2v": _wan("wan-i2v", ("animate", "interpolate")),
    # Wan 2.2 TI2V-5B: one transformer that generates and animates a still (expand_timesteps)
    "wan-ti2v": _wan("wan-ti2v", ("generate", "animate", "restyle")),
    # VACE follows any control video (depth, pose, edges, flat layouts) with an all-generate mask
    "wan-vace": _wan("wan-vace", ("generate", "animate", "extend", "interpolate", "control"), CONTROL_KINDS),
    "ltx": _ltx("ltx", ("generate", "animate", "extend", "interpolate", "restyle")),   # no control kinds
    # LTX-2: video with its sound track; animate, extend and keyframes through LTX2ConditionPipeline
    "ltx2": _ltx("ltx2", ("generate", "animate", "extend", "interpolate"), max_frames=481,
                 default_steps=30, default_guidance=3.0, default_size=(768, 512), max_size=2048,
                 max_prompt_words=600, audio=True),
    # LTX-2 HDR: a display-referred clip in, scene-linear HDR out (LTX2HDRPipeline with its IC-LoRA)
    "ltx2-hdr": _ltx("ltx2-hdr", ("hdr",), max_frames=481, default_steps=30, default_size=(768, 512),
                     max_size=2048, max_prompt_words=600),
}

# diffusers pipeline class named in a folder's model_index.json -> family
PIPELINE_FAMILIES: dict[str, str] = {
    "WanPipeline": "wan-t2v",
    "WanVideoToVideoPipeline": "wan-t2v",
    "WanImageToVideoPipeline": "wan-i2v",
    "WanVACEPipeline": "wan-vace",
    "LTXPipeline": "ltx",
    "LTXConditionPipeline": "ltx",
    "LTXImageToVideoPipeline": "ltx",
    "LTX2Pipeline": "ltx2",
    "LTX2ImageToVideoPipeline": "ltx2",
    "LTX2ConditionPipeline": "ltx2",
    "LTX2HDRPipeline": "ltx2-hdr",
}


def register_family(caps: Capabilities, pipeline_classes: tuple[str, ...]) -> None:
    """Let a bundled or plugin model declare its family (called by its light package)."""
    FAMILIES[caps.family] = caps
    for name in pipeline_classes:
        PIPELINE_FAMILIES[name] = caps.family
