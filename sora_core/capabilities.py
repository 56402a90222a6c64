"""What each model family can do, and fitting a request to it before anything launches.

Capabilities live in the light half so that a host (Blender, the CLI, a farm submitter) can
grey out impossible choices and show the rounded size without importing torch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from .errors import invalid

ALL_MODES = ("generate", "animate", "extend", "interpolate", "restyle")


@dataclass(frozen=True)
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

    @property
    def default_frames(self) -> int:
        """About two seconds, fitted to the frame rule."""
        wanted = min(self.max_frames, int(2 * self.default_fps) + self.frame_offset)
        return self.fit_frames(max(wanted, self.min_frames))[0]

    def to_dict(self) -> dict:
        return asdict(self)

    def frame_rule(self) -> str:
        """Human-readable frame-count rule, e.g. ``4k+1``."""
        if self.frame_multiple == 1:
            return "any count"
        return f"{self.frame_multiple}k+{self.frame_offset}" if self.frame_offset else f"{self.frame_multiple}k"

    def supports(self, mode: str) -> bool:
        return mode in self.modes

    def fit_frames(self, frames: int, max_frames: int | None = None) -> tuple[int, str]:
        """Nearest valid frame count, with a notice when it differs; impossible counts raise."""
        limit = max_frames or self.max_frames
        if frames < self.min_frames or frames > limit:
            raise invalid("frames", f"{frames} is outside what {self.family} can make in one pass "
                          f"({self.min_frames}..{limit}, {self.frame_rule()})",
                          hint="use a long shot (several passes) for more frames" if frames > limit else "")
        step = self.frame_multiple
        fitted = round((frames - self.frame_offset) / step) * step + self.frame_offset
        while fitted > limit:
            fitted -= step
        while fitted < self.min_frames:
            fitted += step
        if fitted == frames:
            return frames, ""
        return fitted, f"frames rounded from {frames} to {fitted} ({self.family} needs {self.frame_rule()})"

    def fit_size(self, name: str, value: int) -> tuple[int, str]:
        """Nearest multiple of the size step within range, with a notice when it differs."""
        if value < self.min_size or value > self.max_size:
            raise invalid(name, f"{value} is outside {self.min_size}..{self.max_size} for {self.family}")
        m = self.size_multiple
        fitted = max(self.min_size, min(self.max_size, int(round(value / m)) * m))
        if fitted == value:
            return value, ""
        return fitted, f"{name} rounded from {value} to {fitted} ({self.family} needs a multiple of {m})"


FAMILIES: dict[str, Capabilities] = {
    "wan-t2v": Capabilities("wan-t2v", ("generate", "restyle"), 4, 1, 5, 81, 16, 16, 1280,
                            30, 5.0, 16.0, (832, 480), 380, 5),
    "wan-i2v": Capabilities("wan-i2v", ("animate", "interpolate"), 4, 1, 5, 81, 16, 16, 1280,
                            30, 5.0, 16.0, (832, 480), 380, 5),
    "wan-vace": Capabilities("wan-vace", ("generate", "animate", "extend", "interpolate"),
                             4, 1, 5, 81, 16, 16, 1280, 30, 5.0, 16.0, (832, 480), 380, 5),
    "ltx": Capabilities("ltx", ALL_MODES, 8, 1, 9, 257, 32, 32, 1280, 40, 3.0, 24.0,
                        (704, 480), 90, 9),
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
}


def register_family(caps: Capabilities, pipeline_classes: tuple[str, ...]) -> None:
    """Let a bundled or plugin model declare its family (called by its light package)."""
    FAMILIES[caps.family] = caps
    for name in pipeline_classes:
        PIPELINE_FAMILIES[name] = caps.family


@dataclass
class Fitted:
    """A request after fitting: the values to use and the notices to show the user."""

    frames: int
    width: int
    height: int
    notices: list[str] = field(default_factory=list)


def fit_request(caps: Capabilities, mode: str, frames: int, width: int, height: int,
                max_frames: int | None = None) -> Fitted:
    """Check mode, frame count and size against ``caps``; round near misses with notices."""
    if not caps.supports(mode):
        raise invalid("mode", f"{caps.family} models cannot {mode}; they can: {', '.join(caps.modes)}")
    notices = []
    frames, note = caps.fit_frames(frames, max_frames)
    notices += [note] if note else []
    width, note = caps.fit_size("width", width)
    notices += [note] if note else []
    height, note = caps.fit_size("height", height)
    notices += [note] if note else []
    return Fitted(frames, width, height, notices)
