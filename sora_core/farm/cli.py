"""``sora farm``: run a batch of shots on a Ray cluster, with a summary and one exit code.

    sora farm specs/ --ray-address HEAD:6379 --output-root /mnt/shots
    sora farm batch.json --json --summary out/summary.json
    sora farm specs/ --plan            # the shots and their dependencies, without running

Ray is imported only when a batch runs, so ``sora --help`` and ``--plan`` work without it.
Ctrl-C or SIGTERM cancels the batch (finished passes stay on disk); running the same command
again resumes it: complete shots are skipped, partial ones continue after their last pass.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys

from ..errors import EXIT_OK, SoraError
from .. import protocol


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("specs", nargs="+", help="spec files, folders of specs, or batch JSON files")
    p.add_argument("--output-root", default=None,
                   help="folder every shot writes inside (default: the batch's, $SORA_OUTPUT_ROOT or .)")
    p.add_argument("--ray-address", default=None,
                   help="Ray cluster address (HOST:PORT or 'auto'); default: $RAY_ADDRESS or a local Ray")
    p.add_argument("--resource", default="sora_slot",
                   help="custom Ray resource one shot reserves when the cluster has no GPU (default sora_slot)")
    p.add_argument("--gpus", choices=("auto", "yes", "no"), default="auto",
                   help="reserve one GPU per shot: auto (when the cluster has GPUs), yes or no")
    p.add_argument("--cpus-per-shot", type=float, default=1.0, help="CPUs one shot reserves (default 1)")
    p.add_argument("--slots", type=int, default=None,
                   help="local Ray only: shots at a time when there is no GPU (default 1)")
    p.add_argument("--retries", type=int, default=3,
                   help="extra attempts for exit 75 (out of memory, device busy, node lost); default 3")
    p.add_argument("--retry-delay", type=float, default=2.0, help="seconds before a retry (default 2)")
    p.add_argument("--cancel-grace", type=float, default=10.0,
                   help="seconds a cancelled shot gets to stop before it is killed")
    p.add_argument("--keep-warm", type=float, default=120.0,
                   help="seconds an idle node keeps its worker and loaded model (default 120; 0: none)")
    p.add_argument("--models-dir", action="append", default=[], help="extra folder of models (on every node)")
    p.add_argument("--python", default=None, help="Python that runs the worker on the nodes")
    p.add_argument("--summary", default=None, help="summary JSON path (default <output root>/farm_summary.json)")
    p.add_argument("--json", action="store_true", help="print every event as a JSON line")
    p.add_argument("--export", action="append", default=[], choices=("mp4", "mov", "png", "jpeg"),
                   help="after a shot is made, export it as a signed deliverable of this format "
                   "(sora export, on its node; repeatable)")
    p.add_argument("--export-dir", default=None, help="where deliverables go (default <output root>/"
                   "deliverables): <shot id>.mp4, or a folder <shot id>_png for a sequence")
    p.add_argument("--crf", type=int, default=None, help="H.264 quality of --export mp4 (default 18)")
    p.add_argument("--watermark", action="store_true", help="an invisible watermark in the deliverables")
    p.add_argument("--plan", action="store_true", help="print the shots and their dependencies as JSON and exit")


def format_event(event: dict) -> str | None:
    """One console line per event: ``[shot#attempt @node] what happened``."""
    kind = event.get("event")
    shot = event.get("shot", "")
    where = f"[{shot}#{event.get('attempt', '')}" + (f" @{event['node']}" if event.get("node") else "") + "]"
    if kind == "submitted":
        return f"[{shot}#{event['attempt']}] queued"
    if kind == "started":
        return f"{where} started (worker pid {event.get('worker_pid')})"
    if kind == "retry":
        return f"{where} failed with exit {event['exit_code']} ({event.get('error')}); retrying as attempt {event['next_attempt']}"
    if kind == "shot_done":
        note = " (already complete)" if event.get("skipped") else ""
        shipped = f"; deliverables: {', '.join(event['deliverables'])}" if event.get("deliverables") else ""
        return (f"{where} done: {event.get('frames')} frames in {event.get('seconds', 0):.1f} s{note} -> "
                f"{event.get('manifest')}{shipped}")
    if kind in ("shot_failed", "shot_cancelled"):
        return f"{where} {'failed' if kind == 'shot_failed' else 'cancelled'} with exit {event['exit_code']}: {event.get('error')}"
    if kind == "shot_blocked":
        return f"[{shot}] blocked: {', '.join(event.get('by', []))} did not finish"
    if kind == "batch_done":
        counts = ", ".join(f"{v} {k}" for k, v in sorted(event.get("counts", {}).items()))
        return f"batch finished in {event.get('seconds', 0):.1f} s: {counts}; exit {event['exit_code']}"
    if kind == "frame":
        return None     # the write progress line says the same
    if kind in ("done", "error") and shot:
        return None     # shot_done / retry / shot_failed say it with the attempt's outcome
    if kind == "notice" and not shot:
        return f"notice: {event.get('message')}"
    return f"{where} {protocol.describe(event)}"


def export_options(args: argparse.Namespace) -> dict:
    """``--export`` and its settings as the shot task's options (``farm.deliver``)."""
    if not args.export:
        return {}
    where = os.path.abspath(args.export_dir) if args.export_dir else None
    return {"export": list(dict.fromkeys(args.export)), "export_dir": where, "export_crf": args.crf,
            "export_watermark": args.watermark}


def main(args: argparse.Namespace) -> int:
    from .batch import load_batch

    try:
        batch = load_batch(args.specs, args.output_root)
    except SoraError as err:
        print(f"sora farm: error: {err}", file=sys.stderr)
        return err.exit_code
    if args.plan:
        print(json.dumps(batch.to_plan(), indent=2))
        return EXIT_OK

    def show(event: dict) -> None:
        if args.json:
            print(json.dumps(event), flush=True)
        else:
            line = format_event(event)
            if line:
                print(line, flush=True)

    try:
        import ray  # noqa: F401
    except ImportError:
        print("sora farm: error: Ray is not installed (pip install 'sora-core[farm]')", file=sys.stderr)
        return 3
    from .ray_runner import RayExecutor
    from .scheduler import BatchRunner
    from .summary import write_summary

    try:
        executor = RayExecutor(str(batch.output_root), address=args.ray_address, resource=args.resource,
                               gpus=args.gpus, cpus_per_shot=args.cpus_per_shot, slots=args.slots,
                               python=args.python, models_dirs=args.models_dir,
                               cancel_grace=args.cancel_grace, keep_warm=args.keep_warm,
                               export=export_options(args))
    except (ConnectionError, RuntimeError) as exc:
        print(f"sora farm: error: cannot reach the Ray cluster: {exc}", file=sys.stderr)
        return 75
    try:
        for note in executor.notices:
            show({"event": "notice", "message": note})
        show({"event": "batch_start", "shots": len(batch.shots), "placement": executor.placement,
              "capacity": executor.capacity, "output_root": str(batch.output_root)}
             if args.json else {"event": "notice", "message": f"{len(batch.shots)} shots, one "
                                f"{executor.placement} each, {executor.capacity:g} at a time"})
        runner = BatchRunner(batch, executor, retries=args.retries, retry_delay=args.retry_delay,
                             on_event=show, cancel_grace=args.cancel_grace + 10)
        previous = signal.signal(signal.SIGTERM, lambda *_: runner.cancel())
        try:
            summary = runner.run()
        finally:
            signal.signal(signal.SIGTERM, previous)
    finally:
        executor.close()
    path = write_summary(args.summary or batch.output_root / "farm_summary.json", summary)
    if args.json:
        print(json.dumps({"event": "summary", "path": str(path), "exit_code": summary["exit_code"]}), flush=True)
    else:
        print(f"summary: {path}")
    return summary["exit_code"]
