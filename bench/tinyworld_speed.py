"""How fast the bundled model makes a shot on this machine: cold CLI and warm worker.

Targets (2-core CPU): `sora generate` of 16 frames at 64x64 with the default steps within 8 s
end to end from a cold start, and within 2 s for a job on a warm worker. The in-process time of
the same job is measured in the same run as the baseline the ratios are printed against.

    python bench/tinyworld_speed.py [--repeats 5] [--model tinyworld]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sora_core.client import WorkerClient  # noqa: E402
from sora_core.spec import ShotSpec  # noqa: E402

PROMPT = "a red ball moving right on a gray background"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--model", default="tinyworld")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sora-speed-"))

    cold = []
    for i in range(max(2, args.repeats // 2)):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "sora_core.cli", "generate", "--model", args.model,
                        "--prompt", PROMPT, "--frames", "16", "--seed", str(i), "--out", f"cold{i}",
                        "--output-root", str(root)], check=True, capture_output=True)
        cold.append(time.perf_counter() - t0)

    from sora_core.runner import BackendCache, run_shot
    cache = BackendCache()
    spec = lambda name, seed: ShotSpec.from_dict({"prompt": PROMPT, "model": args.model, "frames": 16,  # noqa: E731
                                                  "seed": seed, "output": {"dir": name, "name": "s"}})
    run_shot(spec("warmup", 0), root, cache, lambda e: None)
    warm, inproc = [], []
    with WorkerClient() as client:
        client.run(spec("w-warmup", 0), str(root))
        for i in range(args.repeats):   # alternate so background load hits both alike
            t0 = time.perf_counter()
            run_shot(spec(f"in{i}", i), root, cache, lambda e: None)
            inproc.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            client.run(spec(f"w{i}", i), str(root))
            warm.append(time.perf_counter() - t0)

    base = min(inproc)
    print(f"bundled model '{args.model}': 16 frames 64x64, default steps; min of repeats")
    print(f"  in-process job (baseline)   {base:6.2f} s   1.00x")
    print(f"  warm worker job             {min(warm):6.2f} s   {min(warm) / base:5.2f}x   "
          f"target <= 2 s  {'PASS' if min(warm) <= 2 else 'FAIL'}")
    print(f"  cold `sora generate`        {min(cold):6.2f} s   {min(cold) / base:5.2f}x   "
          f"target <= 8 s  {'PASS' if min(cold) <= 8 else 'FAIL'}")
    return 0 if min(warm) <= 2 and min(cold) <= 8 else 1


if __name__ == "__main__":
    sys.exit(main())
