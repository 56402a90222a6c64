"""A detector that reads TinyWorld frames and knows nothing of the model that made them.

It finds object pixels by brightness (objects are bright and saturated, or white; the
backgrounds and the ground are dark or mid-gray), names their colour by hue, counts separate
blobs, tracks each colour's centroid to read the motion, and reads the camera pan from the
global shift of the ground between frames; whether an object enters or leaves (absent on the
first or last frame, and at which edge), zoom from the growth of the object pixels, and, for long
shots, the worst frame step against the median and objects that pop in away from the edges.
The evaluation bench and the tests score the
bundled model with it; on the world's own renders it is right every time but for rare touching
objects (``bench/eval_tinyworld.py --check``).
"""

from __future__ import annotations

import colorsys

import numpy as np

from . import world

BRIGHT = 0.62
_REF = {n: colorsys.rgb_to_hsv(*c)[0] for n, c in world.COLORS.items()}
_CHROMA = [n for n in world.COLOR_NAMES if n != "white"]
_REF_H = np.array([_REF[n] for n in _CHROMA])


def color_map(frames: np.ndarray) -> np.ndarray:
    """(F,H,W,3) -> (F,H,W) int: -1 background, else index into world.COLOR_NAMES."""
    mx = frames.max(-1)
    mn = frames.min(-1)
    sat = (mx - mn) / np.maximum(mx, 1e-6)
    r, g, b = frames[..., 0], frames[..., 1], frames[..., 2]
    d = np.maximum(mx - mn, 1e-6)
    hue = np.where(mx == r, ((g - b) / d) % 6, np.where(mx == g, (b - r) / d + 2, (r - g) / d + 4)) / 6.0
    dist = np.abs(hue[..., None] - _REF_H)
    dist = np.minimum(dist, 1 - dist)
    chroma_idx = np.array([world.COLOR_NAMES.index(n) for n in _CHROMA])[dist.argmin(-1)]
    out = np.where(sat < 0.3, world.COLOR_NAMES.index("white"), chroma_idx)
    return np.where(mx > BRIGHT, out, -1)


def track(cmap: np.ndarray, color: str | None = None, min_px: int = 12):
    """Centroids (F,2) of the pixels of one colour (or of all object pixels), NaN where absent."""
    sel = cmap >= 0 if color is None else cmap == world.COLOR_NAMES.index(color)
    ys, xs = np.mgrid[: cmap.shape[1], : cmap.shape[2]]
    cnt = sel.sum((1, 2))
    cx = np.where(cnt >= min_px, (sel * xs).sum((1, 2)) / np.maximum(cnt, 1), np.nan)
    cy = np.where(cnt >= min_px, (sel * ys).sum((1, 2)) / np.maximum(cnt, 1), np.nan)
    return np.stack([cx, cy], 1), cnt


def components(mask: np.ndarray, min_px: int = 20) -> list[np.ndarray]:
    """Separate 8-connected blobs (boolean masks) of at least ``min_px`` pixels in one frame."""
    seen = np.zeros_like(mask)
    out = []
    for y, x in zip(*np.nonzero(mask)):
        if seen[y, x]:
            continue
        blob = np.zeros_like(mask)
        blob[y, x] = True
        while True:                      # grow inside the mask until it stops changing
            grown = blob.copy()
            grown[1:] |= blob[:-1]
            grown[:-1] |= blob[1:]
            grown[:, 1:] |= grown[:, :-1]
            grown[:, :-1] |= grown[:, 1:]
            grown &= mask
            if (grown == blob).all():
                break
            blob = grown
        seen |= blob
        if blob.sum() >= min_px:
            out.append(blob)
    return out


def count_objects(cmap: np.ndarray, min_px: int = 20) -> int:
    """Separate blobs of object pixels (8-connected, at least ``min_px``) in one frame."""
    return len(components(cmap >= 0, min_px))


def dominant_color(cmap: np.ndarray) -> str | None:
    v = cmap[cmap >= 0]
    if v.size < 12 * cmap.shape[0] // 2:
        return None
    return world.COLOR_NAMES[np.bincount(v, minlength=len(world.COLOR_NAMES)).argmax()]


def classify_motion(tr: np.ndarray) -> str:
    ok = ~np.isnan(tr[:, 0])
    if ok.sum() < len(tr) * 0.6:
        return "none"
    p = tr[ok]
    a, b = p[:3].mean(0), p[-3:].mean(0)
    dx, dy = b - a
    rx, ry = np.ptp(p[:, 0]), np.ptp(p[:, 1])
    if abs(dx) >= 12 and abs(dx) > abs(dy):
        return "moving right" if dx > 0 else "moving left"
    if abs(dy) >= 16 and abs(dy) > abs(dx):
        return "moving down" if dy > 0 else "moving up"
    if ry >= 9 and abs(dx) < 8:
        return "bouncing"
    if rx < 6 and ry < 6:
        return "still"
    return "unclear"


def ground_shift(frames: np.ndarray, cmap: np.ndarray, r: int = 4) -> np.ndarray:
    """Summed screen shift (x, y) of the background over the clip (brute-force per frame pair)."""
    lum = frames.mean(-1)
    obj = cmap >= 0
    H, W = lum.shape[1:]
    total = np.zeros(2)
    for t in range(len(lum) - 1):
        a, b = lum[t], lum[t + 1]
        best, arg = np.inf, (0, 0)
        for sy in range(-r, r + 1):
            for sx in range(-r, r + 1):
                # b[y, x] ~ a[y - sy, x - sx]
                bb = b[r:H - r, r:W - r]
                aa = a[r - sy:H - r - sy, r - sx:W - r - sx]
                m = ~(obj[t + 1, r:H - r, r:W - r] | obj[t, r - sy:H - r - sy, r - sx:W - r - sx])
                if m.sum() < 200:
                    continue
                e = np.abs(bb - aa)[m].mean()
                if e < best:
                    best, arg = e, (sx, sy)
        total += arg
    return total


def classify_camera(frames: np.ndarray, cmap: np.ndarray) -> str:
    sx, sy = ground_shift(frames, cmap)
    if max(abs(sx), abs(sy)) < 8:
        return "static"
    if abs(sx) >= abs(sy):
        return "left" if sx > 0 else "right"     # ground slides right = camera pans left
    return "up" if sy > 0 else "down"


def _nearest_edge(p) -> str:
    x, y = p
    d = {"left": x, "right": world.SIZE - 1 - x, "top": y, "bottom": world.SIZE - 1 - y}
    return min(d, key=d.get)


def classify_event(cmap: np.ndarray, color: str) -> str:
    """How one colour's object uses the frame edges: "entering from the <edge>" (absent on the first
    frame, present on the last, first seen at that edge), "leaving to the <edge>", "in view" or "absent"."""
    tr, cnt = track(cmap, color)
    seen = ~np.isnan(tr[:, 0])
    if not seen.any():
        return "absent"
    if not seen[0] and seen[-1]:
        return "entering from the " + _nearest_edge(tr[seen][0])
    if seen[0] and not seen[-1]:
        return "leaving to the " + _nearest_edge(tr[seen][-1])
    return "in view" if seen[0] else "passing"


def classify_zoom(cmap: np.ndarray) -> str:
    """Zoom from the growth of the object pixels: "in" (x1.4 or more from the first to the last
    three frames), "out" (x0.7 or less), "none", or "unclear" with no object to measure."""
    a = (cmap >= 0).sum((1, 2)).astype(np.float64)
    first, last = a[:3].mean(), a[-3:].mean()
    if min(first, last) < 12:
        return "unclear"
    r = last / first
    return "in" if r >= 1.4 else ("out" if r <= 0.7 else "none")


def frame_steps(frames: np.ndarray) -> np.ndarray:
    """Mean absolute difference of consecutive frames, (F-1,)."""
    return np.abs(np.diff(np.asarray(frames, np.float32), axis=0)).mean((1, 2, 3))


def step_ratio(frames: np.ndarray, floor: float = 0.003) -> float:
    """Worst frame step over the median step (floored, so a rightly static stretch is not noise)."""
    d = frame_steps(frames)
    return float(d.max() / max(float(np.median(d)), floor))


def pop_ins(frames: np.ndarray, allowed=(), min_px: int = 20, edge: float = 12.0, near: int = 10) -> list[tuple]:
    """Objects that appear away from the frame edges: (frame, colour, x, y) of each blob of a colour
    with no pixel of that colour within ``near`` px on the frame before, its centre more than
    ``edge`` px inside the frame. Frames in ``allowed`` (a prompt switch) are not checked."""
    cmap = color_map(frames)
    H, W = cmap.shape[1:]
    ys, xs = np.mgrid[:H, :W]
    out = []
    for t in range(1, len(cmap)):
        if t in allowed:
            continue
        for ci in np.unique(cmap[t][cmap[t] >= 0]):
            for blob in components(cmap[t] == ci, min_px):
                cx, cy = xs[blob].mean(), ys[blob].mean()
                if min(cx, cy, W - 1 - cx, H - 1 - cy) <= edge:
                    continue
                y0, x0 = int(cy) - near, int(cx) - near
                win = cmap[t - 1, max(y0, 0):y0 + 2 * near + 1, max(x0, 0):x0 + 2 * near + 1]
                if (win == ci).sum() < 6:
                    out.append((t, world.COLOR_NAMES[ci], float(cx), float(cy)))
    return out


def _present(cmap: np.ndarray, color: str) -> bool:
    _, cnt = track(cmap, color)
    return bool((cnt >= 12).mean() >= 0.75)


def score_clip(frames: np.ndarray, caption: str, count: bool = True) -> dict:
    """What the detector reads from one clip against what its caption asks. The object count is
    scored only where every object should be in view and apart (``count``, no entering or
    leaving, no zoom)."""
    want = world.parse_caption(caption)
    cmap = color_map(frames)
    res: dict = {"caption": caption}
    objs = want["objects"]
    events = [o for o in objs if o["event"]]
    if count and not events and not want["zoom"]:
        counts = [count_objects(cmap[t]) for t in (3, 7, 11)]
        res["count_read"] = int(np.median(counts))
        res["count_ok"] = res["count_read"] == len(objs)
    if len(objs) == 1 and not events:
        o = objs[0]
        res["color_read"] = dominant_color(cmap)
        res["color_ok"] = res["color_read"] == o["color"]
        if not want["zoom"]:          # a zoom moves everything on screen
            tr, _ = track(cmap, None)
            res["motion_read"] = classify_motion(tr)
            res["motion_ok"] = res["motion_read"] == o["motion"]
    elif len(objs) == 2 and not events:
        res["both_ok"] = all(_present(cmap, o["color"]) for o in objs)
    elif len(objs) == 3 and not events:
        res["three_ok"] = all(_present(cmap, o["color"]) for o in objs)
    if events:
        res["event_read"] = [classify_event(cmap, o["color"]) for o in events]
        res["event_ok"] = res["event_read"] == [
            (f"entering from the {world.EDGE_BEHIND[o['motion'].split()[1]]}" if o["event"] == "entering"
             else f"leaving to the {world.EDGE_AHEAD[o['motion'].split()[1]]}") for o in events]
    if want["zoom"]:
        res["zoom_read"] = classify_zoom(cmap)
        res["zoom_ok"] = res["zoom_read"] == want["zoom"]
    elif want["background"] == "ground":
        res["camera_read"] = classify_camera(frames, cmap)
        res["camera_ok"] = res["camera_read"] == want["camera"]
    return res
