"""TinyWorld: the world generator, the held-out rule and the pipeline's contract (tiny random model)."""

import numpy as np
import pytest

from sora_core.models import tinyworld
from sora_core.models.tinyworld import world


def test_constants_import_without_torch():
    assert tinyworld.NATIVE_SIZE == (64, 64)
    assert tinyworld.MAX_FRAMES >= 16 and tinyworld.FPS == 8
    assert tinyworld.DEFAULT_STEPS > 0 and tinyworld.DEFAULT_GUIDANCE >= 1


def test_world_is_deterministic():
    a = world.sample_clip(123)
    b = world.sample_clip(123)
    assert a[0] == b[0]
    assert np.array_equal(a[1], b[1])
    assert a[1].shape == (16, 64, 64, 3) and a[1].dtype == np.float32
    assert 0 <= a[1].min() and a[1].max() <= 1
    assert world.sample_clip(124)[0] != a[0] or not np.array_equal(world.sample_clip(124)[1], a[1])


def test_held_out_rule_is_about_ten_percent_and_respected():
    total = len(world.COLOR_NAMES) * len(world.SHAPES) * len(world.MOTIONS)
    assert 0.07 <= len(world.HELD_OUT) / total <= 0.13
    assert world.is_held_out("orange", "triangle", "moving left")
    assert not world.is_held_out("red", "ball", "moving left")
    for s in range(300):
        _, _, scene = world.sample_clip(s)
        for o in scene.objects:
            assert not world.is_held_out(o.color, o.shape, o.motion)
    for s in range(50):
        scene = world.sample_scene(np.random.default_rng(s), n_objects=1, held_out=True)
        o = scene.objects[0]
        assert world.is_held_out(o.color, o.shape, o.motion)


def test_captions_parse_back():
    for s in range(100):
        cap, _, scene = world.sample_clip(s)
        p = world.parse_caption(cap)
        assert [(o["color"], o["shape"], o["motion"]) for o in p["objects"]] == \
               [(o.color, o.shape, o.motion) for o in scene.objects]
        assert p["background"] == scene.background and p["camera"] == scene.camera
        assert world.unknown_words(cap) == []


def test_unknown_words_are_named_once_in_order():
    assert world.unknown_words("A fluffy RED dog, fluffy and moving left!") == ["fluffy", "dog"]


@pytest.fixture(scope="module")
def tiny_pipe(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from sora_core.models.tinyworld.pipeline import build_pipeline
    torch.manual_seed(0)
    pipe = build_pipeline(dict(width=32, depth=1, heads=2, rope_axes=(4, 6, 6)), dict(dim=32, layers=1, heads=2))
    folder = tmp_path_factory.mktemp("tw") / "weights"
    pipe.save_pretrained(str(folder), safe_serialization=True)
    return pipe, folder


def test_save_load_round_trip(tiny_pipe):
    import torch
    from sora_core.models.tinyworld.pipeline import TinyWorldPipeline
    pipe, folder = tiny_pipe
    assert (folder / "model_index.json").is_file()
    assert list(folder.rglob("*.safetensors")) and not list(folder.rglob("*.bin"))
    loaded = TinyWorldPipeline.from_pretrained(folder, torch_dtype=torch.float32)
    a = pipe("a red ball moving left", num_inference_steps=2, generator=torch.Generator().manual_seed(1)).frames
    b = loaded("a red ball moving left", num_inference_steps=2, generator=torch.Generator().manual_seed(1)).frames
    assert np.allclose(a, b, atol=1e-5)
    with pytest.raises(FileNotFoundError):
        TinyWorldPipeline.from_pretrained(folder / "nope")


def _clip():
    return world.sample_clip(7)[1]


@pytest.mark.parametrize("mode", ["generate", "animate", "extend_fwd", "extend_bwd", "interpolate", "keyframes", "restyle"])
def test_every_mode_runs_and_keeps_known_frames(tiny_pipe, mode):
    import torch
    pipe, _ = tiny_pipe
    clip = _clip()
    F = 16
    known, video = None, None
    if mode == "animate":
        known = {0: clip[0]}
    elif mode == "extend_fwd":
        known = {i: clip[i] for i in range(4)}
    elif mode == "extend_bwd":
        known = {i: clip[i] for i in range(12, 16)}
    elif mode == "interpolate":
        known = {0: clip[0], 15: clip[15]}
    elif mode == "keyframes":
        known = {0: clip[0], 7: clip[7], 15: clip[15]}
    elif mode == "restyle":
        video = clip
    calls = []
    out = pipe("a red ball moving right on the ground", num_frames=F, num_inference_steps=3,
               generator=torch.Generator().manual_seed(0), known_frames=known, video=video,
               strength=0.6 if video is not None else 1.0,
               callback_on_step_end=lambda p, i, t, kw: calls.append(i) or kw).frames
    assert out.shape == (1, F, 64, 64, 3) and out.dtype == np.float32
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    for k, img in (known or {}).items():
        assert np.abs(out[0, k] - img).max() < 1e-3
    assert calls and calls == list(range(len(calls)))
    if video is None:
        assert len(calls) == 3


def test_short_clip_backward_extension_keeps_tail(tiny_pipe):
    import torch
    pipe, _ = tiny_pipe
    clip = _clip()
    out = pipe("a blue square", num_frames=10, num_inference_steps=2, known_frames={8: clip[0], 9: clip[1]},
               generator=torch.Generator().manual_seed(0)).frames
    assert out.shape == (1, 10, 64, 64, 3)
    assert np.abs(out[0, 9] - clip[1]).max() < 1e-3


def test_unknown_words_do_not_crash_and_are_reported(tiny_pipe):
    import torch
    pipe, _ = tiny_pipe
    prompt = "a majestic red dragon flying over Paris"
    assert pipe.unknown_words(prompt) == ["majestic", "dragon", "flying", "over", "paris"]
    out = pipe(prompt, negative_prompt="blurry", num_inference_steps=2, generator=torch.Generator().manual_seed(0)).frames
    assert out.shape == (1, 16, 64, 64, 3)
    out = pipe("", num_inference_steps=2, guidance_scale=1.0).frames
    assert np.isfinite(out).all()


def test_cancel_from_callback_propagates(tiny_pipe):
    pipe, _ = tiny_pipe

    class Cancel(Exception):
        pass

    def cb(p, i, t, kw):
        raise Cancel()

    with pytest.raises(Cancel):
        pipe("a red ball", num_inference_steps=3, callback_on_step_end=cb)


def test_bad_arguments_are_refused(tiny_pipe):
    pipe, _ = tiny_pipe
    with pytest.raises(ValueError):
        pipe("a red ball", num_frames=17, num_inference_steps=1)
    with pytest.raises(ValueError):
        pipe("a red ball", known_frames={20: _clip()[0]}, num_inference_steps=1)
