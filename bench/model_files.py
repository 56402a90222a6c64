"""Load time and peak memory of one-file transformers: fp16 safetensors vs GGUF Q8_0 vs Q4_0.

Builds two random Wan transformers in code, a tiny one (the tests' size) and a medium one
(>= 100 M parameters), writes each as an fp16 ComfyUI-layout safetensors and as GGUF Q8_0 and
Q4_0 files (the ``gguf`` package, original Wan keys), then loads each file over a base folder
(configs only) in a fresh process, the way a shot does (``components.load_component``, compute
dtype float16). Each process reports its load time, its peak resident memory added by the load,
(sampled every 2 ms: ``ru_maxrss`` would carry the parent's over the fork) and the bytes the
loaded weights hold. Prints the figures and each ratio against the fp16 file
measured in the same run.

    python bench/model_files.py [--repeats 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZES = {   # WanTransformer3DModel configs
    "tiny": dict(num_attention_heads=2, attention_head_dim=8, ffn_dim=32, num_layers=2, text_dim=32,
                 freq_dim=16),
    "medium": dict(num_attention_heads=12, attention_head_dim=64, ffn_dim=3072, num_layers=12,
                   text_dim=4096, freq_dim=256),
}
FORMATS = ("fp16", "Q8_0", "Q4_0")


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def build(size: str, folder: Path) -> dict[str, Path]:
    """A base folder (model_index.json + transformer config) and the three files of its weights."""
    import torch
    from diffusers import WanTransformer3DModel

    from tests.fixtures import model_files as mf

    torch.manual_seed(0)
    model = WanTransformer3DModel(patch_size=(1, 2, 2), in_channels=16, out_channels=16,
                                  rope_max_seq_len=32, **SIZES[size])
    base = folder / f"wan_{size}"
    (base / "transformer").mkdir(parents=True)
    model.save_config(base / "transformer")
    (base / "model_index.json").write_text(json.dumps(
        {"_class_name": "WanPipeline", "transformer": ["diffusers", "WanTransformer3DModel"]}))
    state = {k: v.detach() for k, v in model.state_dict().items()}
    params = sum(v.numel() for v in state.values())
    original = mf.wan_original_keys(state)
    files = {"fp16": mf.save(mf.wan_original_keys(state, comfy=True), folder / f"{size}_fp16.safetensors",
                             torch.float16)}
    for q in FORMATS[1:]:
        files[q] = mf.write_gguf(original, folder / f"{size}-{q}.gguf", q)
    return {"base": base, "params": params, **files}


def measure(base: str, path: str) -> dict:
    """One load in this process (run in a fresh one per measurement)."""
    import torch

    from sora_core.backends.components import load_component
    from sora_core.models_index import read_model_index

    index = read_model_index(base)
    # every import a load makes, outside the timed part (a warm worker has them)
    import accelerate  # noqa: F401
    import diffusers.quantizers.gguf.utils  # noqa: F401
    from diffusers import GGUFQuantizationConfig, WanTransformer3DModel  # noqa: F401
    from diffusers.loaders import single_file_model  # noqa: F401
    from diffusers.models import model_loading_utils  # noqa: F401
    before = peak = rss_mb()
    done = threading.Event()

    def sample():
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_mb())
            time.sleep(0.002)
    sampler = threading.Thread(target=sample)
    sampler.start()
    t0 = time.perf_counter()
    model = load_component(index, Path(base), "transformer", path, torch.float16)
    seconds = time.perf_counter() - t0
    done.set()
    sampler.join()
    held = sum(p.data.numel() * p.data.element_size() for p in model.parameters())
    return {"load_s": seconds, "peak_added_mb": peak - before, "weights_mb": held / 2**20}


def run_one(base: Path, path: Path, repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, __file__, "--measure", str(base), str(path)],
                             capture_output=True, text=True, check=True, cwd=ROOT)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {"load_s": min(r["load_s"] for r in runs),
            "peak_added_mb": min(r["peak_added_mb"] for r in runs),
            "weights_mb": runs[0]["weights_mb"], "file_mb": path.stat().st_size / 2**20}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--keep", type=Path, help="write the files here (kept) instead of a temporary folder")
    parser.add_argument("--measure", nargs=2, metavar=("BASE", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        print(f"{'size':7} {'params':>8} {'format':6} {'file MB':>8} {'load s':>7} {'peak+ MB':>9} "
              f"{'weights MB':>10}  vs fp16 (load, peak, weights)")
        for size in SIZES:
            built = build(size, folder)
            base = None
            for fmt in FORMATS:
                r = run_one(built["base"], built[fmt], args.repeats)
                base = base or r
                ratio = (f"{r['load_s'] / base['load_s']:.2f}x, {r['peak_added_mb'] / base['peak_added_mb']:.2f}x, "
                         f"{r['weights_mb'] / base['weights_mb']:.2f}x")
                print(f"{size:7} {built['params'] / 1e6:7.2f}M {fmt:6} {r['file_mb']:8.1f} {r['load_s']:7.2f} "
                      f"{r['peak_added_mb']:9.1f} {r['weights_mb']:10.1f}  {ratio}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
