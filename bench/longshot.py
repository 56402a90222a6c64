"""Long shots with the bundled model: cost per frame, worker memory, seams and colour drift.

Makes 5 s, 20 s and 60 s shots in one run, each in a fresh worker so its peak memory is its own,
then reads the frames back and prints:
- seconds per generated frame at each length (target: 60 s at most 1.15x the 5 s figure),
- the worker's peak resident memory (target: 60 s at most 1.2x of 5 s),
- seam score: mean frame-to-frame difference across pass boundaries over the mean within
  passes (target <= 1.5),
- colour drift: the mean background colour of the first second against the last second,
  beside the within-pass variation it should stay below.
With ``--compare-match`` it also makes the 20 s shot with each drift correction (none, linear,
display) so the default is chosen by these numbers.

    python bench/longshot.py [--lengths 5 20 60] [--compare-match]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sora_core.client import WorkerClient  # noqa: E402
from sora_core.manifest import read_manifest  # noqa: E402
from sora_core.spec import ShotSpec  # noqa: E402

PROMPT = "a red ball moving right on a gray background"


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def shot_frames(folder: Path) -> tuple[np.ndarray, list[dict]]:
    from sora_core.frames.color import ViewTransform
    from sora_core.frames.exr import read_image

    manifest = read_manifest(folder)
    view = ViewTransform()
    frames = np.stack([view.to_display(read_image(folder / f["file"])) for f in manifest["frames"]])
    return frames, manifest["passes"]


def seam_score(frames: np.ndarray, passes: list[dict]) -> float:
    diffs = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))    # diffs[i]: frame i -> i+1
    boundary = {p["start"] - 1 for p in passes if p["start"] > 0}
    across = [diffs[i] for i in sorted(boundary)]
    within = [d for i, d in enumerate(diffs) if i not in boundary]
    if not across:
        return float("nan")
    return float((np.mean(across) + 1e-6) / (np.mean(within) + 1e-6))


def background(frames: np.ndarray) -> np.ndarray:
    """Per-frame background colour: the median pixel (objects cover a small part)."""
    return np.median(frames.reshape(len(frames), -1, 3), axis=1)


def drift(frames: np.ndarray, passes: list[dict], fps: float) -> tuple[float, float]:
    bg = background(frames)
    second = int(fps)
    shift = float(np.linalg.norm(bg[:second].mean(0) - bg[-second:].mean(0)))
    within = [np.linalg.norm(bg[p["start"]:p["start"] + p["new"]].std(0)) for p in passes if p["new"] > 1]
    return shift, float(np.mean(within))


def make(seconds: float, root: Path, match: str, seed: int, model: str) -> dict:
    spec = ShotSpec.from_dict({"prompt": PROMPT, "model": model, "duration": seconds, "seed": seed,
                               "passes": {"match": match},
                               "output": {"dir": f"{match}-{seconds:g}s", "name": "shot"}})
    with WorkerClient() as client:
        client.start()
        t0 = time.perf_counter()
        done = client.run(spec, str(root))
        wall = time.perf_counter() - t0
        rss = peak_rss_mb(client.pid)
    frames, passes = shot_frames(Path(done["dir"]))
    shift, within = drift(frames, passes, done["fps"])
    return {"seconds": seconds, "frames": done["frames"], "passes": done["passes"],
            "s_per_frame": wall / done["frames"], "rss_mb": rss, "seam": seam_score(frames, passes),
            "drift": shift, "within": within}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", type=float, nargs="+", default=[5, 20, 60])
    parser.add_argument("--match", default="linear", choices=["none", "linear", "display"])
    parser.add_argument("--compare-match", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--model", default="tinyworld")
    parser.add_argument("--out", default=None, help="keep the shots here (default: a temp folder)")
    args = parser.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="sora-longshot-"))

    rows = [make(s, root, args.match, args.seed, args.model) for s in args.lengths]
    print(f"bundled model, '{PROMPT}', drift correction: {args.match}; shots in {root}")
    print(f"{'length':>7} {'frames':>6} {'passes':>6} {'s/frame':>8} {'peak MB':>8} {'seam':>6} "
          f"{'drift':>7} {'within':>7}")
    for r in rows:
        print(f"{r['seconds']:6g}s {r['frames']:6d} {r['passes']:6d} {r['s_per_frame']:8.3f} "
              f"{r['rss_mb']:8.0f} {r['seam']:6.2f} {r['drift']:7.4f} {r['within']:7.4f}")
    first, last = rows[0], rows[-1]
    time_ratio = last["s_per_frame"] / first["s_per_frame"]
    mem_ratio = last["rss_mb"] / first["rss_mb"]
    checks = [(f"time per frame {last['seconds']:g}s / {first['seconds']:g}s", time_ratio, 1.15),
              (f"peak memory {last['seconds']:g}s / {first['seconds']:g}s", mem_ratio, 1.2),
              (f"seam score at {last['seconds']:g}s", last["seam"], 1.5),
              (f"colour drift / within-pass variation at {last['seconds']:g}s",
               last["drift"] / max(last["within"], 1e-6), 1.0)]
    ok = True
    for name, value, target in checks:
        passed = value <= target
        ok &= passed
        print(f"  {name:48} {value:6.3f}  (target <= {target})  {'PASS' if passed else 'FAIL'}")
    if args.compare_match:
        print("drift correction compared on a 20 s shot:")
        for match in ("none", "linear", "display"):
            r = make(20, root, match, args.seed, args.model)
            print(f"  {match:8} seam {r['seam']:.3f}  drift {r['drift']:.4f}  within {r['within']:.4f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
