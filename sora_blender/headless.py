"""Run the Sora Shots node graphs of a .blend without a UI, for render farms and scripts.

    blender -b shots.blend --python-exit-code 1 --python <add-on folder>/headless.py -- [options]
    python <add-on folder>/headless.py shots.blend [options]          # with the bpy module

Options: ``--node NAME`` (repeatable: these nodes and the stale nodes they depend on; default:
every node), ``--tree NAME`` (default: every Sora Shots tree), ``--scene NAME``, ``--save``
(write the node results into the .blend, so a later run finds them cached), ``--list``,
``--export mp4|mov|png|jpeg`` (then each shot as a signed deliverable, ``sora export``, into
``--export-dir``; ``--crf``, ``--watermark``, ``--allow-unsigned`` as for ``sora export``).
One line per event (``sora: [node] denoise 3/20``) goes to stdout. Exit codes as the sora CLI:
0 done, 2 invalid input, 3 not found, 65 a shot fails verification (not exported), 75 worth a
retry, 130 cancelled, 1 anything else.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import bpy


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="headless.py", description="Run Sora Shots node graphs of a .blend.")
    p.add_argument("blend", nargs="?", help=".blend to open (the bpy-module route; blender -b opens it itself)")
    p.add_argument("--node", action="append", default=[], help="node to run (repeatable; default: all)")
    p.add_argument("--tree", help="Sora Shots tree (default: every one)")
    p.add_argument("--scene", help="scene whose settings and compositor are used (default: the file's)")
    p.add_argument("--save", action="store_true", help="save the .blend afterwards (node results, compositor)")
    p.add_argument("--list", action="store_true", help="list the trees and their shot nodes, run nothing")
    g = p.add_argument_group("deliverables (sora export, after the shots are made)")
    g.add_argument("--export", action="append", default=[], choices=("mp4", "mov", "png", "jpeg"),
                   help="export each shot run (the --node ones, else every shot node) as a signed "
                   "deliverable of this format (repeatable)")
    g.add_argument("--export-dir", help="where deliverables go (default: <output root>/deliverables), "
                   "named <shot>_<version>.<ext> (a folder for a PNG/JPEG sequence)")
    g.add_argument("--crf", type=int, help="H.264 quality for --export mp4 (default 18)")
    g.add_argument("--watermark", action="store_true", help="an invisible watermark (mp4, png, jpeg)")
    g.add_argument("--allow-unsigned", action="store_true", help="export shots that were never signed")
    return p.parse_args(argv)


def script_args() -> list[str]:
    """This script's arguments: after ``--`` (blender -b ... -- args), else, when Python ran this
    file itself (the bpy module), the command line after the script; else none."""
    argv = sys.argv
    if "--" in argv:
        before, after = argv[:argv.index("--")], argv[argv.index("--") + 1:]
        blend = [a for a in before[1:] if a.endswith(".blend")] if before[0].endswith(".py") else []
        return blend + after
    return argv[1:] if argv and Path(argv[0]).name == Path(__file__).name else []


def addon_module():
    """The enabled sora_blender add-on (extension or legacy add-on), enabling it when needed."""
    import addon_utils

    here = Path(__file__).resolve().parent
    for mod in addon_utils.modules():
        if Path(getattr(mod, "__file__", "") or "").resolve().parent == here:
            name = mod.__name__
            break
    else:       # a source checkout: the folder above this one holds the package
        sys.path.insert(0, str(here.parent))
        name = here.name
    mod = sys.modules.get(name)
    if name not in bpy.context.preferences.addons or mod is None:
        mod = addon_utils.enable(name, default_set=True, handle_error=None)
    if mod is None:
        raise RuntimeError(f"cannot enable the add-on {name!r} from {here}")
    return mod


def run(args: argparse.Namespace) -> int:
    from sora_core.errors import SoraError

    addon = addon_module()
    nodes = addon.nodes
    if args.blend:
        path = Path(args.blend)
        if not path.is_file():
            print(f"sora: error: no such .blend: {path}", file=sys.stderr)
            return 3
        bpy.ops.wm.open_mainfile(filepath=str(path.resolve()))
    scene = bpy.data.scenes.get(args.scene) if args.scene else bpy.context.scene
    if scene is None:
        print(f"sora: error: no scene {args.scene!r}; scenes: {', '.join(s.name for s in bpy.data.scenes)}",
              file=sys.stderr)
        return 3
    trees = [t for t in bpy.data.node_groups if t.bl_idname == nodes.TREE_ID
             and (args.tree is None or t.name == args.tree)]
    if not trees:
        what = f"no Sora Shots tree {args.tree!r}" if args.tree else "no Sora Shots tree"
        print(f"sora: error: {what} in {bpy.data.filepath or 'this file'}", file=sys.stderr)
        return 3
    if args.list:
        for tree in trees:
            for node in nodes.dependency_order(tree):
                print(f"{tree.name}\t{node.name}\t{node.bl_idname}\t{nodes.node_state(node, scene)}")
        return 0
    if args.node:
        known = {n.name for t in trees for n in t.nodes}
        missing = [n for n in args.node if n not in known]
        if missing:
            print(f"sora: error: no node {', '.join(map(repr, missing))}; nodes: {', '.join(sorted(known))}",
                  file=sys.stderr)
            return 3
    code = 0
    for tree in trees:
        targets = [n for n in args.node if n in tree.nodes] if args.node else None
        if targets == []:
            continue
        try:
            task = nodes.run_nodes(tree, scene, targets, blocking=True)
        except SoraError as err:
            print(f"sora: error: {err}", file=sys.stderr)
            return err.exit_code
        if task.state != "done":
            print(f"sora: error: [{tree.name}] {task.error}", file=sys.stderr)
            code = task.error.exit_code if task.error is not None else 1
            break
        print(f"sora: [{tree.name}] done: ran {len(task.ran)}, cached {len(task.skipped)}", flush=True)
        code = export_shots(addon, tree, targets, args)
        if code:
            break
    if args.save and bpy.data.filepath:
        bpy.ops.wm.save_mainfile()
    return code


def export_shots(addon, tree, targets, args) -> int:
    """``--export``: the shots of the tree's job nodes (the targets, else all) as deliverables;
    the first failing export's exit code (65: a shot fails verification), else 0."""
    if not args.export:
        return 0
    names = targets or [n.name for n in tree.nodes]
    shots = [tree.nodes[n] for n in names if tree.nodes[n].bl_idname in addon.nodes.JOB_NODES
             and tree.nodes[n].result_dir]
    for node in shots:
        folder = bpy.path.abspath(node.result_dir)
        for fmt in args.export:
            out = addon.provenance.default_out(folder, fmt, where=args.export_dir)
            code, state = addon.provenance.run_export(
                folder, fmt, out, node.name, crf=args.crf if fmt == "mp4" else None,
                watermark=args.watermark, allow_unsigned=args.allow_unsigned)
            if code:
                print(f"sora: error: [{node.name}] {state.error}", file=sys.stderr)
                return code
    return 0


def main() -> None:
    try:
        code = run(parse_args(script_args()))
    except SystemExit as exc:          # argparse: --help or a bad option
        code = exc.code if isinstance(exc.code, int) else 2
    except Exception as exc:           # a bug: say so, exit 1
        import traceback
        traceback.print_exc()
        print(f"sora: error: internal: {type(exc).__name__}: {exc}", file=sys.stderr)
        code = 1
    for name, mod in list(sys.modules.items()):     # the add-on's worker: stop it now
        if name.endswith("sora_blender.worker.service") and hasattr(mod, "stop_worker"):
            mod.stop_worker()
    sys.stdout.flush()
    sys.stderr.flush()
    # os._exit, not sys.exit: the bpy module deadlocks in its static destructors at interpreter
    # exit, and under blender -b the process must end with this code, not Blender's own
    os._exit(code)


if __name__ == "__main__":
    main()
