"""Control passes from the scene: depth, edges, layout and pose, as display-referred PNG frames.

What only a 3D package can give a video model: the exact layout, camera path and timing of a
blocked-out shot. Each pass is rendered in a temporary scene that links the scene's objects and
camera (the artist's scene, its compositor and its materials are never touched) with Cycles at
one sample, the view transform ``Raw`` (stored values are the pass values), into
``<folder>/<kind>.####.png``:

- ``depth``: camera depth mapped per shot (not per frame, so motion in depth stays visible) from
  the nearest to the farthest geometry the camera sees over the shot, inverted as the models
  expect: near is white, far and empty are black;
- ``edges``: a Sobel filter over that depth, white lines on black;
- ``layout``: every object a flat colour on black (a hue per object, stable across frames), or
  white silhouettes (``layout_style="silhouettes"``, what the bundled model learned);
- ``pose``: for scenes with armatures, each bone drawn from head to tail as projected by the
  camera, in the OpenPose colour order, joints as dots (drawn with numpy, no render).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import bpy
import numpy as np
from mathutils import Vector

KINDS = ("depth", "edges", "layout", "pose")
LAYOUT_STYLES = ("colors", "silhouettes")
EDGE_GAIN = 4.0
# OpenPose's limb colours, in its order (red through magenta), cycled over the bones
OPENPOSE_COLORS = [(255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0),
                   (0, 255, 0), (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255),
                   (0, 0, 255), (85, 0, 255), (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85)]


def shot_depth_range(scene, frames: range) -> tuple[float, float]:
    """Nearest and farthest camera depth of the meshes' bounding boxes over ``frames``, within
    the camera's clipping range (what the depth pass is normalised to)."""
    camera = scene.camera
    near, far = float("inf"), 0.0
    current = scene.frame_current
    try:
        for frame in frames:
            depsgraph = _evaluated(scene, frame)
            to_camera = camera.evaluated_get(depsgraph).matrix_world.inverted()
            for ob in scene.objects:
                if ob.type not in ("MESH", "CURVE", "SURFACE", "META", "FONT") or ob.hide_render:
                    continue
                world = ob.evaluated_get(depsgraph).matrix_world
                for corner in ob.bound_box:
                    z = -(to_camera @ (world @ Vector(corner))).z
                    if z > 0:
                        near, far = min(near, z), max(far, z)
    finally:
        scene.frame_set(current)
    clip_start, clip_end = camera.data.clip_start, camera.data.clip_end
    if far <= 0:
        return clip_start, clip_end
    near, far = max(near, clip_start), min(far, clip_end)
    return near, max(far, near + 1e-3)


def _evaluated(scene, frame: int):
    """The scene's depsgraph at ``frame`` (a scene shown in no window is not evaluated by itself)."""
    scene.frame_set(frame)
    depsgraph = scene.view_layers[0].depsgraph
    depsgraph.update()
    return depsgraph


def render_control(scene, kind: str, folder: str | Path, frames: range | None = None,
                   size: tuple[int, int] | None = None, layout_style: str = "colors") -> str:
    """Render one control pass of ``scene`` over ``frames`` at ``size``; return its pattern."""
    if kind not in KINDS:
        raise ValueError(f"control kind {kind!r} is not one of {', '.join(KINDS)}")
    if scene.camera is None:
        raise ValueError("the scene has no camera: control passes are seen through it")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    frames = frames or range(scene.frame_start, scene.frame_end + 1)
    size = size or (round(scene.render.resolution_x * scene.render.resolution_percentage / 100),
                    round(scene.render.resolution_y * scene.render.resolution_percentage / 100))
    if kind == "pose":
        return _draw_pose(scene, folder, frames, size)
    temp = _temporary_scene(scene, frames, size)
    made = []
    try:
        tree = _compositor(temp)
        layers = tree.nodes.new("CompositorNodeRLayers")
        layers.scene = temp
        if kind == "layout":
            made.append(_layout_override(temp, layout_style))
            image = layers.outputs["Image"]
        else:
            near, far = shot_depth_range(scene, frames)
            image = _depth_nodes(tree, layers.outputs["Depth"], near, far)
            if kind == "edges":
                image = _edge_nodes(tree, image)
        _file_output(tree, image, folder, kind)
        temp.render.filepath = str(folder / ".render" / "frame.####")   # the Composite's copy
        bpy.ops.render.render(animation=True, scene=temp.name)
    finally:
        _remove_scene(temp, made)
        shutil.rmtree(folder / ".render", ignore_errors=True)
    return str(folder / f"{kind}.####.png")


def _temporary_scene(scene, frames: range, size: tuple[int, int]):
    temp = bpy.data.scenes.new(f"sora_control_{scene.name}")
    for ob in scene.collection.all_objects:
        temp.collection.objects.link(ob)
    temp.camera = scene.camera
    temp.frame_start, temp.frame_end = frames.start, frames.stop - 1
    world = bpy.data.worlds.new("sora_control_black")
    world.color = (0.0, 0.0, 0.0)
    temp.world = world
    r = temp.render
    r.engine = "CYCLES"
    temp.cycles.samples = 1
    temp.cycles.use_denoising = False
    r.filter_size = 0.01                      # flat regions, no anti-aliased fringe
    r.resolution_x, r.resolution_y, r.resolution_percentage = size[0], size[1], 100
    r.fps, r.fps_base = scene.render.fps, scene.render.fps_base
    r.image_settings.file_format = "PNG"
    temp.view_settings.view_transform = "Raw"
    temp.view_settings.look = "None"
    temp.view_layers[0].use_pass_z = True
    return temp


def _compositor(temp):
    temp.use_nodes = True
    tree = temp.node_tree
    for node in list(tree.nodes):
        tree.nodes.remove(node)
    return tree


def _depth_nodes(tree, depth, near: float, far: float):
    """Depth mapped to [1, 0] from near to far; beyond far (the empty background) is 0."""
    mapped = tree.nodes.new("CompositorNodeMapRange")
    mapped.use_clamp = True
    for socket, value in zip(mapped.inputs[1:5], (near, far, 1.0, 0.0)):
        socket.default_value = value
    tree.links.new(depth, mapped.inputs[0])
    return mapped.outputs[0]


def _edge_nodes(tree, image):
    sobel = tree.nodes.new("CompositorNodeFilter")
    sobel.filter_type = "SOBEL"
    tree.links.new(image, sobel.inputs["Image"])
    gain = tree.nodes.new("CompositorNodeMath")
    gain.operation, gain.use_clamp = "MULTIPLY", True
    gain.inputs[1].default_value = EDGE_GAIN
    tree.links.new(sobel.outputs[0], gain.inputs[0])
    return gain.outputs[0]


def _file_output(tree, image, folder: Path, kind: str) -> None:
    out = tree.nodes.new("CompositorNodeOutputFile")
    out.base_path = str(folder)
    out.format.file_format, out.format.color_mode, out.format.color_depth = "PNG", "RGB", "8"
    out.file_slots[0].path = f"{kind}.####"
    tree.links.new(image, out.inputs[0])
    composite = tree.nodes.new("CompositorNodeComposite")
    tree.links.new(image, composite.inputs[0])


def _layout_override(temp, style: str):
    """An emission material on every object: a flat hue per object, or white."""
    if style not in LAYOUT_STYLES:
        raise ValueError(f"layout style {style!r} is not one of {', '.join(LAYOUT_STYLES)}")
    mat = bpy.data.materials.new("sora_control_layout")
    mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    for node in list(nodes):
        nodes.remove(node)
    emit = nodes.new("ShaderNodeEmission")
    out = nodes.new("ShaderNodeOutputMaterial")
    links.new(emit.outputs[0], out.inputs["Surface"])
    if style == "colors":         # Object Info's Random is stable per object: a hue each
        info = nodes.new("ShaderNodeObjectInfo")
        hsv = nodes.new("ShaderNodeCombineColor")
        hsv.mode = "HSV"
        hsv.inputs[1].default_value = hsv.inputs[2].default_value = 1.0
        links.new(info.outputs["Random"], hsv.inputs[0])
        links.new(hsv.outputs[0], emit.inputs["Color"])
    temp.view_layers[0].material_override = mat
    return mat


def _remove_scene(temp, datablocks) -> None:
    world = temp.world
    bpy.data.scenes.remove(temp)
    if world is not None:
        bpy.data.worlds.remove(world)
    for block in datablocks:
        bpy.data.materials.remove(block)


def _draw_pose(scene, folder: Path, frames: range, size: tuple[int, int]) -> str:
    from bpy_extras.object_utils import world_to_camera_view

    armatures = [ob for ob in scene.objects if ob.type == "ARMATURE" and not ob.hide_render]
    if not armatures:
        raise ValueError("the scene has no armature: a pose pass draws the bones of one")
    width, height = size
    current = scene.frame_current
    try:
        for frame in frames:
            depsgraph = _evaluated(scene, frame)
            canvas = np.zeros((height, width, 3), np.float32)
            index = 0
            camera = scene.camera.evaluated_get(depsgraph)
            for arm in armatures:
                evaluated = arm.evaluated_get(depsgraph)
                for bone in evaluated.pose.bones:
                    ends = []
                    for point in (bone.head, bone.tail):
                        co = world_to_camera_view(scene, camera, evaluated.matrix_world @ point)
                        ends.append((co.x * (width - 1), (1 - co.y) * (height - 1), co.z))
                    if min(e[2] for e in ends) > 0:
                        color = np.array(OPENPOSE_COLORS[index % len(OPENPOSE_COLORS)], np.float32) / 255
                        _line(canvas, ends[0][:2], ends[1][:2], color, max(1, width // 128))
                        for x, y, _z in ends:
                            _dot(canvas, x, y, max(2, width // 96), (1.0, 1.0, 1.0))
                    index += 1
            _save_png(canvas, folder / f"pose.{frame:04d}.png")
    finally:
        scene.frame_set(current)
    return str(folder / "pose.####.png")


def _line(canvas, a, b, color, radius: int) -> None:
    steps = int(max(abs(b[0] - a[0]), abs(b[1] - a[1]))) + 1
    for t in np.linspace(0.0, 1.0, steps + 1):
        _dot(canvas, a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, radius, color)


def _dot(canvas, x: float, y: float, radius: int, color) -> None:
    h, w = canvas.shape[:2]
    x0, x1 = max(0, int(x) - radius), min(w, int(x) + radius + 1)
    y0, y1 = max(0, int(y) - radius), min(h, int(y) + radius + 1)
    if x0 < x1 and y0 < y1:
        canvas[y0:y1, x0:x1] = color


def _save_png(canvas: np.ndarray, path: Path) -> None:
    """Store the values as they are (Non-Color: no view transform on a control pass)."""
    h, w = canvas.shape[:2]
    image = bpy.data.images.new(f"sora_pose_{path.stem}", w, h, alpha=False)
    try:
        image.colorspace_settings.name = "Non-Color"
        rgba = np.concatenate([canvas[::-1], np.ones((h, w, 1), np.float32)], axis=2)  # Blender is bottom-up
        image.pixels.foreach_set(rgba.ravel())
        image.filepath_raw, image.file_format = str(path), "PNG"
        image.save()
    finally:
        bpy.data.images.remove(image)
