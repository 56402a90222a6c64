"""Random TinyWorld scenes: which objects, where they start, background, camera, zoom.

With the default arguments :func:`sample_scene` draws exactly the first world's scenes (one or
two objects that stay in view, static camera or pans), random number for random number, so the
evaluation's first sets stay what they were. The keyword options turn on the second world's
parts: ``events`` (entering / leaving), ``leave`` (a plain mover may leave), ``max_objects=3``,
``cross`` (a path crossing an earlier one, so one object passes in front of another) and ``zoom``.
:data:`TRAIN_WORLD` is the mix the model trains on.
"""

from __future__ import annotations

import numpy as np

from . import world

MARGIN = 9.0
TRAIN_WORLD = dict(events=0.35, leave=0.25, max_objects=3, cross=0.25, zoom=0.15)


def start_position(rng: np.random.Generator, motion: str, event: str = "", stay: bool = True) -> tuple[float, float]:
    """Where an object starts: in view for the whole clip (``stay``), anywhere in view (a mover
    may then leave), wholly outside behind its direction (entering) or in view close enough to
    the edge ahead to be gone by the last frame (leaving)."""
    m, span, size = MARGIN, world.SPEED * (world.FRAMES - 1), world.SIZE
    lo, hi = m, size - m
    if motion.startswith("moving") and (event or not stay):
        d = motion.split()[1]
        if event == "entering":
            along = rng.uniform(-14.0, -9.0)
        elif event == "leaving":
            along = rng.uniform(size - 21.0, size - 9.0)
        else:
            along = rng.uniform(lo, hi)
        across = rng.uniform(lo, hi)
        if d in ("left", "up"):
            along = size - along
        return (along, across) if d in ("left", "right") else (across, along)
    if motion == "moving right":
        return rng.uniform(lo, hi - span), rng.uniform(lo, hi)
    if motion == "moving left":
        return rng.uniform(lo + span, hi), rng.uniform(lo, hi)
    if motion == "moving down":
        return rng.uniform(lo, hi), rng.uniform(lo, hi - span)
    if motion == "moving up":
        return rng.uniform(lo, hi), rng.uniform(lo + span, hi)
    if motion == "bouncing":
        return rng.uniform(lo, hi), rng.uniform(lo + world.BOUNCE_HEIGHT, hi)
    return rng.uniform(lo, hi), rng.uniform(lo, hi)


def sample_object(rng: np.random.Generator, held_out: bool | None = False, exclude_colors=(),
                  events: float = 0.0, leave: float = 0.0) -> world.Obj:
    """One object; ``held_out`` False = training combinations only, True = held-out only, None = any.
    A mover enters or leaves with probability ``events``, else may leave with ``leave``."""
    while True:
        c = world.COLOR_NAMES[rng.integers(len(world.COLOR_NAMES))]
        s = world.SHAPES[rng.integers(len(world.SHAPES))]
        m = world.MOTIONS[rng.integers(len(world.MOTIONS))]
        if c in exclude_colors:
            continue
        if held_out is None or world.is_held_out(c, s, m) == held_out:
            break
    event, stay = "", True
    if m.startswith("moving"):
        if events and rng.random() < events:
            event = world.EVENTS[1 + rng.integers(2)]
        elif leave and rng.random() < leave:
            stay = False
    x0, y0 = start_position(rng, m, event, stay)
    return world.Obj(c, s, m, float(x0), float(y0), event)


def _crossing(rng: np.random.Generator, o: world.Obj, ref: world.Obj) -> bool:
    """Move ``o`` so its path meets ``ref``'s mid-clip; False (``o`` unchanged) if it would leave the frame."""
    mid = world.FRAMES // 2
    dx, dy = ref.track()[mid] - o.track()[mid] + rng.uniform(-3, 3, 2)
    tr = o.track() + (dx, dy)
    if tr.min() < MARGIN or tr.max() > world.SIZE - MARGIN:
        return False
    o.x0, o.y0 = o.x0 + dx, o.y0 + dy
    return True


def _objects(rng, n, held_out, events, leave, cross, extra) -> list[world.Obj]:
    objs = [sample_object(rng, held_out, events=events, leave=leave)]
    for _ in range(n - 1):
        taken = tuple(p.color for p in objs)
        want_cross = bool(cross) and rng.random() < cross
        for _ in range(30):
            o = sample_object(rng, False if held_out else held_out, exclude_colors=taken, events=events, leave=leave)
            if want_cross and not o.event and o.motion.startswith("moving") and _crossing(rng, o, objs[0]):
                extra["crossing"] = True
                others = objs[1:]
            else:
                others = objs
            if not others or min(np.linalg.norm(p.track() - o.track(), axis=1).min() for p in others) >= 15.0:
                break
        objs.append(o)
    return objs


def _fits(scene: world.Scene) -> bool:
    """Every object wholly in view on every frame, at its zoomed size."""
    m = MARGIN * scene.scale()[:, None]
    return all(((tr >= m) & (tr <= world.SIZE - m)).all() for tr in map(scene.screen_track, scene.objects))


def sample_scene(rng: np.random.Generator, n_objects: int | None = None, held_out: bool | None = False,
                 background: str | None = None, camera: str | None = None, *, events: float = 0.0,
                 leave: float = 0.0, max_objects: int = 2, cross: float = 0.0, zoom: float = 0.0) -> world.Scene:
    """A random scene. Objects have different colours and keep apart unless a path is made to cross.
    A zoomed scene has no pan and no entering or leaving, and keeps its objects in view."""
    if n_objects is None:
        if max_objects <= 2:
            n_objects = 1 if rng.random() < 0.6 else 2
        else:
            r = rng.random()
            n_objects = 1 if r < 0.45 else (2 if r < 0.8 else 3)
    zdir = ""
    if zoom and camera in (None, "static") and rng.random() < zoom:
        zdir = world.ZOOMS[1 + rng.integers(2)]
        camera, events, leave = "static", 0.0, 0.0
    extra: dict = {}
    objs = _objects(rng, n_objects, held_out, events, leave, cross, extra)
    if camera is None:
        camera = "static" if rng.random() < 0.5 else world.CAMERAS[1 + rng.integers(4)]
    if background is None:
        background = "ground" if camera != "static" else world.BACKGROUNDS[rng.integers(3)]
    mention = True
    if background == "black" or (background == "ground" and camera != "static"):
        mention = rng.random() < 0.5
    scene = world.Scene(objs, background, camera, int(rng.integers(2**31 - 1)),
                        (float(rng.uniform(0, 128)), float(rng.uniform(0, 128))), mention, extra)
    if zdir:
        scene.zoom = zdir
        for _ in range(30):
            if _fits(scene):
                break
            extra.clear()
            scene.objects = _objects(rng, n_objects, held_out, 0.0, 0.0, cross, extra)
        else:
            scene.zoom = ""
    return scene


def sample_clip(seed: int, **kw) -> tuple[str, np.ndarray, world.Scene]:
    """Caption, frames and scene for one seed (training uses seeds < 10**9, evaluation above)."""
    scene = sample_scene(np.random.default_rng(seed), **kw)
    return scene.caption(), world.render(scene), scene
