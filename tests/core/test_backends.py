"""Backends end to end with tiny random pipelines saved to disk and loaded back offline."""

import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from sora_core.backends import Request, load_backend  # noqa: E402
from sora_core.backends import loading  # noqa: E402
from sora_core.errors import SoraError  # noqa: E402
from sora_core.spec import Runtime  # noqa: E402

SIZE = 32


def image(seed, h=SIZE, w=SIZE):
    return np.random.default_rng(seed).uniform(0, 1, (h, w, 3)).astype(np.float32)


def request(mode, frames, known=(), video_frames=0, strength=1.0, steps=2, size=SIZE, seed=7):
    known = {i: image(i, size, size) for i in known}
    video = np.stack([image(100 + i, size, size) for i in range(video_frames)]) if video_frames else None
    return Request(mode=mode, prompt="a red ball moving left", negative_prompt="blurry", seed=seed,
                   steps=steps, guidance=4.0, width=size, height=size, frames=frames, known=known,
                   video=video, strength=strength)


_BACKENDS = {}


def backend_for(folder):
    """One load per model folder per test session (loading is what the worker caches too)."""
    key = str(folder)
    if key not in _BACKENDS:
        _BACKENDS[key] = load_backend(Path(folder), Runtime())
    return _BACKENDS[key]


def run_checked(backend, req):
    steps = []
    out = backend.run(req, lambda step, total: steps.append((step, total)))
    assert out.shape == (req.frames, req.height, req.width, 3)
    assert out.dtype == np.float32 and np.isfinite(out).all()
    assert 0.0 <= out.min() and out.max() <= 1.0
    total = steps[0][1]
    assert steps == [(i, total) for i in range(1, total + 1)]       # once per step, in order
    assert total == req.steps or (req.mode == "restyle" and 1 <= total <= req.steps)
    return out, steps


# (fixture, mode, frames, known indices, restyle source frames, strength)
CASES = [
    ("tiny_wan_t2v", "generate", 5, (), 0, 1.0),
    ("tiny_wan_t2v", "restyle", 5, (), 5, 0.6),
    ("tiny_wan_i2v", "animate", 5, (0,), 0, 1.0),
    ("tiny_wan_i2v", "interpolate", 5, (0, 4), 0, 1.0),
    ("tiny_wan_vace", "generate", 5, (), 0, 1.0),
    ("tiny_wan_vace", "animate", 5, (0,), 0, 1.0),
    ("tiny_wan_vace", "extend", 5, (0, 1), 0, 1.0),           # forward: given head
    ("tiny_wan_vace", "extend", 5, (3, 4), 0, 1.0),           # backward: given tail
    ("tiny_wan_vace", "interpolate", 5, (0, 2, 4), 0, 1.0),
    ("tiny_ltx", "generate", 9, (), 0, 1.0),
    ("tiny_ltx", "animate", 9, (0,), 0, 1.0),
    ("tiny_ltx", "extend", 17, tuple(range(9)), 0, 1.0),      # a 9-frame video condition
    ("tiny_ltx", "extend", 17, tuple(range(8, 17)), 0, 1.0),  # a video condition at the tail
    ("tiny_ltx", "extend", 9, (6, 7, 8), 0, 1.0),             # image conditions at the tail
    ("tiny_ltx", "interpolate", 9, (0, 4, 8), 0, 1.0),
    ("tiny_ltx", "restyle", 9, (), 9, 0.5),
    ("tiny_tinyworld", "generate", 4, (), 0, 1.0),
    ("tiny_tinyworld", "animate", 4, (0,), 0, 1.0),
    ("tiny_tinyworld", "extend", 6, (4, 5), 0, 1.0),
    ("tiny_tinyworld", "interpolate", 5, (0, 4), 0, 1.0),
    ("tiny_tinyworld", "restyle", 4, (), 4, 0.5),
]


@pytest.mark.parametrize("fixture, mode, frames, known, video_frames, strength", CASES,
                         ids=[f"{c[0][5:]}-{c[1]}-{'-'.join(map(str, c[3][:1] + c[3][-1:]))}" for c in CASES])
def test_every_backend_and_mode_end_to_end(request_fixture, fixture, mode, frames, known,
                                           video_frames, strength):
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    folder = request_fixture(fixture)
    backend = backend_for(folder)
    size = 64 if fixture == "tiny_tinyworld" else SIZE
    out, _ = run_checked(backend, request(mode, frames, known, video_frames, strength, size=size))
    assert backend.capabilities.supports(mode)
    ident = backend.identity
    assert ident["family"] == backend.capabilities.family and len(ident["hash"]) == 64
    assert Path(ident["path"]) == Path(folder).resolve()


@pytest.fixture
def request_fixture(request):
    return request.getfixturevalue


def test_same_seed_same_frames_and_model_hash_is_stable(tiny_ltx, tiny_wan_t2v):
    backend = backend_for(tiny_ltx)
    a, _ = run_checked(backend, request("generate", 9, seed=3))
    b, _ = run_checked(backend, request("generate", 9, seed=3))
    c, _ = run_checked(backend, request("generate", 9, seed=4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert loading.model_hash(Path(tiny_ltx)) == backend.identity["hash"]
    assert loading.model_hash(Path(tiny_wan_t2v)) != backend.identity["hash"]


def test_raising_in_on_step_stops_the_run(tiny_wan_t2v):
    backend = backend_for(tiny_wan_t2v)
    calls = []

    def on_step(step, total):
        calls.append(step)
        raise SoraError("cancelled", "cancelled by the user")

    with pytest.raises(SoraError) as err:
        backend.run(request("generate", 5, steps=4), on_step)
    assert err.value.code == "cancelled" and calls == [1]


def test_pickle_only_folder_is_refused_by_name(pickle_only_model):
    with pytest.raises(SoraError) as err:
        load_backend(Path(pickle_only_model), Runtime())
    assert err.value.code == "invalid_input" and err.value.exit_code == 2
    assert "pickle" in err.value.message and "diffusion_pytorch_model.bin" in err.value.message


def test_missing_and_foreign_folders(tmp_path):
    with pytest.raises(SoraError) as err:
        load_backend(tmp_path / "nowhere", Runtime())
    assert err.value.code == "not_found"
    (tmp_path / "sd").mkdir()
    (tmp_path / "sd" / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    with pytest.raises(SoraError) as err:
        load_backend(tmp_path / "sd", Runtime())
    assert err.value.code == "invalid_input" and "StableDiffusionPipeline" in err.value.message


def test_components_with_their_own_code_are_refused(tiny_wan_t2v, tmp_path):
    import json
    import shutil

    folder = tmp_path / "custom"
    shutil.copytree(tiny_wan_t2v, folder)
    index = json.loads((folder / "model_index.json").read_text())
    index["transformer"] = ["my_transformer", "EvilTransformer"]
    (folder / "model_index.json").write_text(json.dumps(index))
    with pytest.raises(SoraError) as err:
        load_backend(folder, Runtime())
    assert err.value.code == "invalid_input" and "my_transformer" in err.value.message


def test_wan_i2v_refuses_keyframes_in_between(tiny_wan_i2v):
    with pytest.raises(SoraError) as err:
        backend_for(tiny_wan_i2v).run(request("interpolate", 5, (0, 2, 4)), lambda s, t: None)
    assert err.value.field == "inputs.keyframes" and "VACE" in err.value.hint


def test_unsupported_mode_is_refused(tiny_wan_t2v):
    with pytest.raises(SoraError) as err:
        backend_for(tiny_wan_t2v).run(request("animate", 5, (0,)), lambda s, t: None)
    assert err.value.field == "mode"


@pytest.mark.parametrize("memory", ["model_cpu_offload", "group_offload", "vae_tiling"])
def test_memory_strategies_run_on_cpu(tiny_wan_t2v, memory):
    backend = load_backend(Path(tiny_wan_t2v), Runtime(device="cpu", memory=memory))
    run_checked(backend, request("generate", 5, steps=1))
    if memory == "vae_tiling":
        assert backend.identity["memory"] == "vae_tiling" and backend.pipe.vae.use_tiling
    else:   # needs a GPU: falls back to plain CPU placement with a logged notice
        assert backend.identity["memory"] == "none"


def test_group_offload_hooks_run_even_with_the_cpu_as_onload_device(tiny_wan_t2v):
    backend = load_backend(Path(tiny_wan_t2v), Runtime(device="cpu"))
    loading.group_offload(backend.pipe, "cpu")      # the code path a GPU takes, on the CPU
    run_checked(backend, request("generate", 5, steps=1))


def test_half_dtype_keeps_the_wan_vae_in_float32(tiny_wan_t2v):
    backend = load_backend(Path(tiny_wan_t2v), Runtime(device="cpu", dtype="bfloat16"))
    assert backend.pipe.transformer.dtype == torch.bfloat16 and backend.pipe.vae.dtype == torch.float32
    assert backend.identity["dtype"] == "bfloat16"
    run_checked(backend, request("generate", 5, steps=1))


def test_device_and_dtype_selection():
    assert loading.pick_device("auto") in ("cuda", "mps", "cpu")
    assert loading.pick_dtype("auto", "cpu") == torch.float32
    assert loading.pick_dtype("auto", "cuda") == torch.bfloat16
    assert loading.pick_dtype("float16", "cpu") == torch.float16
    if not torch.cuda.is_available():
        with pytest.raises(SoraError) as err:
            loading.pick_device("cuda")
        assert err.value.field == "runtime.device"


@pytest.mark.parametrize("exc", [lambda: torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"),
                                 lambda: RuntimeError("MPS backend out of memory")])
def test_out_of_memory_is_retryable_with_a_hint(tiny_ltx, exc):
    backend = backend_for(tiny_ltx)
    real = backend.pipe

    def exploding(**kwargs):
        raise exc()

    backend.pipe = exploding
    try:
        with pytest.raises(SoraError) as err:
            backend.run(request("generate", 9), lambda s, t: None)
    finally:
        backend.pipe = real
    assert err.value.code == "out_of_memory" and err.value.retryable and err.value.exit_code == 75
    assert "offload" in err.value.hint


def test_tinyworld_reports_unknown_words(tiny_tinyworld):
    backend = backend_for(tiny_tinyworld)
    assert backend.capabilities.family == "tinyworld"
    assert "dragon" in backend.unknown_words("a red dragon moving left")


def test_ltx_and_wan_folders_of_sibling_classes_serve_their_family(tiny_ltx, tiny_wan_t2v, tmp_path):
    """An LTXPipeline folder is served through LTXConditionPipeline; a WanVideoToVideoPipeline
    folder still generates (WanPipeline from the same components)."""
    import json
    import shutil

    for src, cls, req in [(tiny_ltx, "LTXPipeline", request("animate", 9, (0,), steps=1)),
                          (tiny_wan_t2v, "WanVideoToVideoPipeline", request("generate", 5, steps=1))]:
        folder = tmp_path / cls / "weights"
        shutil.copytree(src, folder)
        index = json.loads((folder / "model_index.json").read_text())
        index["_class_name"] = cls
        (folder / "model_index.json").write_text(json.dumps(index))
        backend = load_backend(folder, Runtime())
        assert backend.identity["pipeline"] == cls and backend.identity["name"] == cls   # generic folder name
        run_checked(backend, req)
