"""Screenshots of the Qt front end for the docs: the shot panel, the flipbook (A/B wipe) and
the studio, taken with ``widget.grab()`` on real shots the bundled model makes.

    QT_QPA_PLATFORM=offscreen python scripts/qt_screenshots.py [--root DIR] [--steps 12]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sora_core.client import WorkerClient  # noqa: E402
from sora_core.qt.compat import QtWidgets  # noqa: E402
from sora_core.spec import ShotSpec  # noqa: E402

IMAGES = Path(__file__).resolve().parents[1] / "docs" / "images"
PROMPT = "a yellow triangle moving right and a blue ball moving up on the ground"


def pump(app, seconds: float = 0.3, until=None, timeout: float = 900.0) -> None:
    end = time.monotonic() + (timeout if until else seconds)
    while time.monotonic() < end and not (until and until()):
        app.processEvents()
        time.sleep(0.02)
    app.processEvents()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=None, help="output root for the shots (default: a temp folder)")
    ap.add_argument("--steps", type=int, default=12)
    args = ap.parse_args()
    root = Path(args.root or tempfile.mkdtemp(prefix="sora-shots-"))
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    from sora_core.qt import Flipbook, ShotPanel, Studio

    client = WorkerClient()
    versions = []
    for seed in (3, 7):
        spec = ShotSpec.from_dict({"prompt": PROMPT, "seed": seed, "steps": args.steps,
                                   "output": {"dir": f"shots/ground_v{seed}", "name": "ground"}})
        folder = root / spec.output.dir
        if not (folder / "manifest.json").is_file():       # kept from an earlier run: reuse it
            client.run(spec, str(root))
        versions.append(str(folder))
        print("shot", versions[-1])
    IMAGES.mkdir(parents=True, exist_ok=True)

    panel = ShotPanel(client=client, output_root=str(root))
    panel.set_spec(ShotSpec.from_dict({
        "prompt": PROMPT, "frames": 40, "seed": 3, "steps": args.steps,
        "prompt_schedule": [{"start": 2.5, "prompt": "a red square bouncing on the ground"}],
        "output": {"dir": "shots/long", "name": "long"}}))
    panel.resize(480, 660)
    panel.show()
    pump(app)
    panel.grab().save(str(IMAGES / "qt_panel.png"))

    book = Flipbook()
    book.resize(1100, 560)
    book.show()
    book.load(versions[0])
    book.load_b(versions[1])
    book.set_frame(8)
    pump(app)
    book.provenance.verify()
    pump(app, until=lambda: "verif" not in book.provenance.verdict.text() or "…" not in
         book.provenance.verdict.text(), timeout=60)
    pump(app)
    book.grab().save(str(IMAGES / "qt_flipbook.png"))

    studio = Studio(str(root), client)
    studio.resize(1600, 900)
    studio.show()
    studio.panel.set_spec(ShotSpec.from_dict({"prompt": "a green ball bouncing on a gray background",
                                              "seed": 5, "steps": args.steps,
                                              "output": {"dir": f"shots/bounce_{int(time.time())}",
                                                         "name": "bounce"}}))
    entry = studio.panel.generate()
    pump(app, until=lambda: entry.state not in ("queued", "running"))
    pump(app, 1.5)
    studio.compare_shot(versions[0])           # the new shot against an older one, as a wipe
    studio.flipbook.set_frame(6)
    pump(app)
    studio.grab().save(str(IMAGES / "qt_studio.png"))
    print("wrote", *sorted(p.name for p in IMAGES.glob("qt_*.png")))
    studio.queue.close()
    client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
