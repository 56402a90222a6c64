"""The TinyWorld procedural world: scenes, their captions, their pixels, and the held-out rule.

Everything here is deterministic given a seed and needs only numpy, so the training script,
the tests and the evaluation bench all see exactly the same world.

Conventions
- Frames are 64x64, 16 per clip, sRGB in [0, 1], x to the right and y downwards.
- Object motion is in screen space (the camera follows the action): "moving left" means the
  object's centroid goes left on screen by 2 px a frame, whatever the camera does.
- Objects may leave the frame and then stay gone (no wrapping): "entering from the left" starts
  wholly outside the left edge and is in view by the last frame; "leaving to the right" starts in
  view and is wholly gone by the last frame; a plain "moving right" may or may not leave.
- Up to three objects, each of its own colour; later objects in the caption are drawn in front
  (the depth order is not stated), and paths may cross, so one can pass in front of another.
- "camera panning left" moves the camera over the textured ground, so the ground slides
  *right* on screen by 2 px a frame. Panning only happens over the ground. "camera zooming in"
  scales the whole picture about the frame centre by 1.8x over a clip (zooming out: by 1/1.8).
- A scene's ``start`` is where its clip begins on the scene's own timeline, so a clip can be the
  later part of a longer trajectory (the continuation clips of ``continuation.py``).
- Captions follow one grammar::

      <object> [and <object> [and <object>]] [on a black|gray background | on the ground]
          [, camera panning <dir> | , camera zooming in|out]
      <object> := a <color> <shape> <motion>
      <motion> := moving <dir> | bouncing | still
                | entering from the left|right|top|bottom | leaving to the left|right|top|bottom

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
ZOOM = 1.8             # scale change over one clip (FRAMES - 1 frames)
CENTER = SIZE / 2

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
EVENTS = ("", "entering", "leaving")
BACKGROUNDS = ("black", "gray", "ground")
CAMERAS = ("static", "left", "right", "up", "down")
ZOOMS = ("", "in", "out")
COLOR_NAMES = tuple(COLORS)

# New words are appended, so the ids of the first model's 28 words stay the same.
VOCAB = (
    ["a", "an", "the", "and", "on", "background", "camera", "panning", "moving", "bouncing",
     "still", "left", "right", "up", "down", "black", "gray", "ground"]
    + list(COLOR_NAMES) + list(SHAPES)
    + ["entering", "leaving", "from", "to", "top", "bottom", "zooming", "in", "out"]
)

_DIRS = {"left": (-1.0, 0.0), "right": (1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}
EDGE_BEHIND = {"left": "right", "right": "left", "up": "bottom", "down": "top"}   # entering from
EDGE_AHEAD = {"left": "left", "right": "right", "up": "top", "down": "bottom"}    # leaving to
_EDGE_DIR = {("entering", v): k for k, v in EDGE_BEHIND.items()}
_EDGE_DIR.update({("leaving", v): k for k, v in EDGE_AHEAD.items()})


def is_held_out(color: str, shape: str, motion: str) -> bool:
    """The fixed rule that keeps about 10 % of color x shape x motion combinations out of training.

    A combination is held out when ``(color_index + 3 * shape_index + 5 * motion_index) % 10 == 7``
    with the orders of :data:`COLOR_NAMES`, :data:`SHAPES` and :data:`MOTIONS` (13 of 126).
    Entering and leaving objects count as their direction of motion.
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
    event: str = ""          # "", "entering" or "leaving" (only with a "moving <dir>" motion)

    def track(self, frames: int = FRAMES, start: int = 0) -> np.ndarray:
        """Centroid (x, y) per frame from frame ``start`` of the object's timeline, shape (frames, 2)."""
        t = np.arange(start, start + frames, dtype=np.float64)
        xs = np.full(frames, self.x0)
        ys = np.full(frames, self.y0)
        if self.motion.startswith("moving"):
            dx, dy = _DIRS[self.motion.split()[1]]
            xs = self.x0 + dx * SPEED * t
            ys = self.y0 + dy * SPEED * t
        elif self.motion == "bouncing":
            ys = self.y0 - BOUNCE_HEIGHT * np.abs(np.sin(np.pi * t / BOUNCE_PERIOD))
        return np.stack([xs, ys], axis=1)

    @property
    def direction(self) -> str:
        return self.motion.split()[1] if self.motion.startswith("moving") else ""

    def words(self) -> str:
        if self.event == "entering":
            return f"a {self.color} {self.shape} entering from the {EDGE_BEHIND[self.direction]}"
        if self.event == "leaving":
            return f"a {self.color} {self.shape} leaving to the {EDGE_AHEAD[self.direction]}"
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
    zoom: str = ""           # "", "in" or "out" (never with a pan)
    start: int = 0           # first frame of the clip on the scene's timeline

    def caption(self) -> str:
        text = " and ".join(o.words() for o in self.objects)
        if self.mention_background:
            text += " on the ground" if self.background == "ground" else f" on a {self.background} background"
        if self.camera != "static":
            text += f", camera panning {self.camera}"
        elif self.zoom:
            text += f", camera zooming {self.zoom}"
        return text

    def scale(self, frames: int = FRAMES) -> np.ndarray:
        """Zoom factor per frame (1 without zoom)."""
        t = np.arange(self.start, self.start + frames, dtype=np.float64)
        if not self.zoom:
            return np.ones(frames)
        return ZOOM ** ((t if self.zoom == "in" else -t) / (FRAMES - 1))

    def screen_track(self, o: Obj, frames: int = FRAMES) -> np.ndarray:
        """Where the object's centre is on screen, with the zoom applied."""
        return CENTER + self.scale(frames)[:, None] * (o.track(frames, self.start) - CENTER)


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
        scale = scene.scale(frames)
        for i in range(frames):
            t = scene.start + i
            cx = scene.cam0[0] + dx * SPEED * t
            cy = scene.cam0[1] + dy * SPEED * t
            if scene.zoom:        # the ground is scaled about the frame centre like the objects
                u = np.floor(cx + CENTER + (idx + 0.5 - CENTER) / scale[i]).astype(int)
                v = np.floor(cy + CENTER + (idx + 0.5 - CENTER) / scale[i]).astype(int)
                out[i] = tex[np.ix_(v % _TEX, u % _TEX)]
            else:
                out[i] = tex[np.ix_((idx + int(round(cy))) % _TEX, (idx + int(round(cx))) % _TEX)]
    return out


_SS = 2  # supersampling per axis
_G = (np.arange(SIZE * _SS, dtype=np.float32) + 0.5) / _SS


def _coverage(shape: str, cx: np.ndarray, cy: np.ndarray, scale: np.ndarray | None = None) -> np.ndarray:
    """Anti-aliased coverage (frames, 64, 64) of a shape centred on (cx[t], cy[t]), sized by scale[t]."""
    s = np.ones(len(cx), np.float32) if scale is None else np.asarray(scale, np.float32)
    X = (_G[None, None, :] - cx[:, None, None].astype(np.float32)) / s[:, None, None]
    Y = (_G[None, :, None] - cy[:, None, None].astype(np.float32)) / s[:, None, None]
    if shape == "ball":
        m = X * X + Y * Y <= 7.0 ** 2
    elif shape == "square":
        m = (np.abs(X) <= 6.5) & (np.abs(Y) <= 6.5)
    else:  # triangle pointing up, centroid at the centre
        R = 9.0
        m = (Y <= R / 2) & (Y >= -R + np.sqrt(3.0) * np.abs(X))
    m = m.astype(np.float32).reshape(len(cx), SIZE, _SS, SIZE, _SS)
    return m.mean(axis=(2, 4))


def object_coverage(scene: Scene, o: Obj, frames: int = FRAMES) -> np.ndarray:
    """One object's coverage (frames, 64, 64), ignoring the objects in front of it."""
    tr = scene.screen_track(o, frames)
    return _coverage(o.shape, tr[:, 0], tr[:, 1], scene.scale(frames))


def render(scene: Scene, frames: int = FRAMES) -> np.ndarray:
    """The clip, (frames, 64, 64, 3) float32 sRGB in [0, 1]; later objects are drawn in front."""
    out = _background(scene, frames)
    for o in scene.objects:
        a = object_coverage(scene, o, frames)[..., None]
        out = out * (1 - a) + a * np.asarray(COLORS[o.color], np.float32)
    return out


# --------------------------------------------------------------------------- words

_WORD = re.compile(r"[a-z]+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def unknown_words(text: str, vocab=VOCAB) -> list[str]:
    """Words of ``text`` outside the vocabulary, in order, without repeats."""
    seen, out = set(), []
    for w in words(text):
        if w not in vocab and w not in seen:
            seen.add(w)
            out.append(w)
    return out


def _motion_at(ws: list[str], i: int) -> tuple[str, str]:
    """(motion, event) of the words after an object's colour and shape."""
    nxt = ws[i:i + 4]
    if nxt[:1] == ["bouncing"]:
        return "bouncing", ""
    if nxt[:1] == ["moving"] and len(nxt) > 1 and nxt[1] in _DIRS:
        return "moving " + nxt[1], ""
    if nxt[:1] in (["entering"], ["leaving"]):
        edge = nxt[3] if len(nxt) > 3 and nxt[2] == "the" else (nxt[2] if len(nxt) > 2 else "")
        d = _EDGE_DIR.get((nxt[0], edge))
        if d:
            return "moving " + d, nxt[0]
    return "still", ""


def parse_caption(text: str) -> dict:
    """What a caption asks for (for the evaluation): objects, background, camera pan, zoom."""
    ws = words(text)
    objs, i = [], 0
    while i < len(ws):
        if ws[i] in COLORS and i + 1 < len(ws) and ws[i + 1] in SHAPES:
            motion, event = _motion_at(ws, i + 2)
            objs.append({"color": ws[i], "shape": ws[i + 1], "motion": motion, "event": event})
            i += 2
        else:
            i += 1
    camera, zoom = "static", ""
    if "panning" in ws:
        j = ws.index("panning")
        if j + 1 < len(ws) and ws[j + 1] in _DIRS:
            camera = ws[j + 1]
    if "zooming" in ws:
        j = ws.index("zooming")
        if j + 1 < len(ws) and ws[j + 1] in ("in", "out"):
            zoom = ws[j + 1]
    bg = "ground" if ("ground" in ws or camera != "static") else ("gray" if "gray" in ws else "black")
    return {"objects": objs, "background": bg, "camera": camera, "zoom": zoom}


# sampling lives in its own module; re-exported because every caller thinks of it as the world's
from .sampling import sample_clip, sample_object, sample_scene, start_position  # noqa: E402,F401
