"""``sora export`` of a 121-frame 1280x720 shot against a same-run baseline, and the watermark's
survival through H.264.

1. Export time: a signed shot made by ``sora ingest`` from 121 textured 720p PNGs, then
   - baseline: the plain encode (frames through the view transform, H.264 CRF 18 / 8-bit PNG
     writes), no verification, no C2PA;
   - ``export_shot``: the same plus verifying the shot (every frame's sha256, header,
     signatures), embedding and signing C2PA, renaming into place.
   Interleaved, fastest of ``--repeats``; prints seconds and the ratio (the cost of provenance
   on top of the encode).
2. Watermark survival: frames marked with the 32-bit shot id, encoded with H.264 at CRF 18 and
   28, decoded; the share of frames whose payload reads back exactly, and the bit accuracy.
   A lossless PNG is the baseline (100 % expected).

    nice -n 15 python bench/export.py [--frames 121] [--repeats 2] [--marked 24] [--skip-export] [--skip-watermark]
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
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

W, H = 1280, 720


def textured(n: int, seed: int = 0) -> np.ndarray:
    """A display-referred frame with detail at every scale (1/f noise over soft shapes), moving."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    img = np.stack([0.5 + 0.3 * np.sin((xx + 6 * n) / 97), 0.5 + 0.3 * np.cos(yy / 71),
                    0.5 + 0.2 * np.sin((xx + yy) / 53)], -1)
    for scale, amp in ((64, 0.12), (16, 0.06), (4, 0.03), (1, 0.015)):
        small = rng.standard_normal((H // scale + 1, W // scale + 1, 3)).astype(np.float32)
        img += amp * np.repeat(np.repeat(small, scale, 0), scale, 1)[:H, :W]
    return np.clip(img, 0, 1)


def make_shot(root: Path, frames: int, env: dict) -> Path:
    import subprocess

    import OpenImageIO as oiio

    from sora_core.provenance.encode import quantize

    src = root / "src"
    src.mkdir()
    for n in range(1, frames + 1):
        out = oiio.ImageOutput.create("png")
        out.open(str(src / f"plate.{n:04d}.png"), oiio.ImageSpec(W, H, 3, "uint8"))
        out.write_image(quantize(textured(n), 8))
        out.close()
    subprocess.run([sys.executable, "-m", "sora_core.cli", "ingest", str(src / "plate.####.png"), "--out", "shot",
                    "--output-root", str(root), "--json"], check=True, env=env, capture_output=True)
    return root / "shot"


def bench_export(frames: int, repeats: int) -> None:
    from sora_core.manifest import read_manifest
    from sora_core.provenance.export import export_shot
    from sora_core.provenance.keys import new_chain

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        keys = new_chain(root / "keys")
        env = {**os.environ, "SORA_SIGN_CERT": str(keys["chain"]), "SORA_SIGN_KEY": str(keys["key"]),
               "PYTHONPATH": str(ROOT)}
        t = time.perf_counter()
        shot = make_shot(root, frames, env)
        print(f"made a signed {frames}-frame {W}x{H} shot by ingest in {time.perf_counter() - t:.1f} s", flush=True)
        manifest = read_manifest(shot)
        sign = {"sign_cert": str(keys["chain"]), "sign_key": str(keys["key"])}
        for fmt in ("mp4", "png"):
            base, full = [], []
            for i in range(repeats):            # interleaved, fastest of each
                t = time.perf_counter()
                plain_encode(shot, manifest, fmt, root / f"plain{i}")
                base.append(time.perf_counter() - t)
                t = time.perf_counter()
                export_shot(shot, fmt, root / (f"out{i}.mp4" if fmt == "mp4" else f"out{i}_png"), **sign)
                full.append(time.perf_counter() - t)
            b, f = min(base), min(full)
            print(f"{fmt}: plain encode {b:.2f} s, sora export {f:.2f} s ({f / frames * 1000:.0f} ms a frame), "
                  f"ratio {f / b:.2f} (fastest of {repeats})", flush=True)


def plain_encode(shot: Path, manifest: dict, fmt: str, out: Path) -> None:
    """The baseline: the shot's frames through its view transform into H.264 or 8-bit PNGs."""
    from sora_core.provenance.encode import colour_tags, encode_video, quantize, write_still
    from sora_core.provenance.render import Renderer

    renderer = Renderer(shot, manifest, manifest["frames"])
    if fmt == "mp4":
        encode_video(renderer.frames(), out.with_suffix(".mp4"), "mp4", renderer.fps,
                     colour_tags(renderer.view["display"]), 18)
        return
    out.mkdir()
    for i, frame in enumerate(renderer.frames()):
        write_still(quantize(frame, 8), out / f"{i:04d}.png", "png", True)


def bench_watermark(marked: int) -> None:
    import av

    from sora_core.provenance import watermark
    from sora_core.provenance.encode import encode_video, quantize

    mark = watermark.describe("5ca1ab1e" + "0" * 56)
    bits = np.unpackbits(np.frombuffer(bytes.fromhex(mark["payload"]), np.uint8))
    t = time.perf_counter()
    frames = [watermark.embed(textured(n, seed=n), mark) for n in range(marked)]
    print(f"watermark: embedded in {marked} frames at {W}x{H}, "
          f"{(time.perf_counter() - t) / marked * 1000:.0f} ms a frame ({mark['method']})")

    def score(decoded: list[np.ndarray]) -> str:
        found = [watermark.read(f) for f in decoded]
        exact = sum(f == mark["payload"] for f in found) / len(found)
        acc = np.mean([np.mean(np.unpackbits(np.frombuffer(bytes.fromhex(f), np.uint8)) == bits) for f in found])
        return f"{exact * 100:.0f} % of frames exact, bit accuracy {acc * 100:.1f} %"

    print(f"  lossless 8-bit (PNG): {score([quantize(f, 8) for f in frames])}")
    with tempfile.TemporaryDirectory() as tmp:
        for crf in (18, 28):
            path = Path(tmp) / f"crf{crf}.mp4"
            encode_video(frames, path, "mp4", 24.0, (1, 13, 1), crf)
            with av.open(str(path)) as c:
                decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
            print(f"  H.264 CRF {crf} ({path.stat().st_size * 8 / (marked / 24) / 1e6:.1f} Mbit/s): "
                  f"{score(decoded)}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=121)
    ap.add_argument("--marked", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--skip-export", action="store_true")
    ap.add_argument("--skip-watermark", action="store_true")
    args = ap.parse_args()
    if not args.skip_export:
        bench_export(args.frames, args.repeats)
    if not args.skip_watermark:
        bench_watermark(args.marked)


if __name__ == "__main__":
    main()
