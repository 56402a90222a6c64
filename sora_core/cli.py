"""The ``sora`` command: make shots from flags or a spec file, list models, read provenance.

The CLI itself stays light (no torch): it validates, then hands the job to a worker process
through the same client every host uses. Exit codes follow DESIGN.md: 0 done, 2 invalid input
(also: a folder that may not be written, another shot in the folder), 3 not found, 75 retry may
help (also: shot folder locked by another job, disk full), 130 cancelled, 1 anything else.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from . import __version__
from .capabilities import ALL_MODES, CONTROL_KINDS, TWO_STAGE_MODES, UPSAMPLE_CHOICES
from .errors import EXIT_OK, SoraError
from . import info_cli, model_files_cli
from .progress_line import Progress
from .provenance import cli as provenance_cli
from .spec import MEMORY_STRATEGIES, DTYPES, DIRECTIONS, Keyframe, ShotSpec
from .spec_schema import json_schema


def _add_shot_flags(p: argparse.ArgumentParser, mode: str) -> None:
    p.add_argument("--prompt", default="", help="what the shot shows")
    p.add_argument("--negative-prompt", default="")
    p.add_argument("--model", default=None, help="bundled model name, folder under a models dir, or path")
    p.add_argument("--frames", type=int, help="frame count (extend: new frames); default: the model's")
    p.add_argument("--duration", type=float, help="shot length in seconds (instead of --frames)")
    p.add_argument("--width", type=int)
    p.add_argument("--height", type=int)
    p.add_argument("--fps", type=float)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int)
    p.add_argument("--guidance", type=float)
    p.add_argument("--guidance-2", type=float, dest="guidance_2",
                   help="guidance of the low-noise expert (two-expert models: Wan 2.2 A14B)")
    if mode in TWO_STAGE_MODES:
        p.add_argument("--upsample", choices=UPSAMPLE_CHOICES, default="auto",
                       help="two stages with the model's latent upsampler (LTX-2): half size, "
                            "upsampled, refined; auto where the folder has one (docs/models.md)")
    p.add_argument("--out", default=None, help="shot folder, inside the output root (default shots/<name>)")
    p.add_argument("--name", default="shot", help="frame name: <name>.####.exr")
    p.add_argument("--first-frame", type=int, help="number of the first written frame")
    p.add_argument("--overwrite", action="store_true",
                   help="replace another shot found in the shot folder (else it is refused, exit 2)")
    if mode == "animate":
        p.add_argument("--image", required=True, help="the still to animate")
    if mode in ("extend", "restyle", "hdr"):
        p.add_argument("--input", required=True, help="frame sequence: name.####.exr, a folder or a file")
    if mode in ("extend", "restyle", "control", "hdr"):
        p.add_argument("--frame-range", type=int, nargs=2, metavar=("FIRST", "LAST"))
        p.add_argument("--strict", action="store_true",
                       help="refuse an input sequence with gaps or mixed frame sizes (else a notice)")
    if mode == "control":
        p.add_argument("--control", required=True, metavar="SEQ",
                       help="control sequence (display-referred depth, edges, pose or layout frames)")
        p.add_argument("--kind", choices=CONTROL_KINDS, default="layout", help="what the control shows")
        p.add_argument("--reference", metavar="IMG", help="an image for the look")
        p.add_argument("--control-strength", type=float, default=1.0,
                       help="how strongly the control is followed (where the model can)")
    if mode == "extend":
        p.add_argument("--direction", choices=DIRECTIONS, default="forward")
        p.add_argument("--context", type=int, help="given frames that condition the new ones")
    if mode == "interpolate":
        p.add_argument("--keyframe", action="append", required=True, metavar="PATH[@INDEX]",
                       help="a keyframe and its 0-based output index (default: first, then last)")
    if mode in ("generate", "animate", "extend"):
        p.add_argument("--prompt-at", nargs=2, action="append", default=[], metavar=("TIME", "PROMPT"),
                       help="switch to PROMPT at TIME (seconds, e.g. 4s or 4.5); repeatable")
        p.add_argument("--prompt-schedule", metavar="FILE",
                       help="JSON list of {start, prompt} or lines 'SECONDS PROMPT'")
        p.add_argument("--pass-length", type=int, help="frames per pass of a long shot")
        p.add_argument("--overlap", type=int, help="frames of each pass that condition the next")
    if mode == "restyle":
        p.add_argument("--strength", type=float, default=0.6, help="0 keeps the input, 1 ignores it")
    g = p.add_argument_group("color and runtime")
    g.add_argument("--ocio-config", help="OCIO config for the view transform (default: built-in)")
    g.add_argument("--display")
    g.add_argument("--view")
    g.add_argument("--look")
    g.add_argument("--device", default="auto")
    g.add_argument("--dtype", default="auto", choices=DTYPES)
    g.add_argument("--memory", default="none", choices=MEMORY_STRATEGIES)
    p.add_argument("--save-spec", metavar="PATH", help="write the spec to PATH and exit without running")
    p.add_argument("--dry-run", action="store_true",
                   help="print what the shot would be (frames, passes, size, notices) and exit")


def _add_run_flags(p: argparse.ArgumentParser, dry_run: bool = False) -> None:
    if dry_run:
        p.add_argument("--dry-run", action="store_true",
                       help="print what the shot would be (frames, passes, size, notices) and exit")
    p.add_argument("--output-root", default=None,
                   help="folder every output path must stay inside (default: $SORA_OUTPUT_ROOT or .)")
    p.add_argument("--models-dir", action="append", default=[], help="extra folder of models")
    p.add_argument("--python", default=None, help="Python that runs the worker (default: this one)")
    p.add_argument("--json", action="store_true", help="print the worker's events as JSON lines")
    provenance_cli.add_sign_flags(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sora", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"sora {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for mode in ALL_MODES:
        p = sub.add_parser(mode, help="a display-referred clip -> scene-linear HDR (LTX-2 HDR)"
                           if mode == "hdr" else f"{mode} a shot")
        _add_shot_flags(p, mode)
        model_files_cli.add_flags(p)
        _add_run_flags(p)
    p = sub.add_parser("run", help="make the shot a spec file describes")
    p.add_argument("spec")
    _add_run_flags(p, dry_run=True)
    p = sub.add_parser("models", help="list local models and what they can do")
    p.add_argument("--models-dir", action="append", default=[])
    p.add_argument("--json", action="store_true")
    p.add_argument("--files", action="store_true", help="with --json: the weights files of ComfyUI "
                   "models trees (transformers, VAEs, LoRAs) instead of the model folders")
    p = sub.add_parser("info", help="a frame's provenance, or a shot folder's status and timings")
    p.add_argument("frame", metavar="FRAME|SHOT_DIR")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("ingest", help="footage made elsewhere (MP4/MOV, PNG/JPEG/TIFF frames) -> "
                       "scene-linear EXR sequence with a manifest")
    p.add_argument("src", help="a video file, a frame pattern (name.####.png), a folder or a still")
    p.add_argument("--out", required=True, help="shot folder to create, inside the output root")
    p.add_argument("--name", default="footage", help="frame name: <name>.####.exr")
    p.add_argument("--first-frame", type=int, default=1)
    p.add_argument("--fps", type=float, help="frame rate of an image sequence (a video's own is kept)")
    p.add_argument("--ocio-config", help="OCIO config of the view transform (default: built-in)")
    p.add_argument("--display")
    p.add_argument("--view")
    p.add_argument("--look")
    p.add_argument("--output-root", default=None,
                   help="folder the output must stay inside (default: $SORA_OUTPUT_ROOT or .)")
    p.add_argument("--json", action="store_true", help="print events as JSON lines (for hosts)")
    provenance_cli.add_sign_flags(p)
    p = sub.add_parser("sheet", help="write a contact-sheet PNG of a shot folder")
    p.add_argument("shot", help="shot folder (with manifest.json)")
    p.add_argument("-o", "--output", help="PNG path (default: <shot>/contact_sheet.png)")
    p.add_argument("--columns", type=int, default=8)
    sub.add_parser("spec-schema", help="print the ShotSpec JSON Schema")
    provenance_cli.add_commands(sub)
    from .qt import app as studio_app      # light: Qt is imported only when the studio opens
    studio_app.add_arguments(sub.add_parser("studio", help="the Qt studio: shot panel, queue, "
                                            "flipbook and history (needs the qt extra)"))
    from .farm import cli as farm_cli     # light: Ray is imported only when a batch runs
    farm_cli.add_arguments(sub.add_parser("farm", help="run a batch of shots on a Ray cluster"))
    return parser


def spec_from_args(args) -> ShotSpec:
    data = {"mode": args.command, "prompt": args.prompt, "negative_prompt": args.negative_prompt,
            "seed": args.seed, "steps": args.steps, "guidance": args.guidance,
            "guidance_2": args.guidance_2, "upsample": getattr(args, "upsample", "auto"),
            "width": args.width,
            "height": args.height, "frames": args.frames, "fps": args.fps, "duration": args.duration,
            "output": {"dir": args.out or f"shots/{args.name}", "name": args.name,
                       "first_frame": args.first_frame, "overwrite": args.overwrite},
            "color": {"config": args.ocio_config, "display": args.display, "view": args.view,
                      "look": args.look},
            "runtime": {"device": args.device, "dtype": args.dtype, "memory": args.memory}}
    if args.model:
        data["model"] = args.model
    data.update(model_files_cli.spec_part(args))
    inputs: dict = {}
    if args.command == "animate":
        inputs["image"] = args.image
    if args.command in ("extend", "restyle", "hdr"):
        inputs["frames"] = args.input
    if args.command in ("extend", "restyle", "control", "hdr"):
        inputs["frame_range"] = list(args.frame_range) if args.frame_range else None
        inputs["strict"] = args.strict
    if args.command == "control":
        inputs.update(control=args.control, control_kind=args.kind, reference=args.reference,
                      control_strength=args.control_strength)
    if args.command == "extend":
        inputs.update(direction=args.direction, context=args.context)
    if args.command == "restyle":
        inputs["strength"] = args.strength
    if args.command == "interpolate":
        inputs["keyframes"] = [vars(k) for k in _keyframes(args.keyframe, args.frames)]
    if args.command in ("generate", "animate", "extend"):
        data["prompt_schedule"] = _schedule(args.prompt_at, args.prompt_schedule)
        data["passes"] = {"length": args.pass_length, "overlap": args.overlap}
    data["inputs"] = inputs
    return ShotSpec.from_dict(data)


def _keyframes(values: list[str], frames: int | None) -> list[Keyframe]:
    keys = []
    for i, value in enumerate(values):
        path, sep, index = value.rpartition("@")
        if not sep or not index.lstrip("-").isdigit():
            path, index = value, None
        if index is None:
            index = 0 if i == 0 else (frames - 1 if frames else 10_000)
        keys.append(Keyframe(path, int(index)))
    return keys


def _seconds(text: str, where: str) -> float:
    try:
        return float(text.strip().rstrip("s"))
    except ValueError:
        raise SoraError("invalid_input", f"{where}: {text!r} is not a time in seconds (e.g. 4s)") from None


def _schedule(pairs: list, path: str | None) -> list[dict]:
    """Prompt changes from --prompt-at pairs and a schedule file (JSON or 'SECONDS PROMPT' lines)."""
    entries = [{"start": _seconds(t, "--prompt-at"), "prompt": p} for t, p in pairs]
    if path:
        try:
            text = open(path, encoding="utf-8").read()
        except OSError as exc:
            raise SoraError("not_found", f"--prompt-schedule: cannot read {path}: {exc}") from None
        if text.lstrip().startswith("["):
            try:
                entries += json.loads(text)
            except json.JSONDecodeError as exc:
                raise SoraError("invalid_input", f"--prompt-schedule: {path} is not valid JSON: {exc}") from None
        else:
            for number, line in enumerate(text.splitlines(), 1):
                if line.strip() and not line.lstrip().startswith("#"):
                    when, _, prompt = line.strip().partition(" ")
                    entries.append({"start": _seconds(when, f"{path} line {number}"), "prompt": prompt.strip()})
    return entries


def output_root(args) -> str:
    """The folder that confines the shot's path. An explicit ``--out`` typed on the command line
    is the user's own choice and is honoured as is, unless ``--output-root`` was given too; paths
    that come from spec files (``sora run``, farms, the add-on) stay confined."""
    root = args.output_root or os.environ.get("SORA_OUTPUT_ROOT") or os.getcwd()
    typed_out = getattr(args, "out", None)
    if typed_out and os.path.isabs(typed_out) and not args.output_root and args.command != "run":
        inside = os.path.commonpath([os.path.realpath(root), os.path.realpath(typed_out)])
        if inside != os.path.realpath(root):
            return typed_out          # the absolute shot folder is its own root
    return root


def print_plan(plan, out_dir, stream=sys.stdout) -> None:
    """The planner's decision, as the worker will carry it out."""
    print(f"{plan.spec.mode} with {plan.family}: {plan.summary()}, {plan.width}x{plan.height} at "
          f"{plan.fps:g} fps, {plan.steps} steps, guidance {plan.guidance:g}"
          + (f" / {plan.guidance_2:g}" if plan.guidance_2 is not None else ""), file=stream)
    print(f"frames {plan.numbers.start}..{plan.numbers.stop - 1} -> {out_dir}", file=stream)
    for note in plan.notices:
        print(f"notice: {note}", file=stream)


def run_spec(spec: ShotSpec, args) -> int:
    from .client import WorkerClient
    from .preflight import plan_shot

    root = output_root(args)
    plan, _model, out_dir = plan_shot(spec, root, args.models_dir)   # refuse before any process starts
    if getattr(args, "dry_run", False):
        print_plan(plan, out_dir)
        return EXIT_OK
    env = provenance_cli.sign_env(args)
    if args.models_dir:
        env["SORA_MODELS"] = os.pathsep.join(
            [os.path.abspath(d) for d in args.models_dir] + [p for p in os.environ.get("SORA_MODELS", "").split(os.pathsep) if p])
    show = (lambda e: print(json.dumps(e), flush=True)) if args.json else Progress()
    with WorkerClient(python=args.python, env=env,
                      log=None if args.json else (lambda line: print(line, file=sys.stderr))) as client:
        job = client.submit(spec, root)
        try:
            done = job.wait(show)
        except KeyboardInterrupt:
            job.cancel(grace=5)
            try:
                job.wait(show)
            except SoraError:
                pass
            raise SoraError("cancelled", "cancelled by the user") from None
        except SoraError as err:
            if args.json:
                print(json.dumps(err.to_event(job.id)), flush=True)
            raise
    if not args.json:
        print(done["manifest"])
    return EXIT_OK


def cmd_models(args) -> int:
    from .models_index import list_models

    warnings: list[str] = []
    models = list_models(args.models_dir, warnings)
    for line in warnings:
        print(f"warning: {line}", file=sys.stderr)
    if args.json and args.files:
        model_files_cli.print_files(args.models_dir, models, as_json=True)
        return EXIT_OK
    if args.json:
        print(json.dumps([m.to_dict() for m in models], indent=2))
        return EXIT_OK
    if not models:
        print("no models found; add a folder with --models-dir or SORA_MODELS")
    for m in models:
        caps = m.capabilities
        where = "bundled" if m.bundled else str(m.path)
        if caps is None:
            why = m.problem or "no backend serves this pipeline"
            print(f"{m.name:20} {m.pipeline_class} ({why})  {where}")
            continue
        print(f"{m.name:20} {caps.family:10} {caps.describe()}  {where}")
        for note in caps.notes:
            print(f"{'':20} note: {note}")
    model_files_cli.print_files(args.models_dir, models, as_json=False)
    return EXIT_OK


def cmd_ingest(args) -> int:
    from .ingest import ingest

    root = os.path.realpath(output_root(args))
    out = os.path.realpath(os.path.join(root, args.out))
    if os.path.commonpath([root, out]) != root:
        raise SoraError("invalid_input", f"--out {args.out!r} resolves to {out}, outside the output root "
                        f"{root}", field="out", hint="use a path inside the output root, or choose it "
                        "with --output-root or the SORA_OUTPUT_ROOT environment variable")
    color = {"config": args.ocio_config, "display": args.display, "view": args.view, "look": args.look}
    from .provenance.sign import shot_signer, sign_shot

    signer = shot_signer(args.sign_cert, args.sign_key)     # a configured identity checked first
    show = (lambda e: print(json.dumps(e), flush=True)) if args.json else Progress()
    try:
        manifest = ingest(args.src, out, args.name, color, first_frame=args.first_frame, fps=args.fps,
                          emit=show)
        sign_shot(out, signer)
    except SoraError as err:
        if args.json:
            print(json.dumps(err.to_event()), flush=True)
        raise
    if not args.json:
        print(manifest)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "spec-schema":
            print(json.dumps(json_schema(), indent=2))
            return EXIT_OK
        if args.command == "models":
            return cmd_models(args)
        if args.command == "info":
            return info_cli.cmd_info(args)
        if args.command == "ingest":
            return cmd_ingest(args)
        if args.command in provenance_cli.COMMANDS:
            return provenance_cli.main(args)
        if args.command == "sheet":
            from .contact_sheet import contact_sheet
            print(contact_sheet(args.shot, args.output or os.path.join(args.shot, "contact_sheet.png"),
                                args.columns))
            return EXIT_OK
        if args.command == "studio":
            from .qt import app as studio_app
            return studio_app.main(args)
        if args.command == "farm":
            from .farm import cli as farm_cli
            return farm_cli.main(args)
        if args.command == "run":
            return run_spec(ShotSpec.load(args.spec), args)
        spec = spec_from_args(args)
        if args.save_spec:
            from .provenance.policy import check_spec
            check_spec(spec.to_dict())      # a spec the policy refuses is not saved either
            spec.save(args.save_spec)
            print(args.save_spec)
            return EXIT_OK
        return run_spec(spec, args)
    except SoraError as err:
        print(f"sora: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("sora: cancelled", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: say so in one line, the traceback only on request
        if os.environ.get("SORA_DEBUG"):
            raise
        print(f"sora: internal error: {type(exc).__name__}: {exc} (set SORA_DEBUG=1 for the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
