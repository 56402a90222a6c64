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
