"""Qt tests: real widgets on the offscreen platform, real worker processes, the bundled model."""

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from sora_core.client import WorkerClient  # noqa: E402
from sora_core.spec import ShotSpec  # noqa: E402

FAST = {"steps": 1, "frames": 9}       # the bundled model at 64x64; these CPUs are shared


@pytest.fixture(scope="session")
def client():
    """One warm worker shared by the Qt tests that do not count model loads."""
    c = WorkerClient()
    yield c
    c.close()


def fast_spec(out: str, prompt: str = "a red ball moving right", **kw) -> ShotSpec:
    data = {"prompt": prompt, "seed": 1, **FAST, "output": {"dir": out, "name": "shot"}}
    data.update(kw)
    return ShotSpec.from_dict(data)


@pytest.fixture(scope="session")
def shot_pair(client, tmp_path_factory):
    """Two versions of one shot made by the real worker: (root, dir_a, dir_b); the second on a
    gray background, so the two differ across the frame."""
    root = tmp_path_factory.mktemp("shots")
    dirs = []
    for seed, out, where in ((1, "shots/v1", ""), (2, "shots/v2", " on a gray background")):
        done = client.run(fast_spec(out, "a red ball moving right" + where, seed=seed), str(root))
        dirs.append(done["dir"])
    return root, dirs[0], dirs[1]
