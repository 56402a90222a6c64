"""Long shots from Blender: more frames than one pass chain passes, and the prompt schedule (panel
and Prompt node) switches the prompt at its frame."""

from __future__ import annotations

import json
from pathlib import Path

import bpy
import numpy as np

from sora_blender.live import job
from tests.blender.test_panels import Self

STILL = "a red ball still on a gray background"
BOUNCE = "a red ball bouncing on a gray background"


def _motions(scene, shots, folder: Path, manifest: dict, cut: int) -> tuple[str, str]:
    """The detector's reading of the motion before and after frame index ``cut``."""
    from sora_core.frames.color import ViewTransform
    from sora_core.frames.exr import read_image
    from sora_core.models.tinyworld.detector import classify_motion, color_map, track

    c = shots.scene_color(scene)
    view = ViewTransform(c.config, c.display, c.view, c.look)
    frames = np.stack([view.to_display(read_image(folder / f["file"])) for f in manifest["frames"]])
    cmap = color_map(frames)
    return classify_motion(track(cmap[:cut], "red")[0]), classify_motion(track(cmap[cut:], "red")[0])


def test_schedule_operators_and_panel(scene, sora_addon):
    props = scene.sora
    props.prompt = STILL
    while len(props.prompt_schedule):
        props.prompt_schedule.remove(0)
    assert bpy.ops.sora.schedule_add() == {"FINISHED"}
    assert bpy.ops.sora.schedule_add() == {"FINISHED"}
    assert [(i.start, i.prompt) for i in props.prompt_schedule] == [(4.0, STILL), (8.0, STILL)]
    props.schedule_index = 0
    assert bpy.ops.sora.schedule_remove() == {"FINISHED"}
    assert [i.start for i in props.prompt_schedule] == [8.0]
    props.prompt_schedule[0].prompt = "  "                      # blank prompts are left out
    assert sora_addon.schedule.to_spec(props) == []
    props.prompt_schedule.remove(0)


def test_long_shot_with_a_prompt_schedule_from_the_panel(scene, sora_addon, blender_model):
    props = scene.sora
    props.model, props.prompt, props.steps, props.shot_name, props.seed = blender_model, STILL, 10, "story", 3
    scene.render.fps = 8
    scene.frame_start, scene.frame_end = 1, 40                  # 5 s: more than one 16-frame pass
    props.use_scene_frames = True                               # the scene range, asked for
    while len(props.prompt_schedule):
        props.prompt_schedule.remove(0)
    change = props.prompt_schedule.add()
    change.start, change.prompt = 2.5, BOUNCE                     # frame index 20 = frame 21
    try:
        assert bpy.ops.sora.generate() == {"FINISHED"}, job(scene).error
        assert job(scene).state == "DONE", job(scene).error
        folder = Path(props.last_dir)
        manifest = json.loads((folder / "manifest.json").read_text())
        assert [f["number"] for f in manifest["frames"]] == list(range(1, 41))
        passes = manifest["passes"]
        assert len(passes) >= 3 and manifest["spec"]["prompt_schedule"] == [{"start": 2.5, "prompt": BOUNCE}]
        assert {p["prompt"] for p in passes if p["start"] < 20} == {STILL}
        assert {p["prompt"] for p in passes if p["start"] >= 20} == {BOUNCE}
        assert _motions(scene, sora_addon.shots, folder, manifest, 20) == ("still", "bouncing")
        node = scene.node_tree.nodes["story"]
        assert node.frame_duration == 40
        log = []
        bpy.types.SORA_PT_view3d.draw(Self(log), bpy.context)
        text = " ".join(e[1] for e in log if e[0] == "label")
        assert text.count("long shot:") == 1, text      # the planner's and the worker's notice: once
        assert f"Frames: 40 in {len(passes)} passes" in text    # the panel planned what the worker made
    finally:
        props.prompt_schedule.remove(0)
        scene.render.fps = 24


def test_prompt_node_schedule_reaches_the_spec(scene, sora_addon):
    nodes = sora_addon.nodes
    tree = bpy.data.node_groups.new("ScheduleTree", "SoraShotTree")
    try:
        prompt = tree.nodes.new("SoraPromptNode")
        prompt.prompt = STILL
        gen = tree.nodes.new("SoraGenerateNode")
        gen.model, gen.frames = "tinyworld", 48
        tree.links.new(prompt.outputs["Prompt"], gen.inputs["Prompt"])
        bpy.ops.sora.schedule_add(tree=tree.name, node=prompt.name)
        prompt.prompt_schedule[0].prompt = BOUNCE
        spec = nodes.node_spec(gen, scene)
        assert spec.frames == 48 and spec.prompt == STILL
        assert [(c.start, c.prompt) for c in spec.prompt_schedule] == [(4.0, BOUNCE)]
    finally:
        bpy.data.node_groups.remove(tree)


def test_cancel_keeps_finished_passes_shows_them_and_resumes(scene, sora_addon, blender_model, tick_until):
    """Cancel removes only the unfinished pass; the kept frames are in the compositor, the panel
    says so and offers Resume, which finishes the shot in the same folder."""
    props, tasks = scene.sora, sora_addon.tasks
    props.model, props.prompt, props.steps, props.shot_name = blender_model, STILL, 6, "halfway"
    scene.frame_start, scene.frame_end = 1, 40
    props.use_scene_frames = True
    log = []
    bpy.types.SORA_PT_view3d.draw(Self(log), bpy.context)
    labels = [e[1] for e in log if e[0] == "label"]
    assert "Frames: 40 in 3 passes" in labels               # shown before pressing Generate
    assert ("prop", "use_scene_frames", True) in log
    assert bpy.ops.sora.generate(run_in="TIMER") == {"FINISHED"}
    state = job(scene)
    tick_until(lambda: state.pass_index >= 2 and state.step >= 3)
    assert state.passes == 3 and state.message.startswith("pass 2/3 ")
    assert bpy.ops.sora.cancel() == {"FINISHED"}
    tick_until(lambda: tasks.get_task(f"scene:{scene.name}") is None)
    assert state.state == "CANCELLED" and state.kept is not None and state.resume is not None
    folder = Path(state.kept["dir"])
    kept = sorted(folder.glob("halfway.*.exr"))
    assert len(kept) == state.kept["frames"] == 16 and state.kept["passes"] == 1
    node = scene.node_tree.nodes["halfway"]
    assert node.frame_duration == 16 and Path(bpy.path.abspath(node.image.filepath)) == kept[0]
    log = []
    bpy.types.SORA_PT_view3d.draw(Self(log), bpy.context)
    text = " ".join(e[1] for e in log if e[0] == "label")
    assert "Kept 16 frames from 1 (1 of 3 passes)" in text
    assert any(e[:2] == ("operator", "sora.resume") for e in log)
    assert bpy.ops.sora.resume() == {"FINISHED"}
    assert state.state == "DONE", state.error
    assert Path(props.last_dir) == folder                   # the same folder, continued
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["status"] == "complete" and len(manifest["frames"]) == 40
    assert scene.node_tree.nodes["halfway"].frame_duration == 40
