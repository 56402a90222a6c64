"""GPU paths: device, dtype and memory strategies on a real CUDA device (skipped on CPU)."""

import pytest

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.mark.parametrize("memory", ["none", "model_cpu_offload", "group_offload", "vae_tiling"])
def test_every_memory_strategy_generates_on_cuda(tiny_wan_vace, tmp_path, memory):
    from sora_core.client import WorkerClient
    from sora_core.manifest import verify_frames
    from sora_core.spec import ShotSpec

    spec = ShotSpec.from_dict({"prompt": "a red ball", "model": tiny_wan_vace, "frames": 9, "width": 32,
                               "height": 32, "steps": 2, "output": {"dir": memory, "name": "s"},
                               "runtime": {"device": "cuda", "dtype": "bfloat16", "memory": memory}})
    with WorkerClient() as client:
        assert client.start()["cuda"] is True
        done = client.run(spec, str(tmp_path))
    assert done["frames"] == 9 and verify_frames(done["manifest"]) == []


def test_cuda_out_of_memory_is_retryable(tiny_wan_t2v):
    from sora_core.worker import classify

    free, _ = torch.cuda.mem_get_info()
    try:
        torch.empty(int(free * 4), dtype=torch.uint8, device="cuda")
    except Exception as exc:  # the real allocator's error, whatever its class
        err = classify(exc)
    else:
        pytest.fail("allocating four times the free memory succeeded")
    assert err.code == "out_of_memory" and err.exit_code == 75 and "offload" in err.hint


# (fixture, mode, frames, size): every new family once on CUDA in bfloat16
FAMILY_CASES = [("tiny_wan_ti2v", "generate", 5, 32), ("tiny_wan_a14b", "generate", 5, 32),
                ("tiny_ltx2", "generate", 9, 64), ("tiny_ltx2_upsampled", "generate", 9, 64)]


@pytest.mark.parametrize("fixture, mode, frames, size", FAMILY_CASES, ids=[c[0][5:] for c in FAMILY_CASES])
@pytest.mark.parametrize("memory", ["none", "model_cpu_offload"])
def test_the_new_families_generate_on_cuda(request, tmp_path, fixture, mode, frames, size, memory):
    from sora_core.client import WorkerClient
    from sora_core.manifest import verify_frames
    from sora_core.spec import ShotSpec

    spec = ShotSpec.from_dict({"prompt": "a red ball", "model": request.getfixturevalue(fixture),
                               "frames": frames, "width": size, "height": size, "steps": 2,
                               "output": {"dir": f"{fixture}-{memory}", "name": "s"},
                               "runtime": {"device": "cuda", "dtype": "bfloat16", "memory": memory}})
    with WorkerClient() as client:
        done = client.run(spec, str(tmp_path))
    assert done["frames"] == frames and verify_frames(done["manifest"]) == []
    assert (done["audio"] is not None) == fixture.startswith("tiny_ltx2")


def test_a14b_under_cpu_offload_keeps_one_expert_on_the_gpu_at_a_time(tiny_wan_a14b):
    from tests.core.test_families import expert_calls, req

    from sora_core.backends import load_backend
    from sora_core.spec import Runtime

    backend = load_backend(tiny_wan_a14b, Runtime(device="cuda", dtype="bfloat16", memory="model_cpu_offload"))
    resident = []
    for name in ("transformer", "transformer_2"):
        other = "transformer_2" if name == "transformer" else "transformer"
        getattr(backend.pipe, name).register_forward_hook(      # after the offload hook moved them
            lambda m, a, o, other=other: resident.append(next(getattr(backend.pipe, other).parameters()).device.type))
    calls, _ = expert_calls(backend)
    backend.run(req("generate", 5, 32, steps=4, guidance_2=3.0), lambda s, t: None)
    assert {"transformer", "transformer_2"} <= set(calls) and set(resident) == {"cpu"}


# (fixture, mode, frames, size): the new families' modes that start from frames, on CUDA in bfloat16
INPUT_CASES = [("tiny_wan_ti2v", "animate", 5, 32), ("tiny_wan_a14b_i2v", "animate", 5, 32),
               ("tiny_ltx2", "extend", 8, 64), ("tiny_ltx2_hdr", "hdr", 9, 64)]


@pytest.mark.parametrize("fixture, mode, frames, size", INPUT_CASES, ids=[f"{c[0][5:]}-{c[1]}" for c in INPUT_CASES])
def test_the_new_families_modes_from_frames_on_cuda(request, tmp_path, fixture, mode, frames, size):
    import numpy as np

    from sora_core.client import WorkerClient
    from sora_core.frames.exr import read_image, write_exr
    from sora_core.manifest import verify_frames
    from sora_core.spec import ShotSpec

    (tmp_path / "in").mkdir()
    for n in range(1, 10):
        write_exr(tmp_path / "in" / f"src.{n:04d}.exr", np.full((size, size, 3), 0.05 * n, np.float32), {})
    pattern = str(tmp_path / "in" / "src.####.exr")
    inputs = {"image": pattern.replace("####", "0001")} if mode == "animate" else {"frames": pattern}
    if mode == "extend":
        inputs["context"] = 1
    spec = ShotSpec.from_dict({"mode": mode, "prompt": "a red ball", "model": request.getfixturevalue(fixture),
                               "frames": frames, "width": size, "height": size, "steps": 2, "inputs": inputs,
                               "output": {"dir": f"{fixture}-{mode}", "name": "s"},
                               "runtime": {"device": "cuda", "dtype": "bfloat16", "memory": "model_cpu_offload"}})
    with WorkerClient() as client:
        done = client.run(spec, str(tmp_path))
    assert done["frames"] == frames and verify_frames(done["manifest"]) == []
    if mode == "hdr":                       # scene-linear HDR: values above 1.0 kept
        shot = tmp_path / f"{fixture}-{mode}"
        assert max(read_image(f).max() for f in shot.glob("s.*.exr")) > 1.0
