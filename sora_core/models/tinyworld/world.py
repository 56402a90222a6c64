"""The TinyWorld procedural world: scenes, their captions, their pixels, and the held-out rule.

Everything here is deterministic given a seed and needs only numpy, so the training script,
the tests and the evaluation bench all see exactly the same world.

Conventions
- Frames are 64x64, 16 per clip, sRGB in [0, 1], x to the right and y downwards.
- Object motion is in screen space (the camera follows the action): "moving left" means the
  object's centroid goes left on screen by 2 px a frame, whatever the camera does.
- "camera panning left" moves the camera over the textured ground, so the ground slides
  *right* on screen by 2 px a frame. Panning only happens over the ground.
- Captions follow one grammar::

      <object> [and <object>] [on a black|gray background | on the ground] [, camera panning <dir>]
      <object> := a <color> <shape> <motion>

  A caption without a background phrase means black, or the ground when the camera pans.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

SIZE = 64
FRAMES = 16
SPEED = 2.0            # px per frame, objects and camera
BOUNCE_HEIGHT = 18.0
BOUNCE_PERIOD = 8      # frames per bounce

COLORS = {
    "red": (0.95, 0.15, 0.12),
    "orange": (1.0, 0.55, 0.05),
    "yellow": (0.98, 0.92, 0.10),
    "green": (0.15, 0.85, 0.20),
    "blue": (0.15, 0.35, 1.0),
    "purple": (0.65, 0.20, 0.95),
    "white": (1.0, 1.0, 1.0),
}
SHAPES = ("ball", "square", "triangle")
MOTIONS = ("moving left", "moving right", "moving up", "moving down", "bouncing", "still")
BACKGROUNDS = ("black", "gray", "ground")
CAMERAS = ("static", "left", "right", "up", "down")
COLOR_NAMES = tuple(COLORS)

VOCAB = (
    ["a", "an", "the", "and", "on", "background", "camera", "panning", "moving", "bouncing",
     "still", "left", "right", "up", "down", "black", "gray", "ground"]
    + list(COLOR_NAMES) + list(SHAPES)
)

_DIRS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}


def is_held_out(color: str, shape: str, motion: str) -> bool:
    """The fixed rule that keeps about 10 % of color x shape x motion combinations out of training.

    A combination is held out when ``(color_index + 3 * shape_index + 5 * motion_index) % 10 == 7``
    with the orders of :data:`COLOR_NAMES`, :data:`SHAPES` and :data:`MOTIONS` (13 of 126).
    """
    ci, si, mi = COLOR_NAMES.index(color), SHAPES.index(shape), MOTIONS.index(motion)
    return (ci + 3 * si + 5 * mi) % 10 == 7


HELD_OUT = tuple((c, s, m) for c in COLOR_NAMES for s in SHAPES for m in MOTIONS if is_held_out(c, s, m))


@dataclass
class Obj:
    color: str
    shape: str
    motion: str
    x0: float
    y0: float

    def track(self, frames: int = FRAMES) -> np.ndarray:
        """Centroid (x, y) per frame, shape (frames, 2)."""
        t = np.arange(frames, dtype=np.float64)
        xs = np.full(frames, self.x0)
        ys = np.full(frames, self.y0)
        if self.motion.startswith("moving"):
            dx, dy = _DIRS[self.motion.split()[1]]
            xs = self.x0 + dx * SPEED * t
            ys = self.y0 + dy * SPEED * t
        elif self.motion == "bouncing":
            ys = self.y0 - BOUNCE_HEIGHT * np.abs(np.sin(np.pi * t / BOUNCE_PERIOD))
        return np.stack([xs, ys], axis=1)

    def words(self) -> str:
        return f"a {self.color} {self.shape} {self.motion}"


@dataclass
class Scene:
    objects: list[Obj]
    background: str = "black"
    camera: str = "static"
    texture_seed: int = 0
    cam0: tuple[float, float] = (0.0, 0.0)
    mention_background: bool = True
    extra: dict = field(default_factory=dict)

    def caption(self) -> str:
        text = " and ".join(o.words() for o in self.objects)
        if self.mention_background:
            text += " on the ground" if self.background == "ground" else f" on a {self.background} background"
        if self.camera != "static":
            text += f", camera panning {self.camera}"
        return text


# --------------------------------------------------------------------------- sampling

def _start(rng: np.random.Generator, motion: str) -> tuple[float, float]:
    m, span = 9.0, SPEED * (FRAMES - 1)
    lo, hi = m, SIZE - m
    if motion == "moving right":
        return rng.uniform(lo, hi - span), rng.uniform(lo, hi)
    if motion == "moving left":
        return rng.uniform(lo + span, hi), rng.uniform(lo, hi)
    if motion == "moving down":
        return rng.uniform(lo, hi), rng.uniform(lo, hi - span)
    if motion == "moving up":
        return rng.uniform(lo, hi), rng.uniform(lo + span, hi)
    if motion == "bouncing":
        return rng.uniform(lo, hi), rng.uniform(lo + BOUNCE_HEIGHT, hi)
    return rng.uniform(lo, hi), rng.uniform(lo, hi)


def sample_object(rng: np.random.Generator, held_out: bool | None = False, exclude_colors=()) -> Obj:
    """One object; ``held_out`` False = training combinations only, True = held-out only, None = any."""
    while True:
        c = COLOR_NAMES[rng.integers(len(COLOR_NAMES))]
        s = SHAPES[rng.integers(len(SHAPES))]
        m = MOTIONS[rng.integers(len(MOTIONS))]
        if c in exclude_colors:
            continue
        if held_out is None or is_held_out(c, s, m) == held_out:
            break
    x0, y0 = _start(rng, m)
    return Obj(c, s, m, float(x0), float(y0))


def sample_scene(rng: np.random.Generator, n_objects: int | None = None, held_out: bool | None = False,
                 background: str | None = None, camera: str | None = None) -> Scene:
    """A random scene. Two objects always have different colors and keep apart."""
    n = n_objects or (1 if rng.random() < 0.6 else 2)
    objs = [sample_object(rng, held_out)]
    if n == 2:
        for _ in range(30):
            o = sample_object(rng, False if held_out else held_out, exclude_colors=(objs[0].color,))
            d = np.linalg.norm(objs[0].track() - o.track(), axis=1).min()
            if d >= 15.0:
                break
        objs.append(o)
    if camera is None:
        camera = "static" if rng.random() < 0.5 else CAMERAS[1 + rng.integers(4)]
    if background is None:
        background = "ground" if camera != "static" else BACKGROUNDS[rng.integers(3)]
    mention = True
    if background == "black" or (background == "ground" and camera != "static"):
        mention = rng.random() < 0.5
    return Scene(objs, background, camera, int(rng.integers(2**31 - 1)),
                 (float(rng.uniform(0, 128)), float(rng.uniform(0, 128))), mention)


# --------------------------------------------------------------------------- rendering

_TEX = 128


def ground_texture(seed: int) -> np.ndarray:
    """A tileable 128x128 brownish low-saturation texture, values well below the objects'."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((_TEX, _TEX))
    f = np.fft.fftfreq(_TEX)
    r2 = f[:, None] ** 2 + f[None, :] ** 2
    spec = np.fft.fft2(noise) * np.exp(-r2 / (2 * 0.05 ** 2))
    n = np.real(np.fft.ifft2(spec))
    n = (n - n.min()) / (n.max() - n.min() + 1e-8)
    v = 0.08 + 0.34 * n
    tint = np.array([1.0, 0.82, 0.6])
    return (v[..., None] * tint).astype(np.float32)


def _background(scene: Scene, frames: int) -> np.ndarray:
    out = np.zeros((frames, SIZE, SIZE, 3), np.float32)
    if scene.background == "gray":
        out[:] = 0.5
    elif scene.background == "ground":
        tex = ground_texture(scene.texture_seed)
        dx, dy = _DIRS.get(scene.camera, (0.0, 0.0))
        idx = np.arange(SIZE)
        for t in range(frames):
            cx = int(round(scene.cam0[0] + dx * SPEED * t))
            cy = int(round(scene.cam0[1] + dy * SPEED * t))
            out[t] = tex[np.ix_((idx + cy) % _TEX, (idx + cx) % _TEX)]
    return out


_SS = 2  # supersampling per axis
_G = (np.arange(SIZE * _SS, dtype=np.float32) + 0.5) / _SS


def _coverage(shape: str, cx: np.ndarray, cy: np.ndarray) -> np.ndarray:
    """Anti-aliased coverage (frames, 64, 64) of a shape centred on (cx[t], cy[t])."""
    X = _G[None, None, :] - cx[:, None, None].astype(np.float32)
    Y = _G[None, :, None] - cy[:, None, None].astype(np.float32)
    if shape == "ball":
        m = X * X + Y * Y <= 7.0 ** 2
    elif shape == "square":
        m = (np.abs(X) <= 6.5) & (np.abs(Y) <= 6.5)
    else:  # triangle pointing up, centroid at the centre
        R = 9.0
        m = (Y <= R / 2) & (Y >= -R + np.sqrt(3.0) * np.abs(X))
    m = m.astype(np.float32).reshape(len(cx), SIZE, _SS, SIZE, _SS)
    return m.mean(axis=(2, 4))


def render(scene: Scene, frames: int = FRAMES) -> np.ndarray:
    """The clip, (frames, 64, 64, 3) float32 sRGB in [0, 1]."""
    out = _background(scene, frames)
    for o in scene.objects:
        tr = o.track(frames)
        a = _coverage(o.shape, tr[:, 0], tr[:, 1])[..., None]
        out = out * (1 - a) + a * np.asarray(COLORS[o.color], np.float32)
    return out


def sample_clip(seed: int, **kw) -> tuple[str, np.ndarray, Scene]:
    """Caption, frames and scene for one seed (training uses seeds < 10**9, evaluation above)."""
    scene = sample_scene(np.random.default_rng(seed), **kw)
    return scene.caption(), render(scene), scene


# --------------------------------------------------------------------------- words

_WORD = re.compile(r"[a-z]+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def unknown_words(text: str) -> list[str]:
    """Words of ``text`` outside the vocabulary, in order, without repeats."""
    seen, out = set(), []
    for w in words(text):
        if w not in VOCAB and w not in seen:
            seen.add(w)
            out.append(w)
    return out


def parse_caption(text: str) -> dict:
    """What a caption asks for (for the evaluation): objects, background, camera."""
    ws = words(text)
    objs, i = [], 0
    while i < len(ws):
        if ws[i] in COLORS and i + 1 < len(ws) and ws[i + 1] in SHAPES:
            motion = "still"
            nxt = ws[i + 2:i + 4]
            if nxt[:1] == ["bouncing"]:
                motion = "bouncing"
            elif nxt[:1] == ["moving"] and len(nxt) > 1 and nxt[1] in _DIRS:
                motion = "moving " + nxt[1]
            objs.append({"color": ws[i], "shape": ws[i + 1], "motion": motion})
            i += 2
        else:
            i += 1
    camera = "static"
    if "panning" in ws:
        j = ws.index("panning")
        if j + 1 < len(ws) and ws[j + 1] in _DIRS:
            camera = ws[j + 1]
    bg = "ground" if ("ground" in ws or camera != "static") else ("gray" if "gray" in ws else "black")
    return {"objects": objs, "background": bg, "camera": camera}
