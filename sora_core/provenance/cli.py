"""``sora keys new``, ``sora verify`` and the signing flags other commands share.

Light at import (argparse only); the commands import ``cryptography``/``c2pa`` when they run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading

from ..errors import EXIT_OK, SoraError

COMMANDS = ("keys", "verify", "export")


def add_sign_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("signing (default: $SORA_SIGN_CERT/$SORA_SIGN_KEY or the config file)")
    g.add_argument("--sign-cert", metavar="CHAIN.pem", help="signing certificate chain (PEM, signer first)")
    g.add_argument("--sign-key", metavar="KEY.pem", help="its private key (PEM; ES256, PS256 or Ed25519)")


def sign_env(args) -> dict[str, str]:
    """Environment that gives a worker the identity named on the command line (paths only)."""
    from .identity import resolve_identity

    if not (getattr(args, "sign_cert", None) or getattr(args, "sign_key", None)):
        return {}
    return resolve_identity(args.sign_cert, args.sign_key).env()


def add_commands(sub) -> None:
    p = sub.add_parser("keys", help="signing keys: 'keys new DIR' makes a local, untrusted test chain")
    keys = p.add_subparsers(dest="keys_command", required=True)
    k = keys.add_parser("new", help="write chain.pem, key.pem and root.pem into DIR (self-made, untrusted)")
    k.add_argument("dir")
    k.add_argument("--alg", default="es256", choices=("es256", "ps256", "ed25519"))
    k.add_argument("--name", default=None, help="the signer's common name")
    p = sub.add_parser("verify", help="check a shot folder, a frame or an exported file against its "
                       "signatures (exit 65 when content fails)")
    p.add_argument("path", metavar="PATH")
    p.add_argument("--trust", metavar="ANCHORS.pem",
                   help="trust anchors (default: $SORA_TRUST_ANCHORS or the config's trust_anchors)")
    p.add_argument("--allow-unsigned", action="store_true",
                   help="exit 0 for an unsigned shot whose frames match its manifest")
    p.add_argument("--require-trusted", action="store_true", help="exit 65 unless the signer is trusted")
    p.add_argument("--shot", metavar="SHOT_DIR", help="for a deliverable: also check that its parent "
                   "ingredient is this shot's manifest")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("export", help="a verified shot as a signed deliverable (C2PA embedded): "
                       "H.264 MP4, ProRes 422 MOV, or 8-bit PNG/JPEG stills")
    p.add_argument("shot", metavar="SHOT_DIR")
    p.add_argument("--format", required=True, choices=("mp4", "mov", "png", "jpeg"))
    p.add_argument("--out", required=True, metavar="PATH", help="the file (mp4, mov, --frame N) or a new "
                   "folder for a PNG/JPEG sequence")
    p.add_argument("--frame", type=int, metavar="N", help="one still: the frame numbered N")
    p.add_argument("--crf", type=int, metavar="N", help="H.264 quality, 0-51 (default 18)")
    p.add_argument("--watermark", action="store_true", help="add an invisible watermark carrying the "
                   "shot's manifest id (8-bit deliverables)")
    p.add_argument("--allow-unsigned", action="store_true",
                   help="export an unsigned shot whose frames match its manifest")
    p.add_argument("--trust", metavar="ANCHORS.pem", help="trust anchors (as for sora verify)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--events", action="store_true", help="JSON lines for a host: a progress event per "
                   "frame, then done (the result) or error")
    add_sign_flags(p)


def main(args) -> int:
    if args.command == "keys":
        return keys_new(args)
    if args.command == "export":
        return cmd_export(args)
    return cmd_verify(args)


def cmd_export(args) -> int:
    """SIGTERM (a host's cancel) stops the export at the next frame: its temporaries are removed,
    exit 130. A flag, not an exception from the handler: c2pa's stream callbacks would swallow it."""
    from .export import export_shot
    from .identity import trust_anchors

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    show = (lambda event: print(json.dumps(event), flush=True)) if args.events else None
    try:
        result = export_shot(args.shot, args.format, args.out, frame=args.frame, crf=args.crf,
                             watermark=args.watermark, sign_cert=args.sign_cert, sign_key=args.sign_key,
                             anchors_pem=trust_anchors(args.trust), allow_unsigned=args.allow_unsigned,
                             emit=show, cancelled=stop.is_set)
    except SoraError as err:
        if args.events:
            print(json.dumps(err.to_event()), flush=True)
        raise
    if args.events:
        print(json.dumps({"event": "done", **result}), flush=True)
        return EXIT_OK
    if args.json:
        print(json.dumps(result, indent=2))
        return EXIT_OK
    files = result["files"]
    where = files[0] if len(files) == 1 else f"{len(files)} files in {os.path.dirname(files[0])}"
    print(f"exported {result['frames']} frame(s) of {result['shot']} as {where}, "
          f"signed by {result['signer']['common_name']}")
    return EXIT_OK


def keys_new(args) -> int:
    from .keys import UNTRUSTED_NAME, new_chain

    paths = new_chain(args.dir, args.alg, args.name or UNTRUSTED_NAME)
    print(f"wrote {paths['chain']}, {paths['key']} (private, mode 0600) and {paths['root']}")
    print("this chain is self-made: verifiers report its signatures as UNTRUSTED "
          f"unless they are given {paths['root']} as a trust anchor (sora verify --trust).")
    print("to sign with it:")
    print(f"  export SORA_SIGN_CERT={paths['chain']} SORA_SIGN_KEY={paths['key']}")
    return EXIT_OK


def cmd_verify(args) -> int:
    from .identity import trust_anchors
    from .verify import verify

    report = verify(args.path, trust_anchors(args.trust), shot=args.shot)
    code = report.exit_code(args.allow_unsigned, args.require_trusted)
    if args.json:
        print(json.dumps({**report.to_dict(), "exit_code": code}, indent=2))
    else:
        for line in report.lines():
            print(line)
        if not report.signed and not report.problems and not args.allow_unsigned:
            print("not signed: nothing proves who made it (--allow-unsigned accepts matching hashes)")
        elif report.signed and not report.trusted and not report.problems:
            print("note: the signer is not on this machine's trust list (--trust ANCHORS.pem)")
    return code


def status_line(folder: str) -> str:
    """One line for ``sora info``: the shot's verification verdict, or why it was not checked."""
    try:
        from .identity import trust_anchors
        from .verify import verify

        report = verify(folder, trust_anchors())
    except SoraError as err:
        return f"provenance not checked: {err}"
    except ImportError as exc:
        return f"provenance not checked: {exc}"
    who = report.signer.get("common_name") if report.signer else None
    text = f"provenance {report.verdict}" + (f", signed by {who}" if who else "")
    if report.signed and not report.trusted:
        text += " (untrusted)"
    if report.problems:
        text += ": " + "; ".join(report.problems[:3]) + (" ..." if len(report.problems) > 3 else "")
    return text

