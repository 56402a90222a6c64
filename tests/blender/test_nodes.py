"""The Sora Shots node editor: a Prompt -> Generate -> Extend -> Compositor Output graph runs in
order, continues the numbering and the motion, caches unchanged nodes; and the headless entry
runs the same graph from a saved .blend with farm exit codes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import bpy
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
HEADLESS = ROOT / "sora_blender" / "headless.py"
PROMPT = "a red ball moving right on a gray background"


def _graph(scene, name="Shots"):
    old = bpy.data.node_groups.get(name)
    if old is not None:
        bpy.data.node_groups.remove(old)
    tree = bpy.data.node_groups.new(name, "SoraShotTree")
    tree.use_fake_user = True                  # kept in the .blend without an editor showing it
    prompt = tree.nodes.new("SoraPromptNode")
    prompt.name, prompt.prompt = "Prompt", PROMPT
    gen = tree.nodes.new("SoraGenerateNode")
    gen.name, gen.steps, gen.seed, gen.model = "Generate", 8, 1, "tinyworld"
    ext = tree.nodes.new("SoraExtendNode")
    ext.name, ext.steps, ext.seed, ext.model, ext.frames = "Extend", 8, 2, "tinyworld", 8
    out = tree.nodes.new("SoraCompositorOutputNode")
    out.name = "Output"
    tree.links.new(prompt.outputs["Prompt"], gen.inputs["Prompt"])
    tree.links.new(prompt.outputs["Prompt"], ext.inputs["Prompt"])
    tree.links.new(gen.outputs["Shot"], ext.inputs["Shot"])
    tree.links.new(ext.outputs["Shot"], out.inputs["Shot"])
    return tree


def _red_track(scene, node, shots):
    from sora_core.frames.color import ViewTransform
    from sora_core.frames.exr import read_image
    from sora_core.models.tinyworld.detector import color_map, track

    color = shots.scene_color(scene)
    view = ViewTransform(color.config, color.display, color.view, color.look)
    folder = Path(node.result_dir)
    files = [folder / f"{node.result_pattern.split('.')[0]}.{n:04d}.exr"
             for n in range(node.result_first, node.result_first + node.result_count)]
    frames = np.stack([view.to_display(read_image(f)) for f in files])
    return track(color_map(frames), "red")[0]


def test_graph_runs_in_order_continues_and_caches(scene, sora_addon):
    nodes = sora_addon.nodes
    tree = _graph(scene)
    task = nodes.run_nodes(tree, scene, ["Output"], blocking=True)
    assert task.state == "done", task.error
    assert task.ran == ["Generate", "Extend"] and task.local == ["Output"]
    gen, ext = tree.nodes["Generate"], tree.nodes["Extend"]
    assert gen.result_first == scene.frame_start and gen.result_count == 16
    assert ext.result_first == gen.result_first + gen.result_count          # numbering continues
    live = sora_addon.live
    assert ext.result_count == 8
    assert live.node(gen).status.startswith("done") and live.node(ext).status.startswith("done")

    # the motion continues across the join: the ball is where its speed puts it
    g, e = _red_track(scene, gen, sora_addon.shots), _red_track(scene, ext, sora_addon.shots)
    assert not np.isnan(g[-4:]).any() and not np.isnan(e[0]).any()
    velocity = (g[-1] - g[-4]) / 3
    assert velocity[0] > 1.0                                                 # it moves right
    assert np.linalg.norm(e[0] - (g[-1] + velocity)) <= 6.0

    comp = scene.node_tree.nodes.get("Output")
    assert comp is not None and comp.bl_idname == "CompositorNodeImage"
    assert Path(bpy.path.abspath(comp.image.filepath)).parent == Path(ext.result_dir)

    again = nodes.run_nodes(tree, scene, ["Output"], blocking=True)
    assert again.state == "done" and again.ran == [] and again.skipped == ["Generate", "Extend"]
    ext.seed = 3                                                             # only Extend is stale now
    assert nodes.node_state(gen, scene) == "cached" and nodes.node_state(ext, scene) == "stale"
    third = nodes.run_nodes(tree, scene, ["Extend"], blocking=True)
    assert third.ran == ["Extend"] and third.skipped == ["Generate"]
    assert Path(ext.result_dir).name == "v002"                               # a new version, nothing overwritten


def _headless(blend: Path, *args, timeout=300):
    env = {**os.environ, "SORA_WORKER_PYTHON": sys.executable}
    return subprocess.run([sys.executable, str(HEADLESS), str(blend), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=str(blend.parent))


def test_headless_runs_a_saved_graph_with_farm_exit_codes(scene, sora_addon, tmp_path):
    tree = _graph(scene, "FarmShots")
    tree.nodes["Generate"].steps = tree.nodes["Extend"].steps = 4
    prefs = bpy.context.preferences.addons["sora_blender"].preferences
    prefs.output_dir = ""                                  # the default: //sora beside the .blend
    blend = tmp_path / "farm.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend), copy=True)
    bpy.data.node_groups.remove(tree)

    run = _headless(blend, "--tree", "FarmShots", "--node", "Extend", "--save")
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    lines = [ln.split(" · ")[0] for ln in run.stdout.splitlines()]     # the step, before share and ETA
    assert "sora: [Generate] denoise 4/4" in lines and "sora: [Extend] denoise 4/4" in lines
    assert lines.index("sora: [Generate] denoise 4/4") < lines.index("sora: [Extend] denoise 4/4")
    assert "sora: [Extend] write 8/8 · 100% · ETA 0 s" in run.stdout      # the whole shot's progress
    shots = blend.parent / "sora"
    assert sorted(p.name for p in shots.iterdir()) == ["FarmShots_Extend", "FarmShots_Generate"]
    assert len(list((shots / "FarmShots_Extend" / "v001").glob("*.exr"))) == 8

    again = _headless(blend, "--tree", "FarmShots", "--node", "Extend")     # saved results: cached
    assert again.returncode == 0, again.stderr[-2000:]
    assert "sora: [Generate] cached, not run again" in again.stdout
    assert "sora: [FarmShots] done: ran 0, cached 2" in again.stdout

    listed = _headless(blend, "--list")
    assert listed.returncode == 0 and "FarmShots\tExtend\tSoraExtendNode\tcached" in listed.stdout

    missing = _headless(blend, "--node", "Nope")
    assert missing.returncode == 3 and "no node 'Nope'" in missing.stderr
    assert _headless(tmp_path / "absent.blend").returncode == 3
    bad = _headless(blend, "--bogus-flag")
    assert bad.returncode == 2
