"""``sora info``: a frame's provenance header, or a shot folder's manifest and where its time went."""

from __future__ import annotations

import json
import os

from .errors import EXIT_OK, SoraError
from .provenance import cli as provenance_cli


def cmd_info(args) -> int:
    from .manifest import MANIFEST_NAME

    if os.path.isdir(args.frame) or os.path.basename(args.frame) == MANIFEST_NAME:
        return shot_info(args)
    from .frames.exr import read_attrs

    attrs = read_attrs(args.frame)
    prov = {k: v for k, v in attrs.items() if k.startswith("sora:")}
    if not prov:
        raise SoraError("invalid_input", f"{args.frame} carries no sora provenance")
    if args.json:
        print(json.dumps(prov, indent=2))
    else:
        for key, value in prov.items():
            print(f"{key[5:]:16} {value}")
    return EXIT_OK


def shot_info(args) -> int:
    """A shot folder: what it holds and where its time went (the manifest's ``timings``)."""
    from .manifest import MANIFEST_NAME, read_manifest
    from .timings import format_table

    path = args.frame if args.frame.endswith(MANIFEST_NAME) else os.path.join(args.frame, MANIFEST_NAME)
    try:
        manifest = read_manifest(path)
    except FileNotFoundError:
        raise SoraError("not_found", f"{args.frame}: no {MANIFEST_NAME} (not a shot folder)") from None
    except (OSError, ValueError) as exc:
        raise SoraError("invalid_input", f"{path} cannot be read: {exc}") from None
    if args.json:
        keys = ("status", "pattern", "first_frame", "last_frame", "timings", "color", "source")
        print(json.dumps({k: manifest.get(k) for k in keys if k in manifest}, indent=2))
        return EXIT_OK
    spec, model = manifest.get("spec") or {}, manifest.get("model") or {}
    frames = manifest.get("frames") or []
    print(f"{manifest.get('pattern', '?')}  frames {manifest.get('first_frame')}..{manifest.get('last_frame')} "
          f"({len(frames)}), {len(manifest.get('passes') or [])} of {manifest.get('passes_total', '?')} "
          f"passes, {manifest.get('status', '?')}")
    print(f"mode {spec.get('mode', '?')}, {spec.get('width')}x{spec.get('height')} at {spec.get('fps')} fps"
          + (f", model {model.get('name')} ({model.get('family', '')}, {model.get('device', '')})" if model else ""))
    if manifest.get("source"):
        src = manifest["source"]
        print(f"source {src.get('path')} sha256 {src.get('sha256', '')[:16]}... "
              f"C2PA claim generator: {src.get('c2pa_claim_generator') or 'none'}")
    print(provenance_cli.status_line(os.path.dirname(path) or "."))
    timings = manifest.get("timings") or {}
    if timings:
        print("seconds (colour and write run on the frame pool while the next pass denoises):")
        for line in format_table(timings):
            print("  " + line)
    return EXIT_OK
