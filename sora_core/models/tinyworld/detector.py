"""A detector that reads TinyWorld frames and knows nothing of the model that made them.

It finds object pixels by brightness (objects are bright and saturated, or white; the
backgrounds and the ground are dark or mid-gray), names their colour by hue, counts separate
blobs, tracks each colour's centroid to read the motion, and reads the camera pan from the
global shift of the ground between frames. The evaluation bench and the tests score the
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


def count_objects(cmap: np.ndarray, min_px: int = 20) -> int:
    """Separate blobs of object pixels (8-connected, at least ``min_px``) in one frame."""
    mask = cmap >= 0
    seen = np.zeros_like(mask)
    count = 0
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
        count += int(blob.sum() >= min_px)
    return count


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


def score_clip(frames: np.ndarray, caption: str) -> dict:
    """What the detector reads from one clip against what its caption asks."""
    want = world.parse_caption(caption)
    cmap = color_map(frames)
    res: dict = {"caption": caption}
    objs = want["objects"]
    counts = [count_objects(cmap[t]) for t in (3, 7, 11)]
    res["count_read"] = int(np.median(counts))
    res["count_ok"] = res["count_read"] == len(objs)
    if len(objs) == 1:
        o = objs[0]
        res["color_read"] = dominant_color(cmap)
        res["color_ok"] = res["color_read"] == o["color"]
        tr, _ = track(cmap, None)
        res["motion_read"] = classify_motion(tr)
        res["motion_ok"] = res["motion_read"] == o["motion"]
    elif len(objs) == 2:
        present = []
        for o in objs:
            _, cnt = track(cmap, o["color"])
            present.append(bool((cnt >= 12).mean() >= 0.75))
        res["both_ok"] = all(present)
    if want["background"] == "ground":
        res["camera_read"] = classify_camera(frames, cmap)
        res["camera_ok"] = res["camera_read"] == want["camera"]
    return res
