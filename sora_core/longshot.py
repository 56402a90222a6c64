"""Long shots as chains of passes: the arithmetic of lengths, overlaps, prompts and numbering.

Every model makes one short pass at a time. A longer shot is a chain: each pass is conditioned
on the last ``overlap`` frames already made (or, for an extension, on the given sequence) and
writes the frames after them. A pass's length must follow the model's frame rule, so a pass
that needs fewer new frames makes the smallest valid count and the extra frames are dropped.
A prompt switch forces a pass boundary, so the prompt changes exactly at its frame.
Light half: pure arithmetic, shared by the worker, hosts and tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .capabilities import Capabilities
from .errors import invalid

MAX_SHOT_SECONDS = 300      # long shots are chained passes; beyond this, split into shots


@dataclass(frozen=True)
class Pass:
    """One model call. Positions count frames of the pass; ``start`` counts the shot's new frames."""

    index: int
    frames: int         # frames the model makes: context + new + dropped extras
    context: int        # known frames that condition this pass
    new: int            # frames this pass adds to the shot
    start: int          # shot timeline index (0 = first new frame in time order) of its first new frame
    prompt: str
    seed: int


def smallest_valid(caps: Capabilities, at_least: int) -> int:
    """The smallest frame count the model accepts that is at least ``at_least``."""
    count = max(at_least, caps.min_frames)
    step = caps.frame_multiple
    return caps.frame_offset + math.ceil((count - caps.frame_offset) / step) * step


def largest_valid(caps: Capabilities, at_most: int, field: str = "passes.length") -> int:
    """The largest frame count the model accepts that is at most ``at_most``."""
    step = caps.frame_multiple
    count = caps.frame_offset + ((min(at_most, caps.max_frames) - caps.frame_offset) // step) * step
    if count < caps.min_frames:
        raise invalid(field, f"{at_most} frames is below the model's minimum pass "
                      f"({caps.min_frames}, {caps.frame_rule()})")
    return count


def switch_frames(schedule: list[tuple[float, str]], fps: float, total: int) -> list[tuple[int, str]]:
    """Prompt schedule (seconds, prompt) as (first frame index, prompt), inside the shot only."""
    out = []
    for start, prompt in sorted(schedule):
        frame = math.ceil(start * fps - 1e-9)
        if 0 < frame < total:
            out.append((frame, prompt))
    return out


def prompt_at(frame: int, base: str, switches: list[tuple[int, str]]) -> str:
    prompt = base
    for first, text in switches:
        if frame >= first:
            prompt = text
    return prompt


def plan_passes(caps: Capabilities, total: int, prompt: str, seed: int, *,
                pass_length: int | None = None, overlap: int | None = None,
                first_context: int = 0, switches: list[tuple[int, str]] = (),
                backward: bool = False) -> list[Pass]:
    """Split ``total`` new frames into passes.

    ``first_context`` is how many given frames condition the first pass (extend: the input's
    tail or head; generate: 0). ``switches`` are (frame index, prompt) in shot time order.
    Backward chains grow towards the start: pass 0 makes the frames just before the input.
    """
    if total < 1:
        raise invalid("frames", f"{total} new frames: a shot needs at least one")
    length = largest_valid(caps, min(pass_length or caps.max_frames, caps.max_frames))
    k = caps.default_context if overlap is None else overlap
    if not 1 <= k < length:
        raise invalid("passes.overlap", f"{k} must be from 1 to {length - 1} (one less than the "
                      f"pass length {length}) so every pass adds frames")
    first_context = min(first_context, length - 1)
    # In chain order (pass 0 first) a boundary at shot frame s sits at chain position s,
    # or at total - s when the chain runs backwards in time.
    cuts = sorted({(total - s) if backward else s for s, _ in switches})
    passes: list[Pass] = []
    cursor = 0
    while cursor < total:
        context = first_context if not passes else k
        next_cut = next((c for c in cuts if c > cursor), total)
        new = min(length - context, total - cursor, next_cut - cursor)
        start = total - cursor - new if backward else cursor
        passes.append(Pass(len(passes), smallest_valid(caps, context + new), context, new, start,
                           prompt_at(start, prompt, list(switches)), seed + len(passes)))
        cursor += new
    return passes


def positions(p: Pass, backward: bool) -> tuple[range, range]:
    """(known positions, written positions) inside the pass's frames."""
    if backward:
        written_end = p.frames - p.context
        return range(written_end, p.frames), range(written_end - p.new, written_end)
    return range(0, p.context), range(p.context, p.context + p.new)


def drift_correction(produced: np.ndarray, reference: np.ndarray):
    """Correct colour and brightness drift: the gain and offset per channel that make the
    model's version of the given frames (``produced``) match them (``reference``) in mean and
    spread, as a function to apply to any frames (a pass streams through it frame by frame).
    Gains are bounded so a flat reference cannot blow up."""
    axes = tuple(range(produced.ndim - 1))
    mean_p, mean_r = produced.mean(axis=axes), reference.mean(axis=axes)
    std_p, std_r = produced.std(axis=axes), reference.std(axis=axes)
    gain = np.where(std_p > 1e-4, std_r / np.maximum(std_p, 1e-4), 1.0).clip(0.5, 2.0)
    return lambda frames: (frames - mean_p) * gain + mean_r

