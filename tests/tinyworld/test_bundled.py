"""The bundled TinyWorld weights do what the prompt says, in every mode (read by the detector),
and the CLI names the words they do not know."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sora_core.models.tinyworld import world
from sora_core.models.tinyworld.detector import classify_motion, color_map, dominant_color, score_clip, track

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = ROOT / "sora_core" / "models" / "tinyworld" / "weights"
STEPS = 12


@pytest.fixture(scope="module")
def pipe():
    from sora_core.models.tinyworld.pipeline import TinyWorldPipeline
    torch.set_num_threads(2)
    return TinyWorldPipeline.from_pretrained(WEIGHTS, torch_dtype=torch.float32)


def _run(pipe, prompt, seed=3, **kw):
    return pipe(prompt, num_inference_steps=STEPS, generator=torch.Generator().manual_seed(seed), **kw).frames[0]


def _moving_right(color="blue", shape="square", background="gray"):
    obj = world.Obj(color, shape, "moving right", 14.0, 32.0)
    scene = world.Scene([obj], background, "static")
    return scene, world.render(scene), obj.track()


def _error_at(frames, color, truth, t):
    tr, _ = track(color_map(frames), color)
    return float(np.linalg.norm(tr[t] - truth[t]))


def test_weights_are_small_fp16_safetensors_only():
    files = [p for p in WEIGHTS.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) <= 25 * 2**20
    assert not [p for p in files if p.suffix in (".bin", ".pt", ".ckpt", ".pth")]
    from safetensors import safe_open
    for f in WEIGHTS.rglob("*.safetensors"):
        with safe_open(str(f), "pt") as st:
            assert {st.get_slice(k).get_dtype() for k in st.keys()} == {"F16"}


@pytest.mark.parametrize("caption", ["a red ball moving right on a gray background",
                                     "a yellow triangle moving up on a black background",
                                     "a green square bouncing on the ground"])
def test_generate_follows_the_caption(pipe, caption):
    frames = _run(pipe, caption)
    assert frames.shape == (16, 64, 64, 3)
    res = score_clip(frames, caption)
    assert res["color_ok"] and res["motion_ok"], res


def test_generate_two_objects_and_camera_pan(pipe):
    caption = "a red ball still and a blue square moving left on the ground, camera panning right"
    res = score_clip(_run(pipe, caption, seed=5), caption)
    assert res["both_ok"] and res["camera_ok"], res


def test_animate_a_still_moves_it_as_asked(pipe):
    _, clip, _ = _moving_right("purple", "triangle", "black")
    frames = _run(pipe, "a purple triangle moving down on a black background", known_frames={0: clip[0]})
    assert np.abs(frames[0] - clip[0]).max() < 1e-3          # the still is the first frame
    cmap = color_map(frames)
    assert dominant_color(cmap) == "purple"
    assert classify_motion(track(cmap, None)[0]) == "moving down"


def test_extend_forward_continues_the_motion(pipe):
    scene, clip, truth = _moving_right()
    frames = _run(pipe, scene.caption(), known_frames={i: clip[i] for i in range(4)})
    assert _error_at(frames, "blue", truth, 4) <= 6.0
    cmap = color_map(frames[4:])
    assert dominant_color(cmap) == "blue" and classify_motion(track(cmap, "blue")[0]) == "moving right"


def test_extend_backward_leads_into_the_given_frames(pipe):
    scene, clip, truth = _moving_right("orange", "ball", "black")
    frames = _run(pipe, scene.caption(), known_frames={i: clip[i] for i in range(12, 16)})
    assert _error_at(frames, "orange", truth, 11) <= 6.0


def test_interpolate_passes_both_keyframes(pipe):
    scene, clip, truth = _moving_right("green", "square", "gray")
    frames = _run(pipe, scene.caption(), known_frames={0: clip[0], 15: clip[15]})
    tr, _ = track(color_map(frames[1:15]), "green")
    assert not np.isnan(tr[:, 0]).any()
    assert np.linalg.norm(tr - truth[0], axis=1).min() <= 6.0
    assert np.linalg.norm(tr - truth[15], axis=1).min() <= 6.0
    assert np.all(np.diff(tr[:, 0]) > -1.5)                    # left to right, no doubling back


def test_restyle_changes_the_colour_and_keeps_the_motion(pipe):
    scene, clip, _ = _moving_right("blue", "ball", "black")
    frames = _run(pipe, "a yellow ball moving right", video=clip, strength=0.8)
    cmap = color_map(frames)
    assert dominant_color(cmap) == "yellow"
    assert classify_motion(track(cmap, None)[0]) == "moving right"


def test_cli_warns_about_unknown_words(tmp_path):
    cmd = [sys.executable, "-m", "sora_core.cli", "generate", "--model", "tinyworld", "--json",
           "--prompt", "a majestic red dragon ball moving right", "--steps", "4", "--out", "w", "--name", "w",
           "--output-root", str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=str(ROOT))
    assert proc.returncode == 0, proc.stderr[-2000:]
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    notices = [e for e in events if e.get("unknown_words")]
    assert notices and notices[0]["unknown_words"] == ["majestic", "dragon"]
    assert "majestic, dragon" in notices[0]["message"]
    manifest = json.loads((tmp_path / "w" / "manifest.json").read_text())
    assert manifest["model"]["family"] == "tinyworld" and len(manifest["frames"]) == 16
