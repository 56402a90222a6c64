"""Control passes rendered in real bpy: depth falls with distance, edges sit on silhouettes, the
layout gives each object its own flat colour, pose joints land where the bones project, and the
artist's scene is left as it was."""

from __future__ import annotations

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
from mathutils import Vector  # noqa: E402

SIZE = (64, 48)


@pytest.fixture
def blockout(sora_addon):
    """A blocked-out shot in a scene of its own: a ball moving right in front of a farther box."""
    scene = bpy.data.scenes.new("blockout")
    cam = bpy.data.objects.new("cam", bpy.data.cameras.new("cam"))
    scene.collection.objects.link(cam)
    cam.location, cam.rotation_euler = (0, -10, 0), (np.pi / 2, 0, 0)
    scene.camera = cam
    ball = bpy.data.objects.new("ball", _sphere())
    box = bpy.data.objects.new("box", _box())
    for ob in (ball, box):
        scene.collection.objects.link(ob)
    box.location = (1.5, 6, 0)
    ball.location = (-2, 0, 0)
    ball.keyframe_insert("location", frame=1)
    ball.location = (2, 0, 0)
    ball.keyframe_insert("location", frame=5)
    scene.frame_start, scene.frame_end = 1, 5
    yield scene
    bpy.data.scenes.remove(scene)
    for block in (ball, box, cam):
        bpy.data.objects.remove(block)


def _sphere():
    import bmesh
    mesh, bm = bpy.data.meshes.new("ball"), bmesh.new()
    bmesh.ops.create_uvsphere(bm, u_segments=16, v_segments=8, radius=1.0)
    bm.to_mesh(mesh)
    bm.free()
    return mesh


def _box():
    import bmesh
    mesh, bm = bpy.data.meshes.new("box"), bmesh.new()
    bmesh.ops.create_cube(bm, size=3.0)
    bm.to_mesh(mesh)
    bm.free()
    return mesh


def read(path):
    img = bpy.data.images.load(str(path))
    try:
        img.colorspace_settings.name = "Non-Color"
        w, h = img.size
        px = np.array(img.pixels[:], np.float32).reshape(h, w, 4)[::-1, :, :3]
    finally:
        bpy.data.images.remove(img)
    return px


def project(scene, point):
    from bpy_extras.object_utils import world_to_camera_view
    depsgraph = scene.view_layers[0].depsgraph
    depsgraph.update()
    co = world_to_camera_view(scene, scene.camera.evaluated_get(depsgraph), Vector(point))
    return int(co.x * (SIZE[0] - 1)), int((1 - co.y) * (SIZE[1] - 1))


def test_depth_is_brighter_near_and_black_where_nothing_is(blockout, tmp_path):
    from sora_blender import control_passes
    pattern = control_passes.render_control(blockout, "depth", tmp_path / "control", size=SIZE)
    assert pattern.endswith("depth.####.png")
    files = sorted((tmp_path / "control").glob("depth.*.png"))
    assert [f.name for f in files] == [f"depth.{n:04d}.png" for n in range(1, 6)]
    blockout.frame_set(1)
    first = read(files[0])
    bx, by = project(blockout, (-2, 0, 0))          # the ball, 10 m away
    cx, cy = project(blockout, (1.5, 4.5, 0))       # the box's front face, 14.5 m away
    ball, box, empty = first[by, bx, 0], first[cy, cx, 0], first[2, 2, 0]
    assert ball > box > empty + 0.1 and empty < 0.02, (ball, box, empty)
    last = read(files[-1])
    assert last[by, bx, 0] < 0.05                   # the ball has moved on: background there now
    near, far = control_passes.shot_depth_range(blockout, range(1, 6))
    assert 8.5 < near < 9.5 and 17 < far < 18       # the ball's front, the box's back


def test_edges_lie_on_the_silhouettes(blockout, tmp_path):
    from sora_blender import control_passes
    control_passes.render_control(blockout, "edges", tmp_path / "control", frames=range(1, 2), size=SIZE)
    edges = read(tmp_path / "control" / "edges.0001.png")[..., 0]
    blockout.frame_set(1)
    bx, by = project(blockout, (-2, 0, 0))
    rim_x, _ = project(blockout, (-3, 0, 0))        # the ball's left rim
    assert edges[by, bx] < 0.2                       # flat inside the ball
    assert edges[by, max(rim_x - 1, 0):rim_x + 2].max() > 0.5
    assert edges[2, 2] < 0.05                        # nothing in the empty corner


def test_layout_paints_each_object_one_flat_colour_and_leaves_the_scene_alone(blockout, tmp_path):
    from sora_blender import control_passes
    scenes, materials, worlds = len(bpy.data.scenes), len(bpy.data.materials), len(bpy.data.worlds)
    engine = blockout.render.engine
    control_passes.render_control(blockout, "layout", tmp_path / "control", frames=range(1, 2), size=SIZE)
    layout = read(tmp_path / "control" / "layout.0001.png")
    blockout.frame_set(1)
    bx, by = project(blockout, (-2, 0, 0))
    cx, cy = project(blockout, (1.5, 4.5, 0))
    ball, box = layout[by - 1:by + 2, bx - 1:bx + 2].reshape(-1, 3), layout[cy - 1:cy + 2, cx - 1:cx + 2].reshape(-1, 3)
    assert np.ptp(ball, axis=0).max() < 0.02 and np.ptp(box, axis=0).max() < 0.02   # flat
    assert np.abs(ball[0] - box[0]).max() > 0.2                                      # distinct
    assert layout[2, 2].max() < 0.02 and ball[0].max() > 0.9                         # on black
    control_passes.render_control(blockout, "layout", tmp_path / "white", frames=range(1, 2), size=SIZE,
                                  layout_style="silhouettes")
    white = read(tmp_path / "white" / "layout.0001.png")
    assert white[by, bx].min() > 0.95 and white[cy, cx].min() > 0.95 and white[2, 2].max() < 0.02
    assert (len(bpy.data.scenes), len(bpy.data.materials), len(bpy.data.worlds)) == (scenes, materials, worlds)
    assert blockout.render.engine == engine


def test_pose_draws_the_bones_where_they_project(blockout, tmp_path):
    from sora_blender import control_passes
    with pytest.raises(ValueError, match="no armature"):
        control_passes.render_control(blockout, "pose", tmp_path / "none", size=SIZE)
    arm_data = bpy.data.armatures.new("rig")
    rig = bpy.data.objects.new("rig", arm_data)
    blockout.collection.objects.link(rig)
    view_layer = blockout.view_layers[0]
    view_layer.objects.active = rig
    with bpy.context.temp_override(scene=blockout, view_layer=view_layer, active_object=rig, object=rig):
        bpy.ops.object.mode_set(mode="EDIT")
        bone = arm_data.edit_bones.new("spine")
        bone.head, bone.tail = (0, 0, -2), (0, 0, 0)
        arm = arm_data.edit_bones.new("arm")
        arm.head, arm.tail = (0, 0, 0), (2, 0, 1)
        bpy.ops.object.mode_set(mode="OBJECT")
    try:
        control_passes.render_control(blockout, "pose", tmp_path / "pose", frames=range(1, 2), size=SIZE)
        pose = read(tmp_path / "pose" / "pose.0001.png")
        for joint in ((0, 0, -2), (0, 0, 0), (2, 0, 1)):
            x, y = project(blockout, joint)
            assert pose[y, x].min() > 0.9, joint                          # white joint dots
        mx, my = project(blockout, (0, 0, -1))                             # mid-spine: first limb colour
        assert np.allclose(pose[my, mx], np.array(control_passes.OPENPOSE_COLORS[0]) / 255, atol=0.02)
        assert pose[2, 2].max() < 0.02
    finally:
        bpy.data.objects.remove(rig)
        bpy.data.armatures.remove(arm_data)
