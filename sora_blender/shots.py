"""Turning Blender state into ShotSpecs: sizes fitted to the model, colour from the scene's view,
rendered sequences, version folders ``//sora/<shot>/v###/`` so nothing is overwritten."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import bpy

from sora_core.errors import SoraError, invalid
from sora_core.frames.sequence import fill_pattern, find_sequence
from sora_core import capabilities as core_caps, planning
from sora_core.spec import NAME_RE, Color, Inputs, Keyframe, Output, Runtime, ShotSpec
from sora_core.upsampler_rules import with_file

from . import live, model_files, schedule
from .models import model_info, model_ref_for_spec
from .settings import get_prefs, output_root

VERSION_RE = re.compile(r"^v(\d{3,})$")
_BIG = 987654321


# ---- colour ----------------------------------------------------------------------------------
def ocio_config_path() -> str:
    """The OCIO config Blender uses: $OCIO, else the one shipped with Blender."""
    env = os.environ.get("OCIO")
    if env and Path(env).is_file():
        return env
    return str(Path(bpy.utils.resource_path("LOCAL")) / "datafiles" / "colormanagement" / "config.ocio")


def scene_color(scene) -> Color:
    """The scene's view transform, used both ways (renders in, generated frames out)."""
    vs, ds = scene.view_settings, scene.display_settings
    look = vs.look if vs.look and vs.look != "None" else None   # the worker maps "<view> - <look>"
    return Color(config=ocio_config_path(), display=ds.display_device, view=vs.view_transform, look=look)


# ---- output folders ----------------------------------------------------------------------------
def next_version(root: Path, shot: str) -> str:
    """``<shot>/v###`` one above every existing version; the folder is reserved at once."""
    shot_dir = root / shot
    numbers = [int(m.group(1)) for p in (shot_dir.iterdir() if shot_dir.is_dir() else ())
               if (m := VERSION_RE.match(p.name))]
    n = max(numbers, default=0) + 1
    while True:
        rel = f"{shot}/v{n:03d}"
        try:
            (root / rel).mkdir(parents=True, exist_ok=False)
            return rel
        except FileExistsError:
            n += 1


def remove_if_empty(folder: str | Path) -> None:
    """A reserved version folder nothing was written into, and its shot folder when that held
    no other version (a refused first shot leaves nothing behind)."""
    folder = Path(folder)
    for path in (folder, folder.parent) if VERSION_RE.match(folder.name) else (folder,):
        try:
            path.rmdir()
        except OSError:
            return


def check_shot_name(name: str) -> str:
    name = (name or "").strip()
    if not NAME_RE.match(name):
        raise invalid("shot name", f"{name!r} must be 1-100 letters, digits, '.', '_' or '-'",
                      hint="rename the shot, e.g. 'shot_010'")
    return name


# ---- rendered sequences ----------------------------------------------------------------------
def render_pattern(scene) -> str:
    """The scene's render output as an absolute ``name.####.ext`` pattern."""
    probe = scene.render.frame_path(frame=_BIG)
    one = scene.render.frame_path(frame=1)
    width = len(one) - len(probe) + len(str(_BIG))
    if str(_BIG) not in probe:
        raise invalid("render output", f"cannot find the frame number in {scene.render.filepath!r}")
    return bpy.path.abspath(probe.replace(str(_BIG), "#" * max(width, 1)))


def sequence_source(scene, props) -> tuple[str, list[int] | None]:
    """(pattern or path, [first, last] or None) of the rendered frames the mode starts from."""
    if props.use_scene_range:
        frame_range = [scene.frame_start, scene.frame_end]
    else:
        frame_range = [min(props.seq_start, props.seq_end), max(props.seq_start, props.seq_end)]
    if props.seq_source == "RENDER_OUTPUT":
        return render_pattern(scene), frame_range
    if not props.seq_path:
        raise invalid("sequence", "no sequence path set", hint="choose a rendered sequence (name.####.exr)")
    return bpy.path.abspath(props.seq_path), frame_range


def control_folder(root: Path, shot: str) -> Path:
    """Where Render Control writes a shot's control passes: ``<root>/<shot>/control/``."""
    return Path(root) / shot / "control"


def control_pattern(scene, props, root: Path) -> str:
    """The control sequence the panel's shot follows: its rendered pass, or the chosen path."""
    if props.control_source == "PATH":
        if not props.control_path:
            raise invalid("control", "no control sequence set", hint="choose one, or press Render Control")
        return bpy.path.abspath(props.control_path)
    return str(control_folder(root, check_shot_name(props.shot_name)) / f"{props.control_kind}.####.png")


def existing_frames(pattern: str, frame_range=None) -> list[int]:
    """Frame numbers on disk for a ``####`` pattern, within ``[first, last]`` when given: one
    listing of the folder, never a probe per number (an open range would be 100,000 stats).
    Call it when a spec is built or a plan is made, never from draw()."""
    if "#" not in pattern:
        return []
    try:
        numbers = [n for n, _ in find_sequence(pattern)]
    except SoraError:
        return []
    if frame_range is None:
        return numbers
    first, last = frame_range
    return [n for n in numbers if first <= n <= last]


# ---- fitting a request to the model ------------------------------------------------------------
@dataclass
class Fit:
    frames: int
    width: int
    height: int
    fps: float
    notes: list[str] = field(default_factory=list)
    problem: str = ""               # why the request cannot run (greyed-out Generate)
    caps: object = None
    passes: int = 1
    source: str = ""                # the render output pattern, for the panel
    source_error: str = ""          # why the render output has none


CHAIN_MODES = core_caps.CHAIN_MODES
SOURCE_MODES = ("restyle", "hdr")      # one frame made per frame of the rendered sequence


def fit_values(caps, mode: str, frames: int, width: int, height: int, context: int = 0,
               available: int | None = None, fps: float | None = None, changes=(),
               control_kind: str = "layout", upsample: str = "auto") -> planning.Plan:
    """The core planner's Plan of a request on ``caps`` (frames, size, passes, notices).

    For extend, ``frames`` counts new frames and ``available`` is how many rendered frames there
    are (None: not known yet). Raises SoraError when the request cannot be made."""
    count = available or max(frames, caps.max_frames)
    inputs: dict = {}
    if mode in core_caps.SEQUENCE_MODES:
        inputs[core_caps.SEQUENCE_MODES[mode]] = "preview.####.exr"     # frames, or control
    if mode == "control":
        inputs["control_kind"] = control_kind
    if mode == "extend" and context:
        inputs["context"] = context
    if mode == "animate":
        inputs["image"] = "preview.exr"
    if mode == "interpolate":
        inputs["keyframes"] = [{"path": "a.exr", "index": 0}, {"path": "b.exr", "index": max(frames - 1, 1)}]
    spec = ShotSpec.from_dict({"mode": mode, "prompt": "preview", "frames": frames, "width": width,
                               "height": height, "fps": fps, "inputs": inputs, "upsample": upsample,
                               "prompt_schedule": [{"start": c.start, "prompt": c.prompt} for c in changes]
                               if mode in CHAIN_MODES else []})
    sequence = tuple((n, f"preview.{n:04d}.exr") for n in range(1, count + 1))
    return planning.plan(spec, caps, planning.Available(sequence=sequence))


def scene_size(scene) -> tuple[int, int]:
    r = scene.render
    return (max(1, round(r.resolution_x * r.resolution_percentage / 100)),
            max(1, round(r.resolution_y * r.resolution_percentage / 100)))


def fit(scene, props) -> Fit:
    """What will be asked of the model, never raising: the notes and the reason it cannot run."""
    info, caps, problem = model_info(props.model)
    render = scene.render
    fps = render.fps / render.fps_base if props.use_scene_fps else props.fps
    if props.use_scene_size:
        width = max(1, round(render.resolution_x * render.resolution_percentage / 100))
        height = max(1, round(render.resolution_y * render.resolution_percentage / 100))
    else:
        width, height = props.width, props.height
    mode = props.mode
    if mode == "extend":
        frames = props.extend_frames
    elif mode == "interpolate":
        frames = abs(props.key_b - props.key_a) + 1
    elif props.use_scene_frames or mode in (*SOURCE_MODES, "control"):
        if mode in SOURCE_MODES and not props.use_scene_range:
            frames = abs(props.seq_end - props.seq_start) + 1
        else:
            frames = scene.frame_end - scene.frame_start + 1
    else:
        frames = props.frames
    if frames == 0 and caps is not None:
        frames = caps.default_frames        # a first press makes one pass in seconds, not the range
    result = Fit(frames, width, height, fps, caps=caps)
    if caps is None:
        result.problem = problem or "unknown model"
        return result
    if problem:
        result.problem = problem
    if not caps.supports(mode):
        result.problem = f"{caps.family} cannot {mode}; it can: {', '.join(caps.modes)}"
        return result
    try:                    # a named upsampler file: the plan the worker makes (its header read)
        caps = result.caps = with_file(caps, model_files.components_of(props).upsampler, props.model)
    except SoraError as exc:
        result.problem = exc.message
        return result
    if mode in SOURCE_MODES and props.use_scene_range:
        frames = scene.frame_end - scene.frame_start + 1
    available = None
    if mode == "extend":
        try:
            pattern, frame_range = sequence_source(scene, props)
            available = len(existing_frames(pattern, frame_range)) or None
        except SoraError:
            pass
    try:
        p = fit_values(caps, mode, frames, width, height, props.context_frames, available, fps,
                       schedule.to_spec(props), props.control_kind, props.upsample)     # prompt switches start passes too
    except SoraError as exc:
        result.problem = exc.message
        return result
    result.notes += p.notices
    result.frames, result.width, result.height, result.passes = p.total, p.width, p.height, len(p.passes)
    return result


def settings_key(scene) -> tuple:
    """Everything of the scene a panel plan depends on (no disk access)."""
    r, vs = scene.render, scene.view_settings
    return (scene.frame_start, scene.frame_end, r.resolution_x, r.resolution_y, r.resolution_percentage,
            r.fps, r.fps_base, r.filepath, bpy.data.filepath, vs.view_transform, vs.look, scene.display_settings.display_device)


def panel_fit(scene) -> Fit:
    """:func:`fit` for draw(): made once per settings change (a cheap key of the panel's and the
    scene's settings; :data:`live.generation` for what changed on disk), never per redraw."""
    props = scene.sora
    key = (live.rna_key(props), settings_key(scene), live.generation)
    return live.memo("scene", scene.session_uid, key, lambda: _fit_for_panel(scene, props))


def _fit_for_panel(scene, props) -> Fit:
    result = fit(scene, props)
    try:
        result.source = render_pattern(scene)
    except SoraError as exc:        # a bad output path: the panel shows it
        result.source_error = exc.message
    return result


# ---- specs -------------------------------------------------------------------------------------
def spec_runtime(prefs) -> Runtime:
    """The worker settings of the preferences, as a spec carries them."""
    return Runtime(device=prefs.device, dtype=prefs.dtype, memory=prefs.memory)


def still_path(scene, props, inputs_dir: Path) -> str:
    """The still to animate as a file: Render Result and unsaved images are written as EXR."""
    if props.still_source == "FILE":
        if not props.still_path:
            raise invalid("image", "no image file chosen")
        return bpy.path.abspath(props.still_path)
    if props.still_source == "IMAGE":
        image = props.still_image
        if image is None:
            raise invalid("image", "no image chosen")
    else:
        image = bpy.data.images.get("Render Result")
        if image is None or not image.has_data and image.type != "RENDER_RESULT":
            raise SoraError("not_found", "there is no Render Result", hint="render a frame (F12) first")
    if image.type == "IMAGE" and image.filepath and not image.is_dirty and image.packed_file is None:
        path = bpy.path.abspath(image.filepath_raw or image.filepath)
        if os.path.isfile(path):
            return path
    inputs_dir.mkdir(parents=True, exist_ok=True)
    path = inputs_dir / f"{bpy.path.clean_name(image.name)}.exr"
    settings = scene.render.image_settings
    old = (settings.file_format, settings.color_depth)
    try:
        settings.file_format = "OPEN_EXR"
        settings.color_depth = "16"
        image.save_render(str(path), scene=scene)
    except RuntimeError as exc:
        raise SoraError("not_found", f"cannot save {image.name}: {exc}",
                        hint="render a frame (F12) first" if image.type == "RENDER_RESULT" else "") from None
    finally:
        settings.file_format, settings.color_depth = old
    return str(path)


def scene_spec(scene, props=None, prefs=None, reserve: bool = True) -> tuple[ShotSpec, Path, Fit]:
    """The ShotSpec for the scene's Sora panel; reserves ``<root>/<shot>/v###``."""
    props = props or scene.sora
    prefs = prefs or get_prefs()
    shot = check_shot_name(props.shot_name)
    fitted = fit(scene, props)
    if fitted.problem:
        raise SoraError("invalid_input", fitted.problem, field="model",
                        hint="choose another mode or model (Preferences > Add-ons > Sora Shots)")
    root = output_root(prefs)
    mode = props.mode
    inputs = Inputs()
    out = Output(dir=f"{shot}/v000", name=shot, first_frame=scene.frame_start)
    frames = fitted.frames
    if mode == "animate":
        inputs.image = still_path(scene, props, root / "_inputs" / shot)
    elif mode == "control":
        pattern, frame_range = control_pattern(scene, props, root), [scene.frame_start, scene.frame_end]
        if not existing_frames(pattern, frame_range):
            raise SoraError("not_found", f"no control frames {frame_range[0]}-{frame_range[1]} at {pattern}",
                            hint="press Render Control (or choose a control sequence)")
        inputs.control, inputs.frame_range = pattern, frame_range
        inputs.control_kind, inputs.control_strength = props.control_kind, props.control_strength
        out.first_frame = frame_range[0]
    elif mode in ("extend", "interpolate", *SOURCE_MODES):
        pattern, frame_range = sequence_source(scene, props)
        if mode == "interpolate":
            a, b = sorted((props.key_a, props.key_b))
            if a == b:
                raise invalid("keyframes", "the two keyframes are the same frame")
            inputs.keyframes = [Keyframe(fill_pattern(pattern, a), 0), Keyframe(fill_pattern(pattern, b), b - a)]
            for k in inputs.keyframes:
                if not os.path.isfile(k.path):
                    raise SoraError("not_found", f"keyframe not rendered: {k.path}",
                                    hint="render the keyframes first (or set the sequence path)")
            if frames != b - a + 1:        # the model's frame rule moved the last keyframe
                inputs.keyframes[1].index = frames - 1
            out.first_frame = a
        else:
            inputs.frames = pattern
            inputs.frame_range = frame_range if "#" in pattern else None
            found = existing_frames(pattern, frame_range)
            if "#" in pattern and not found:
                raise SoraError("not_found", f"no rendered frames {frame_range[0]}-{frame_range[1]} "
                                f"at {pattern}", hint="render the animation first (Ctrl F12) or "
                                "set the sequence path and range")
            if mode == "extend":
                inputs.direction = props.direction
                inputs.context = props.context_frames or None
                out.first_frame = None          # the worker continues the numbering
                first = found[0] if found else None
                if props.direction == "backward" and first is not None and first < frames:
                    raise invalid("direction", f"extending backwards from frame {first} by {frames} frames "
                                  "would number frames below 0",
                                  hint=f"render from frame {frames} or later (Output Properties > Frame "
                                       f"Range), or ask for at most {first} new frames")
            else:
                if mode == "restyle":
                    inputs.strength = props.strength
                out.first_frame = frame_range[0] if frame_range else 1
    components, loras = model_files.to_spec(props)
    spec = ShotSpec(mode=mode, prompt=props.prompt, negative_prompt=props.negative_prompt,
                    model=model_ref_for_spec(props.model), seed=props.seed,
                    steps=props.steps or None, guidance=None if props.guidance < 0 else props.guidance,
                    guidance_2=None if props.guidance_2 < 0 else props.guidance_2, upsample=props.upsample,
                    width=fitted.width, height=fitted.height, frames=frames, fps=fitted.fps,
                    prompt_schedule=schedule.to_spec(props) if mode in CHAIN_MODES else [],
                    components=components, loras=loras, preset=props.preset.strip() or None,
                    inputs=inputs, output=out, color=scene_color(scene), runtime=spec_runtime(prefs))
    spec.validate()
    if reserve:
        spec.output.dir = next_version(root, shot)
    return spec, root, fitted
