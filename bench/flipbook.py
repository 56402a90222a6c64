"""Flipbook playback at 720p and 1080p: does 24 fps hold once the frames are decoded?

48 scene-linear half ZIP EXR frames per size are played at 24 fps through the built-in view
(the ``Flipbook`` widget itself, offscreen Qt). Printed per size: the rate of the first loop
(frames decoded on the thread pool while playing), of the second loop (from the frame cache)
and its ratio to the target 24 fps (target >= 0.99), the worst gap between two frames of that
loop, the unthrottled rate from memory, the same-run baseline of decoding alone (read + view
transform, on the pool, frames per second), and where one frame's time goes on the GUI thread
(read, view transform, 8-bit, QImage + paint).

Before the flipbook scheduled frames by deadline it ran a fixed 42 ms timer
(round(1000 / 24)): 1000 / 42 = 23.8 fps at most, whatever the machine.

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


def play_loops(book, loops: int, fps: float) -> tuple[list[float], float]:
    """Play ``loops`` times through: the rate of each loop in frames per second, and the
    worst gap between two frames of the last loop in ms."""
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
    gaps = np.diff(times[(loops - 1) * n:loops * n + 1])
    return [n / (times[(k + 1) * n] - times[k * n]) for k in range(loops)], float(gaps.max() * 1000)


def stage_ms(book, files: list[Path]) -> str:
    """Milliseconds per frame of each step, on this thread, over the first eight frames."""
    from sora_core.frames.exr import read_image
    from sora_core.qt.frame_cache import to_u8
    from sora_core.qt.viewer import to_qimage

    spent = dict.fromkeys(("read", "view", "8-bit", "QImage+paint"), 0.0)
    for path in files[:8]:
        t0 = time.perf_counter()
        rgb = read_image(path)
        t1 = time.perf_counter()
        shown = book.transform.to_display(rgb)
        t2 = time.perf_counter()
        u8 = to_u8(shown)
        t3 = time.perf_counter()
        book.view.set_images(to_qimage(u8))
        book.view.repaint()
        t4 = time.perf_counter()
        for key, dt in zip(spent, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            spent[key] += dt * 1000 / 8
    return ", ".join(f"{k} {v:.1f}" for k, v in spent.items())


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
            (first, second), worst = play_loops(book, 2, TARGET_FPS)
            (free,), _ = play_loops(book, 1, 1000.0)
            print(f"{h}p: first loop {first:5.1f} fps (decode-only baseline {baseline:5.1f} fps), "
                  f"cached loop {second:5.2f} fps = {second / TARGET_FPS:.3f} x target {TARGET_FPS:g} "
                  f"(worst gap {worst:.0f} ms), unthrottled from memory {free:5.1f} fps, "
                  f"cache {book.cache.nbytes / 2**20:.0f} MiB")
            print(f"{h}p: ms a frame on one thread: {stage_ms(book, files)}")
            book.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
