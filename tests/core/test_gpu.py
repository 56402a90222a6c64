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
