"""The view transform between the model's display-referred frames and scene linear.

Models see and make display-referred sRGB in [0, 1]; the compositor works in scene linear.
A :class:`ViewTransform` is one OCIO display/view (+ look) of a config, applied through
OpenImageIO (``ImageBufAlgo.ociodisplay``):

- ``to_display(linear)``: scene linear -> display (rendered EXR going into the model);
- ``to_linear(display)``: the inverse (generated frames coming out as EXR).

With a config (e.g. Blender's ``config.ocio``) the scene-linear space is its ``scene_linear``
role and display/view default to the config's defaults (Blender: sRGB, AgX in 4.x).

Without a config, the built-in default is OpenImageIO's built-in OCIO config (the ACES CG
config, ``ocio://default``) with the display ``sRGB - Display`` and the view
``Un-tone-mapped``, from the scene space ``Linear Rec.709 (sRGB)``: the plain sRGB transfer
curve on Rec.709 primaries, which is what Blender's ``Standard`` view does and how Blender
reads an EXR by default. Display and view names of the built-in config may still be given.

Speed: OpenImageIO re-reads a config named by path on every call (10-30 ms for Blender's),
but keeps its process default (``$OCIO``, else the built-in) parsed. A worker started with
``OCIO=<the config the shots use>`` in its environment therefore converts several times
faster; any other config still works, only slower.

Inverting a view: many views are exactly invertible (Standard, Un-tone-mapped, Filmic);
Blender's AgX ships a baked inverse LUT that is only approximate (round-trip errors up to
~0.1 on saturated colours). ``to_linear`` therefore starts from OCIO's inverse and, where the
round trip ``to_display(to_linear(x))`` is off by more than :data:`ROUND_TRIP_TOL`, solves
for the scene values with damped Newton steps on the config's own forward transform (in log2
space, so values stay positive), helped by an inverse table solved once per process and view
on a 33^3 display grid (about 1-2 s). The forward transform is never re-implemented by hand.
Display values a view cannot produce (AgX never reaches fully saturated primaries) get the
closest scene value found. Cost for AgX: a few seconds per 832x480 frame on two CPU cores.
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import SoraError, invalid

log = logging.getLogger("sora.color")

BUILTIN_SCENE = "Linear Rec.709 (sRGB)"
BUILTIN_DISPLAY = "sRGB - Display"
BUILTIN_VIEW = "Un-tone-mapped"
ROUND_TRIP_TOL = 3e-4  # display units; 1/13 of an 8-bit code value
NEWTON_ITERS = 8
STEP_SCALES = (1.0, 0.5, 0.25, 0.1, 0.03)
START_FRACTIONS = (0.0, 1 / 16, 1 / 4)
_LOG_FLOOR = 2.0 ** -10     # start of the search for values the OCIO inverse leaves <= 0
TABLE_SIZE = 33             # inverse table grid points per display axis
STALL = 0.9                 # a Newton step must cut the error below this share, or the pixel stops


def _oiio():
    import OpenImageIO as oiio
    return oiio


BUILTIN_URI = "ocio://default"


def _process_default() -> str:
    """The config OpenImageIO uses when given none: ``$OCIO``'s file, or "" (its built-in)."""
    env = os.environ.get("OCIO", "")
    if not env or env.startswith("ocio://"):
        return env
    try:
        return str(Path(env).expanduser().resolve())
    except OSError:     # pragma: no cover
        return env


def _colorconfig_arg(config: str) -> str:
    """What to pass as ``colorconfig=``: "" when ``config`` is the process default, which OIIO
    keeps parsed (a named config is re-read on every call, ~10-30 ms each)."""
    default = _process_default()
    if not config:
        return "" if default in ("", BUILTIN_URI) else BUILTIN_URI
    return "" if config == default else config


@lru_cache(maxsize=8)
def _color_config(path: str):
    oiio = _oiio()
    cfg = oiio.ColorConfig(path if path else _colorconfig_arg("") or "")
    err = cfg.geterror() if hasattr(cfg, "geterror") else ""
    if err or cfg.getNumColorSpaces() == 0:
        raise SoraError("invalid_input", f"color.config: cannot load OCIO config {path}: "
                        f"{err or 'no color spaces'}", field="color.config")
    return cfg


def blender_config_path() -> Path | None:
    """Blender's ``config.ocio`` from the ``bpy`` wheel, found without importing bpy."""
    import importlib.util

    try:
        found = importlib.util.find_spec("bpy")
    except (ImportError, ValueError):
        return None
    if not found or not found.submodule_search_locations:
        return None
    for root in found.submodule_search_locations:
        for cfg in sorted(Path(root).glob("*/datafiles/colormanagement/config.ocio")):
            return cfg
    return None


class ViewTransform:
    """One display/view/look of an OCIO config; ``None`` picks the documented defaults."""

    def __init__(self, config: str | os.PathLike | None = None, display: str | None = None,
                 view: str | None = None, look: str | None = None):
        if config:
            path = Path(config).expanduser()
            if not path.is_file():
                raise SoraError("not_found", f"color.config: OCIO config not found: {path}",
                                field="color.config")
            self.config = str(path.resolve())
        else:
            self.config = ""
        cfg = _color_config(self.config)
        displays = list(cfg.getDisplayNames())
        if self.config:
            self.scene = cfg.getColorSpaceNameByRole("scene_linear") or "scene_linear"
            self.display = display or cfg.getDefaultDisplayName()
        else:
            self.scene = BUILTIN_SCENE
            self.display = display or BUILTIN_DISPLAY
        if self.display not in displays:
            raise invalid("color.display", f"{self.display!r} is not a display of "
                          f"{self.config or 'the built-in config'}; choose from: {', '.join(displays)}")
        views = list(cfg.getViewNames(self.display))
        if view:
            self.view = view
        elif self.config:
            self.view = cfg.getDefaultViewName(self.display) or views[0]
        else:
            self.view = BUILTIN_VIEW
        if self.view not in views:
            raise invalid("color.view", f"{self.view!r} is not a view of display {self.display!r}; "
                          f"choose from: {', '.join(views)}")
        self._colorconfig = _colorconfig_arg(self.config)
        self.look = look or ""
        if self.look:
            looks = list(cfg.getLookNames())
            if self.look not in looks:
                raise invalid("color.look", f"{self.look!r} is not a look of "
                              f"{self.config or 'the built-in config'}; choose from: {', '.join(looks) or 'none'}")

    def describe(self) -> dict:
        """What a manifest records: the resolved config, scene space, display, view and look."""
        return {"config": self.config or "builtin", "scene_linear": self.scene,
                "display": self.display, "view": self.view, "look": self.look}

    def __repr__(self) -> str:
        return f"ViewTransform({self.describe()})"

    # -- the two directions ------------------------------------------------------------------
    def _apply(self, pixels: np.ndarray, inverse: bool) -> np.ndarray:
        """Run the display transform on any (..., 3) array (reshaped to an image for OIIO)."""
        oiio = _oiio()
        a = np.asarray(pixels, dtype=np.float32)
        shape = a.shape
        if a.ndim == 3:
            img = np.ascontiguousarray(a)
        else:
            flat = a.reshape(-1, 3)
            n = len(flat)
            side = max(1, int(np.ceil(np.sqrt(n))))
            img = np.zeros((side * side, 3), np.float32)
            img[:n] = flat
            img = img.reshape(side, side, 3)
        buf = oiio.ImageBuf(img)
        # OpenImageIO's ociodisplay ignores its looks argument, so the look runs as its own step
        # in scene linear before the view (after it, inverted, on the way back), which matches
        # what Blender shows to 1e-5.
        steps = [self._view_step, self._look_step] if self.look else [self._view_step]
        for step in (steps if inverse else steps[::-1]):
            buf = step(oiio, buf, inverse)
            if buf.has_error:
                raise SoraError("internal", f"OCIO display transform {self.display}/{self.view}"
                                f"{' + ' + self.look if self.look else ''} failed: {buf.geterror()}")
        res = buf.get_pixels(oiio.FLOAT)
        if a.ndim != 3:
            res = res.reshape(-1, 3)[:len(a.reshape(-1, 3))]
        return np.asarray(res, dtype=np.float32).reshape(shape)

    def _view_step(self, oiio, buf, inverse: bool):
        return oiio.ImageBufAlgo.ociodisplay(buf, self.display, self.view, fromspace=self.scene,
                                             unpremult=False, inverse=inverse, colorconfig=self._colorconfig)

    def _look_step(self, oiio, buf, inverse: bool):
        return oiio.ImageBufAlgo.ociolook(buf, self.look, self.scene, self.scene, unpremult=False,
                                          inverse=inverse, colorconfig=self._colorconfig)

    def to_display(self, linear: np.ndarray) -> np.ndarray:
        """Scene linear (HxWx3 or (..., 3)) -> display-referred float32 clipped to [0, 1]."""
        return np.clip(self._apply(linear, inverse=False), 0.0, 1.0)

    def to_linear(self, display: np.ndarray, refine: bool = True) -> np.ndarray:
        """Display-referred [0, 1] -> scene linear float32, such that ``to_display`` gives it back.

        Where OCIO's own inverse does not round-trip (approximate inverse LUTs such as AgX's),
        pixels take this view's solved inverse table (:meth:`inverse_table`) where that is
        closer and, where the view can reach the value, are polished by damped Newton steps
        on the forward view from several starts. Values the view cannot produce (outside its
        gamut) keep the closest scene value found.
        """
        x = np.clip(np.asarray(display, dtype=np.float32), 0.0, 1.0)
        lin = self._apply(x, inverse=True)
        if not refine:
            return lin
        shape = x.shape
        target = x.reshape(-1, 3).astype(np.float64)
        flat = lin.reshape(-1, 3).astype(np.float64)
        err = np.abs(np.clip(self._apply(flat, inverse=False), 0, 1) - target).max(-1)
        bad = np.nonzero(err > ROUND_TRIP_TOL)[0]
        if not len(bad):
            return lin
        table = self.inverse_table()
        u_tab = _trilinear(table.u, target[bad])
        # deep outside the view's gamut (no solved table point around): the table's closest
        # value is the answer; Newton cannot reach these and would only spin
        y_tab = self._apply(np.exp2(u_tab), inverse=False).astype(np.float64)
        e_tab = np.abs(y_tab - target[bad]).max(-1)
        better = e_tab < err[bad]
        flat[bad[better]] = np.exp2(u_tab[better])
        err[bad[better]] = e_tab[better]
        reachable = _corner_min(table.residual, target[bad]) <= ROUND_TRIP_TOL
        keep = reachable & (err[bad] > ROUND_TRIP_TOL)
        bad, u_tab = bad[keep], u_tab[keep]
        if not len(bad):
            return flat.astype(np.float32).reshape(shape)
        ocio = lin.reshape(-1, 3)[bad].astype(np.float64)    # OCIO's own inverse
        peak = np.maximum(ocio.max(-1, keepdims=True), _LOG_FLOOR)
        starts = [u_tab] + [np.log2(np.maximum(ocio, np.maximum(_LOG_FLOOR, f * peak)))
                            for f in START_FRACTIONS]
        todo = np.arange(len(bad))           # positions in ``bad`` still off
        for start in starts:
            u, e = self._newton(target[bad[todo]], start[todo].copy())
            better = e < err[bad[todo]]
            flat[bad[todo[better]]] = np.exp2(u[better])
            err[bad[todo[better]]] = e[better]
            todo = todo[err[bad[todo]] > ROUND_TRIP_TOL]
            if not len(todo):
                break
        return flat.astype(np.float32).reshape(shape)

    def inverse_table(self) -> "_InverseTable":
        """The view's inverse solved on a display grid; computed once per process and view."""
        key = (self.config, self.display, self.view, self.look)
        table = _INVERSE_TABLES.get(key)
        if table is None:
            table = _INVERSE_TABLES[key] = self._solve_table(TABLE_SIZE)
        return table

    def _solve_table(self, size: int) -> "_InverseTable":
        axis = np.linspace(0.0, 1.0, size)
        grid = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), -1).reshape(-1, 3)
        flat = self._apply(grid, inverse=True).astype(np.float64)
        err = np.abs(np.clip(self._apply(flat, inverse=False), 0, 1) - grid).max(-1)
        peak = np.maximum(flat.max(-1, keepdims=True), _LOG_FLOOR)
        bad = np.nonzero(err > ROUND_TRIP_TOL)[0]
        # several starts: approximate inverses push saturated colours below zero, so also
        # start with the small channels raised towards the pixel's largest one
        for fraction in START_FRACTIONS:
            if not len(bad):
                break
            start = np.maximum(flat[bad], np.maximum(_LOG_FLOOR, fraction * peak[bad]))
            u, e = self._newton(grid[bad], np.log2(start))
            better = e < err[bad]
            flat[bad[better]] = np.exp2(u[better])
            err[bad[better]] = e[better]
            bad = bad[err[bad] > ROUND_TRIP_TOL]
        u = np.log2(np.maximum(flat, _LOG_FLOOR ** 2)).reshape(size, size, size, 3)
        return _InverseTable(u, err.reshape(size, size, size))

    def _newton(self, target: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Solve ``forward(2**u) == target`` per pixel (N x 3) by damped Newton in log2 space.

        Every iteration is two batched OCIO calls (each call parses the config); a pixel
        leaves the loop once it is solved or stops improving (a value outside the view's
        gamut converges to its closest reachable value and stays there).
        """
        y = self._apply(np.exp2(u), inverse=False).astype(np.float64)
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
            yp = self._apply(np.exp2(np.concatenate([ub + h * e for e in eye])), inverse=False)
            jac = np.stack([(yp[j * n:(j + 1) * n] - yb) / h for j in range(3)], -1)
            jt = np.swapaxes(jac, 1, 2)
            step = np.linalg.solve(jt @ jac + 1e-8 * eye, jt @ rb[..., None])[..., 0]
            step = np.clip(step, -4.0, 4.0)
            cands = ub[None] - scales[:, None, None] * step[None]          # (S, n, 3)
            yc = self._apply(np.exp2(cands.reshape(-1, 3)), inverse=False).astype(np.float64)
            yc = yc.reshape(len(scales), n, 3)
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


class _InverseTable:
    """log2 scene values solved on a display grid (size^3), and each point's residual."""

    def __init__(self, u: np.ndarray, residual: np.ndarray):
        self.u = u
        self.residual = residual


_INVERSE_TABLES: dict[tuple, _InverseTable] = {}


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


def _trilinear(grid: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Trilinear lookup of ``grid`` (G, G, G, C) at points ``x`` (N, 3) in [0, 1]."""
    size = grid.shape[0]
    p = np.clip(x, 0.0, 1.0) * (size - 1)
    i0 = np.minimum(np.floor(p).astype(np.int64), size - 2)
    f = p - i0
    out = np.zeros((len(x), grid.shape[-1]), np.float64)
    for dx in (0, 1):
        wx = f[:, 0] if dx else 1.0 - f[:, 0]
        for dy in (0, 1):
            wy = f[:, 1] if dy else 1.0 - f[:, 1]
            for dz in (0, 1):
                wz = f[:, 2] if dz else 1.0 - f[:, 2]
                out += (wx * wy * wz)[:, None] * grid[i0[:, 0] + dx, i0[:, 1] + dy, i0[:, 2] + dz]
    return out


def load_conditioning(path: str | os.PathLike, transform: ViewTransform | None, width: int,
                      height: int, same_aspect: str = "") -> np.ndarray:
    """An input frame as the model sees it: HxWx3 float32 display-referred in [0, 1].

    EXR (scene linear) goes through ``transform.to_display``; PNG/JPEG/TIFF are already
    display-referred, as is any file when ``transform`` is None (control passes are data, not
    pictures). The image is resized to ``width`` x ``height`` with OpenImageIO; with
    ``same_aspect`` (a field name) a frame of another aspect ratio is refused instead of squeezed.
    """
    from .exr import read_image

    oiio = _oiio()
    path = Path(path)
    rgb = read_image(path)
    if transform is not None and path.suffix.lower() in (".exr", ".hdr"):
        rgb = transform.to_display(rgb)
    rgb = np.clip(rgb, 0.0, 1.0)
    h, w = rgb.shape[:2]
    if same_aspect and abs(w / h - width / height) > 0.02 * width / height:
        raise SoraError("invalid_input", f"{same_aspect}: {path.name} is {w}x{h}, not the shot's aspect "
                        f"ratio ({width}x{height})", field=same_aspect,
                        hint="render the control pass at the shot's resolution")
    if (w, h) != (width, height):
        src = oiio.ImageBuf(np.ascontiguousarray(rgb))
        dst = oiio.ImageBufAlgo.resize(src, roi=oiio.ROI(0, width, 0, height, 0, 1, 0, 3))
        if dst.has_error:
            raise SoraError("internal", f"resizing {path} failed: {dst.geterror()}")
        rgb = np.clip(dst.get_pixels(oiio.FLOAT), 0.0, 1.0)
    return np.ascontiguousarray(rgb, dtype=np.float32)
