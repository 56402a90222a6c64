"""ShotSpec: one JSON document that describes a shot completely.

The same file drives the Blender panel, the CLI and the farm. It is checked here, before any
process starts, and every message names the field and the values it allows. Standard library
only, so it imports inside Blender's Python.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import types
import typing
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from .capabilities import ALL_MODES, CHAIN_MODES, CONTROL_KINDS, UPSAMPLE_CHOICES
from .errors import SoraError, invalid
from .model_files import Components, Lora, validate as validate_model_files

SPEC_VERSION = 1
DEFAULT_MODEL = "tinyworld"
DIRECTIONS = ("forward", "backward")
DEVICES_HELP = "auto, cpu, cuda, cuda:N or mps"
MATCH_MODES = ("none", "linear", "display")
DTYPES = ("auto", "float32", "float16", "bfloat16")
MEMORY_STRATEGIES = ("none", "model_cpu_offload", "group_offload", "vae_tiling")
NAME_RE = re.compile(r"\A[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")     # \Z: no trailing newline
DEVICE_RE = re.compile(r"\A(auto|cpu|mps|cuda(:\d+)?)\Z")
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")        # refused in every string field...
PROMPT_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")   # ...prompts keep tab/newline
PROMPT_FIELDS = ("prompt", "negative_prompt")

# One table of allowed values, by dotted field path (list items drop their index): validation,
# the planner and the JSON Schema all read it, so a farm tool accepts exactly what the worker does.
RANGES: dict[str, tuple[type, float, float]] = {
    "seed": (int, 0, 2**63 - 1),
    "steps": (int, 1, 1000),
    "guidance": (float, 0.0, 50.0),
    "guidance_2": (float, 0.0, 50.0),
    "width": (int, 1, 8192),
    "height": (int, 1, 8192),
    "frames": (int, 1, 100_000),
    "fps": (float, 0.1, 1000.0),
    "duration": (float, 0.01, 3600.0),
    "prompt_schedule.start": (float, 0.0, 3600.0),
    "passes.length": (int, 1, 10_000),
    "passes.overlap": (int, 1, 10_000),
    "inputs.context": (int, 1, 1000),
    "inputs.strength": (float, 0.0, 1.0),
    "inputs.keyframes.index": (int, 0, 100_000),
    "inputs.control_strength": (float, 0.0, 2.0),
    "output.first_frame": (int, 0, 9_999_999),
}
CHOICES: dict[str, tuple[str, ...]] = {
    "mode": ALL_MODES,
    "upsample": UPSAMPLE_CHOICES,
    "inputs.direction": DIRECTIONS,
    "inputs.control_kind": CONTROL_KINDS,
    "passes.match": MATCH_MODES,
    "runtime.dtype": DTYPES,
    "runtime.memory": MEMORY_STRATEGIES,
}
# What each spec hash leaves out (dotted paths): "content" names what is generated, wherever and
# under whatever name it is written (node caches, the frame header); "files" names the same frames
# in the same file names (resume and skip a finished shot in another folder).
HASH_EXCLUSIONS: dict[str, tuple[str, ...]] = {"content": ("output", "inputs.strict"),
                                               "files": ("output.dir", "output.overwrite",
                                                         "inputs.strict")}


@dataclass
class Keyframe:
    """A still that the shot must pass through at output frame ``index`` (0-based)."""

    path: str
    index: int


@dataclass
class Inputs:
    """Conditioning inputs; which ones a mode needs is checked by :meth:`ShotSpec.validate`."""

    image: str | None = None            # animate: the still to start from
    frames: str | None = None           # extend/restyle: sequence pattern (name.####.exr), folder or file
    frame_range: list[int] | None = None  # [first, last] frame numbers of ``frames`` to use
    direction: str = "forward"          # extend: forward (after the last frame) or backward
    context: int | None = None          # extend: how many given frames condition the new ones
    keyframes: list[Keyframe] = field(default_factory=list)  # interpolate
    strength: float = 0.6               # restyle: 0 keeps the input, 1 ignores it
    control: str | None = None          # control: sequence (display-referred) that drives the shot
    control_kind: str = "layout"        # control: what it shows (depth, edges, pose, layout)
    control_strength: float = 1.0       # control: how strongly it is followed, where the model can
    reference: str | None = None        # control: an image for the look (where the model takes one)
    strict: bool = False                # a sequence with gaps or mixed sizes is refused, not noted


@dataclass
class Output:
    """Where frames go: ``<root>/<dir>/<name>.####.exr`` plus ``manifest.json``."""

    dir: str = "shots/shot"
    name: str = "shot"
    first_frame: int | None = None      # None: 1, or continuing the input sequence for extend
    overwrite: bool = False             # replace another shot found in the folder (else refused)


@dataclass
class Color:
    """The view transform that links the model's display-referred frames to scene linear."""

    config: str | None = None           # OCIO config path; None uses the built-in default
    display: str | None = None          # None: the config's default display
    view: str | None = None             # None: the config's default view
    look: str | None = None


@dataclass
class Passes:
    """How a shot longer than one model pass is chained (None: the model's defaults)."""

    length: int | None = None           # frames per pass, at most the model's maximum
    overlap: int | None = None          # frames of each pass that condition the next
    match: str = "linear"               # colour/brightness drift correction: none, linear, display


@dataclass
class PromptChange:
    """From ``start`` seconds into the shot on, the prompt is ``prompt``."""

    start: float
    prompt: str


@dataclass
class Runtime:
    device: str = "auto"
    dtype: str = "auto"
    memory: str = "none"


@dataclass
class ShotSpec:
    mode: str = "generate"
    prompt: str = ""
    negative_prompt: str = ""
    model: str = DEFAULT_MODEL
    components: Components = field(default_factory=Components)   # one-file overrides of the base
    loras: list[Lora] = field(default_factory=list)
    seed: int = 0
    steps: int | None = None            # None: the model's default
    guidance: float | None = None
    guidance_2: float | None = None     # the low-noise expert's guidance (two-expert models)
    upsample: str = "auto"              # two stages with the folder's latent upsampler: auto, on, off
    preset: str | None = None           # a named preset of the model or a LoRA (presets.py)
    width: int | None = None
    height: int | None = None
    frames: int | None = None
    fps: float | None = None
    duration: float | None = None       # seconds; sets frames from fps when frames is None
    prompt_schedule: list[PromptChange] = field(default_factory=list)
    passes: Passes = field(default_factory=Passes)
    inputs: Inputs = field(default_factory=Inputs)
    output: Output = field(default_factory=Output)
    color: Color = field(default_factory=Color)
    runtime: Runtime = field(default_factory=Runtime)
    version: int = SPEC_VERSION

    # ---- serialisation -------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: Any) -> "ShotSpec":
        """Build and validate a spec; unknown keys and wrong types raise ``invalid_input``."""
        spec = _build(cls, data, "")
        spec.validate()
        return spec

    @classmethod
    def from_json(cls, text: str, source: str = "spec") -> "ShotSpec":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SoraError("invalid_input", f"{source} is not valid JSON: {exc.msg} "
                            f"at line {exc.lineno} column {exc.colno}") from None
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> "ShotSpec":
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SoraError("not_found", f"spec file not found: {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise SoraError("invalid_input", f"cannot read spec file {path}: {exc}") from None
        return cls.from_json(text, source=str(path))

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)

    def save(self, path: str | Path) -> None:
        """Write atomically so a farm never reads half a spec."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(self.to_json() + "\n", encoding="utf-8")
        tmp.replace(path)

    def spec_hash(self, scope: str = "content") -> str:
        """Identity of the shot, leaving out :data:`HASH_EXCLUSIONS` ``[scope]``: equal
        ``content`` hashes mean identical frames, equal ``files`` hashes identical files."""
        data = self.to_dict()
        for path in HASH_EXCLUSIONS[scope]:
            *parents, last = path.split(".")
            node = data
            for key in parents:
                node = node[key]
            node.pop(last)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    # ---- validation ----------------------------------------------------------------------
    def validate(self) -> None:
        """Check values and the inputs each mode needs; raise naming field and allowed values."""
        _check_strings(self, "")
        _check("mode", self.mode)
        _check("upsample", self.upsample)
        if not isinstance(self.model, str) or not self.model.strip():
            raise invalid("model", "must name a model folder or a path to one")
        for name in ("seed", "steps", "guidance", "guidance_2", "width", "height", "frames", "fps",
                     "duration"):
            if getattr(self, name) is not None:
                _check(name, getattr(self, name))
        if self.duration is not None and self.frames is not None:
            raise invalid("duration", "give frames or duration, not both")
        for i, change in enumerate(self.prompt_schedule):
            _check("prompt_schedule.start", change.start, f"prompt_schedule[{i}].start")
            if not change.prompt.strip():
                raise invalid(f"prompt_schedule[{i}].prompt", "must not be empty")
        if self.prompt_schedule and self.mode not in CHAIN_MODES:
            raise invalid("prompt_schedule", f"{self.mode} makes one pass; a schedule needs "
                          f"{', '.join(CHAIN_MODES)}")
        for name in ("length", "overlap"):
            if getattr(self.passes, name) is not None:
                _check(f"passes.{name}", getattr(self.passes, name))
        _check("passes.match", self.passes.match)
        if self.mode in ("generate", "restyle", "control") and not self.prompt.strip():
            raise invalid("prompt", f"{self.mode} needs a prompt describing the shot")
        validate_model_files(self.components, self.loras)
        self._validate_inputs()
        self._validate_output()
        _check("runtime.dtype", self.runtime.dtype)
        _check("runtime.memory", self.runtime.memory)
        if not DEVICE_RE.match(self.runtime.device):
            raise invalid("runtime.device", f"{self.runtime.device!r} is not one of {DEVICES_HELP}")

    def _validate_inputs(self) -> None:
        inputs, mode = self.inputs, self.mode
        _check("inputs.direction", inputs.direction)
        _check("inputs.strength", inputs.strength)
        if inputs.context is not None:
            _check("inputs.context", inputs.context)
        if inputs.frame_range is not None:
            fr = inputs.frame_range
            if (len(fr) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in fr)
                    or fr[0] > fr[1]):
                raise invalid("inputs.frame_range", "must be [first, last] frame numbers with first <= last")
        if mode == "animate" and not inputs.image:
            raise invalid("inputs.image", "animate needs a still image to start from")
        if mode in ("extend", "restyle", "hdr") and not inputs.frames:
            raise invalid("inputs.frames", f"{mode} needs a frame sequence (name.####.exr, a folder or a file)")
        _check("inputs.control_kind", inputs.control_kind)
        _check("inputs.control_strength", inputs.control_strength)
        if mode == "control" and not inputs.control:
            raise invalid("inputs.control", "control needs a control sequence (depth, edges, pose or "
                          "layout frames: name.####.png, a folder or a file)")
        if mode == "restyle" and inputs.strength <= 0.0:
            raise invalid("inputs.strength", "restyle needs a strength above 0 (0 would return the input)")
        if mode == "interpolate":
            if len(inputs.keyframes) < 2:
                raise invalid("inputs.keyframes", "interpolate needs at least two keyframes {path, index}")
            for i, key in enumerate(inputs.keyframes):
                _check("inputs.keyframes.index", key.index, f"inputs.keyframes[{i}].index")
            indices = [k.index for k in inputs.keyframes]
            if len(set(indices)) != len(indices):
                raise invalid("inputs.keyframes", "keyframe indices must be distinct and >= 0")
            if self.frames is not None and max(indices) >= self.frames:
                raise invalid("inputs.keyframes", f"keyframe index {max(indices)} is past the last "
                              f"frame (frames={self.frames}, indices count from 0)")

    def _validate_output(self) -> None:
        out = self.output
        if not NAME_RE.match(out.name or ""):
            raise invalid("output.name", f"{out.name!r} must be 1-100 letters, digits, '.', '_' or '-' "
                          "and start with a letter or digit")
        if not isinstance(out.dir, str) or not out.dir.strip():
            raise invalid("output.dir", "must be a folder path")
        if out.first_frame is not None:
            _check("output.first_frame", out.first_frame)


# ---- helpers -----------------------------------------------------------------------------

_TYPES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _check(path: str, value: Any, name: str | None = None) -> None:
    """Check ``value`` against the :data:`RANGES`/:data:`CHOICES` entry for ``path``."""
    name = name or path
    if path in CHOICES:
        if value not in CHOICES[path]:
            raise invalid(name, f"{value!r} is not allowed; use one of: {', '.join(CHOICES[path])}")
        return
    kind, low, high = RANGES[path]
    if kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    else:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and low <= float(value) <= high
    if not ok:
        raise invalid(name, f"{value!r} must be {'an integer' if kind is int else 'a number'} "
                      f"from {low} to {high}")


def _check_strings(node: Any, prefix: str) -> None:
    """Every string of the spec is free of control characters (a prompt may hold tabs and line
    breaks, never NUL): they would end up in file names, logs and provenance headers."""
    for f in fields(node):
        value, name = getattr(node, f.name), prefix + f.name
        items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
        for i, item in items:
            where = name if i is None else f"{name}[{i}]"
            if dataclasses.is_dataclass(item):
                _check_strings(item, where + ".")
            elif isinstance(item, str):
                bad = (PROMPT_CONTROL_CHARS if f.name in PROMPT_FIELDS else CONTROL_CHARS).search(item)
                if bad:
                    raise invalid(where, f"holds the control character {bad.group()!r} at position "
                                  f"{bad.start()}", hint="remove it (a trailing newline counts)")


def _build(cls, data: Any, prefix: str):
    """Instantiate dataclass ``cls`` from ``data``, naming the exact key on any mismatch."""
    where = prefix.rstrip(".") or "spec"
    if not isinstance(data, dict):
        raise invalid(where, f"must be a JSON object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = [f.name for f in fields(cls)]
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise invalid(prefix + unknown[0], f"unknown field; allowed fields here: {', '.join(known)}")
    required = [f.name for f in fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    missing = [k for k in required if k not in data]
    if missing:
        raise invalid(prefix + missing[0], "is required")
    values = {}
    for key, value in data.items():
        values[key] = _coerce(hints[key], value, prefix + key)
    return cls(**values)


def _coerce(hint: Any, value: Any, name: str):
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        hint = next(a for a in args if a is not type(None))
        return _coerce(hint, value, name)
    if origin is list:
        if not isinstance(value, list):
            raise invalid(name, f"must be a list, got {type(value).__name__}")
        return [_coerce(args[0], v, f"{name}[{i}]") for i, v in enumerate(value)]
    if isinstance(hint, type) and hasattr(hint, "__dataclass_fields__"):
        return _build(hint, value, name + ".")
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in _TYPES and (not isinstance(value, hint) or (hint is int and isinstance(value, bool))):
        raise invalid(name, f"must be {_TYPES[hint]}, got {json.dumps(value)}")
    return value
