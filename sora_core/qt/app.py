"""``sora studio``: the studio window as an application."""

from __future__ import annotations

import argparse
import os
import signal
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--output-root", default=None,
                   help="folder shots are written to and read from (default: $SORA_OUTPUT_ROOT or .)")
    p.add_argument("--models-dir", action="append", default=[], help="extra folder of models")
    p.add_argument("--python", default=None, help="Python that runs the worker (default: this one)")
    p.add_argument("--open", default=None, help="a shot folder or sequence to show in the flipbook")


def main(args: argparse.Namespace) -> int:
    """Open the studio and run the Qt event loop until the window closes (or Ctrl+C/SIGTERM
    closes it: the worker is shut down either way)."""
    from ..client import WorkerClient
    from .compat import QtCore, QtWidgets, exec_
    from .studio import Studio

    root = os.path.abspath(args.output_root or os.environ.get("SORA_OUTPUT_ROOT") or os.getcwd())
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    app.setApplicationName("Sora Studio")
    studio = Studio(root, WorkerClient(python=args.python), args.models_dir)
    studio.resize(1600, 900)
    studio.show()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: QtCore.QTimer.singleShot(0, studio.close))   # inside exec
    print(f"sora studio: {root} ({len(studio.history.records)} shots)", flush=True)
    if args.open:
        studio.open_shot(args.open)
        if studio.flipbook.seq is not None:
            print(f"showing {studio.flipbook.seq.path}", flush=True)
    wake = QtCore.QTimer(interval=200)      # lets Python run its signal handlers during exec
    wake.timeout.connect(lambda: None)
    wake.start()
    return exec_(app)
