"""Registration, each panel's draw() against scene.sora, preferences, capability greying."""

from __future__ import annotations

import sys

import bpy
import pytest

ICONS = set(bpy.types.UILayout.bl_rna.functions["label"].parameters["icon"].enum_items.keys())


class FakeLayout:
    """Records a draw; checks every property, enum value, operator and icon exists."""

    def __init__(self, log):
        self.log = log
        self.enabled = True
        self.active = True
        self.scale_y = 1.0
        self.alert = False

    def _child(self, *args, **kwargs):
        return FakeLayout(self.log)

    row = column = box = split = grid_flow = column_flow = _child

    def _icon(self, kwargs):
        icon = kwargs.get("icon", "NONE")
        assert icon in ICONS, f"unknown icon {icon}"

    def prop(self, data, name, **kwargs):
        data = getattr(data, "_target", data)
        assert name in data.bl_rna.properties, f"{data} has no property {name}"
        self._icon(kwargs)
        self.log.append(("prop", name, self.enabled))

    def prop_enum(self, data, name, value, **kwargs):
        assert value in data.bl_rna.properties[name].enum_items.keys(), (name, value)
        self.log.append(("prop_enum", value, self.enabled))

    def prop_search(self, data, name, *args, **kwargs):
        assert name in data.bl_rna.properties
        self.log.append(("prop_search", name, self.enabled))

    def template_list(self, list_type, list_id, data, name, active_data, active_name, **kwargs):
        assert name in data.bl_rna.properties and active_name in active_data.bl_rna.properties
        self.log.append(("template_list", name, self.enabled))

    def template_ID(self, data, name, **kwargs):
        assert name in data.bl_rna.properties
        self.log.append(("template_ID", name, self.enabled))

    def label(self, text="", icon="NONE", **kwargs):
        self._icon({"icon": icon})
        self.log.append(("label", text, self.enabled))

    def operator(self, idname, **kwargs):
        module, name = idname.split(".")
        assert hasattr(getattr(bpy.ops, module), name), f"no operator {idname}"
        self._icon(kwargs)
        self.log.append(("operator", idname, self.enabled))
        return type("OpProps", (), {})()

    def progress(self, factor=0.0, type="BAR", text=""):
        self.log.append(("progress", text, factor))

    def separator(self, **kwargs):
        pass


class Proxy:
    """Stands in for ``self`` in AddonPreferences.draw: the real preferences plus a fake layout."""

    def __init__(self, target, layout):
        self.layout = layout
        self._target = target

    def __getattr__(self, name):
        return getattr(self._target, name)


class Self:
    def __init__(self, log):
        self.layout = FakeLayout(log)


def draw(panel, context=None):
    log = []
    panel.draw(Self(log), context or bpy.context)
    return log


def labels(log):
    return [entry[1] for entry in log if entry[0] == "label"]


def test_registered(sora_addon):
    for name in ("SORA_PT_compositor", "SORA_PT_sequencer", "SORA_PT_view3d", "SORA_OT_generate",
                 "SORA_OT_cancel", "SORA_OT_setup_worker", "SORA_OT_check_worker"):
        assert hasattr(bpy.types, name), name
    assert hasattr(bpy.types.Scene, "sora")
    assert bpy.types.SORA_PT_compositor.bl_category == "Sora"
    assert {bpy.types.SORA_PT_compositor.bl_space_type, bpy.types.SORA_PT_sequencer.bl_space_type,
            bpy.types.SORA_PT_view3d.bl_space_type} == {"NODE_EDITOR", "SEQUENCE_EDITOR", "VIEW_3D"}


@pytest.mark.parametrize("mode", ["generate", "animate", "extend", "interpolate", "restyle", "control"])
def test_every_panel_draws_every_mode(scene, mode, blender_model):
    scene.sora.model = blender_model
    scene.sora.mode = mode
    for source in ("RENDER_OUTPUT", "PATH"):
        scene.sora.seq_source = source
        for cls in (bpy.types.SORA_PT_compositor, bpy.types.SORA_PT_sequencer, bpy.types.SORA_PT_view3d):
            log = draw(cls)
            assert ("operator", "sora.generate", True) in log or any(
                e[:2] == ("operator", "sora.generate") for e in log)


def test_size_and_frames_fitted_with_visible_note(scene, sora_addon):
    scene.sora.model = "tinyworld"          # 64x64, 2..16 frames a pass: scene 100x70, 40 frames
    scene.render.resolution_x, scene.render.resolution_y = 100, 70
    scene.frame_start, scene.frame_end = 1, 40
    text = " ".join(labels(draw(bpy.types.SORA_PT_view3d)))
    assert "Frames: 16 in one pass" in text    # a new scene's first shot: one pass, not the range
    scene.sora.use_scene_frames = True
    text = " ".join(labels(draw(bpy.types.SORA_PT_view3d)))
    assert "Size: 64 x 64" in text and "width 100 -> 64" in text
    assert "Frames: 40" in text and "long shot: 40 frames in 3 passes of up to 16 frames" in text
    scene.frame_end = 9000                  # 375 s at 24 fps: longer than a shot may be
    text = " ".join(labels(draw(bpy.types.SORA_PT_view3d)))
    assert "Frames: 7200" in text and "frames 9000 -> 7200 (a shot is at most 300 s" in text
    scene.sora.mode = "interpolate"         # one pass only: clamped to the model's pass
    scene.sora.key_a, scene.sora.key_b = 1, 40
    text = " ".join(labels(draw(bpy.types.SORA_PT_view3d)))
    assert "Frames: 16" in text and "frames 40 -> 16" in text


def test_unsupported_mode_greyed_with_reason(scene, tiny_wan_t2v_path):
    scene.sora.model = tiny_wan_t2v_path    # wan-t2v: generate and restyle only
    log = draw(bpy.types.SORA_PT_compositor)
    enabled = {e[1]: e[2] for e in log if e[0] == "prop_enum"}
    assert enabled["generate"] and enabled["restyle"]
    assert not enabled["animate"] and not enabled["extend"] and not enabled["interpolate"]
    assert "cannot animate, extend, interpolate" in " ".join(labels(log))
    scene.sora.mode = "extend"
    log = draw(bpy.types.SORA_PT_compositor)
    gen = [e for e in log if e[:2] == ("operator", "sora.generate")]
    assert gen and gen[0][2] is False       # Generate greyed out ...
    assert "wan-t2v cannot extend; it can: generate, restyle" in " ".join(labels(log))  # ... and why


def test_preferences_draw(sora_addon):
    prefs = bpy.context.preferences.addons["sora_blender"].preferences
    prefs.model_folders.add().path = "/nonexistent/models"
    try:
        log = []
        type(prefs).draw(Proxy(prefs, FakeLayout(log)), bpy.context)
        ops = [e[1] for e in log if e[0] == "operator"]
        assert "sora.setup_worker" in ops and "sora.check_worker" in ops
        assert any(t.startswith("Uses: ") for t in labels(log))
    finally:
        prefs.model_folders.clear()


def test_check_worker_reports_versions(sora_addon, capfd):
    assert bpy.ops.sora.check_worker() == {"FINISHED"}
    # background mode says which Python it checked (before set-up it is Blender's own)
    assert f"sora: Checking {sora_addon.worker.python.worker_python()}" in capfd.readouterr().out
    lines = sora_addon.worker.setup.worker_report_lines()
    assert lines[0].startswith("Python 3.") and "torch" in lines[0]
    assert lines[1].startswith("Device: ")


def _median_draw_ms(call, repeats=30):
    import time
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1000)
    return sorted(times)[len(times) // 2]


def _long_render(folder, count=2000):
    """A 2,000-frame render on disk (names only: drawing must never read the pixels)."""
    folder.mkdir(exist_ok=True)
    for n in range(1, count + 1):
        (folder / f"beauty.{n:04d}.exr").touch()
    return str(folder / "beauty.####.exr")


_DISK_EVENTS = ("os.listdir", "os.scandir", "open", "os.walk", "glob.glob")
_disk_log: list = []
_disk_watch = [False]


def _audit(event, args):
    if _disk_watch[0] and event in _DISK_EVENTS:
        _disk_log.append((event, args[0] if args else None))


sys.addaudithook(_audit)


def _draws_touching_disk(call, repeats=30):
    """(median ms, the disk events seen) of ``call`` after a first, planning draw."""
    call()
    _disk_log.clear()
    _disk_watch[0] = True
    try:
        ms = _median_draw_ms(call, repeats)
    finally:
        _disk_watch[0] = False
    return ms, list(_disk_log)


def test_draw_stays_cheap_over_a_long_render_and_an_open_sequence(scene, blender_model, tmp_path):
    """Every draw under 5 ms (1 ms is the aim) over a 2,000-frame render and an unbounded Render
    Input sequence, and no draw lists a folder or opens a file: draw only draws."""
    pattern = _long_render(tmp_path / "render")
    props = scene.sora
    props.model, props.mode, props.seq_source, props.seq_path = blender_model, "extend", "PATH", pattern
    props.use_scene_range = False
    props.seq_start, props.seq_end = 1, 2000
    panel_ms, panel_io = _draws_touching_disk(lambda: draw(bpy.types.SORA_PT_compositor))
    props.seq_source, props.use_scene_range = "RENDER_OUTPUT", True     # the scene's own 2,000 frames
    scene.render.filepath = str(tmp_path / "render" / "beauty.")
    scene.frame_start, scene.frame_end = 1, 2000
    render_ms, render_io = _draws_touching_disk(lambda: draw(bpy.types.SORA_PT_view3d))
    props.model = "no-such-model"                   # an unknown name is not looked up per redraw
    unknown_ms, unknown_io = _draws_touching_disk(lambda: draw(bpy.types.SORA_PT_view3d))

    tree = bpy.data.node_groups.new("Draw", "SoraShotTree")
    source = tree.nodes.new("SoraRenderInputNode")
    source.source, source.path = "SEQUENCE", pattern           # no range: the sequence's own range
    extend = tree.nodes.new("SoraExtendNode")
    extend.model = blender_model
    tree.links.new(source.outputs[0], extend.inputs[0])
    tree.nodes.active = extend

    class Space:
        tree_type, edit_tree = "SoraShotTree", tree

    class Context:
        space_data, scene = Space(), bpy.context.scene

    node_panel = lambda: draw(bpy.types.SORA_PT_shot_nodes, Context())  # noqa: E731
    node_ms, node_io = _draws_touching_disk(node_panel)
    assert "stale" in " ".join(labels(draw(bpy.types.SORA_PT_shot_nodes, Context())))   # 2,000 frames found
    node_ui = lambda: extend.draw_buttons_ext(bpy.context, FakeLayout([]))  # noqa: E731
    node_ui_ms, node_ui_io = _draws_touching_disk(node_ui)
    bpy.data.node_groups.remove(tree)
    times = {"panel (sequence path)": panel_ms, "panel (render output)": render_ms,
             "panel (unknown model)": unknown_ms, "node panel": node_ms, "node": node_ui_ms}
    print("draw: " + ", ".join(f"{k} {v:.2f} ms" for k, v in times.items()))
    assert not (panel_io or render_io or unknown_io or node_io or node_ui_io), \
        (panel_io, render_io, unknown_io, node_io, node_ui_io)
    assert max(times.values()) < 5, times


def test_the_plan_is_made_again_when_a_setting_or_the_disk_changes(scene, blender_model, sora_addon, tmp_path):
    """Cached per settings change, not stale: a new setting, a finished render or job shows."""
    pattern = _long_render(tmp_path / "render", 20)
    props = scene.sora
    props.model, props.mode, props.seq_source, props.seq_path = blender_model, "extend", "PATH", pattern
    props.use_scene_range, props.seq_start, props.seq_end = False, 1, 20
    props.extend_frames = 8
    assert "Frames: 8 in one pass" in " ".join(labels(draw(bpy.types.SORA_PT_view3d)))
    props.extend_frames = 40
    assert "Frames: 40 in" in " ".join(labels(draw(bpy.types.SORA_PT_view3d)))
    plan = sora_addon.shots.panel_fit(scene)
    assert sora_addon.shots.panel_fit(scene) is plan               # same settings: the same plan
    sora_addon.live.invalidate()                                    # e.g. render_complete
    assert sora_addon.shots.panel_fit(scene) is not plan


BPY_ONLY = r"""
import sys
import bpy, addon_utils
sys.path.insert(0, sys.argv[1])
mod = addon_utils.enable("sora_blender", default_set=True, handle_error=None)
sc = bpy.context.scene
sc.view_settings.view_transform, sc.view_settings.look = "AgX", "AgX - Punchy"
sc.sora.prompt = "a ball"
color = mod.shots.scene_color(sc)
mod.shots.panel_fit(sc)
print("LOOK", color.look)
print("LOADED", [m for m in ("OpenImageIO", "PyOpenColorIO", "torch") if m in sys.modules])
"""


def test_the_addon_needs_bpy_only():
    """Colour from the scene (a look included) and the panel's plan load no OpenImageIO, OCIO or
    torch into Blender: the worker resolves look names."""
    import subprocess
    from pathlib import Path
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", BPY_ONLY, str(root)], capture_output=True, text=True,
                         timeout=120, cwd=str(root)).stdout
    assert "LOOK AgX - Punchy" in out and "LOADED []" in out, out[-2000:]
