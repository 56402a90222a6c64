"""A node's ShotSpec from its inputs' current results, and whether its last run is up to date.

What the node panel shows (``cached``, ``stale`` or why it waits) is worked out once per change
of the nodes it depends on (:func:`graph_key`) and kept in :func:`..live.memo`, so a redraw never
lists a folder or stats a manifest.
"""

from __future__ import annotations

import re
from pathlib import Path

import bpy

from sora_core.errors import SoraError, invalid
from sora_core.frames.sequence import fill_pattern
from sora_core.spec import Inputs, Keyframe, Output, ShotSpec
from sora_core.upsampler_rules import with_file

from .. import live, schedule, shots
from ..models import model_info, model_ref_for_spec
from ..settings import get_prefs
from .graph import job_result, request
from .model_nodes import chain_files
from .types import CONTROL_NODE, JOB_NODES


def linked(node, socket_name: str):
    socket = node.inputs.get(socket_name)
    if socket is None or not socket.is_linked:
        return None
    return socket.links[0].from_node


def _prompt(node) -> tuple[str, str, list]:
    """Prompt, negative prompt and prompt schedule: from a linked Prompt node, else the node's own."""
    src = linked(node, "Prompt")
    if src is not None and src.bl_idname == "SoraPromptNode":
        return src.prompt, src.negative_prompt, schedule.to_spec(src)
    return node.prompt, "", []


def node_result(node, scene) -> dict | None:
    """What a node's Shot output holds now: {pattern, first, last} (or {image}); None if nothing.
    A Render Input with no range lists its folder once (never a probe per frame number)."""
    if node.bl_idname == "SoraRenderInputNode":
        if node.source == "IMAGE":
            return {"image": bpy.path.abspath(node.path)} if node.path else None
        pattern = shots.render_pattern(scene) if node.source == "RENDER_OUTPUT" else bpy.path.abspath(node.path)
        if node.first or node.last:
            first, last = node.first, node.last
        elif node.source == "RENDER_OUTPUT":
            first, last = scene.frame_start, scene.frame_end
        else:
            found = shots.existing_frames(pattern)
            if not found:
                return None
            first, last = found[0], found[-1]
        return {"pattern": pattern, "first": first, "last": last}
    if node.bl_idname in JOB_NODES or node.bl_idname == CONTROL_NODE:
        return job_result(node.result_dir, node.result_pattern, node.result_first, node.result_count)
    return None


def upstream(node, socket: str, scene) -> dict:
    src = linked(node, socket)
    if src is None:
        raise invalid(f"{node.name}.{socket}", "nothing is linked", hint=f"link a shot into {socket}")
    result = node_result(src, scene)
    if result is None:
        raise SoraError("not_found", f"{src.name} has no frames yet", field=f"{node.name}.{socket}",
                        hint=f"run {src.name} first")
    return result


def shot_name(node) -> str:
    name = node.shot_name or f"{node.id_data.name}_{node.name}"
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-") or "shot"
    return shots.check_shot_name(name[:100])


def node_spec(node, scene) -> ShotSpec:
    """The node's ShotSpec from its inputs' current results (output dir not yet reserved)."""
    prefs = get_prefs()
    ref = node.model or scene.sora.model
    _info, caps, problem = model_info(ref)
    if caps is None:
        raise SoraError("not_found", f"{node.name}: {problem}", hint="set the node's model")
    mode = node.mode
    if not caps.supports(mode):
        raise invalid(f"{node.name}.mode", f"{caps.family} cannot {mode}; it can: {', '.join(caps.modes)}")
    prompt, negative, changes = _prompt(node)
    inputs = Inputs()
    shot = a = b = None
    if mode == "animate":
        up = upstream(node, "Image", scene)
        inputs.image = up.get("image") or fill_pattern(up["pattern"], up["first"])
    elif mode in ("extend", "restyle", "hdr"):
        shot = upstream(node, "Shot", scene)
        if "pattern" not in shot:
            raise invalid(f"{node.name}.Shot", f"{mode} needs a frame sequence, not one image")
        inputs.frames, inputs.frame_range = shot["pattern"], [shot["first"], shot["last"]]
        if mode == "extend":
            inputs.direction, inputs.context = node.direction, node.context_frames or None
        elif mode == "restyle":
            inputs.strength = node.strength
    elif mode == "control":
        shot = upstream(node, "Control", scene)
        if "pattern" not in shot:
            raise invalid(f"{node.name}.Control", "control needs a frame sequence, not one image")
        src = linked(node, "Control")
        inputs.control, inputs.frame_range = shot["pattern"], [shot["first"], shot["last"]]
        inputs.control_kind = src.control_kind if src.bl_idname == CONTROL_NODE else node.control_kind
        inputs.control_strength = node.control_strength
    elif mode == "interpolate":
        a, b = upstream(node, "From", scene), upstream(node, "To", scene)
        inputs.keyframes = [Keyframe(a.get("image") or fill_pattern(a["pattern"], a["last"]), 0),
                            Keyframe(b.get("image") or fill_pattern(b["pattern"], b["first"]), 1)]
    ask = request(mode, caps, node.frames, scene.frame_start,
                  node.context_frames if mode == "extend" else 0, shot, a, b)
    width, height = shots.scene_size(scene)
    fps = scene.render.fps / scene.render.fps_base
    components, loras = chain_files(node)
    caps = with_file(caps, components.upsampler, ref)      # a named upsampler file: two stages
    fitted = shots.fit_values(caps, mode, ask.frames, width, height, ask.context, ask.available, fps, changes,
                              inputs.control_kind, node.upsample)
    if mode == "interpolate":
        inputs.keyframes[1].index = fitted.total - 1
    spec = ShotSpec(mode=mode, prompt=prompt, negative_prompt=negative,
                    model=model_ref_for_spec(ref), seed=node.seed, steps=node.steps or None,
                    components=components, loras=loras,
                    guidance_2=None if node.guidance_2 < 0 else node.guidance_2, upsample=node.upsample,
                    width=fitted.width, height=fitted.height, frames=fitted.total, fps=fps,
                    prompt_schedule=changes if mode in shots.CHAIN_MODES else [], inputs=inputs,
                    output=Output(dir=f"{shot_name(node)}/v000", name=shot_name(node), first_frame=ask.first_frame),
                    color=shots.scene_color(scene),
                    runtime=shots.spec_runtime(prefs))
    spec.validate()
    return spec


def control_size(node, scene) -> tuple[int, int]:
    """The size a Render Control node renders at: the size its first Follow Control node will
    make (a pass of another aspect ratio is refused), else the scene's."""
    size = shots.scene_size(scene)
    for link in node.outputs["Control"].links:
        follow = link.to_node
        _info, caps, _problem = model_info(follow.model or scene.sora.model)
        if follow.bl_idname == "SoraControlNode" and caps is not None and caps.supports("control"):
            frames = scene.frame_end - scene.frame_start + 1
            try:
                p = shots.fit_values(caps, "control", frames, *size, fps=scene.render.fps / scene.render.fps_base,
                                     control_kind=node.control_kind)
            except SoraError:
                continue
            return p.width, p.height
    return size


def is_cached(node, spec_hash: str) -> bool:
    return (node.spec_hash == spec_hash and bool(node.result_dir)
            and (Path(node.result_dir) / "manifest.json").is_file())


def node_state(node, scene) -> str:
    """'cached' (up to date), 'stale' (would run) or a reason it cannot run now."""
    if node.bl_idname not in JOB_NODES:
        return ""
    try:
        spec = node_spec(node, scene)
    except SoraError as exc:
        return f"waiting: {exc.message}"
    return "cached" if is_cached(node, spec.spec_hash()) else "stale"


def graph_key(node) -> tuple:
    """The settings of ``node`` and of every node it depends on, and their links: changes
    whenever anything its spec is built from does (no disk access)."""
    out, seen, todo = [], set(), [node]
    while todo:
        n = todo.pop()
        if n.name in seen:
            continue
        seen.add(n.name)
        links = tuple((s.identifier, l.from_node.name) for s in n.inputs for l in s.links
                      if l.is_valid and not l.is_muted)
        out.append((n.name, n.bl_idname, live.rna_key(n), links))
        todo.extend(l.from_node for s in n.inputs for l in s.links)
    return tuple(out)


def shown_state(node, scene) -> str:
    """:func:`node_state` for draw(): once per change of the graph, the scene or the disk."""
    key = (graph_key(node), shots.settings_key(scene), scene.sora.model, live.generation)
    return live.memo("node", (node.id_data.session_uid, node.name), key, lambda: node_state(node, scene))
