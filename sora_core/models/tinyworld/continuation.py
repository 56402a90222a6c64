"""Continuation clips: the later part of a longer trajectory, whose first k frames are known.

A long shot is a chain of passes, each conditioned on the last frames of the one before
(``sora_core.longshot``). Clips that only ever start a scene teach a model that a context with an
object at the edge, or an empty frame, is followed by "the prompt's objects in view"; that is
the pop-in every few seconds. These clips start ``start`` frames into a scene's own timeline
(4 to 60: up to four passes later) with the first ``k`` frames known, so the model sees what
the world does next: a mover reaches the edge and leaves and the frame stays empty under the
same prompt; or the prompt changes to a new object "entering from ..." and it comes in from
that edge after the known frames, while what was already in view carries on.
Zoomed scenes are not continued (the zoom would compound pass after pass).
"""

from __future__ import annotations

import numpy as np

from . import world
from .sampling import TRAIN_WORLD, sample_scene

MAX_START = 60
NEW_PROMPT = 0.3          # share of clips where the prompt switches to a new entering object


def context_frames(rng: np.random.Generator) -> int:
    """Known frames: mostly the long shot's default context, otherwise 2..8."""
    from . import DEFAULT_CONTEXT
    return DEFAULT_CONTEXT if rng.random() < 0.6 else int(rng.integers(2, 9))


def entrant(rng: np.random.Generator, scene: world.Scene, k: int) -> world.Obj | None:
    """A new object of a colour not in the scene, out of view for the first k frames of the clip,
    then entering from behind its direction."""
    taken = {o.color for o in scene.objects}
    colors = [c for c in world.COLOR_NAMES if c not in taken]
    if not colors:
        return None
    c = colors[rng.integers(len(colors))]
    s = world.SHAPES[rng.integers(len(world.SHAPES))]
    d = ("left", "right", "up", "down")[rng.integers(4)]
    if world.is_held_out(c, s, "moving " + d):
        return None
    along = rng.uniform(-14.0, -9.0) - world.SPEED * (k - 1)      # at clip frame 0, positive direction
    across = rng.uniform(world.SIZE * 0.15, world.SIZE * 0.85)
    along -= world.SPEED * scene.start                             # on the object's own timeline
    if d in ("left", "up"):
        along = world.SIZE - along
    x, y = (along, across) if d in ("left", "right") else (across, along)
    return world.Obj(c, s, "moving " + d, float(x), float(y), "entering")


def continuation_clip(seed: int) -> tuple[str, np.ndarray, world.Scene, int]:
    """Caption, frames, scene and number of known leading frames of one continuation clip."""
    rng = np.random.default_rng(seed)
    kw = dict(TRAIN_WORLD, zoom=0.0, events=0.0, leave=0.0)
    scene = sample_scene(rng, **kw)
    scene.start = int(rng.integers(4, MAX_START + 1))
    k = context_frames(rng)
    caption = scene.caption()
    if rng.random() < NEW_PROMPT:
        new = entrant(rng, scene, k)
        if new is not None:
            caption = world.Scene([new], scene.background, scene.camera,
                                  mention_background=scene.mention_background).caption()
            scene.objects.append(new)
            scene.extra["prompt_switch"] = True
    return caption, world.render(scene), scene, k
