"""Bring a finished shot into the compositor (and optionally the sequencer).

The shot becomes an image sequence (source SEQUENCE, scene-linear colourspace) in a
``CompositorNodeImage`` named after the shot, linked to a Viewer. The Composite link is left
alone unless asked. A new version repoints the same node to the new folder; old versions stay
on disk and as image datablocks.

Frames inside the saved .blend's folder tree (the default ``//sora/<shot>/v###/``) are referenced
relative to the .blend (``//sora/...``), so a project folder can be moved or mounted elsewhere;
other frames (unsaved file, another drive or root) keep absolute paths.
"""

from __future__ import annotations

import os
from pathlib import Path

import bpy

from sora_core.frames.sequence import fill_pattern

from . import provenance

LINEAR = "Linear Rec.709"


def _linear_name(image) -> str:
    items = image.colorspace_settings.bl_rna.properties["name"].enum_items.keys()
    for name in (LINEAR, "Linear", "Linear Rec.709 (sRGB)", "scene_linear"):
        if name in items:
            return name
    return image.colorspace_settings.name


def blend_path(path) -> str:
    """``path`` relative to the saved .blend (``//...``) when it lies inside the .blend's folder
    tree, else absolute."""
    path = os.path.abspath(str(path))
    if not bpy.data.filepath:
        return path
    base = os.path.dirname(os.path.abspath(bpy.path.abspath(bpy.data.filepath)))
    try:
        inside = os.path.commonpath([os.path.normcase(path), os.path.normcase(base)]) == \
            os.path.normcase(base)
    except ValueError:                  # another drive (Windows)
        inside = False
    if not inside:
        return path
    rel = bpy.path.relpath(path, start=base)
    return rel if rel.startswith("//") else path


def load_sequence(done: dict, label: str, colorspace: str | None = None):
    """An image datablock for the shot's frames (first frame file, source SEQUENCE); scene
    linear unless ``colorspace`` says otherwise (control passes are Non-Color)."""
    folder = Path(done["dir"])
    first = int(done["first_frame"])
    first_file = folder / fill_pattern(done.get("pattern") or "shot.####.exr", first)
    image = bpy.data.images.load(str(first_file), check_existing=False)
    image.name = label
    path = blend_path(first_file)
    if path.startswith("//"):           # inside the .blend's folder tree: keep it relative
        image.filepath = path
    image.source = "SEQUENCE"
    image.colorspace_settings.name = colorspace or _linear_name(image)
    image.alpha_mode = "PREMUL"
    return image


def _compositor_tree(scene):
    if not scene.use_nodes:
        scene.use_nodes = True
    return scene.node_tree


def _viewer(tree):
    for node in tree.nodes:
        if node.bl_idname == "CompositorNodeViewer":
            return node
    viewer = tree.nodes.new("CompositorNodeViewer")
    viewer.location = (400, -300)
    return viewer


def _composite(tree):
    for node in tree.nodes:
        if node.bl_idname == "CompositorNodeComposite":
            return node
    return None


def import_shot(scene, done: dict, shot: str, link_composite: bool = False, add_strip: bool = False,
                colorspace: str | None = None):
    """Load ``done`` (the worker's done event) into ``scene``'s compositor; return the node."""
    version = Path(done["dir"]).name
    image = load_sequence(done, f"{shot} {version}", colorspace)
    frames = int(done["frames"])
    first = int(done["first_frame"])
    tree = _compositor_tree(scene)
    node = tree.nodes.get(shot)
    if node is None or node.bl_idname != "CompositorNodeImage":
        node = tree.nodes.new("CompositorNodeImage")
        node.name = shot
        node.location = (-300, 300 - 250 * sum(1 for n in tree.nodes if n.bl_idname == "CompositorNodeImage"))
    node.label = f"{shot} {version}"
    node.image = image
    node.frame_duration = frames
    node.frame_start = first            # shown at the scene frames its files are numbered with
    node.frame_offset = first - 1
    node.use_auto_refresh = True
    viewer = _viewer(tree)
    tree.links.new(node.outputs["Image"], viewer.inputs["Image"])
    if link_composite:
        composite = _composite(tree)
        if composite is not None:
            tree.links.new(node.outputs["Image"], composite.inputs["Image"])
    if add_strip:
        add_sequencer_strip(scene, done, shot)
    node["sora_dir"] = done["dir"]
    node["sora_manifest"] = done.get("manifest", "")
    if colorspace is None and not bpy.app.background:   # a shot (not a control pass): checked
        provenance.verify(done["dir"])                  # off the draw path for its sub-panel
    return node


def add_sequencer_strip(scene, done: dict, shot: str):
    """An image strip of the shot in the VSE, replacing the previous version's strip."""
    if scene.sequence_editor is None:
        scene.sequence_editor_create()
    seq = scene.sequence_editor
    strips = getattr(seq, "strips", None) or seq.sequences
    old = strips.get(shot)
    channel = old.channel if old else 1 + max((s.channel for s in seq.sequences_all), default=0)
    if old is not None:
        strips.remove(old)
    folder = Path(done["dir"])
    pattern = done.get("pattern") or "shot.####.exr"
    first = int(done["first_frame"])
    names = [fill_pattern(pattern, first + i) for i in range(int(done["frames"]))]
    strip = strips.new_image(name=shot, filepath=str(folder / names[0]), channel=channel, frame_start=first)
    for name in names[1:]:
        strip.elements.append(name)
    directory = blend_path(folder)
    if directory.startswith("//"):          # relative to the .blend, like the compositor node
        strip.directory = directory.rstrip("/\\") + "/"
    strip.colorspace_settings.name = LINEAR
    _add_sound_strip(strips, done, shot, channel + 1, first)
    return strip


def _add_sound_strip(strips, done: dict, shot: str, channel: int, first: int) -> None:
    """The shot's sound track (LTX-2 makes one) on the channel above its frames, replacing the
    previous version's."""
    name = f"{shot} sound"
    old = strips.get(name)
    if old is not None:
        strips.remove(old)
    if done.get("audio"):
        strips.new_sound(name=name, filepath=str(done["audio"]), channel=channel, frame_start=first)
