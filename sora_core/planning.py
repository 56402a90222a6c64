"""The one planner: what a request becomes, decided once for every host.

``plan(spec, capabilities, available)`` turns a ShotSpec into a :class:`Plan`: the size,
frame rate, steps and guidance to use, the chain of passes with their prompts and seeds, the
given frames that condition the first pass, the numbering of the written frames and every
notice the user should see. The worker executes a Plan; Blender, the CLI's ``--save-spec`` and
the Qt panel preview the same Plan, so what a host shows is what the worker makes.

Light half: no file is opened or stat-ed here. What a host knows of the inputs on disk comes
in as :class:`Available` (a sequence listed once), so a panel can plan on every redraw.
Near misses are rounded and out-of-range values clamped, each with a notice; what cannot be
made at all raises a :class:`SoraError` naming the field.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from .capabilities import CHAIN_MODES, SEQUENCE_MODES, TWO_STAGE_MODES, Capabilities
from .errors import SoraError, invalid
from .frames.sequence import select_range
from .longshot import MAX_SHOT_SECONDS, Pass, largest_valid, plan_passes, positions, switch_frames
from .presets import Preset
from .spec import ShotSpec


@dataclass(frozen=True, kw_only=True)
class Available:
    """The inputs on disk as the host listed them: ``sequence`` is every ``(number, path)`` of
    the sequence the mode reads (``inputs.frames``, or ``inputs.control`` for control; sorted,
    before ``inputs.frame_range``), None when not listed."""

    sequence: tuple[tuple[int, str], ...] | None = None   # the mode's sequence (SEQUENCE_MODES)


@dataclass(frozen=True, kw_only=True)
class Plan:
    """Everything decided before a model is loaded."""

    spec: ShotSpec
    family: str
    mode: str
    width: int
    height: int
    fps: float
    steps: int
    guidance: float
    passes: tuple[Pass, ...]
    guidance_2: float | None = None     # the low-noise expert's (two-expert models only)
    upsample: int = 1                   # 2: each pass made at half size, upsampled, refined (two stages)
    preset: dict | None = None          # the preset that ran (presets.Preset.to_dict)
    first_number: int                   # number of the earliest written frame
    backward: bool = False              # the chain grows towards the start (extend backward)
    first_known: dict[int, str] = field(default_factory=dict)  # pass 0: position -> given file
    video: tuple[str, ...] = ()         # restyle source / control files, in order
    notices: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        """Frames the shot adds."""
        return sum(p.new for p in self.passes)

    @property
    def numbers(self) -> range:
        """The frame numbers the shot writes."""
        return range(self.first_number, self.first_number + self.total)

    def summary(self) -> str:
        """``16 frames in one pass`` or ``40 frames in 3 passes of up to 16 frames``."""
        if len(self.passes) == 1:
            return f"{self.total} frames in one pass"
        return (f"{self.total} frames in {len(self.passes)} passes of up to "
                f"{max(p.frames for p in self.passes)} frames")


def plan(spec: ShotSpec, caps: Capabilities, available: Available | None = None, preset=None) -> Plan:
    """Decide what ``spec`` becomes on a model with ``caps``; raise when it cannot be made."""
    available = available or Available()
    mode = spec.mode
    if not caps.supports(mode):
        raise invalid("mode", f"{caps.family} cannot {mode}; it can: {', '.join(caps.modes)}",
                      hint="choose another mode or a model that can " + mode)
    kind = spec.inputs.control_kind
    if mode == "control" and kind not in caps.control_kinds:
        raise invalid("inputs.control_kind", f"{caps.family} follows {', '.join(caps.control_kinds) or 'no'} "
                      f"control, not {kind}", hint="render another control pass or choose another model")
    notes: list[str] = list(caps.notes)     # how the model's rules were read
    fps = spec.fps or caps.default_fps
    upsample = _upsample(spec, caps, notes)
    sizes = caps if upsample == 1 else dataclasses.replace(
        caps, size_multiple=caps.size_multiple * upsample,
        min_size=max(caps.min_size, caps.size_multiple * upsample))
    width = _fit_size(sizes, "width", spec.width or caps.default_size[0], notes)
    height = _fit_size(sizes, "height", spec.height or caps.default_size[1], notes)
    if upsample > 1:
        notes.append(f"two stages: made at {width // upsample}x{height // upsample}, upsampled x{upsample} "
                     f"by the latent upsampler and refined at {width}x{height}")
    wanted = spec.frames or (round(spec.duration * fps) if spec.duration else None)
    chains = mode in CHAIN_MODES and caps.chains
    if chains and wanted and wanted > MAX_SHOT_SECONDS * fps:
        limit = int(MAX_SHOT_SECONDS * fps)
        notes.append(f"frames {wanted} -> {limit} (a shot is at most {MAX_SHOT_SECONDS} s; split longer ones)")
        wanted = limit
    sequence = _sequence(spec, available) if mode in SEQUENCE_MODES else ()
    chain = dict(pass_length=spec.passes.length, overlap=spec.passes.overlap)
    schedule = [(c.start, c.prompt) for c in spec.prompt_schedule]
    first_known: dict[int, str] = {}
    video: tuple[str, ...] = ()
    backward = mode == "extend" and spec.inputs.direction == "backward"
    first_number = 1 if spec.output.first_frame is None else spec.output.first_frame

    if mode == "extend":
        context = min(spec.inputs.context or caps.default_context, len(sequence), caps.max_frames - 1)
        new = wanted or max(1, caps.default_frames - context)
        if context + new <= caps.max_frames and spec.passes.length is None:
            total = caps.nearest_frames(context + new)
            if total - context < 1:
                raise invalid("frames", f"{context} context frames leave no room for new frames in one "
                              f"pass of {total}", hint="lower inputs.context")
            if total - context != new:
                notes.append(f"new frames rounded from {new} to {total - context} ({caps.family} needs "
                             f"{caps.frame_rule()} frames including {context} context frames)")
            new = total - context
        passes = plan_passes(caps, new, spec.prompt, spec.seed, first_context=context,
                             switches=switch_frames(schedule, fps, new), backward=backward, **chain)
        known_pos, _ = positions(passes[0], backward)
        given = sequence[:context] if backward else sequence[len(sequence) - context:]
        first_known = {pos: path for pos, (_, path) in zip(known_pos, given)}
        if spec.output.first_frame is None:
            first_number = sequence[0][0] - new if backward else sequence[-1][0] + 1
        if first_number < 0:
            raise invalid("output.first_frame", f"extending backwards from frame {sequence[0][0]} by "
                          f"{new} frames would number frames below 0",
                          hint=f"set output.first_frame to renumber the new frames, or ask for at most "
                               f"{sequence[0][0]} new frames")
    elif mode in CHAIN_MODES:      # generate, animate
        total = wanted or caps.default_frames
        if total > caps.max_frames and not chains:
            total = _clamp_frames(caps, total, notes, "and cannot extend to chain passes")
        if total <= caps.max_frames and spec.passes.length is None:
            total = _round_frames(caps, total, notes)
        passes = plan_passes(caps, total, spec.prompt, spec.seed,
                             switches=switch_frames(schedule, fps, total), **chain)
        if mode == "animate":
            first_known[0] = spec.inputs.image
    else:                           # interpolate, restyle and control make exactly one pass
        if mode in SEQUENCE_MODES:  # a source frame for every frame made
            total = wanted or min(len(sequence), caps.max_frames)
            if total > len(sequence):
                raise invalid(f"inputs.{SEQUENCE_MODES[mode]}", f"{mode} asks for {total} frames but the "
                              f"sequence has {len(sequence)}",
                              hint="ask for fewer frames or give a longer sequence")
        else:
            total = wanted or caps.default_frames
        total = _clamp_frames(caps, total, notes, "in its one pass")
        if mode in SEQUENCE_MODES and caps.nearest_frames(total) > len(sequence):
            fitted = largest_valid(caps, len(sequence), f"inputs.{SEQUENCE_MODES[mode]}")
            notes.append(f"frames reduced to {fitted} to fit the {len(sequence)} input frames "
                         f"({caps.family} needs {caps.frame_rule()})")
            total = fitted
        total = _round_frames(caps, total, notes)
        if mode in SEQUENCE_MODES:
            video = tuple(path for _, path in sequence[:total])
        else:
            first_known = _keyframes(spec, total, notes)
        passes = [Pass(0, total, 0, total, 0, spec.prompt, spec.seed)]

    if len(passes) > 1:
        if not caps.chains:
            raise invalid("frames", f"{len(passes)} passes are needed, but {caps.family} models cannot "
                          "extend, so they cannot chain passes",
                          hint="use at most one pass of frames, or a model that can extend")
        notes.append(f"long shot: {sum(p.new for p in passes)} frames in {len(passes)} passes of up "
                     f"to {max(p.frames for p in passes)} frames")
    for text in dict.fromkeys([spec.prompt, *(c.prompt for c in spec.prompt_schedule)]):
        if len(text.split()) > caps.max_prompt_words:
            notes.append(f"prompt has {len(text.split())} words; {caps.family} reads about "
                         f"{caps.max_prompt_words}, the rest may be ignored")
    chosen = preset or Preset("", "")           # a preset fills in what the spec leaves unset
    guidance = next(g for g in (spec.guidance, chosen.guidance, caps.default_guidance) if g is not None)
    guidance_2 = None
    if caps.experts >= 2:
        guidance_2 = next(g for g in (spec.guidance_2, chosen.guidance_2, caps.default_guidance_2, guidance)
                          if g is not None)
    elif spec.guidance_2 is not None:
        notes.append(f"guidance_2 is ignored: {caps.family} models have one expert")
    if preset is not None:
        notes.append(f"preset {preset.name} ({Path(preset.source).name}): "
                     f"{spec.steps or chosen.steps or caps.default_steps} steps, guidance {guidance:g}")
    return Plan(spec=spec, family=caps.family, mode=mode, width=width, height=height, fps=fps,
                steps=spec.steps or chosen.steps or caps.default_steps, guidance=guidance, guidance_2=guidance_2,
                preset=preset.to_dict() if preset else None,
                upsample=upsample, passes=tuple(passes), first_number=first_number, backward=backward,
                first_known=first_known, video=video, notices=tuple(notes))


def _sequence(spec: ShotSpec, available: Available) -> tuple[tuple[int, str], ...]:
    """The input frames the shot uses: the listing within ``inputs.frame_range``."""
    name = SEQUENCE_MODES[spec.mode]
    ref = getattr(spec.inputs, name)
    if available.sequence is None or not available.sequence:
        raise SoraError("not_found", f"inputs.{name}: no frames found at {ref}", field=f"inputs.{name}",
                        hint="render the sequence first, or give a pattern (name.####.exr), a folder "
                        "or a file")
    return tuple(select_range(list(available.sequence), str(ref), spec.inputs.frame_range))


def _upsample(spec: ShotSpec, caps: Capabilities, notes: list[str]) -> int:
    """The two-stage scale ``spec.upsample`` asks for on this model (1: one stage)."""
    if spec.upsample == "off" or (spec.upsample == "auto" and not caps.upsampler):
        return 1
    if not caps.upsampler:
        raise invalid("upsample", f"on needs a latent upsampler, and this {caps.family} model has none",
                      hint="put the model's latent_upsampler/ folder beside its weights, or set "
                           "upsample to auto or off")
    if spec.mode not in TWO_STAGE_MODES:
        if spec.upsample == "on":
            notes.append(f"upsample on is ignored: {spec.mode} runs in one stage")
        return 1
    return caps.upsampler


def _fit_size(caps: Capabilities, name: str, value: int, notes: list[str]) -> int:
    if not caps.min_size <= value <= caps.max_size:
        clamped = min(max(value, caps.min_size), caps.max_size)
        notes.append(f"{name} {value} -> {clamped} ({caps.family} makes {caps.min_size}..{caps.max_size})")
        value = clamped
    fitted = caps.nearest_size(value)
    if fitted != value:
        notes.append(f"{name} rounded from {value} to {fitted} ({caps.family} needs a multiple of "
                     f"{caps.size_multiple})")
    return fitted


def _clamp_frames(caps: Capabilities, frames: int, notes: list[str], why: str) -> int:
    if frames > caps.max_frames:
        notes.append(f"frames {frames} -> {caps.max_frames} ({caps.family} makes {caps.min_frames}.."
                     f"{caps.max_frames} {why})")
        return caps.max_frames
    return frames


def _round_frames(caps: Capabilities, frames: int, notes: list[str]) -> int:
    fitted = caps.nearest_frames(frames)
    if fitted != frames:
        notes.append(f"frames rounded from {frames} to {fitted} ({caps.family} needs {caps.frame_rule()})")
    return fitted


def _keyframes(spec: ShotSpec, total: int, notes: list[str]) -> dict[int, str]:
    """Keyframe files by output index; a keyframe past the fitted length moves to the last frame
    (a host's "frames a..b" becomes the model's nearest length)."""
    known: dict[int, str] = {}
    for key in sorted(spec.inputs.keyframes, key=lambda k: k.index):
        index = min(key.index, total - 1)
        if index != key.index:
            notes.append(f"keyframe at index {key.index} moved to {index}, the last frame")
        known[index] = key.path
    if len(known) < 2:
        raise invalid("inputs.keyframes", "keyframes collapse onto one frame after fitting",
                      hint="space the keyframes further apart or ask for more frames")
    return known
