"""Flipbook playback at 720p and 1080p: does 24 fps hold once the frames are decoded?

48 scene-linear half ZIP EXR frames per size are played at 24 fps through the built-in view
(the ``Flipbook`` widget itself, offscreen Qt). Printed per size: the rate of the first loop
(frames decoded on the thread pool while playing), of the second loop (from the frame cache)
and its ratio to the target 24 fps (target >= 0.95), the unthrottled rate from memory, and the
same-run baseline of decoding alone (read + view transform, on the pool, frames per second).

    QT_QPA_PLATFORM=offscreen python bench/flipbook.py [--frames 48] [--sizes 720,1080]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sora_core.frames.color import ViewTransform  # noqa: E402
from sora_core.frames.exr import write_exr  # noqa: E402
from sora_core.qt.compat import QtCore, QtWidgets  # noqa: E402
from sora_core.qt.frame_cache import to_display_u8  # noqa: E402

TARGET_FPS = 24.0
SIZES = {"720": (1280, 720), "1080": (1920, 1080)}


def write_sequence(folder: Path, w: int, h: int, count: int) -> str:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for i in range(count):
        scene = np.empty((h, w, 3), np.float32)
        scene[..., 0] = 0.02 + 1.5 * xx / w
        scene[..., 1] = 0.05 + 0.5 * yy / h
        scene[..., 2] = 0.1 + 0.08 * np.sin(xx / 37 + i / 5)
        r = (xx - w * (0.2 + 0.6 * i / count)) ** 2 + (yy - h / 2) ** 2 < (h / 6) ** 2
        scene[r] = (4.0, 1.0, 0.3)
        write_exr(folder / f"plate.{i + 1:04d}.exr", scene)
    return str(folder / "plate.####.exr")


def play_loops(book, loops: int, fps: float) -> list[float]:
    """Play ``loops`` times through; the rate of each loop in frames per second."""
    n = len(book.seq)
    times: list[float] = []
    loop = QtCore.QEventLoop()

    def shown(_number):
        times.append(time.perf_counter())
        if len(times) > loops * n:
            loop.quit()

    book.frame_changed.connect(shown)
    book.fps.setValue(fps)
    book.play()
    loop.exec()
    book.pause()
    book.frame_changed.disconnect(shown)
    return [n / (times[(k + 1) * n] - times[k * n]) for k in range(loops)]


def decode_rate(pattern_files: list[Path], view: ViewTransform) -> float:
    with ThreadPoolExecutor(os.cpu_count()) as pool:
        start = time.perf_counter()
        list(pool.map(lambda p: to_display_u8(p, view), pattern_files))
    return len(pattern_files) / (time.perf_counter() - start)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--sizes", default="720,1080")
    args = ap.parse_args()
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    from sora_core.qt import Flipbook

    print(f"cpus {os.cpu_count()}, load {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    for key in args.sizes.split(","):
        w, h = SIZES[key]
        with tempfile.TemporaryDirectory() as tmp:
            pattern = write_sequence(Path(tmp), w, h, args.frames)
            files = sorted(Path(tmp).glob("plate.*.exr"))
            baseline = decode_rate(files, ViewTransform())
            book = Flipbook(cache_mb=2048)
            book.resize(1280, 800)
            book.show()
            book.load(pattern)
            book.fps.setValue(TARGET_FPS)
            app.processEvents()
            first, second = play_loops(book, 2, TARGET_FPS)
            (free,) = play_loops(book, 1, 1000.0)
            print(f"{h}p: first loop {first:5.1f} fps (decode-only baseline {baseline:5.1f} fps), "
                  f"cached loop {second:5.1f} fps = {second / TARGET_FPS:.2f} x target {TARGET_FPS:g}, "
                  f"unthrottled from memory {free:5.1f} fps, cache {book.cache.nbytes / 2**20:.0f} MiB")
            book.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
