"""The view transform between the model's display-referred frames and scene linear.

Models see and make display-referred sRGB in [0, 1]; the compositor works in scene linear.
A :class:`ViewTransform` is one OCIO display/view (+ look) of a config, applied through
OpenColorIO's own CPU processors (``PyOpenColorIO``: the ``opencolorio`` wheel in the worker,
the module Blender ships inside Blender):

- ``to_display(linear)``: scene linear -> display (rendered EXR going into the model);
- ``to_linear(display)``: the inverse (generated frames coming out as EXR).

The transform is built the way Blender builds its display processor: the look runs from the
scene-linear role into the look's process space, then the display/view from there with the
view's own looks bypassed. So a frame seen through the scene's view in Blender looks like what
the model made, looks included.

With a config (e.g. Blender's ``config.ocio``) the scene-linear space is its ``scene_linear``
role and display/view default to the config's defaults (Blender: sRGB, AgX in 4.x). Without
one, the built-in default is OCIO's built-in config (``ocio://default``) with the display
``sRGB - Display`` and the view ``Un-tone-mapped`` from ``Linear Rec.709 (sRGB)``: the plain
sRGB curve on Rec.709 primaries, what Blender's ``Standard`` view does.

Speed: configs and processors are built once per process and (config, display, view, look,
direction) and cached; a processor is thread-safe, so the frame pool applies it from every
thread. A 1280x720 frame takes tens of milliseconds either way.

Inverting a view: most views are exactly invertible (Standard, Un-tone-mapped, Filmic) and
``to_linear`` is OCIO's own inverse. Blender's AgX is not: its config ships an approximate
inverse LUT (round-trip errors up to ~0.1). For such a view ``to_linear`` applies an inverse
baked once from the config's own forward transform (``frames.inverse``: solved on a display
grid, cached on disk by the config's hash, applied by OCIO as a 3-D LUT). Its round trip is off
by about 4e-4 on average (max ~1e-2 near the edge of the view's gamut); ``exact=True`` polishes
every pixel with the solver to 3e-4 instead, at seconds a frame (the default only for a view
whose baked table misses by more than 1e-2, see ``inverse_mode``).
"""

from __future__ import annotations

import hashlib
import os
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import SoraError, invalid

BUILTIN_URI = "ocio://default"
BUILTIN_SCENE = "Linear Rec.709 (sRGB)"
BUILTIN_DISPLAY = "sRGB - Display"
BUILTIN_VIEW = "Un-tone-mapped"
ROUND_TRIP_TOL = 3e-4  # display units; 1/13 of an 8-bit code value
INTEGER_TOL = 1e-4     # scene units (relative above 1): integer-input table vs the float processor
INTEGER_DEPTHS = {np.dtype(np.uint8).str: "BIT_DEPTH_UINT8", np.dtype(np.uint16).str: "BIT_DEPTH_UINT16"}
_PROBE = np.exp2(np.stack(np.meshgrid(*[np.linspace(-8.0, 4.0, 9)] * 3, indexing="ij"), -1)
                 .reshape(-1, 3)).astype(np.float32)     # scene colours an exact inverse must undo


def ocio():
    """``PyOpenColorIO``, or a clear error naming the package that provides it."""
    try:
        import PyOpenColorIO
    except ImportError as exc:
        raise SoraError("not_found", f"OpenColorIO's Python module is missing ({exc})",
                        hint="install the worker environment: pip install 'sora-core[worker]' "
                        "(it brings the opencolorio wheel)") from None
    return PyOpenColorIO


@lru_cache(maxsize=8)
def _load_config(path: str, stamp: tuple):
    """An OCIO config object; ``stamp`` (mtime, size) makes an edited file load again."""
    lib = ocio()
    try:
        return lib.Config.CreateFromFile(path or BUILTIN_URI)
    except Exception as exc:     # OCIO raises its own Exception type for any parse error
        raise SoraError("invalid_input", f"color.config: cannot load OCIO config {path or BUILTIN_URI}: "
                        f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                        field="color.config") from None


def _stamp(path: str) -> tuple:
    if not path:
        return ()
    st = os.stat(path)
    return (st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=8)
def _config_hash(path: str, stamp: tuple) -> str:
    """sha256 of the config file (the built-in config: OCIO's cache id)."""
    if not path:
        return hashlib.sha256(_load_config("", ()).getCacheID().encode()).hexdigest()
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


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


_PROCESSORS: dict[tuple, object] = {}
_LOCK = threading.RLock()     # a build may build another (the integer probe uses the float one)


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
        self._stamp = _stamp(self.config)
        cfg = self.ocio_config()
        where = self.config or "the built-in config"
        displays = list(cfg.getDisplays())
        if self.config:
            scene = cfg.getColorSpace("scene_linear")
            self.scene = scene.getName() if scene else "scene_linear"
            self.display = display or cfg.getDefaultDisplay()
        else:
            self.scene = BUILTIN_SCENE
            self.display = display or BUILTIN_DISPLAY
        if self.display not in displays:
            raise invalid("color.display", f"{self.display!r} is not a display of {where}; "
                          f"choose from: {', '.join(displays)}")
        views = list(cfg.getViews(self.display))
        if view:
            self.view = view
        elif self.config:
            self.view = cfg.getDefaultView(self.display) or views[0]
        else:
            self.view = BUILTIN_VIEW
        if self.view not in views:
            raise invalid("color.view", f"{self.view!r} is not a view of display {self.display!r}; "
                          f"choose from: {', '.join(views)}")
        self.look = look or ""
        if self.look:
            looks = list(cfg.getLookNames())
            short = self.look.split(" - ", 1)[-1]
            if self.look not in looks and short in looks:
                self.look = short           # Blender shows some looks as "<view> - <look>"
            if self.look not in looks:
                raise invalid("color.look", f"{self.look!r} is not a look of {where}; "
                              f"choose from: {', '.join(looks) or 'none'}")

    @property
    def key(self) -> tuple:
        """What identifies this transform's processors in the caches."""
        return (self.config, self._stamp, self.display, self.view, self.look)

    def ocio_config(self):
        return _load_config(self.config, self._stamp)

    def config_hash(self) -> str:
        return _config_hash(self.config, self._stamp)

    def describe(self) -> dict:
        """What a manifest records: the resolved config, scene space, display, view, look and
        how the inverse is made (``exact``: OCIO's own; ``baked``/``solved``: the baked table, see ``inverse_mode``)."""
        out = {"config": self.config or "builtin", "scene_linear": self.scene, "display": self.display,
               "view": self.view, "look": self.look, "inverse": self.inverse_mode}
        if not self.exact_inverse:
            from . import inverse

            out["inverse_error"] = inverse.table(self).describe()
        return out

    def __repr__(self) -> str:
        return (f"ViewTransform(config={self.config or 'builtin'!r}, display={self.display!r}, "
                f"view={self.view!r}, look={self.look!r})")

    # -- processors ----------------------------------------------------------------------------
    def group(self):
        """Blender's display transform: look into its process space, then display/view."""
        lib = ocio()
        group = lib.GroupTransform()
        src = self.scene
        if self.look:
            space = self.ocio_config().getLook(self.look).getProcessSpace() or self.scene
            group.appendTransform(lib.LookTransform(src=src, dst=space, looks=self.look))
            src = space
        group.appendTransform(lib.DisplayViewTransform(src=src, display=self.display, view=self.view,
                                                       looksBypass=bool(self.look)))
        return group

    def processor(self, inverse: bool = False):
        """The cached CPU processor of one direction (thread-safe to apply)."""
        return self._cached(("cpu", inverse), lambda: self._ocio_processor(inverse).getDefaultCPUProcessor())

    def integer_processor(self, dtype: np.dtype):
        """The inverse's CPU processor taking 8- or 16-bit pixels (float32 out), or None when
        it does not match the float one. OCIO turns the view's separable first steps (the
        display curve) into a table for integer input, several times faster than the curve;
        probed once against the float processor, kept only within ``INTEGER_TOL``."""
        return self._cached(("int", np.dtype(dtype).str), lambda: self._build_integer(np.dtype(dtype)))

    def _build_integer(self, dtype: np.dtype):
        lib = ocio()
        depth = getattr(lib, INTEGER_DEPTHS[dtype.str])
        proc = self._ocio_processor(True).getOptimizedCPUProcessor(
            depth, lib.BIT_DEPTH_F32, lib.OptimizationFlags.OPTIMIZATION_DEFAULT)
        top = np.iinfo(dtype).max
        probe = np.stack(np.meshgrid(*[np.linspace(0, top, 18).round()] * 3, indexing="ij"), -1)
        probe = probe.reshape(1, -1, 3).astype(dtype)
        fast = _apply_integer(proc, probe)
        slow = self.apply(probe.astype(np.float32) / top, inverse=True)
        ok = bool((np.abs(fast - slow) <= INTEGER_TOL * np.maximum(1.0, np.abs(slow))).all())
        return proc if ok else None

    def _ocio_processor(self, inverse: bool):
        lib = ocio()
        direction = lib.TRANSFORM_DIR_INVERSE if inverse else lib.TRANSFORM_DIR_FORWARD
        try:
            return self.ocio_config().getProcessor(self.group(), direction)
        except Exception as exc:
            raise SoraError("invalid_input", f"color: OCIO cannot build {self.display}/"
                            f"{self.view}{' + ' + self.look if self.look else ''}: {exc}",
                            field="color") from None

    def _cached(self, what: tuple, build):
        key = self.key + what
        if key not in _PROCESSORS:
            with _LOCK:
                if key not in _PROCESSORS:
                    _PROCESSORS[key] = build()
        return _PROCESSORS[key]

    def apply(self, pixels: np.ndarray, inverse: bool = False, processor=None) -> np.ndarray:
        """Run a processor on any (..., 3) array; returns a new float32 array of that shape."""
        return self._apply_in_place(np.array(pixels, dtype=np.float32, order="C", copy=True),
                                    processor or self.processor(inverse))

    @staticmethod
    def _apply_in_place(a: np.ndarray, processor) -> np.ndarray:
        if a.shape[-1] != 3:
            raise SoraError("internal", f"colour transform wants (..., 3) pixels, got {a.shape}")
        if a.size:
            processor.applyRGB(a.reshape(-1, 3))
        return a

    @property
    def inverse_mode(self) -> str:
        """``exact`` (OCIO's inverse), ``baked`` (the baked table) or ``solved`` (the baked table
        polished per pixel: a view whose table misses too much). Solves the table if needed."""
        if self.exact_inverse:
            return "exact"
        from . import inverse

        return "solved" if inverse.table(self).error[1] > inverse.BAKED_P99_LIMIT else "baked"

    @property
    def exact_inverse(self) -> bool:
        """Whether OCIO's inverse undoes the forward view (probed once per transform)."""
        def probe() -> bool:
            shown = np.clip(self.apply(_PROBE), 0.0, 1.0)
            back = np.clip(self.apply(self.apply(shown, inverse=True)), 0.0, 1.0)
            return bool(np.abs(back - shown).max() <= ROUND_TRIP_TOL)
        return self._cached(("exact",), probe)

    # -- the two directions ----------------------------------------------------------------------
    def to_display(self, linear: np.ndarray) -> np.ndarray:
        """Scene linear (HxWx3 or (..., 3)) -> display-referred float32 clipped to [0, 1]."""
        out = self.apply(linear)
        return np.clip(out, 0.0, 1.0, out=out)

    def to_linear(self, display: np.ndarray, exact: bool | None = None) -> np.ndarray:
        """Display-referred [0, 1] -> scene linear float32, such that ``to_display`` gives it back.

        ``display`` is float, or uint8/uint16 as an 8- or 16-bit file stores it (read straight
        into OCIO's integer-input processor where that matches, see ``integer_processor``).
        An exactly invertible view uses OCIO's inverse. Otherwise the baked inverse
        (:mod:`.inverse`) answers; ``exact=True`` polishes each pixel with the solver (seconds a
        frame), which ``None`` does only where the baked table is too coarse (``inverse_mode``).
        """
        display = np.asarray(display)
        if display.dtype.str in INTEGER_DEPTHS:
            fast = self.integer_processor(display.dtype) if self.exact_inverse else None
            if fast is not None:
                return _apply_integer(fast, display)
            display = display.astype(np.float32) / np.float32(np.iinfo(display.dtype).max)
        x = np.clip(display.astype(np.float32, copy=False), 0.0, 1.0)     # a new array
        if self.exact_inverse:
            return self._apply_in_place(np.ascontiguousarray(x), self.processor(True))
        from . import inverse

        lin = self.apply(x, processor=inverse.baked_processor(self))
        if exact is None:
            exact = self.inverse_mode == "solved"
        return inverse.polish(self, x, lin) if exact else lin


def _apply_integer(processor, pixels: np.ndarray) -> np.ndarray:
    """An integer-input processor on (..., 3) uint8/uint16 pixels -> new float32 array."""
    lib = ocio()
    src = np.ascontiguousarray(pixels)
    out = np.empty(src.shape, np.float32)
    n, size = src.size // 3, src.itemsize
    depth = getattr(lib, INTEGER_DEPTHS[src.dtype.str])
    if n:
        processor.apply(lib.PackedImageDesc(src, n, 1, 3, depth, size, 3 * size, 3 * size * n),
                        lib.PackedImageDesc(out.reshape(-1), n, 1, 3))
    return out


def load_conditioning(path: str | os.PathLike, transform: ViewTransform | None, width: int,
                      height: int, same_aspect: str = "") -> np.ndarray:
    """An input frame as the model sees it: HxWx3 float32 display-referred in [0, 1].

    EXR (scene linear) goes through ``transform.to_display``; PNG/JPEG/TIFF are already
    display-referred, as is any file when ``transform`` is None (control passes are data, not
    pictures). The image is resized to ``width`` x ``height`` with OpenImageIO; with
    ``same_aspect`` (a field name) a frame of another aspect ratio is refused instead of squeezed.
    """
    import OpenImageIO as oiio

    from .exr import read_image

    path = Path(path)
    rgb = read_image(path)
    if transform is not None and path.suffix.lower() in (".exr", ".hdr"):
        rgb = transform.to_display(rgb)
    rgb = np.clip(rgb, 0.0, 1.0, out=rgb)         # our own array: no second copy of a frame
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
