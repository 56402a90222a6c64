"""Inverting a view that OCIO cannot invert exactly (Blender's AgX): solved once, baked, cached.

The forward view is the config's own (never re-implemented by hand). Its inverse is solved on a
display grid (``TABLE_SIZE``^3 points) by damped Newton steps on the forward transform, in log2
space so scene values stay positive; display values the view cannot produce (AgX never reaches
fully saturated primaries) get the closest scene value found. The solved table is

- cached on disk (``$SORA_CACHE_DIR``, else ``$XDG_CACHE_HOME/sora`` or ``~/.cache/sora``),
  keyed by the config's hash, the forward processor's cache id, display, view, look, grid size
  and solver version, so it is solved once per machine (a few seconds);
- applied by OCIO as a 3-D LUT (tetrahedral) followed by 2^x: as fast as OCIO's own inverse.

Baking costs accuracy near the edge of the view's gamut. When a table is solved, its round-trip
error on ordinary colours is measured and kept with it; ``polish`` runs the solver per pixel where
the round trip is still off (``ViewTransform.to_linear(exact=True)``, and by default for a view
whose baked table misses by more than ``BAKED_P99_LIMIT`` at the 99th percentile: Blender's
``Khronos PBR Neutral``, whose shoulder no grid resolves). ``bench/frame_path.py`` reports it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from pathlib import Path

import numpy as np

from .color import ROUND_TRIP_TOL, ViewTransform, ocio

log = logging.getLogger("sora.color")

TABLE_SIZE = 65             # grid points per display axis of the baked inverse
SOLVER_VERSION = 2          # part of the cache key: a changed solver re-solves
NEWTON_ITERS = 8
STEP_SCALES = (1.0, 0.5, 0.25, 0.1, 0.03)
START_FRACTIONS = (0.0, 1 / 16, 1 / 4)
LOG_FLOOR = 2.0 ** -10      # start of the search for values the OCIO inverse leaves <= 0
DEEP_OUTSIDE = 0.02         # display error of the nearest grid points beyond which a pixel is unreachable
STALL = 0.9                 # a Newton step must cut the error below this share, or the pixel stops


BAKED_P99_LIMIT = 1e-2      # a baked table whose measured p99 error is above this is polished
_NATURAL = np.random.default_rng(7)     # ordinary scene colours: a grey level, a moderate tint
NATURAL_SAMPLE = (np.exp2(_NATURAL.uniform(-8, 4, (20000, 1))) *
                  (1 + _NATURAL.uniform(-0.6, 0.6, (20000, 3)))).astype(np.float32)


class InverseTable:
    """log2 scene values solved on a display grid (size^3 x 3), each point's residual, and the
    baked table's measured round-trip error on ordinary colours (mean, p99, max)."""

    def __init__(self, u: np.ndarray, residual: np.ndarray, error: np.ndarray | None = None):
        self.u = u
        self.residual = residual
        self.error = error

    def describe(self) -> dict:
        mean, p99, worst = (float(v) for v in self.error)
        return {"grid": int(self.u.shape[0]), "mean": round(mean, 6), "p99": round(p99, 6),
                "max": round(worst, 6)}


_TABLES: dict[tuple, InverseTable] = {}
_BAKED: dict[tuple, object] = {}
_LOCK = threading.Lock()


def cache_dir() -> Path:
    env = os.environ.get("SORA_CACHE_DIR")
    if env:
        return Path(env).expanduser() / "color"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sora" / "color"


def cache_key(view: ViewTransform, size: int = TABLE_SIZE) -> str:
    forward = view.ocio_config().getProcessor(view.group()).getCacheID()
    text = "|".join([str(SOLVER_VERSION), str(size), view.config_hash(), forward, view.display,
                     view.view, view.look])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def table(view: ViewTransform, size: int = TABLE_SIZE) -> InverseTable:
    """The view's solved inverse: from memory, from the disk cache, or solved and stored."""
    mem_key = view.key + (size,)
    found = _TABLES.get(mem_key)
    if found is not None:
        return found
    with _LOCK:
        found = _TABLES.get(mem_key)
        if found is None:
            found = _TABLES[mem_key] = _load_or_solve(view, size)
    return found


def _load_or_solve(view: ViewTransform, size: int) -> InverseTable:
    key = cache_key(view, size)
    path = cache_dir() / f"inverse-{key}.npz"
    try:
        with np.load(path) as data:
            if str(data["key"]) == key and data["u"].shape == (size, size, size, 3):
                return InverseTable(data["u"], data["residual"], data["error"])
    except (OSError, KeyError, ValueError):
        pass        # not cached yet (or unreadable): solve it
    log.info("solving the inverse of %s/%s%s once (%d^3 grid)", view.display, view.view,
             f" + {view.look}" if view.look else "", size)
    solved = solve_table(view, size)
    display = np.clip(view.apply(NATURAL_SAMPLE), 0, 1)
    err = _error(view, view.apply(display, processor=_lut_processor(view, solved)), display.astype(np.float64))
    solved.error = np.array([err.mean(), np.percentile(err, 99), err.max()], np.float32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".inverse-", suffix=".npz", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, key=np.array(key), u=solved.u, residual=solved.residual, error=solved.error)
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError as exc:      # a read-only home still works, it only solves again next time
        log.warning("cannot cache the solved inverse in %s: %s", path.parent, exc)
    return solved


def baked_processor(view: ViewTransform):
    """An OCIO CPU processor applying the baked inverse: 3-D LUT (display -> log2), then 2^x."""
    proc = _BAKED.get(view.key)
    if proc is None:
        proc = _BAKED[view.key] = _lut_processor(view, table(view))
    return proc


def _lut_processor(view: ViewTransform, tab: InverseTable):
    lib = ocio()
    size = tab.u.shape[0]
    lut = lib.Lut3DTransform(gridSize=size)
    lut.setData(np.ascontiguousarray(tab.u, dtype=np.float32).reshape(-1))   # [r, g, b] order
    lut.setInterpolation(lib.INTERP_TETRAHEDRAL)
    group = lib.GroupTransform([lut, lib.LogTransform(base=2.0, direction=lib.TRANSFORM_DIR_INVERSE)])
    return view.ocio_config().getProcessor(group).getDefaultCPUProcessor()


def _error(view: ViewTransform, lin: np.ndarray, target: np.ndarray) -> np.ndarray:
    return np.abs(np.clip(view.apply(lin), 0, 1).astype(np.float64) - target).max(-1)


def solve_table(view: ViewTransform, size: int) -> InverseTable:
    """Solve the inverse on a size^3 display grid, starting from OCIO's own inverse."""
    axis = np.linspace(0.0, 1.0, size)
    grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
    flat = view.apply(grid, inverse=True).astype(np.float64)
    err = _error(view, flat, grid)
    peak = np.maximum(flat.max(-1, keepdims=True), LOG_FLOOR)
    bad = np.nonzero(err > ROUND_TRIP_TOL)[0]
    # several starts: approximate inverses push saturated colours below zero, so also
    # start with the small channels raised towards the pixel's largest one
    for fraction in START_FRACTIONS:
        if not len(bad):
            break
        start = np.maximum(flat[bad], np.maximum(LOG_FLOOR, fraction * peak[bad]))
        u, e = newton(view, grid[bad], np.log2(start))
        better = e < err[bad]
        flat[bad[better]] = np.exp2(u[better])
        err[bad[better]] = e[better]
        bad = bad[err[bad] > ROUND_TRIP_TOL]
    u = np.log2(np.maximum(flat, LOG_FLOOR ** 2)).reshape(size, size, size, 3)
    return InverseTable(u.astype(np.float32), err.reshape(size, size, size).astype(np.float32))


def newton(view: ViewTransform, target: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Solve ``forward(2**u) == target`` per pixel (N x 3) by damped Newton in log2 space.

    A pixel leaves the loop once it is solved or stops improving (a value outside the view's
    gamut converges to its closest reachable value and stays there).
    """
    y = view.apply(np.exp2(u)).astype(np.float64)
    err = np.abs(y - target).max(-1)
    active = err > ROUND_TRIP_TOL
    h = 1e-3
    eye = np.eye(3)
    scales = np.asarray(STEP_SCALES)
    for _ in range(NEWTON_ITERS):
        bad = np.nonzero(active)[0]
        if not len(bad):
            break
        ub, yb, rb = u[bad], y[bad], y[bad] - target[bad]
        n = len(bad)
        yp = view.apply(np.exp2(np.concatenate([ub + h * e for e in eye]))).astype(np.float64)
        jac = np.stack([(yp[j * n:(j + 1) * n] - yb) / h for j in range(3)], -1)
        jt = np.swapaxes(jac, 1, 2)
        step = np.linalg.solve(jt @ jac + 1e-8 * eye, jt @ rb[..., None])[..., 0]
        step = np.clip(step, -4.0, 4.0)
        cands = ub[None] - scales[:, None, None] * step[None]          # (S, n, 3)
        yc = view.apply(np.exp2(cands.reshape(-1, 3))).astype(np.float64).reshape(len(scales), n, 3)
        ec = np.abs(yc - target[bad][None]).max(-1)                     # (S, n)
        best = ec.argmin(0)
        idx = np.arange(n)
        new_err = ec[best, idx]
        improved = new_err < err[bad]
        sel = bad[improved]
        u[sel] = cands[best, idx][improved]
        y[sel] = yc[best, idx][improved]
        stalled = new_err > STALL * err[bad]        # hardly better: give up
        err[sel] = new_err[improved]
        active[bad[stalled]] = False
        active[bad] &= err[bad] > ROUND_TRIP_TOL
    return u, err


def polish(view: ViewTransform, display: np.ndarray, baked: np.ndarray) -> np.ndarray:
    """Refine the baked inverse per pixel with the solver where its round trip is off and the
    view can reach the value (several starts: the baked value, OCIO's inverse, raised shadows)."""
    shape = display.shape
    target = display.reshape(-1, 3).astype(np.float64)
    flat = baked.reshape(-1, 3).astype(np.float64)
    err = _error(view, flat, target)
    bad = np.nonzero(err > ROUND_TRIP_TOL)[0]
    if len(bad):
        # deep outside the view's gamut (no grid point around it is near): the baked value is
        # already the closest; Newton would only spin (the table's own residuals can be off by a
        # little where its solve stalled, hence the margin)
        reachable = _corner_min(table(view).residual, target[bad]) <= DEEP_OUTSIDE
        bad = bad[reachable]
    if not len(bad):
        return flat.astype(np.float32).reshape(shape)
    ocio_inv = view.apply(target[bad], inverse=True).astype(np.float64)
    peak = np.maximum(ocio_inv.max(-1, keepdims=True), LOG_FLOOR)
    starts = [np.log2(np.maximum(flat[bad], LOG_FLOOR ** 2))]
    starts += [np.log2(np.maximum(ocio_inv, np.maximum(LOG_FLOOR, f * peak))) for f in START_FRACTIONS]
    todo = np.arange(len(bad))           # positions in ``bad`` still off
    for start in starts:
        u, e = newton(view, target[bad[todo]], start[todo].copy())
        better = e < err[bad[todo]]
        flat[bad[todo[better]]] = np.exp2(u[better])
        err[bad[todo[better]]] = e[better]
        todo = todo[err[bad[todo]] > ROUND_TRIP_TOL]
        if not len(todo):
            break
    return flat.astype(np.float32).reshape(shape)


def _corner_min(grid: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The smallest of the 8 grid values around each point ``x`` (N, 3) in [0, 1]."""
    size = grid.shape[0]
    i0 = np.minimum(np.floor(np.clip(x, 0.0, 1.0) * (size - 1)).astype(np.int64), size - 2)
    out = np.full(len(x), np.inf)
    for dx in (0, 1):
        for dy in (0, 1):
            for dz in (0, 1):
                out = np.minimum(out, grid[i0[:, 0] + dx, i0[:, 1] + dy, i0[:, 2] + dz])
    return out
